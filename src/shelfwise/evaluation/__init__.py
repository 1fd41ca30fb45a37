"""Metrics shared by model families and benchmarks, defined once as BENCHMARKS.md states them."""

from __future__ import annotations

from shelfwise.evaluation.ranking import (
    DEFAULT_METRICS,
    coverage_at_k,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
)

__all__ = [
    "DEFAULT_METRICS",
    "coverage_at_k",
    "hit_rate_at_k",
    "map_at_k",
    "ndcg_at_k",
    "ranking_metrics",
    "recall_at_k",
]
