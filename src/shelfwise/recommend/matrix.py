"""Interactions as a person x sku matrix, and the base of every recommender that scores it.

:class:`Interactions` encodes a frame of ``person_id``, ``sku``, ``occurred_at`` (with an
optional ``weight`` and ``order_id``) once: sorted distinct persons and skus, each row's codes,
times in days, and the summed (``counts``) and 0/1 (``binary``) matrices. Every candidate
generator (buy-again, item-to-item, EASE, ALS, content, popularity) derives from
:class:`MatrixRecommender`: it learns from an :class:`Interactions` in ``_fit_matrix`` and
scores batches of known persons against the whole catalogue in ``_score``; the base turns that
into top-k lists with deterministic ties (the smaller sku wins), leaves out what a person has
seen when asked, evaluates with the ranking metrics and saves the history with the model.

A score of ``-inf`` means "not a candidate" (buy-again never proposes what was never bought):
such items are never returned, so a list may be shorter than k and the retrieval stage fills
it from other sources.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from shelfwise.evaluation.ranking import DEFAULT_METRICS, parse_metric, ranking_metrics
from shelfwise.models.base import Column, Estimator, Evaluation, LearnedArrays
from shelfwise.models.settings import EstimatorSettings

DEFAULT_K = 10
SECONDS_PER_DAY = 86_400.0
BATCH_USERS = 256  # persons scored at once: 256 x 65,821 float32 scores is 67 MB

SAMPLE_STRIDE = 16  # top_k bounds a row's k-th score from every 16th column
SAMPLE_MARGIN = 16  # ... by the sample's (k / 16 + 16)-th best: some 256 + k columns reach it

Scores = NDArray[np.float32]


@dataclass(frozen=True)
class Interactions:
    """One training frame, encoded. ``user``/``item`` are row codes into ``users``/``items``."""

    users: NDArray[np.str_]
    items: NDArray[np.str_]
    user: NDArray[np.int64]
    item: NDArray[np.int64]
    days: NDArray[np.float64]  # days since the Unix epoch
    weight: NDArray[np.float64]
    basket: NDArray[np.int64]  # order code per row; -1 where the row has no order

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        user: str = "person_id",
        item: str = "sku",
        time: str = "occurred_at",
        weight: str | None = "weight",
        basket: str | None = "order_id",
    ) -> Interactions:
        """Encode a frame; ``weight`` and ``basket`` are used where those columns exist."""
        users, user_codes = encode(frame[user])
        items, item_codes = encode(frame[item])
        moments = pd.to_datetime(frame[time], utc=True)
        seconds = (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        days = np.asarray(seconds.to_numpy(np.float64) / SECONDS_PER_DAY, dtype=np.float64)
        weights: NDArray[np.float64] = np.ones(len(frame))
        if weight is not None and weight in frame.columns:
            weights = frame[weight].to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(weights) & (weights >= 0)):
                raise ValueError(f"{weight}: every weight must be a finite number >= 0")
        baskets = np.full(len(frame), -1, dtype=np.int64)
        if basket is not None and basket in frame.columns:
            column = frame[basket]
            codes, _ = pd.factorize(column.astype("string"))
            baskets = np.where(column.isna().to_numpy(), -1, codes).astype(np.int64)
        return cls(users, items, user_codes, item_codes, days, weights, baskets)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.users), len(self.items)

    @cached_property
    def counts(self) -> sp.csr_matrix:
        """Summed weights per (person, sku)."""
        matrix = sp.csr_matrix((self.weight, (self.user, self.item)), shape=self.shape)
        matrix.sum_duplicates()
        return matrix

    @cached_property
    def binary(self) -> sp.csr_matrix:
        """1 where the person interacted with the sku at least once."""
        matrix = sp.csr_matrix(
            (np.ones(len(self.user), dtype=np.float32), (self.user, self.item)), shape=self.shape
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    @property
    def latest_day(self) -> float:
        return float(self.days.max())

    def rows_of(self, person_ids: NDArray[np.str_]) -> NDArray[np.int64]:
        return rows_of(self.users, person_ids)


def encode(values: pd.Series) -> tuple[NDArray[np.str_], NDArray[np.int64]]:
    """The sorted distinct values as strings, and each row's index among them."""
    codes, distinct = pd.factorize(values.astype(str), sort=True)
    return np.asarray(distinct, dtype=str), codes.astype(np.int64)


def group_positions(keys: NDArray[Any]) -> NDArray[np.int64]:
    """Each row's position among the rows of its key, 0 first; ``keys`` sorted (grouped)."""
    positions: NDArray[np.int64] = np.arange(len(keys)) - np.searchsorted(keys, keys, side="left")
    return positions


def rows_of(sorted_ids: NDArray[np.str_], wanted: NDArray[np.str_]) -> NDArray[np.int64]:
    """Each wanted id's index in ``sorted_ids``; -1 where it is not there."""
    if not len(sorted_ids):
        return np.full(len(wanted), -1, dtype=np.int64)
    position = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return np.where(sorted_ids[position] == wanted, position, -1).astype(np.int64)


