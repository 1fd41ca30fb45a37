"""Item-to-item neighbours on logs small enough to work out by hand, and against brute force."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.recommend import item_knn
from shelfwise.recommend.item_knn import ItemKNNRecommender, ItemKNNSettings, item_similarity
from shelfwise.recommend.matrix import rows_of

DAY = pd.Timestamp("2024-05-01")
HALF = 1 / math.sqrt(2)
COSINE = ItemKNNSettings(shrinkage=0.0)


def _log(pairs: list[tuple[str, str]], **columns: list[object]) -> pd.DataFrame:
    frame = pd.DataFrame(pairs, columns=["person_id", "sku"]).assign(occurred_at=DAY)
    return frame.assign(**columns)


@pytest.fixture
def three_people() -> pd.DataFrame:
    # As documents, a = b = (p1, p2), c = (p2, p3), d = (p3). Cosines: a~b 2/2 = 1,
    # a~c = b~c = 1/2, c~d = 1/sqrt(2), a~d = b~d = 0.
    return _log(
        [("p1", "a"), ("p1", "b"), ("p2", "a"), ("p2", "b"), ("p2", "c"), ("p3", "c"), ("p3", "d")]
    )


def _similarity(model: ItemKNNRecommender) -> dict[tuple[str, str], float]:
    matrix = model.similarity_.tocoo()
    return {
        (str(model.items_[a]), str(model.items_[c])): float(v)
        for a, c, v in zip(matrix.row, matrix.col, matrix.data, strict=True)
    }


def _code(model: ItemKNNRecommender, *skus: str) -> np.ndarray:
    return rows_of(model.items_, np.array(skus))


def test_cosine_neighbours_and_scores_by_hand(three_people: pd.DataFrame) -> None:
    model = ItemKNNRecommender(COSINE).fit(three_people)
    assert _similarity(model) == pytest.approx(
        {
            ("a", "b"): 1.0, ("a", "c"): 0.5,
            ("b", "a"): 1.0, ("b", "c"): 0.5,
            ("c", "a"): 0.5, ("c", "b"): 0.5, ("c", "d"): HALF,
            ("d", "c"): HALF,
        }
    )  # fmt: skip
    # p1 holds a and b: a scores sim(b, a) = 1, b 1, c 1/2 + 1/2; nothing points to d.
    out = model.recommend(["p1", "p3"], k=4)
    assert list(out["sku"]) == ["a", "b", "c", "c", "d", "a", "b"]
    assert list(out["score"]) == pytest.approx([1, 1, 1, HALF, HALF, 0.5, 0.5])
    seen = ItemKNNRecommender(replace(COSINE, exclude_seen=True)).fit(three_people)
    assert list(seen.recommend(["p1"], k=4)["sku"]) == ["c"]


def test_neighbours_keep_the_most_similar_ties_to_the_smaller_sku(
    three_people: pd.DataFrame,
) -> None:
    model = ItemKNNRecommender(replace(COSINE, neighbours=1)).fit(three_people)
    # c's best neighbour is d (0.71); a and b tie at 1 with each other.
    assert _similarity(model) == pytest.approx(
        {("a", "b"): 1.0, ("b", "a"): 1.0, ("c", "d"): HALF, ("d", "c"): HALF}
    )


def test_popularity_penalty_and_shrinkage(three_people: pd.DataFrame) -> None:
    conditional = ItemKNNRecommender(replace(COSINE, popularity_penalty=0.0)).fit(three_people)
    # co / n(anchor): P(c | d) = 1, P(d | c) = 1/2.
    assert _similarity(conditional)[("d", "c")] == pytest.approx(1.0)
    assert _similarity(conditional)[("c", "d")] == pytest.approx(0.5)
    reverse = ItemKNNRecommender(replace(COSINE, popularity_penalty=1.0)).fit(three_people)
    assert _similarity(reverse)[("d", "c")] == pytest.approx(0.5)
    shrunk = ItemKNNRecommender(replace(COSINE, shrinkage=2.0)).fit(three_people)
    assert _similarity(shrunk)[("a", "b")] == pytest.approx(2 / (2 + 2))
    assert _similarity(shrunk)[("c", "d")] == pytest.approx(1 / (math.sqrt(2) + 2))


def test_anchors_name_the_history_sku_behind_a_score(
    three_people: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_knn, "ANCHOR_PAIRS", 3)  # two batches
    model = ItemKNNRecommender(COSINE).fit(three_people)
    rows = model.users_.searchsorted(np.array(["p3", "p2", "p2", "p1"]))
    anchors = model.anchors(rows, _code(model, "a", "c", "d", "d"))
    # p3 reaches a only through c; p2's c ties between a and b (1/2 each): the smaller wins;
    # p2's d comes from c; nothing p1 holds points to d.
    assert anchors.tolist() == [*_code(model, "c", "a", "c").tolist(), -1]
    with pytest.raises(ValueError, match="pair up"):
        model.anchors(rows, _code(model, "a"))
    with pytest.raises(ValueError, match="codes"):
        model.anchors(np.array([99]), _code(model, "a"))


def test_baskets_and_persons_are_different_documents() -> None:
    # x and y are bought together, z always on another trip by the same people.
    log = _log(
        [("p1", "x"), ("p1", "y"), ("p1", "z"), ("p2", "x"), ("p2", "y"), ("p2", "z")],
        order_id=["o1", "o1", "o2", "o3", "o3", "o4"],
    )
    persons = _similarity(ItemKNNRecommender(COSINE).fit(log))
    baskets = _similarity(ItemKNNRecommender(replace(COSINE, by="basket")).fit(log))
    assert persons[("x", "z")] == pytest.approx(1.0)
    assert baskets == pytest.approx({("x", "y"): 1.0, ("y", "x"): 1.0})


def test_sessions_then_orders_then_the_persons_day() -> None:
    log = _log(
        [("p1", "x"), ("p1", "y"), ("p1", "z"), ("p1", "w")],
        order_id=[None, None, "o1", "o1"],
        session_id=["s1", "s1", None, None],
    )
    log.loc[3, "occurred_at"] = DAY + pd.Timedelta(days=1)
    sessions = _similarity(ItemKNNRecommender(replace(COSINE, by="session")).fit(log))
    # Session s1 holds x and y; z and w have no session and fall back to the person's day,
    # which differs, even though they share an order (orders are not sessions).
    assert sessions == pytest.approx({("x", "y"): 1.0, ("y", "x"): 1.0})
    orders = _similarity(ItemKNNRecommender(replace(COSINE, by="basket")).fit(log))
    # Without orders, x and y share p1's first day; z and w share order o1.
    assert orders == pytest.approx(
        {("x", "y"): 1.0, ("y", "x"): 1.0, ("z", "w"): 1.0, ("w", "z"): 1.0}
    )


def test_decayed_history_weighs_recent_purchases_more(three_people: pd.DataFrame) -> None:
    log = three_people.copy()
    log.loc[log["person_id"] == "p3", "occurred_at"] = [DAY - pd.Timedelta(days=10), DAY]
    model = ItemKNNRecommender(replace(COSINE, half_life_days=10)).fit(log)
    # p3 bought c ten days before d: c weighs 1/2, d 1. a scores 1/2 * sim(c, a).
    scores = model.scores(model.users_.searchsorted(np.array(["p3"])))[0]
    assert scores[_code(model, "a")[0]] == pytest.approx(0.25)
    assert scores[_code(model, "c")[0]] == pytest.approx(HALF)
    assert scores[_code(model, "d")[0]] == pytest.approx(0.5 * HALF)


def test_basket_complements_and_similar_items(three_people: pd.DataFrame) -> None:
    model = ItemKNNRecommender(COSINE).fit(three_people)
    scores = model.score_basket([list(_code(model, "a")), list(_code(model, "c", "d")), []])
    assert scores.dtype == np.float32
    assert scores[0].tolist() == pytest.approx([-np.inf, 1.0, 0.5, -np.inf])
    assert scores[1].tolist() == pytest.approx([0.5, 0.5, -np.inf, -np.inf])
    assert np.isneginf(scores[2]).all()
    codes, values = model.similar_items(_code(model, "c", "d"), k=2)
    assert codes.tolist() == [_code(model, "d", "a").tolist(), [*_code(model, "c").tolist(), -1]]
    assert values.ravel().tolist() == pytest.approx([HALF, 0.5, HALF, -np.inf])
    neighbours, _ = model.similar_items(_code(model, "a", "b", "c", "d"), k=1)
    assert neighbours[:, 0].tolist() == _code(model, "b", "a", "d", "c").tolist()


def _brute_force(documents: np.ndarray, k: int, shrinkage: float, beta: float) -> np.ndarray:
    co = documents.T @ documents
    popularity = np.diag(co).copy()
    similarity = co / (np.outer(popularity ** (1 - beta), popularity**beta) + shrinkage)
    np.fill_diagonal(similarity, 0.0)
    kept = np.zeros_like(similarity)
    for anchor, row in enumerate(similarity):
        order = sorted(np.flatnonzero(row), key=lambda c: (-row[c], c))[:k]
        kept[anchor, order] = row[order]
    return kept


@pytest.mark.parametrize(("shrinkage", "beta"), [(0.0, 0.5), (3.0, 0.2)])
def test_chunked_neighbours_match_brute_force(
    monkeypatch: pytest.MonkeyPatch, shrinkage: float, beta: float
) -> None:
    rng = np.random.default_rng(7)
    documents = (rng.random((300, 80)) < rng.random(80) * 0.3).astype(np.float64)
    monkeypatch.setattr(item_knn, "CHUNK_ENTRIES", 500)  # many chunks, several rows each
    got = item_similarity(
        sp.csr_matrix(documents), 7, shrinkage=shrinkage, popularity_penalty=beta
    ).toarray()
    want = _brute_force(documents, 7, shrinkage, beta)
    assert np.count_nonzero(got) == np.count_nonzero(want)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_save_and_load_give_identical_recommendations(
    three_people: pd.DataFrame, tmp_path: Path
) -> None:
    settings = ItemKNNSettings(neighbours=2, half_life_days=3.0, by="basket")
    model = ItemKNNRecommender(settings).fit(three_people.assign(order_id="o"))
    loaded = ItemKNNRecommender.load(model.save(tmp_path / "knn"))
    assert loaded.settings == settings
    people = ["p1", "p2", "p3", "stranger"]
    pd.testing.assert_frame_equal(loaded.recommend(people, 3), model.recommend(people, 3))
    rows, items = np.array([0, 1, 2]), np.array([3, 2, 0])
    assert loaded.anchors(rows, items).tolist() == model.anchors(rows, items).tolist()


def test_settings_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="neighbours"):
        ItemKNNSettings(neighbours=0)
    with pytest.raises(ValueError, match="by"):
        ItemKNNSettings(by="week")
    with pytest.raises(ValueError, match="popularity_penalty"):
        ItemKNNSettings(popularity_penalty=1.5)


@pytest.mark.data
def test_complete_journey_discovery_matches_the_reference(
    cj_next4w: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    """cj-next4w, discovery track: BENCHMARKS.md's item-kNN reference scores 0.0408."""
    train, _, new = cj_next4w
    model = ItemKNNRecommender(replace(COSINE, exclude_seen=True)).fit(train)
    assert model.similarity_.shape == (65_821, 65_821)
    assert model.evaluate(new).metrics["ndcg@10"] == pytest.approx(0.0408, abs=0.002)
