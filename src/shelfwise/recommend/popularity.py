"""Popularity: the reference every recommender must beat, and the last-resort fallback.

Each sku scores the (weighted) number of interactions with it, optionally decayed by age
relative to the latest interaction in the training frame, so that last month's favourites
outrank last year's. Everyone gets the same ranking, minus what they have already seen when
``exclude_seen`` is set; unknown persons get the global ranking. Ties go to the smaller sku.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.models.base import Column, Estimator, Evaluation, LearnedArrays
from shelfwise.models.settings import Constraints, EstimatorSettings, Interval
from shelfwise.recommend.matrix import (
    DEFAULT_K,
    SECONDS_PER_DAY,
    evaluate_lists,
    predict_lists,
)


@dataclass(frozen=True)
class PopularitySettings(EstimatorSettings):
    """``half_life_days``: None counts every interaction alike; else its weight halves with
    each half-life of age. ``exclude_seen``: leave out what the person interacted with."""

    half_life_days: float | None = None
    exclude_seen: bool = False

    constraints: ClassVar[Constraints] = {
        "half_life_days": (None, Interval(0, None, closed="neither")),
        "exclude_seen": (bool,),
    }


class PopularityRecommender(Estimator[PopularitySettings]):
    """Most popular skus first, from a frame of ``person_id``, ``sku``, ``occurred_at``
    (and an optional non-negative ``weight``, such as a quantity)."""

    family = "popularity"
    settings_type = PopularitySettings
    training_columns = ("person_id", "sku", "occurred_at")
    evaluation_columns = ("person_id", "sku")
    input_schema = (Column("person_id", "string"), Column("k", "long", required=False))
    output_schema = (
        Column("person_id", "string"),
        Column("sku", "string"),
        Column("score", "double"),
        Column("rank", "long"),
    )
    primary_metric = "ndcg@10"
    higher_is_better = True

    items_: NDArray[np.str_]  # the catalogue: every sku of the training frame, sorted
    scores_: NDArray[np.float64]  # popularity of each of items_
    latest_: pd.Timestamp  # the reference time of the decay
    # Seen items, only learned with exclude_seen: persons_[p] saw
    # items_[seen_items_[seen_indptr_[p]:seen_indptr_[p + 1]]].
    persons_: NDArray[np.str_]
    seen_indptr_: NDArray[np.int64]
    seen_items_: NDArray[np.int64]

    def recommend(self, person_ids: Iterable[str], k: int = DEFAULT_K) -> pd.DataFrame:
        """Top ``k`` skus per person: one row per (person_id, rank), ranks from 1."""
        self.check_fitted()
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        ids = pd.Series(list(person_ids), dtype="string")
        if ids.isna().any():
            raise ValueError("person_ids: missing values")
        people = ids.to_numpy(dtype=str)
        k = min(int(k), len(self.items_))
        positions = self._unseen_positions(people, k)
        valid = positions < len(self.items_)
        chosen = self._ranking[positions[valid]]
        return pd.DataFrame(
            {
                "person_id": np.repeat(people, k)[valid.ravel()],
                "sku": self.items_[chosen],
                "score": self.scores_[chosen],
                "rank": np.broadcast_to(np.arange(1, k + 1), positions.shape)[valid],
            }
        )

    def _fit(self, frame: pd.DataFrame) -> None:
        self.items_, item_codes = _encode(frame["sku"])
        weights = np.ones(len(frame))
        if "weight" in frame.columns:
            weights = frame["weight"].to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(weights) & (weights >= 0)):
                raise ValueError("weight: every weight must be a finite number >= 0")
        times = pd.to_datetime(frame["occurred_at"], utc=True)
        self.latest_ = times.max()
        if self.settings.half_life_days is not None:
            age_days = (self.latest_ - times).dt.total_seconds().to_numpy() / SECONDS_PER_DAY
            weights = weights * 0.5 ** (age_days / self.settings.half_life_days)
        counts = np.bincount(item_codes, weights=weights, minlength=len(self.items_))
        self.scores_ = counts.astype(np.float64, copy=False)

        self.persons_ = np.array([], dtype=str)
        self.seen_indptr_ = np.zeros(1, dtype=np.int64)
        self.seen_items_ = np.array([], dtype=np.int64)
        if self.settings.exclude_seen:
            self.persons_, person_codes = _encode(frame["person_id"])
            pairs = _distinct(person_codes * len(self.items_) + item_codes)
            counts = np.bincount(pairs // len(self.items_), minlength=len(self.persons_))
            self.seen_indptr_ = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            self.seen_items_ = pairs % len(self.items_)
        self._prepare()

    def _prepare(self) -> None:
        """Derived lookups: the global ranking and, per person, the seen items' positions in it."""
        # Stable on descending score; items_ is sorted, so ties go to the smaller sku.
        self._ranking = np.argsort(-self.scores_, kind="stable")
        position = np.empty_like(self._ranking)
        position[self._ranking] = np.arange(len(self._ranking))
        owner = np.repeat(np.arange(len(self.persons_)), np.diff(self.seen_indptr_))
        n_items = len(self.items_)
        # Each person's seen positions, in order: sort on (owner, position) as one integer key.
        seen = np.sort(owner * n_items + position[self.seen_items_]) % n_items
        # With a person's seen positions sorted, s_i - i counts the unseen positions before
        # s_i; the j-th unseen position is j + #{i: s_i - i <= j}. One global searchsorted over
        # (owner, s_i - i) keys answers that for every person and j at once.
        before = seen - (np.arange(len(seen)) - self.seen_indptr_[owner])
        self._stride = n_items + 1
        self._seen_keys = owner * self._stride + before

    def _unseen_positions(self, people: NDArray[np.str_], k: int) -> NDArray[np.int64]:
        """(persons, k) positions in the global ranking; len(items_) or more means none left."""
        j = np.arange(k, dtype=np.int64)
        if not len(self.persons_):
            return np.broadcast_to(j, (len(people), k))
        row = np.searchsorted(self.persons_, people)
        row = np.minimum(row, len(self.persons_) - 1)
        known = self.persons_[row] == people
        queries = row[:, None] * self._stride + j
        seen_before = (
            np.searchsorted(self._seen_keys, queries, side="right")
            - self.seen_indptr_[row][:, None]
        )
        return j + np.where(known[:, None], seen_before, 0)

    def _predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return predict_lists(self.recommend, frame)

    def _evaluate(self, frame: pd.DataFrame) -> Evaluation:
        metrics = evaluate_lists(self.recommend, frame, len(self.items_))
        return Evaluation(metrics, self.primary_metric, self.higher_is_better)

    def _input_example(self) -> pd.DataFrame:
        # A made-up person, who gets the global ranking: no training identifier leaves the model.
        return pd.DataFrame({"person_id": ["example-person"], "k": [DEFAULT_K]})

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays: LearnedArrays = {
            "items": self.items_,
            "scores": self.scores_,
            "persons": self.persons_,
            "seen_indptr": self.seen_indptr_,
            "seen_items": self.seen_items_,
        }
        return arrays, {"latest": self.latest_.isoformat()}

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        self.items_ = arrays["items"]
        self.scores_ = arrays["scores"]
        self.persons_ = arrays["persons"]
        self.seen_indptr_ = arrays["seen_indptr"]
        self.seen_items_ = arrays["seen_items"]
        self.latest_ = pd.Timestamp(state["latest"])
        self._prepare()


def _encode(values: pd.Series) -> tuple[NDArray[np.str_], NDArray[np.int64]]:
    """The sorted distinct values as strings, and each row's index among them."""
    # factorize hashes and sorts only the distinct values; np.unique would sort every row.
    codes, distinct = pd.factorize(values.astype(str), sort=True)
    return np.asarray(distinct, dtype=str), codes.astype(np.int64)


def _distinct(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct keys (a sort and a mask: faster here than np.unique's hashing)."""
    ordered = np.sort(keys)
    distinct: NDArray[np.int64] = ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])]
    return distinct
