"""The matrix base, EASE, buy-again and popularity as generators: small known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend.buy_again import BuyAgainRecommender, BuyAgainSettings
from shelfwise.recommend.ease import EaseRecommender, EaseSettings, order_gram
from shelfwise.recommend.matrix import Interactions, rows_of, top_k
from shelfwise.recommend.popular import PopularSettings, TrendingRecommender

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _log(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": [r[0] for r in rows],
            "sku": [r[1] for r in rows],
            "occurred_at": [T0 + pd.Timedelta(days=r[2]) for r in rows],
        }
    )


def test_top_k_orders_by_score_then_smaller_column_and_skips_minus_infinity() -> None:
    scores = np.array([[1, 3, 3, -np.inf, 2], [-np.inf] * 5], dtype=np.float32)
    items, values = top_k(scores, 5)
    assert items.tolist() == [[1, 2, 4, 0, -1], [-1, -1, -1, -1, -1]]
    assert values[0, :4].tolist() == [3, 3, 2, 1]
    assert top_k(scores, 2)[0].tolist() == [[1, 2], [-1, -1]]


def test_rows_of_marks_unknown_ids() -> None:
    known = np.array(["a", "c", "e"])
    assert rows_of(known, np.array(["c", "b", "e", "z"])).tolist() == [1, -1, 2, -1]


def test_interactions_encode_sorted_ids_and_sum_weights() -> None:
    frame = _log([("p2", "b", 0), ("p1", "a", 1), ("p1", "a", 2)]).assign(weight=[1.0, 2.0, 3.0])
    data = Interactions.from_frame(frame)
    assert data.users.tolist() == ["p1", "p2"]
    assert data.items.tolist() == ["a", "b"]
    assert data.counts.toarray().tolist() == [[5.0, 0.0], [0.0, 1.0]]
    assert data.binary.toarray().tolist() == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="weight: every weight"):
        Interactions.from_frame(frame.assign(weight=-1.0))


def _random_log(persons: int, skus: int, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "person_id": [f"p{i:03d}" for i in rng.integers(0, persons, rows)],
            "sku": [f"s{i:03d}" for i in rng.integers(0, skus, rows)],
            "occurred_at": T0 + pd.to_timedelta(rng.uniform(0, 90, rows), unit="D"),
        }
    )


def test_ease_woodbury_equals_the_direct_inverse() -> None:
    log = _random_log(persons=30, skus=80, rows=400, seed=1)
    direct = EaseRecommender(EaseSettings(l2=5.0, method="direct")).fit(log)
    woodbury = EaseRecommender(EaseSettings(l2=5.0, method="woodbury")).fit(log)
    rows = np.arange(30)
    np.testing.assert_allclose(direct.scores(rows), woodbury.scores(rows), atol=1e-4)
    for row in (0, 7, 29):  # one person (a request) takes the matrix-times-vector path
        one = woodbury.scores(np.array([row]))
        np.testing.assert_allclose(one, direct.scores(np.array([row])), atol=1e-4)


def test_ease_matches_the_closed_form_on_a_tiny_matrix() -> None:
    log = _log([("p1", "a", 0), ("p1", "b", 0), ("p2", "b", 0), ("p2", "c", 0)])
    model = EaseRecommender(EaseSettings(l2=1.0, method="direct")).fit(log)
    x = np.array([[1, 1, 0], [0, 1, 1]], dtype=float)
    p = np.linalg.inv(x.T @ x + np.eye(3))
    b = np.eye(3) - p / np.diag(p)
    np.testing.assert_allclose(model.scores(np.arange(2)), x @ b, atol=1e-6)


def test_ease_weighs_pairs_by_their_distance_in_a_persons_order() -> None:
    # p1 took a, b, c on days 0, 1, 2 (and a again on day 5: its first time counts); p2 c, a.
    log = _log([("p1", "a", 0), ("p1", "b", 1), ("p1", "c", 2), ("p1", "a", 5)])
    log = pd.concat([log, _log([("p2", "c", 0), ("p2", "a", 3)])], ignore_index=True)
    near = np.exp(-1 / 2.0)
    far = np.exp(-2 / 2.0)
    gram = order_gram(Interactions.from_frame(log), scale=2.0)
    expected = np.array(
        [
            [2, near, far + near],  # a-c: two apart for p1, next to each other for p2
            [near, 1, near],
            [far + near, near, 2],
        ]
    )
    np.testing.assert_allclose(gram, expected)
    # the model's gram: floor x the counts + (1 - floor) x the order's weights
    floor, x = 0.3, np.array([[1, 1, 1], [1, 0, 1]], dtype=float)
    model = EaseRecommender(
        EaseSettings(l2=1.0, method="direct", order_floor=floor, order_scale=2.0)
    ).fit(log)
    p = np.linalg.inv(floor * x.T @ x + (1 - floor) * expected + np.eye(3))
    b = np.eye(3) - p / np.diag(p)
    np.testing.assert_allclose(model.scores(np.arange(2)), x @ b, atol=1e-5)
    plain = EaseRecommender(EaseSettings(l2=1.0, method="direct", order_floor=1.0)).fit(log)
    reference = EaseRecommender(EaseSettings(l2=1.0, method="direct")).fit(log)
    np.testing.assert_allclose(plain.scores(np.arange(2)), reference.scores(np.arange(2)))
    with pytest.raises(ValueError, match="needs the direct form"):
        EaseRecommender(EaseSettings(method="woodbury", order_floor=0.3)).fit(log)


def test_ease_excludes_seen_and_round_trips(tmp_path: Path) -> None:
    log = _random_log(persons=20, skus=40, rows=200, seed=2)
    model = EaseRecommender(EaseSettings(l2=10.0, exclude_seen=True)).fit(log)
    ranked = model.recommend(["p000", "p001"], 5)
    seen = set(zip(log["person_id"], log["sku"], strict=True))
    assert not any((p, s) in seen for p, s in zip(ranked["person_id"], ranked["sku"], strict=True))
    loaded = EaseRecommender.load(model.save(tmp_path / "ease"))
    pd.testing.assert_frame_equal(loaded.recommend(["p000", "p001"], 5), ranked)


def test_buy_again_decays_and_knows_the_cycle(tmp_path: Path) -> None:
    # p1 bought a on days 0, 14, 28 (every 2 weeks) and b once on day 28; latest day is 28.
    log = _log([("p1", "a", 0), ("p1", "a", 14), ("p1", "a", 28), ("p1", "b", 28), ("p2", "c", 5)])
    model = BuyAgainRecommender(BuyAgainSettings(half_life_days=14.0)).fit(log)
    scores = model.scores(np.array([0]))[0]
    np.testing.assert_allclose(scores[:2], [0.25 + 0.5 + 1.0, 1.0])
    assert scores[2] == -np.inf  # never bought: no candidate
    facts = model.pair_features(np.array([0, 0]), np.array([0, 1]), as_of_day=model.latest_day_ + 7)
    assert facts["buy_again_days"].tolist() == [3.0, 1.0]
    np.testing.assert_allclose(facts["buy_again_days_since"], [7.0, 7.0], atol=1e-6)
    assert facts["buy_again_cycle"][0] == 14.0
    assert np.isnan(facts["buy_again_cycle"][1])
    np.testing.assert_allclose(facts["buy_again_due"][0], 0.5, atol=1e-6)
    assert model.recommend(["p1"], 5)["sku"].tolist() == ["a", "b"]
    loaded = BuyAgainRecommender.load(model.save(tmp_path / "again"))
    np.testing.assert_array_equal(loaded.scores(np.array([0])), model.scores(np.array([0])))
    with pytest.raises(ValueError, match="exclude_seen must be False"):
        BuyAgainRecommender(BuyAgainSettings(exclude_seen=True)).fit(log)


def test_buy_again_knows_how_often_a_person_shops_and_which_skus_come_back(
    tmp_path: Path,
) -> None:
    # p1 shops on days 0, 14 and 28 and takes a every time, b on day 28; p2 takes a and c once.
    log = _log([("p1", "a", 0), ("p1", "a", 14), ("p1", "a", 28), ("p1", "b", 28)])
    log = pd.concat([log, _log([("p2", "a", 5), ("p2", "c", 5)])], ignore_index=True)
    model = BuyAgainRecommender(BuyAgainSettings()).fit(log)
    rows, items = np.array([0, 0, 1]), np.array([0, 1, 2])  # (p1, a), (p1, b), (p2, c)
    facts = model.pair_features(rows, items)
    assert facts["person_shopping_days"].tolist() == [3.0, 3.0, 1.0]
    assert facts["person_shopping_days28"].tolist() == [2.0, 2.0, 1.0]  # day 0 is 28 days old
    assert facts["person_shopping_days56"].tolist() == [3.0, 3.0, 1.0]
    assert facts["buy_again_recent28"].tolist() == [2.0, 1.0, 1.0]
    assert facts["buy_again_recent56"].tolist() == [3.0, 1.0, 1.0]
    np.testing.assert_allclose(facts["buy_again_basket_share"], [1.0, 1 / 3, 1.0])
    assert facts["sku_repeat_rate"].tolist() == [0.5, 0.0, 0.0]  # of a's two buyers, p1 came back
    assert facts["sku_days_per_buyer"].tolist() == [2.0, 1.0, 1.0]
    loaded = BuyAgainRecommender.load(model.save(tmp_path / "again"))
    for name, values in loaded.pair_features(rows, items).items():
        np.testing.assert_array_equal(values, facts[name], err_msg=name)


def test_trending_counts_recent_interactions_more() -> None:
    log = _log([("p1", "old", 0), ("p2", "old", 1), ("p3", "new", 60)])
    popular = TrendingRecommender(PopularSettings()).fit(log)
    trending = TrendingRecommender(PopularSettings(half_life_days=7.0)).fit(log)
    assert popular.recommend(["p9"], 2).empty  # unknown persons get nothing from a generator
    assert popular.recommend(["p3"], 1)["sku"].tolist() == ["old"]
    assert trending.recommend(["p3"], 1)["sku"].tolist() == ["new"]
