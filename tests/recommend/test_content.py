"""Content embeddings: products that share attributes are near, and new products are reachable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend.content import ContentRecommender, ContentSettings, product_tokens
from shelfwise.recommend.matrix import Interactions, rows_of

DAY = pd.Timestamp("2024-05-01")
COLUMNS = ["sku", "department", "category", "subcategory", "brand", "manufacturer", "size"]


@pytest.fixture
def catalogue() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("b1", "ALCOHOL", "BEERS/ALES", "LAGER", "National", "10", "12 OZ"),
            ("b2", "ALCOHOL", "BEERS/ALES", "ALE", "Private", "11", "6 PK"),
            ("b3", "ALCOHOL", "BEERS/ALES", "LAGER", "National", "10", "24 OZ"),  # nobody yet
            ("m1", "DAIRY", "MILK", "WHOLE MILK", "National", "20", "1 GAL"),
            ("m2", "DAIRY", "MILK", "SKIM MILK", "Private", "21", "1 GAL"),
            ("c1", "DAIRY", "CHEESE", "CHEDDAR", "National", "22", "8 OZ"),
            ("g1", "GROCERY", "CEREAL", "KIDS CEREAL", "National", "30", "12 OZ"),
        ],
        columns=COLUMNS,
    )


@pytest.fixture
def log() -> pd.DataFrame:
    rows = [("p1", "b1"), ("p1", "b2"), ("p2", "m1"), ("p2", "c1"), ("p2", "zz"), ("p3", "g1")]
    return pd.DataFrame(rows, columns=["person_id", "sku"]).assign(occurred_at=DAY)


def _vector(model: ContentRecommender, sku: str) -> np.ndarray:
    vector: np.ndarray = model.item_vectors_[rows_of(model.items_, np.array([sku]))[0]]
    return vector


def _cosine(model: ContentRecommender, a: str, b: str) -> float:
    return float(_vector(model, a) @ _vector(model, b))


def test_tokens_are_words_and_whole_values() -> None:
    frame = pd.DataFrame({"category": ["BEERS/ALES", None], "size": ["12 OZ", "  "]})
    row, token = product_tokens(frame)
    assert sorted(zip(row.tolist(), token.tolist(), strict=True)) == [
        (0, "ales"),
        (0, "beers"),
        (0, "category=beers/ales"),
        (0, "size=12 oz"),
    ]


def test_products_sharing_a_category_are_nearer(catalogue: pd.DataFrame, log: pd.DataFrame) -> None:
    model = ContentRecommender(catalogue=catalogue).fit(log)
    assert model.item_vectors_.dtype == np.float32
    norms = np.linalg.norm(model.item_vectors_, axis=1)
    assert norms[model.items_ != "zz"] == pytest.approx(1.0, abs=1e-5)
    assert norms[model.items_ == "zz"] == 0.0  # bought, but not in the catalogue
    assert _cosine(model, "b1", "b2") > _cosine(model, "b1", "m1")
    assert _cosine(model, "m1", "m2") > _cosine(model, "m1", "b2")
    assert _cosine(model, "b1", "b3") > _cosine(model, "b1", "b2")  # same subcategory and maker


def test_a_new_product_is_recommended_to_who_bought_its_like(
    catalogue: pd.DataFrame, log: pd.DataFrame
) -> None:
    model = ContentRecommender(ContentSettings(exclude_seen=True), catalogue=catalogue).fit(log)
    assert list(model.items_) == ["b1", "b2", "b3", "c1", "g1", "m1", "m2", "zz"]
    assert list(model.recommend(["p1"], k=1)["sku"]) == ["b3"]
    assert list(model.recommend(["p2"], k=1)["sku"]) == ["m2"]
    # The history moved onto the wider catalogue: p2's purchases are still left out.
    assert set(model.recommend(["p2"], k=8)["sku"]).isdisjoint({"m1", "c1", "zz"})


def test_fitting_on_encoded_interactions_is_the_same(
    catalogue: pd.DataFrame, log: pd.DataFrame
) -> None:
    fitted = ContentRecommender(catalogue=catalogue).fit(log)
    encoded = ContentRecommender(catalogue=catalogue).fit_interactions(Interactions.from_frame(log))
    assert list(encoded.items_) == list(fitted.items_)
    assert (encoded.history_ != fitted.history_).nnz == 0
    people = ["p1", "p2", "p3"]
    pd.testing.assert_frame_equal(encoded.recommend(people, 4), fitted.recommend(people, 4))


def test_a_product_arriving_later_embeds_without_refitting(
    catalogue: pd.DataFrame, log: pd.DataFrame
) -> None:
    model = ContentRecommender(catalogue=catalogue).fit(log)
    codes = rows_of(model.items_, catalogue["sku"].to_numpy(dtype=str))
    np.testing.assert_allclose(
        model.embed_products(catalogue), model.item_vectors_[codes], atol=1e-6
    )
    later = pd.DataFrame(
        [("m9", "DAIRY", "MILK", "OAT MILK", "Private", "99", "1 GAL"), ("q", *[None] * 6)],
        columns=COLUMNS,
    )
    vectors = model.embed_products(later)
    assert vectors.shape == (2, model.item_vectors_.shape[1])
    nearest = model.items_[np.argsort(-(model.item_vectors_ @ vectors[0]), kind="stable")[:2]]
    assert set(nearest) == {"m1", "m2"}
    assert not vectors[1].any()  # nothing known about it: the origin


def test_recent_purchases_weigh_more_with_a_half_life(catalogue: pd.DataFrame) -> None:
    log = pd.DataFrame(
        {"person_id": "p", "sku": ["b1", "m1"], "occurred_at": [DAY - pd.Timedelta(days=60), DAY]}
    )

    def gap(settings: ContentSettings) -> float:
        model = ContentRecommender(settings, catalogue=catalogue).fit(log)
        scores = model.scores(np.array([0]))[0]
        return float(scores[model.items_ == "m2"][0] - scores[model.items_ == "b2"][0])

    assert gap(ContentSettings(half_life_days=10)) > gap(ContentSettings()) + 0.1


def test_complete_journey_column_names_are_read(catalogue: pd.DataFrame, log: pd.DataFrame) -> None:
    renamed = catalogue.rename(
        columns={
            "sku": "product_id",
            "category": "product_category",
            "subcategory": "product_type",
            "manufacturer": "manufacturer_id",
            "size": "package_size",
        }
    )
    contract = ContentRecommender(catalogue=catalogue).fit(log)
    journey = ContentRecommender(catalogue=renamed).fit(log)
    np.testing.assert_allclose(journey.item_vectors_, contract.item_vectors_, atol=1e-6)


def test_a_catalogue_is_needed(catalogue: pd.DataFrame, log: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="needs a catalogue"):
        ContentRecommender().fit(log)
    with pytest.raises(ValueError, match="none of the columns"):
        ContentRecommender(catalogue=catalogue[["sku"]]).fit(log)
    with pytest.raises(ValueError, match="no sku column"):
        ContentRecommender(catalogue=catalogue.drop(columns="sku")).fit(log)


def test_save_and_load_give_identical_recommendations(
    catalogue: pd.DataFrame, log: pd.DataFrame, tmp_path: Path
) -> None:
    settings = ContentSettings(dimensions=4, half_life_days=30.0)
    model = ContentRecommender(settings, catalogue=catalogue).fit(log)
    loaded = ContentRecommender.load(model.save(tmp_path / "content"))
    assert loaded.settings == settings
    assert model.item_vectors_.shape[1] == 4
    people = ["p1", "p2", "p3", "stranger"]
    pd.testing.assert_frame_equal(loaded.recommend(people, 5), model.recommend(people, 5))
    np.testing.assert_array_equal(loaded.embed_products(catalogue), model.embed_products(catalogue))


@pytest.mark.data
def test_complete_journey_neighbours_share_a_category(datasets_dir: Path) -> None:
    """On the 92,331 products of The Complete Journey, a product's nearest other product is
    nearly always of the same product_category."""
    products = pd.read_parquet(datasets_dir / "dunnhumby_complete_journey" / "products.parquet")
    log = pd.DataFrame({"person_id": "p", "sku": ["1"], "occurred_at": [DAY]})
    model = ContentRecommender(catalogue=products).fit(log)
    assert model.item_vectors_.shape == (92_332, 64)
    named = products[products["product_category"].notna()].sample(500, random_state=0)
    codes = rows_of(model.items_, named["product_id"].astype(str).to_numpy())
    similarity = model.item_vectors_[codes] @ model.item_vectors_.T
    similarity[np.arange(len(codes)), codes] = -np.inf
    category = products.set_index(products["product_id"].astype(str))["product_category"]
    nearest = category.reindex(model.items_[similarity.argmax(axis=1)]).to_numpy()
    assert np.mean(nearest == named["product_category"].to_numpy()) > 0.9


def test_a_product_added_after_training_is_scored_without_refitting(
    catalogue: pd.DataFrame, log: pd.DataFrame
) -> None:
    model = ContentRecommender(catalogue=catalogue).fit(log)
    before = model.scores(rows_of(model.users_, np.array(["p1", "p2"])))
    arrival = pd.DataFrame(
        [("b9", "ALCOHOL", "BEERS/ALES", "ALE", "Private", "11", "6 PK")], columns=COLUMNS
    )
    assert model.add_products(arrival).tolist() == ["b9"]
    assert "b9" in model.items_
    after = model.scores(rows_of(model.users_, np.array(["p1", "p2"])))
    known = rows_of(model.items_, np.asarray(sorted(set(model.items_) - {"b9"})))
    np.testing.assert_allclose(after[:, known], before, atol=1e-6)  # nothing else moved
    assert _cosine(model, "b9", "b2") == pytest.approx(1.0, abs=1e-5)  # b2's twin
    b9 = rows_of(model.items_, np.array(["b9"]))[0]
    assert after[0, b9] > after[1, b9]  # the beer drinker before the milk buyer
    assert model.history_.shape == (len(model.users_), len(model.items_))
