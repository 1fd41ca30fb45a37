"""Ranking metrics exactly as BENCHMARKS.md defines them.

The numpy functions take a boolean ``hits`` matrix (one row per user, one column per rank
position, True where the item at that position is one of the user's targets) and ``n_targets``,
the number of distinct target items of each user, **including targets that could never be
recommended** (items unseen in training count in every denominator). Each returns the mean
over users. :func:`ranking_metrics` builds both from frames of recommendations and targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

DEFAULT_METRICS = ("ndcg@10", "recall@20", "map@12", "hr@10", "coverage@10")

Hits = NDArray[np.bool_]
Counts = NDArray[np.integer]


def _check(hits: Hits, n_targets: Counts, k: int) -> None:
    if hits.ndim != 2 or n_targets.shape != (hits.shape[0],):
        raise ValueError(
            f"hits must be (users, positions) and n_targets (users,); got {hits.shape} "
            f"and {n_targets.shape}"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if hits.shape[0] and n_targets.min() < 1:
        raise ValueError("every user needs at least one target; drop users without any first")


def _discounts(k: int) -> NDArray[np.float64]:
    return 1.0 / np.log2(np.arange(2, k + 2))


def ndcg_at_k(hits: Hits, n_targets: Counts, k: int) -> float:
    """NDCG@k with binary gains; the ideal DCG places min(#targets, k) hits first."""
    _check(hits, n_targets, k)
    top = hits[:, :k]
    discounts = _discounts(k)
    dcg = top @ discounts[: top.shape[1]]
    ideal = np.cumsum(discounts)[np.minimum(n_targets, k) - 1]
    return float(np.mean(dcg / ideal)) if len(dcg) else 0.0


def recall_at_k(hits: Hits, n_targets: Counts, k: int) -> float:
    """Hits in the top k over the user's number of targets."""
    _check(hits, n_targets, k)
    return float(np.mean(hits[:, :k].sum(axis=1) / n_targets)) if len(hits) else 0.0


def hit_rate_at_k(hits: Hits, n_targets: Counts, k: int) -> float:
    """Share of users with at least one hit in the top k."""
    _check(hits, n_targets, k)
    return float(np.mean(hits[:, :k].any(axis=1))) if len(hits) else 0.0


def map_at_k(hits: Hits, n_targets: Counts, k: int = 12) -> float:
    """MAP@k as in H&M's Kaggle competition: Σ_{r≤k} P@r·hit_r / min(k, #targets)."""
    _check(hits, n_targets, k)
    top = hits[:, :k]
    precision = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    average_precision = (precision * top).sum(axis=1) / np.minimum(n_targets, k)
    return float(np.mean(average_precision)) if len(hits) else 0.0


def coverage_at_k(ranked: NDArray[np.integer], k: int, catalogue_size: int) -> float:
    """Distinct items in any top-k list over the catalogue size; negative codes are padding."""
    if catalogue_size < 1:
        raise ValueError(f"catalogue_size must be at least 1, got {catalogue_size}")
    top = ranked[:, :k]
    return len(np.unique(top[top >= 0])) / catalogue_size


METRICS = {"ndcg": ndcg_at_k, "recall": recall_at_k, "hr": hit_rate_at_k, "map": map_at_k}


def parse_metric(name: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``."""
    kind, _, cutoff = name.partition("@")
    if kind not in (*METRICS, "coverage") or not cutoff.isdigit() or int(cutoff) < 1:
        known = ", ".join((*METRICS, "coverage"))
        raise ValueError(f"unknown ranking metric {name!r}; expected NAME@K with NAME in {known}")
    return kind, int(cutoff)


def ranking_metrics(
    recommendations: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    catalogue_size: int,
    metrics: Sequence[str] = DEFAULT_METRICS,
    user: str = "person_id",
    item: str = "sku",
    rank: str = "rank",
) -> dict[str, float]:
    """Metrics of ranked lists against held-out targets, averaged over the users in ``targets``.

    ``recommendations`` has one row per (user, rank) with ``rank`` starting at 1; users with
    targets but no recommendations score zero. ``targets`` may repeat (user, item) pairs; they
    count once.
    """
    parsed = [parse_metric(name) for name in metrics]
    depth = max(cutoff for _, cutoff in parsed)
    users = pd.Index(pd.unique(targets[user]))
    items = pd.Index(pd.unique(pd.concat([targets[item], recommendations[item]])))
    target_keys = np.unique(
        users.get_indexer(pd.Index(targets[user])).astype(np.int64) * len(items)
        + items.get_indexer(pd.Index(targets[item]))
    )
    n_targets = np.bincount(target_keys // len(items), minlength=len(users))

    row = users.get_indexer(pd.Index(recommendations[user]))
    position = recommendations[rank].to_numpy(dtype=np.int64) - 1
    if len(position) and position.min() < 0:
        raise ValueError(f"{rank}: ranks start at 1")
    keep = (row >= 0) & (position < depth)
    row, position = row[keep], position[keep]
    code = items.get_indexer(pd.Index(recommendations[item]))[keep]
    ranked = np.full((len(users), depth), -1, dtype=np.int64)
    ranked[row, position] = code
    if np.count_nonzero(ranked >= 0) != len(code):
        raise ValueError(f"recommendations repeat a ({user}, {rank}) pair")
    keys = np.arange(len(users), dtype=np.int64)[:, None] * len(items) + ranked
    hits = (ranked >= 0) & np.isin(keys, target_keys)

    out: dict[str, float] = {}
    for name, (kind, cutoff) in zip(metrics, parsed, strict=True):
        if kind == "coverage":
            out[name] = coverage_at_k(ranked, cutoff, catalogue_size)
        else:
            out[name] = METRICS[kind](hits, n_targets, cutoff)
    return out