def row_entries(
    indptr: NDArray[np.integer[Any]], rows: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The stored entries of ``rows`` of a CSR matrix with this ``indptr``, row after row:
    each entry's place in ``rows`` and its position in the matrix's indices and data. What
    ``matrix[rows]`` gathers, without scipy's per-call checks (tens of microseconds, more
    than the gather itself for a few rows)."""
    start = indptr[rows].astype(np.int64)
    counts = indptr[rows + 1] - start
    owner = np.repeat(np.arange(len(rows)), counts)
    first = np.cumsum(counts) - counts  # each row's first entry among the gathered
    positions = np.arange(len(owner)) + np.repeat(start - first, counts)
    return owner, positions


def top_k(scores: Scores, k: int) -> tuple[NDArray[np.int64], Scores]:
    """Per row, the k best columns by descending score, ties to the smaller column; columns
    scoring -inf are never chosen (-1 pads their place, with score -inf)."""
    n, width = scores.shape
    k = min(k, width)
    if k == 0 or n == 0:
        return np.empty((n, k), dtype=np.int64), np.empty((n, k), dtype=np.float32)
    if k < width:
        # Every column scoring at least the k-th score (a partition may cut through a tie at
        # it), or at least a bound below it, then ordered by (-score, column). (np.nonzero of
        # a 2-d mask costs ten times the flat one.)
        row, column = np.divmod(np.flatnonzero(at_least_kth(scores, k)), width)
    else:
        row, column = np.divmod(np.arange(n * width), width)
    values = scores[row, column]
    order = np.lexsort((column, -values, row))
    row, column, values = row[order], column[order], values[order]
    starts = np.searchsorted(row, np.arange(n))
    rank = np.arange(len(row)) - starts[row]
    keep = (rank < k) & np.isfinite(values)
    items = np.full((n, k), -1, dtype=np.int64)
    best = np.full((n, k), -np.inf, dtype=np.float32)
    items[row[keep], rank[keep]] = column[keep]
    best[row[keep], rank[keep]] = values[keep]
    return items, best


def at_least_kth(scores: Scores, k: int) -> NDArray[np.bool_]:
    """Per row, a mask of columns holding every column that scores at least the row's k-th
    score (k < width) and few others.

    A partition of a 65,821-sku row costs 0.4 ms. The m-th best of every SAMPLE_STRIDE-th
    column (m = k / SAMPLE_STRIDE + SAMPLE_MARGIN) is a bound that some m * SAMPLE_STRIDE
    columns reach; where k columns or more do, the k-th score is at least the bound, so the
    mask of the bound holds every column the k-th score's would. Rows where it is not so (or
    where the bound is not finite: a row of mostly -inf) take the exact k-th score."""
    width = scores.shape[1]
    m = k // SAMPLE_STRIDE + SAMPLE_MARGIN
    if width < 8 * SAMPLE_STRIDE * m:  # too narrow for the sample to save anything
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
        mask: NDArray[np.bool_] = scores >= kth
        return mask
    sample = -scores[:, ::SAMPLE_STRIDE]  # a copy: partitioned in place
    sample.partition(m - 1, axis=1)
    bound = -sample[:, m - 1 : m]
    mask = scores >= bound
    exact = (np.count_nonzero(mask, axis=1) < k) | ~np.isfinite(bound[:, 0])
    if exact.any():
        rows = scores[exact]
        kth = -np.partition(-rows, k - 1, axis=1)[:, k - 1 : k]
        mask[exact] = rows >= kth
    return mask


Recommend = Callable[[Iterable[str], int], pd.DataFrame]


def predict_lists(recommend: Recommend, frame: pd.DataFrame) -> pd.DataFrame:
    """A recommender's ``predict``: top-k lists for a frame of ``person_id`` (and ``k``)."""
    if "k" not in frame.columns or frame.empty:
        return recommend(frame["person_id"], DEFAULT_K)
    k = frame["k"].fillna(DEFAULT_K).astype(np.int64)
    parts = [recommend(rows["person_id"], int(size)) for size, rows in frame.groupby(k)]
    return pd.concat(parts, ignore_index=True)


def evaluate_lists(recommend: Recommend, frame: pd.DataFrame, catalogue: int) -> dict[str, float]:
    """A recommender's metrics: its lists, as deep as the deepest metric, against the
    held-out (``person_id``, ``sku``) pairs."""
    targets = frame[["person_id", "sku"]].astype(str)
    depth = max(parse_metric(name)[1] for name in DEFAULT_METRICS)
    ranked = recommend(pd.unique(targets["person_id"]), depth)
    return ranking_metrics(ranked, targets, catalogue_size=catalogue)


@dataclass(frozen=True)
class MatrixSettings(EstimatorSettings):
    """``exclude_seen``: leave out what the person interacted with in training."""

    exclude_seen: bool = False


SettingsT = TypeVar("SettingsT", bound=MatrixSettings)


