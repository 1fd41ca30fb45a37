"""New products: nobody bought them, the content model places them in the lists that fit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend import two_stage
from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.cold_start import Context, cold_candidates
from shelfwise.recommend.content import ContentRecommender
from shelfwise.recommend.decide import decide
from shelfwise.recommend.explain import explain_one
from shelfwise.recommend.new_products import SOURCE, place
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.two_stage import TwoStageRecommender, ranked_columns

SMALL = {"ranker_trees": 30, "ranker_leaves": 7, "label_windows": 2}
LONG_AGO = pd.Timestamp("2022-01-01", tz="UTC")
LATELY = pd.Timestamp("2024-04-01", tz="UTC")  # three weeks before the planted log ends


def _product(sku: str, category: str, launched: pd.Timestamp) -> dict[str, object]:
    return {
        "sku": sku,
        "department": "GROCERY",
        "category": category,
        "brand": "National",
        "launch_date": launched,
    }


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    """The planted log's skus (group g's staples in category g) launched long ago, two new
    products for groups 0 and 3, and an old product of group 0 that never sold."""
    rows = [_product(f"s{s:02d}", f"group{s // 4}", LONG_AGO) for s in range(24)]
    rows += [_product(f"x{x:02d}", "extras", LONG_AGO) for x in range(30)]
    rows += [_product("n0", "group0", LATELY), _product("n3", "group3", LATELY)]
    rows.append(_product("dead", "group0", LONG_AGO))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def model(
    planted_log: Callable[[int], pd.DataFrame], catalogue: pd.DataFrame
) -> TwoStageRecommender:
    settings = RecommenderSettings(**SMALL)
    return TwoStageRecommender(settings, products=catalogue).fit(planted_log(0))


def test_a_new_product_takes_the_fifth_place_of_the_lists_it_fits(
    model: TwoStageRecommender,
) -> None:
    assert model.new_skus_.tolist() == ["n0", "n3"]  # "dead" never sold and is not new
    ranked = model.ranked(["p00", "p03"], 10)
    assert ranked.groupby("person_id").size().tolist() == [10, 10]
    new = ranked[ranked["source"] == SOURCE]
    assert new[["person_id", "sku", "rank"]].values.tolist() == [["p00", "n0", 5], ["p03", "n3", 5]]
    assert set(new["anchor_sku"]) <= {f"s{s:02d}" for s in (0, 1, 2, 3, 12, 13, 14, 15)}
    assert not new["bought_before"].any()
    assert "dead" not in set(ranked["sku"])


def test_the_business_rules_keep_a_new_product_in_its_place(
    model: TwoStageRecommender, catalogue: pd.DataFrame
) -> None:
    ranked = model.ranked(["p00", "p03"], 10)
    lists = ranked[ranked["source"] != SOURCE].assign(score=lambda f: f["score"] - 10.0)
    content = model.models_["content"]
    assert isinstance(content, ContentRecommender)
    # ranker scores below 0
    placed = pd.DataFrame(place(ranked_columns(lists), content, model.new_skus_, 1, 5, 10))
    for _, rows in placed.groupby("person_id"):
        assert rows["source"].tolist()[4] == SOURCE
        assert (np.diff(rows["score"].to_numpy()) <= 0).all()  # scored between its neighbours
    decision = decide(model, ["p00", "p03"], 10, Catalogue.from_frame(catalogue.assign(price=2.0)))
    new = decision.recommendations[decision.recommendations["source"] == SOURCE]
    assert new[["person_id", "sku", "rank"]].values.tolist() == [["p00", "n0", 5], ["p03", "n3", 5]]


def test_products_added_after_training_are_placed_and_saved(
    planted_log: Callable[[int], pd.DataFrame], catalogue: pd.DataFrame, tmp_path: Path
) -> None:
    model = TwoStageRecommender(RecommenderSettings(**SMALL), products=catalogue)
    model.fit(planted_log(0))
    arrival = pd.DataFrame([_product("n9", "extras", LATELY), _product("s00", "group0", LONG_AGO)])
    assert model.add_products(arrival).tolist() == ["n9"]  # s00 sold: not new
    assert model.new_skus_.tolist() == ["n0", "n3", "n9"]
    loaded = TwoStageRecommender.load(model.save(tmp_path / "recommender"))
    people = ["p00", "p03", "stranger"]
    pd.testing.assert_frame_equal(loaded.recommend(people, 10), model.recommend(people, 10))
    assert loaded.new_skus_.tolist() == ["n0", "n3", "n9"]


def test_many_new_products_are_placed_through_an_ann_index_that_saves(
    planted_log: Callable[[int], pd.DataFrame],
    catalogue: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exact = TwoStageRecommender(RecommenderSettings(**SMALL), products=catalogue)
    exact.fit(planted_log(0))
    arrivals = pd.DataFrame(
        [_product(f"n{g}{v}", f"group{g}", LATELY) for g in range(6) for v in range(5)]
    )
    exact.add_products(arrivals)
    assert exact.new_index_ is None  # 32 new products: scored exactly
    monkeypatch.setattr(two_stage, "NEW_INDEX_MIN", 10)
    indexed = TwoStageRecommender(RecommenderSettings(**SMALL), products=catalogue)
    indexed.fit(planted_log(0))
    assert indexed.new_index_ is None  # two new products at fit: too few for an index
    indexed.add_products(arrivals)
    assert indexed.new_index_ is not None
    assert len(indexed.new_index_) == len(indexed.new_skus_) == 32
    people = ["p00", "p03", "p13", "stranger"]
    placed = indexed.ranked(people, 10)
    assert (placed["source"] == SOURCE).sum() == 3  # one place each for the three known
    expected = exact.ranked(people, 10)
    # the same lists; a new product may be another of equal content (same vector, tied)
    others = ["person_id", "rank", "source"]
    pd.testing.assert_frame_equal(placed[others], expected[others])
    old = placed["source"] != SOURCE
    pd.testing.assert_frame_equal(placed[old], expected[old])
    new = ~old
    np.testing.assert_allclose(placed.loc[new, "score"], expected.loc[new, "score"], rtol=1e-5)
    loaded = TwoStageRecommender.load(indexed.save(tmp_path / "recommender"))
    assert loaded.new_index_ is not None
    pd.testing.assert_frame_equal(loaded.ranked(people, 10), placed)


def test_no_slots_no_new_products(
    planted_log: Callable[[int], pd.DataFrame], catalogue: pd.DataFrame
) -> None:
    settings = RecommenderSettings(new_product_slots=0, **SMALL)
    model = TwoStageRecommender(settings, products=catalogue).fit(planted_log(0))
    assert SOURCE not in set(model.recommend(["p00", "p03"], 10)["source"])


def test_a_new_person_who_looked_at_a_new_product_gets_its_neighbours(
    model: TwoStageRecommender,
) -> None:
    cold = cold_candidates(model, {"visitor": Context(recent=("n0",))}, depth=5)
    assert (cold["source"] == "content").all()
    assert set(cold["anchor_sku"]) == {"n0"}
    assert set(cold["sku"]) == {"s00", "s01", "s02", "s03", "dead"}  # group 0's products
    assert "n0" not in set(cold["sku"])
    assert np.all(np.diff(cold["score"].to_numpy()) <= 0)


def test_explanations_and_errors(planted_log: Callable[[int], pd.DataFrame]) -> None:
    assert explain_one(SOURCE, anchor="Whole milk") == "New, and similar to Whole milk"
    without = TwoStageRecommender(RecommenderSettings(**SMALL)).fit(planted_log(0))
    with pytest.raises(ValueError, match="give it the product catalogue"):
        without.add_products(pd.DataFrame([_product("n9", "extras", LATELY)]))
