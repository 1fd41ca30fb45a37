"""Linkage metrics against answers worked out by hand and against brute-force pair lists."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from shelfwise.evaluation.linkage import PairScores, cluster_scores, pair_scores


def _pairs(rows: list[tuple[object, object]], left: str = "unique_id_l") -> pd.DataFrame:
    right = left.replace("_l", "_r")
    return pd.DataFrame(rows, columns=[left, right])


def test_pair_scores_by_hand() -> None:
    # Truth {a-b, a-c, d-e}; predicted {a-b, b-a (same pair), c-a (same as a-c), x-y, z-z}.
    truth = _pairs([("a", "b"), ("a", "c"), ("d", "e")])
    predicted = _pairs([("a", "b"), ("b", "a"), ("c", "a"), ("x", "y"), ("z", "z")])
    scores = pair_scores(predicted, truth)
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (2, 1, 1)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 / 3)
    assert scores.to_dict() == {
        "precision": scores.precision,
        "recall": scores.recall,
        "f1": scores.f1,
        "true_positives": 2,
        "false_positives": 1,
        "false_negatives": 1,
    }


def test_pair_scores_truth_columns_and_integer_ids() -> None:
    truth = _pairs([(1, 2), (3, 4)], left="rec_id_l")
    predicted = _pairs([(2, 1)])
    scores = pair_scores(predicted, truth, truth_left="rec_id_l", truth_right="rec_id_r")
    assert scores == PairScores(1.0, 0.5, 2 * 0.5 / 1.5, 1, 0, 1)


def test_pair_scores_empty_and_bad_inputs() -> None:
    truth = _pairs([("a", "b")])
    empty = pair_scores(_pairs([]), truth)
    assert (empty.precision, empty.recall, empty.f1, empty.false_negatives) == (0.0, 0.0, 0.0, 1)
    with pytest.raises(ValueError, match="lacks columns"):
        pair_scores(truth.rename(columns={"unique_id_l": "x"}), truth)
    with pytest.raises(ValueError, match="missing record id"):
        pair_scores(_pairs([("a", None)]), truth)


def test_pair_scores_many_pairs_match_a_set_computation() -> None:
    rng = np.random.default_rng(3)
    true = rng.integers(0, 2_000, size=(50_000, 2))
    pred = np.vstack([true[:30_000, ::-1], rng.integers(0, 2_000, size=(20_000, 2))])
    scores = pair_scores(_pairs(list(map(tuple, pred))), _pairs(list(map(tuple, true))))

    def as_set(rows: np.ndarray) -> set[tuple[int, int]]:
        return {(min(a, b), max(a, b)) for a, b in rows.tolist() if a != b}

    t, p = as_set(true), as_set(pred)
    assert scores.true_positives == len(t & p)
    assert scores.false_positives == len(p - t)
    assert scores.false_negatives == len(t - p)


def test_cluster_scores_by_hand() -> None:
    # Entities {1,2,3} {4,5} {6}; clusters {1,2} {3,4,5} {6}.
    truth = pd.Series(["e1", "e1", "e1", "e2", "e2", "e3"], index=[1, 2, 3, 4, 5, 6])
    clusters = pd.Series([10, 10, 11, 11, 11, 12], index=[1, 2, 3, 4, 5, 6])
    scores = cluster_scores(clusters, truth)
    # Predicted pairs 1-2, 3-4, 3-5, 4-5 (4); true pairs 1-2, 1-3, 2-3, 4-5 (4); shared 2.
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["exact_cluster_rate"] == pytest.approx(1 / 3)  # only {6}
    assert scores["clusters"] == 3
    assert scores["entities"] == 3
    assert scores["adjusted_rand"] == pytest.approx(adjusted_rand_score(truth, clusters))


def test_cluster_scores_aligns_on_the_record_id() -> None:
    truth = pd.Series([0, 0, 1], index=["a", "b", "c"])
    shuffled = pd.Series([5, 7, 7], index=["c", "a", "b"])
    scores = cluster_scores(shuffled, truth)
    assert (scores["f1"], scores["exact_cluster_rate"], scores["adjusted_rand"]) == (1, 1, 1)
    with pytest.raises(ValueError, match="same record ids"):
        cluster_scores(shuffled.rename({"c": "z"}), truth)


def _brute_force(clusters: pd.Series, truth: pd.Series) -> dict[str, float]:
    ids = list(truth.index)
    predicted = {(a, b) for a, b in combinations(ids, 2) if clusters[a] == clusters[b]}
    true = {(a, b) for a, b in combinations(ids, 2) if truth[a] == truth[b]}
    tp = len(predicted & true)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def groups(labels: pd.Series) -> set[frozenset[str]]:
        return {frozenset(labels.index[labels == value]) for value in labels.unique()}

    exact = len(groups(truth) & groups(clusters)) / truth.nunique()
    return {"precision": precision, "recall": recall, "f1": f1, "exact_cluster_rate": exact}


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_cluster_scores_match_brute_force_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    truth = pd.Series(rng.integers(0, 15, n), index=[f"r{i}" for i in range(n)])
    # A noisy copy of the truth: some records moved to another cluster or left alone.
    noisy = truth.to_numpy().copy()
    moved = rng.random(n) < 0.3
    noisy[moved] = rng.integers(0, 25, moved.sum())
    clusters = pd.Series(noisy, index=truth.index)
    scores = cluster_scores(clusters, truth)
    for name, value in _brute_force(clusters, truth).items():
        assert scores[name] == pytest.approx(value), name
    assert scores["adjusted_rand"] == pytest.approx(adjusted_rand_score(truth, clusters))
    assert scores["entities"] == truth.nunique()
    assert scores["clusters"] == clusters.nunique()