class MatrixRecommender(Estimator[SettingsT]):
    """A recommender that scores known persons against every sku of its training frame."""

    training_columns = ("person_id", "sku", "occurred_at")
    evaluation_columns = ("person_id", "sku")
    input_schema: ClassVar[tuple[Column, ...]] = (
        Column("person_id", "string"),
        Column("k", "long", required=False),
    )
    output_schema: ClassVar[tuple[Column, ...]] = (
        Column("person_id", "string"),
        Column("sku", "string"),
        Column("score", "double"),
        Column("rank", "long"),
    )
    primary_metric: ClassVar[str] = "ndcg@10"
    higher_is_better: ClassVar[bool] = True

    users_: NDArray[np.str_]
    items_: NDArray[np.str_]
    history_: sp.csr_matrix  # the training counts, persons x skus
    latest_day_: float

    @abstractmethod
    def _fit_matrix(self, data: Interactions) -> None:
        """Learn from the encoded training frame."""

    @abstractmethod
    def _score(self, rows: NDArray[np.int64]) -> Scores:
        """Scores (len(rows), skus) of known persons; -inf where a sku is no candidate."""

    # Scoring.
    def scores(self, rows: NDArray[np.int64]) -> Scores:
        """Scores of known persons' rows with seen skus at -inf when ``exclude_seen``."""
        scores = np.asarray(self._score(rows), dtype=np.float32)
        if self.settings.exclude_seen:
            seen = self.history_[rows]
            scores[np.repeat(np.arange(len(rows)), np.diff(seen.indptr)), seen.indices] = -np.inf
        return scores

    def top_items(
        self, rows: NDArray[np.int64], k: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """(len(rows), k) sku codes (-1: none) and scores of known persons, in batches."""
        items = np.full((len(rows), k), -1, dtype=np.int64)
        values = np.full((len(rows), k), -np.inf, dtype=np.float32)
        width = min(k, len(self.items_))
        for start in range(0, len(rows), BATCH_USERS):
            batch = slice(start, start + BATCH_USERS)
            chosen, best = top_k(self.scores(rows[batch]), width)
            items[batch, :width], values[batch, :width] = chosen, best
        return items, values

    def recommend(self, person_ids: Iterable[str], k: int = DEFAULT_K) -> pd.DataFrame:
        """Top ``k`` skus per known person: one row per (person_id, rank), ranks from 1.

        Unknown persons get no rows: the retrieval stage falls back for them.
        """
        self.check_fitted()
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        ids = pd.Series(list(person_ids), dtype="string")
        if ids.isna().any():
            raise ValueError("person_ids: missing values")
        people = ids.to_numpy(dtype=str)
        rows = rows_of(self.users_, people)
        known = np.flatnonzero(rows >= 0)
        items, values = self.top_items(rows[known], int(k))
        valid = items >= 0
        return pd.DataFrame(
            {
                "person_id": np.repeat(people[known], items.shape[1])[valid.ravel()],
                "sku": self.items_[items[valid]],
                "score": values[valid].astype(np.float64),
                "rank": np.broadcast_to(np.arange(1, items.shape[1] + 1), items.shape)[valid],
            }
        )

    def fit_interactions(self, data: Interactions) -> Self:
        """Fit on an already encoded frame (the recommender fits several generators on one)."""
        started = time.perf_counter()
        self._adopt(data)
        self._fit_matrix(data)
        self.fit_seconds_ = time.perf_counter() - started
        self.fitted_at_ = datetime.now(UTC)
        self.training_data_ = {
            "rows": len(data.user),
            "persons": data.shape[0],
            "skus": data.shape[1],
        }
        self.feature_versions_ = {}
        return self

    def _adopt(self, data: Interactions) -> None:
        self.users_, self.items_ = data.users, data.items
        self.history_ = data.counts.astype(np.float32)
        self.latest_day_ = data.latest_day

    # The estimator hooks.
    def _fit(self, frame: pd.DataFrame) -> None:
        data = Interactions.from_frame(frame)
        self._adopt(data)
        self._fit_matrix(data)

    def _predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return predict_lists(self.recommend, frame)

    def _evaluate(self, frame: pd.DataFrame) -> Evaluation:
        metrics = evaluate_lists(self.recommend, frame, len(self.items_))
        return Evaluation(metrics, self.primary_metric, self.higher_is_better)

    def _input_example(self) -> pd.DataFrame:
        # A made-up person (no training identifier leaves the model): it gets no rows.
        return pd.DataFrame({"person_id": ["example-person"], "k": [DEFAULT_K]})

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays: LearnedArrays = {
            "users": self.users_,
            "items": self.items_,
            "history_indptr": self.history_.indptr,
            "history_indices": self.history_.indices,
            "history_data": self.history_.data,
        }
        return arrays, {"latest_day": self.latest_day_}

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        self.users_, self.items_ = arrays["users"], arrays["items"]
        self.history_ = sp.csr_matrix(
            (arrays["history_data"], arrays["history_indices"], arrays["history_indptr"]),
            shape=(len(self.users_), len(self.items_)),
        )
        self.latest_day_ = float(state["latest_day"])


__all__ = [
    "Interactions",
    "MatrixRecommender",
    "MatrixSettings",
    "at_least_kth",
    "encode",
    "row_entries",
    "rows_of",
    "top_k",
]
