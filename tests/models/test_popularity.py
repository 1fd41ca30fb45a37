"""The popularity recommender on a log small enough to rank by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend import PopularityRecommender, PopularitySettings

DAY0, DAY10 = pd.Timestamp("2024-05-01"), pd.Timestamp("2024-05-11")


@pytest.fixture
def log() -> pd.DataFrame:
    # Counts: a 3 (all ten days old), b 2, c 1, d 1. A ten-day half-life halves a to 1.5.
    return pd.DataFrame(
        {
            "person_id": ["p1", "p2", "p3", "p1", "p2", "p3", "p4"],
            "sku": ["a", "a", "a", "b", "b", "d", "c"],
            "occurred_at": [DAY0, DAY0, DAY0, DAY10, DAY10, DAY10, DAY10],
        }
    )


def _top(model: PopularityRecommender, person: str, k: int = 10) -> list[str]:
    return list(model.recommend([person], k=k)["sku"])


def test_counts_rank_and_ties_go_to_the_smaller_sku(log: pd.DataFrame) -> None:
    model = PopularityRecommender().fit(log)
    out = model.recommend(["p1", "stranger"], k=4)
    assert list(out.columns) == ["person_id", "sku", "score", "rank"]
    assert list(out["sku"]) == ["a", "b", "c", "d"] * 2
    assert list(out["score"]) == [3.0, 2.0, 1.0, 1.0] * 2
    assert list(out["rank"]) == [1, 2, 3, 4] * 2
    assert list(out["person_id"]) == ["p1"] * 4 + ["stranger"] * 4


def test_half_life_decays_relative_to_the_latest_interaction(log: pd.DataFrame) -> None:
    model = PopularityRecommender(PopularitySettings(half_life_days=10)).fit(log)
    out = model.recommend(["p1"], k=4)
    assert list(out["sku"]) == ["b", "a", "c", "d"]
    assert list(out["score"]) == pytest.approx([2.0, 1.5, 1.0, 1.0])
    assert model.latest_ == pd.Timestamp(DAY10, tz="UTC")


def test_weights_count_as_given(log: pd.DataFrame) -> None:
    weighted = log.assign(weight=[1, 1, 1, 1, 1, 1, 5.0])
    assert _top(PopularityRecommender().fit(weighted), "p1", 1) == ["c"]
    with pytest.raises(ValueError, match="weight"):
        PopularityRecommender().fit(log.assign(weight=-1.0))


def test_exclude_seen_leaves_out_each_persons_items(log: pd.DataFrame) -> None:
    model = PopularityRecommender(PopularitySettings(exclude_seen=True)).fit(log)
    assert _top(model, "p1") == ["c", "d"]  # saw a and b; fewer than k remain
    assert _top(model, "p3") == ["b", "c"]  # saw a and d
    assert _top(model, "p4", 2) == ["a", "b"]
    assert _top(model, "stranger") == ["a", "b", "c", "d"]
    out = model.recommend(["p1", "p3"], k=3)
    assert list(out["rank"]) == [1, 2, 1, 2]


def test_exclude_seen_matches_a_brute_force_ranking() -> None:
    rng = np.random.default_rng(0)
    log = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in rng.integers(0, 30, 3_000)],
            "sku": [f"s{i:03d}" for i in rng.zipf(1.4, 3_000) % 120],
            "occurred_at": DAY0 + pd.to_timedelta(rng.integers(0, 50, 3_000), unit="D"),
        }
    )
    model = PopularityRecommender(PopularitySettings(half_life_days=5, exclude_seen=True))
    model.fit(log)
    order = sorted(range(len(model.items_)), key=lambda i: (-model.scores_[i], model.items_[i]))
    ranked = [str(model.items_[i]) for i in order]
    for person in ["p0", "p7", "p29", "stranger"]:
        seen = set(log.loc[log["person_id"] == person, "sku"])
        expected = [sku for sku in ranked if sku not in seen][:100]
        assert _top(model, person, 100) == expected


def test_k_is_checked_and_capped_by_the_catalogue(log: pd.DataFrame) -> None:
    model = PopularityRecommender().fit(log)
    assert len(model.recommend(["p1"], k=50)) == 4
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            model.recommend(["p1"], k=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="person_ids: missing values"):
        model.recommend(["p1", None])  # type: ignore[list-item]
    assert model.recommend([], k=3).empty


def test_predict_takes_a_frame_with_an_optional_k(log: pd.DataFrame) -> None:
    model = PopularityRecommender().fit(log)
    out = model.predict(pd.DataFrame({"person_id": ["p1", "zz"], "k": [1, 2]}))
    assert sorted(zip(out["person_id"], out["sku"], strict=True)) == [
        ("p1", "a"),
        ("zz", "a"),
        ("zz", "b"),
    ]
    assert len(model.predict(pd.DataFrame({"person_id": ["p1"]}))) == 4  # default k is 10
    assert model.predict(pd.DataFrame({"person_id": pd.Series([], dtype=str)})).empty


def test_evaluate_against_hand_computed_metrics(log: pd.DataFrame) -> None:
    # p1 buys c (rank 3); a newcomer buys a (rank 1) and z, which was never in the catalogue.
    held_out = pd.DataFrame({"person_id": ["p1", "new", "new"], "sku": ["c", "a", "z"]})
    evaluation = PopularityRecommender().fit(log).evaluate(held_out)
    assert evaluation.primary_metric == "ndcg@10"
    assert evaluation.higher_is_better
    assert evaluation.metrics == pytest.approx(
        {
            "ndcg@10": (1 / math.log2(4) + 1 / (1 + 1 / math.log2(3))) / 2,
            "recall@20": (1 + 1 / 2) / 2,
            "map@12": (1 / 3 + 1 / 2) / 2,
            "hr@10": 1.0,
            "coverage@10": 1.0,
        }
    )
