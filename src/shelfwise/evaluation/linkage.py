"""Record-linkage metrics as BENCHMARKS.md's identity protocols state them.

Two views of the same answer. :func:`pair_scores` compares a list of predicted links with the
true links, pair by pair (the febrl4 and identity-1m figure). :func:`cluster_scores` compares
two partitions of the records (the febrl3 cluster figures): the pairs a clustering implies are
counted from its contingency table with the truth, never listed, so a million records with
large clusters cost a group-by, not billions of pairs.

Pairs are unordered: ``(a, b)`` and ``(b, a)`` are one pair, a repeated pair counts once and a
record paired with itself is not a link. Where a ratio has nothing to divide by (no predicted
pair, no true pair) it is 0.0, as scikit-learn reports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["PairScores", "cluster_scores", "pair_scores", "resolution_scores"]


@dataclass(frozen=True)
class PairScores:
    """Pairwise precision, recall and F1, with the counts they come from."""

    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def _endpoints(frame: pd.DataFrame, left: str, right: str, what: str) -> pd.DataFrame:
    missing = [c for c in (left, right) if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(frame.columns)}")
    ends = frame[[left, right]]
    if ends.isna().any().any():
        raise ValueError(f"{what} has pairs with a missing record id")
    return ends


def _pair_keys(lo: NDArray[np.int64], hi: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """One int64 per unordered pair of record codes, sorted and unique; self-pairs dropped."""
    a, b = np.minimum(lo, hi), np.maximum(lo, hi)
    keep = a != b
    return np.unique(a[keep] * np.int64(n) + b[keep])


def pair_scores(
    predicted: pd.DataFrame,
    truth: pd.DataFrame,
    left: str = "unique_id_l",
    right: str = "unique_id_r",
    *,
    truth_left: str | None = None,
    truth_right: str | None = None,
) -> PairScores:
    """Pairwise scores of ``predicted`` links against ``truth`` links.

    Both frames hold one pair per row in columns ``left`` and ``right`` (``truth_left`` and
    ``truth_right`` name the truth's columns when they differ, e.g. ``rec_id_l`` from
    :func:`shelfwise.datasets.identity.febrl_true_pairs`). Ids may be of any hashable type;
    they are coded together once, so millions of pairs cost a sort.
    """
    pred = _endpoints(predicted, left, right, "predicted")
    true = _endpoints(truth, truth_left or left, truth_right or right, "truth")
    # One code space for every id in either frame: equal ids get equal codes.
    ids = pd.concat(
        [pred.iloc[:, 0], pred.iloc[:, 1], true.iloc[:, 0], true.iloc[:, 1]], ignore_index=True
    )
    codes, uniques = pd.factorize(ids)
    codes = codes.astype(np.int64)
    n_pred, n_true, n = len(pred), len(true), len(uniques)
    pred_keys = _pair_keys(codes[:n_pred], codes[n_pred : 2 * n_pred], n)
    start = 2 * n_pred
    true_keys = _pair_keys(codes[start : start + n_true], codes[start + n_true :], n)
    tp = int(np.intersect1d(pred_keys, true_keys, assume_unique=True).size)
    fp, fn = int(pred_keys.size) - tp, int(true_keys.size) - tp
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return PairScores(precision, recall, _f1(precision, recall), tp, fp, fn)


def _pairs_within(sizes: NDArray[np.int64]) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def cluster_scores(assignments: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise and whole-cluster agreement of a clustering with the true entities.

    ``assignments`` (predicted cluster) and ``truth`` (true entity) are indexed by record id
    and cover the same records; a record alone in its cluster is a singleton, not missing.
    The pairwise figures are those of every pair of records put in one cluster, counted from
    the contingency table: true positives are the pairs inside each (cluster, entity) cell.
    ``exact_cluster_rate`` is the share of true entities that some predicted cluster
    reproduces exactly (same records, no more, no fewer); ``adjusted_rand`` is scikit-learn's
    adjusted Rand index; ``clusters`` and ``entities`` are the counts of each partition.
    """
    from sklearn.metrics import adjusted_rand_score

    if assignments.index.has_duplicates or truth.index.has_duplicates:
        raise ValueError("assignments and truth must each list a record id once")
    if len(assignments) != len(truth) or not assignments.index.isin(truth.index).all():
        raise ValueError("assignments and truth must cover the same record ids")
    if assignments.isna().any() or truth.isna().any():
        raise ValueError("every record needs a cluster and an entity")
    cluster = pd.factorize(assignments)[0].astype(np.int64)
    entity = pd.factorize(truth.reindex(assignments.index))[0].astype(np.int64)
    cells = pd.DataFrame({"cluster": cluster, "entity": entity}).value_counts()
    cell_sizes: NDArray[np.int64] = np.asarray(cells.to_numpy(), dtype=np.int64)
    cluster_sizes = np.bincount(cluster).astype(np.int64)
    entity_sizes = np.bincount(entity).astype(np.int64)

    tp = _pairs_within(cell_sizes)
    precision = _ratio(tp, _pairs_within(cluster_sizes))
    recall = _ratio(tp, _pairs_within(entity_sizes))
    # An entity is reproduced when one cell holds all of its records and all of its cluster's.
    cell_cluster = cells.index.get_level_values("cluster").to_numpy()
    cell_entity = cells.index.get_level_values("entity").to_numpy()
    exact = (cell_sizes == cluster_sizes[cell_cluster]) & (cell_sizes == entity_sizes[cell_entity])
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "exact_cluster_rate": _ratio(int(exact.sum()), entity_sizes.size),
        "adjusted_rand": float(adjusted_rand_score(entity, cluster)),
        "clusters": int(cluster_sizes.size),
        "entities": int(entity_sizes.size),
    }


def resolution_scores(
    links: pd.DataFrame, persons: pd.Series, truth: pd.Series
) -> dict[str, float]:
    """An identity resolution against true entities: its links pair by pair (``precision``,
    ``recall``, ``f1``) and its persons as clusters (``cluster_*``).

    ``links`` has ``unique_id_l``, ``unique_id_r``; ``persons`` and ``truth`` are indexed by
    record id, and only the records ``persons`` covers are scored.
    """
    from shelfwise.datasets.identity import true_pairs_within

    truth = truth[truth.index.isin(persons.index)]
    records = pd.DataFrame({"unique_id": truth.index, "entity": truth.to_numpy()})
    pairs = pair_scores(links, true_pairs_within(records, "unique_id", "entity"))
    clustered = cluster_scores(persons, truth)
    return {
        "precision": pairs.precision,
        "recall": pairs.recall,
        "f1": pairs.f1,
        **{f"cluster_{k}": float(v) for k, v in clustered.items()},
    }
