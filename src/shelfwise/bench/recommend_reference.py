"""The references of the recommendation protocols, each tuned on the validation split.

BENCHMARKS.md names them: popularity, buy-again (decayed own purchases, then popularity; the
``all`` track only), item-kNN, EASE, implicit ALS and the blend buy-again + w·EASE (``all``
only). Each has a small grid; the value with the best validation NDCG@10 on the track is
refitted on the whole training split and evaluated once on test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.recommend.buy_again import BuyAgainRecommender, BuyAgainSettings
from shelfwise.recommend.ease import EaseRecommender, EaseSettings
from shelfwise.recommend.matrix import (
    BATCH_USERS,
    Interactions,
    MatrixRecommender,
    rows_of,
    top_k,
)
from shelfwise.recommend.popular import PopularSettings, TrendingRecommender
from shelfwise.recommend.protocols import RankingSplit, evaluate_track

DEPTH = 20
# A model of the training split: (interactions, grid value, exclude_seen) -> ranked frame maker.
Ranker = Callable[[NDArray[np.str_], int], pd.DataFrame]
Builder = Callable[[Interactions, Any, bool], Ranker]


@dataclass(frozen=True)
class Reference:
    name: str
    grid: Sequence[Any]
    build: Builder
    repeat_tracks_only: bool = False  # buy-again and the blend rank repeats: "all" only


def _frame(
    users: NDArray[np.str_], items: NDArray[np.str_], chosen: NDArray[np.int64], scores: Any
) -> pd.DataFrame:
    valid = chosen >= 0
    return pd.DataFrame(
        {
            "person_id": np.repeat(users, chosen.shape[1])[valid.ravel()],
            "sku": items[chosen[valid]],
            "score": np.asarray(scores)[valid],
            "rank": np.broadcast_to(np.arange(1, chosen.shape[1] + 1), chosen.shape)[valid],
        }
    )


def scored(
    score: Callable[[NDArray[np.int64]], NDArray[np.float32]],
    model: MatrixRecommender[Any],
    exclude_seen: bool,
) -> Ranker:
    """Top-k by ``score`` for known users, seen skus at -inf when asked; popularity breaks
    nothing here: a reference gives what it scores, -inf skus last by sku order."""
    popularity = np.asarray(model.history_.sum(axis=0)).ravel()

    def rank(users: NDArray[np.str_], k: int) -> pd.DataFrame:
        rows = rows_of(model.users_, users)
        known = users[rows >= 0]
        rows = rows[rows >= 0]
        parts = []
        for start in range(0, len(rows), BATCH_USERS):
            batch = rows[start : start + BATCH_USERS]
            values = score(batch).astype(np.float32)
            # Unscored skus follow in popularity order: a tiny tie-breaker below every score.
            floor = np.where(np.isfinite(values), values, np.nan)
            low = np.nanmin(floor, axis=1, initial=0.0, where=~np.isnan(floor))
            fill = low[:, None] - 1.0 - 1.0 / (2.0 + popularity[None, :])
            values = np.where(np.isfinite(values), values, fill).astype(np.float32)
            if exclude_seen:
                seen = model.history_[batch]
                values[
                    np.repeat(np.arange(len(batch)), np.diff(seen.indptr)), seen.indices
                ] = -np.inf
            chosen, best = top_k(values, k)
            parts.append(_frame(known[start : start + BATCH_USERS], model.items_, chosen, best))
        return pd.concat(parts, ignore_index=True)

    return rank


def _popularity(data: Interactions, half_life: float | None, exclude: bool) -> Ranker:
    model = TrendingRecommender(PopularSettings(half_life_days=half_life)).fit_interactions(data)
    return scored(model._score, model, exclude)


def _buy_again(data: Interactions, half_life: float, exclude: bool) -> Ranker:
    model = BuyAgainRecommender(BuyAgainSettings(half_life_days=half_life)).fit_interactions(data)
    return scored(model._score, model, exclude)


def _ease(data: Interactions, l2: float, exclude: bool) -> Ranker:
    model = EaseRecommender(EaseSettings(l2=l2)).fit_interactions(data)
    return scored(model._score, model, exclude)


def _blend(data: Interactions, weight: float, exclude: bool, half_life: float = 90.0) -> Ranker:
    """buy-again + w·EASE, each scaled by the person's best score so that w is comparable."""
    again = BuyAgainRecommender(BuyAgainSettings(half_life_days=half_life)).fit_interactions(data)
    ease = EaseRecommender(EaseSettings(l2=500.0)).fit_interactions(data)

    def score(rows: NDArray[np.int64]) -> NDArray[np.float32]:
        own = np.nan_to_num(again._score(rows), neginf=0.0)
        similar = ease._score(rows)
        own /= np.maximum(own.max(axis=1, keepdims=True), 1e-9)
        similar /= np.maximum(similar.max(axis=1, keepdims=True), 1e-9)
        return (own + weight * similar).astype(np.float32)

    return scored(score, again, exclude)


REFERENCES: tuple[Reference, ...] = (
    Reference("popularity", (None, 28.0, 90.0), _popularity),
    Reference("buy_again", (30.0, 60.0, 120.0, 240.0), _buy_again, repeat_tracks_only=True),
    Reference("ease", (100.0, 250.0, 500.0, 1000.0), _ease),
    Reference("buy_again_ease", (0.1, 0.25, 0.5, 1.0), _blend, repeat_tracks_only=True),
)


def run_reference(
    reference: Reference,
    split: RankingSplit,
    track: str,
    *,
    smoke: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Tune on the validation split, refit on train, evaluate on the track; metrics + choice."""
    exclude = split.rules[track] != "keep-seen"
    grid = list(reference.grid)[:1] if smoke else list(reference.grid)
    best_value, best_ndcg = grid[0], -1.0
    if len(grid) > 1 and split.validation is not None:
        valid = split.validation
        data = Interactions.from_frame(valid.train)
        for value in grid:
            lists = reference.build(data, value, exclude)(valid.users_of(track), DEPTH)
            ndcg = evaluate_track(lists, valid, track)["ndcg@10"]
            progress(f"  {reference.name}={value}: validation ndcg@10 {ndcg:.4f}")
            if ndcg > best_ndcg:
                best_value, best_ndcg = value, ndcg
    data = Interactions.from_frame(split.train)
    lists = reference.build(data, best_value, exclude)(split.users_of(track), DEPTH)
    metrics = evaluate_track(lists, split, track)
    return {**metrics, "tuned": best_value}
