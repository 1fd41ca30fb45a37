"""Ranking metrics against answers worked out by hand, and NDCG against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from shelfwise.evaluation import (
    coverage_at_k,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
)
from shelfwise.evaluation.ranking import parse_metric

# User A has targets {a, b, c} and sees a, x, b, y: hits at ranks 1 and 3.
# User B's only target was never in the catalogue: no hit is possible, yet B counts.
HITS = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=bool)
N_TARGETS = np.array([3, 1])
NDCG_A = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
MAP_A = (1 / 1 + 2 / 3) / 3


def test_hand_computed_answers() -> None:
    assert ndcg_at_k(HITS, N_TARGETS, 10) == pytest.approx(NDCG_A / 2)
    assert recall_at_k(HITS, N_TARGETS, 20) == pytest.approx((2 / 3) / 2)
    assert map_at_k(HITS, N_TARGETS, 12) == pytest.approx(MAP_A / 2)
    assert hit_rate_at_k(HITS, N_TARGETS, 10) == pytest.approx(0.5)
    # The cut-off matters: only rank 1 is inside the top 2.
    assert recall_at_k(HITS, N_TARGETS, 2) == pytest.approx((1 / 3) / 2)
    assert ndcg_at_k(HITS, N_TARGETS, 2) == pytest.approx((1 / (1 + 1 / math.log2(3))) / 2)


def test_ideal_dcg_stops_at_k_and_map_at_twelve_targets() -> None:
    all_hits = np.ones((1, 12), dtype=bool)
    assert ndcg_at_k(all_hits, np.array([15]), 10) == pytest.approx(1.0)
    assert map_at_k(all_hits, np.array([20]), 12) == pytest.approx(1.0)
    assert recall_at_k(all_hits, np.array([24]), 12) == pytest.approx(0.5)


def test_coverage_ignores_padding() -> None:
    ranked = np.array([[0, 1, 2], [1, 2, -1], [-1, -1, -1]])
    assert coverage_at_k(ranked, 2, catalogue_size=10) == pytest.approx(0.3)
    assert coverage_at_k(ranked, 3, catalogue_size=4) == pytest.approx(0.75)


def test_ndcg_matches_scikit_learn_where_the_definitions_coincide() -> None:
    # Binary relevance over the whole catalogue, every target rankable, no tied scores.
    rng = np.random.default_rng(0)
    relevant = rng.random((40, 60)) < 0.08
    relevant[np.arange(40), rng.integers(0, 60, 40)] = True
    scores = rng.random((40, 60))
    hits = np.take_along_axis(relevant, np.argsort(-scores, axis=1), axis=1)
    for k in (1, 5, 10, 60):
        expected = ndcg_score(relevant.astype(int), scores, k=k)
        assert ndcg_at_k(hits, relevant.sum(axis=1), k) == pytest.approx(expected)


def test_ranking_metrics_from_frames() -> None:
    recommendations = pd.DataFrame(
        {
            "person_id": ["A"] * 4 + ["B"] * 2 + ["C"],
            "sku": ["a", "x", "b", "y", "a", "b", "q"],
            "rank": [1, 2, 3, 4, 1, 2, 1],
        }
    )
    targets = pd.DataFrame(
        {"person_id": ["A", "A", "A", "A", "B"], "sku": ["a", "b", "c", "a", "z"]}
    )  # A's repeated target counts once; C has no targets and is not evaluated
    metrics = ranking_metrics(
        recommendations,
        targets,
        catalogue_size=5,
        metrics=("ndcg@10", "recall@20", "map@12", "hr@10", "coverage@2"),
    )
    assert metrics == pytest.approx(
        {
            "ndcg@10": NDCG_A / 2,
            "recall@20": (2 / 3) / 2,
            "map@12": MAP_A / 2,
            "hr@10": 0.5,
            "coverage@2": 3 / 5,  # {a, x} and {a, b}
        }
    )


def test_a_user_without_recommendations_scores_zero() -> None:
    targets = pd.DataFrame({"person_id": ["A", "B"], "sku": ["a", "a"]})
    recommendations = pd.DataFrame({"person_id": ["A"], "sku": ["a"], "rank": [1]})
    metrics = ranking_metrics(recommendations, targets, catalogue_size=1, metrics=["hr@10"])
    assert metrics == {"hr@10": 0.5}


def test_malformed_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one target"):
        ndcg_at_k(HITS, np.array([3, 0]), 10)
    with pytest.raises(ValueError, match="unknown ranking metric 'ndcg10'"):
        parse_metric("ndcg10")
    repeated = pd.DataFrame({"person_id": ["A", "A"], "sku": ["a", "b"], "rank": [1, 1]})
    targets = pd.DataFrame({"person_id": ["A"], "sku": ["a"]})
    with pytest.raises(ValueError, match="repeat"):
        ranking_metrics(repeated, targets, catalogue_size=2)
