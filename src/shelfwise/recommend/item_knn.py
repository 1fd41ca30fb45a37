"""Item-to-item neighbours: "people who bought this also bought", from persons, baskets or sessions.

Two skus are similar when the same *documents* hold them. What a document is decides what the
neighbours mean (``ItemKNNSettings.by``):

- ``"person"``: everything one person ever bought; the classic item-kNN of the benchmarks;
- ``"basket"``: one order (``order_id``): co-purchase, complements bought together;
- ``"session"``: one browsing session (``session_id``, else ``order_id``): co-view.

Rows without the column fall back to the person's day, the nearest thing to a shopping trip.
Sessions are read by ``fit(frame)``; ``fit_interactions`` sees only the encoded orders.

With ``co(a, c)`` the documents holding both the anchor ``a`` and the candidate ``c`` and
``n(x)`` those holding ``x``, the similarity is

    sim(a, c) = co(a, c) / (n(a) ** (1 - β) * n(c) ** β + shrinkage)

where β is ``popularity_penalty``: 0.5 is the cosine, 0 is P(c | a), which lets popular
candidates win, and 1 is P(a | c), which favours rare ones. Each anchor keeps only its
``neighbours`` most similar candidates, so the item x item matrix stays sparse; it is built
anchor chunk by chunk, each chunk one sparse product, so 65,821 skus never need a dense square.

A person's score for a candidate is the sum, over the skus in their history (weighted 1, or
halved with each ``half_life_days`` of age of their latest purchase), of the anchor's similarity
to it. Skus that no history sku points to are no candidates (-inf). :meth:`anchors` names the
history sku behind a recommendation ("often bought with X"), and :meth:`score_basket` scores
the complements of any basket, in a history or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from shelfwise.models.base import LearnedArrays
from shelfwise.models.settings import Constraints, Interval, Options
from shelfwise.recommend.matrix import (
    Interactions,
    MatrixRecommender,
    MatrixSettings,
    Scores,
)

# Co-occurrence entries one chunk of anchors may produce (its rows x its widest row): bounds
# the memory of a chunk to a few hundred MB whatever the catalogue.
CHUNK_ENTRIES = 1 << 23
# (person, candidate) pairs explained at once: each brings its person's whole history along.
ANCHOR_PAIRS = 1024


@dataclass(frozen=True)
class ItemKNNSettings(MatrixSettings):
    """``neighbours`` kept per anchor sku; ``by`` what a document is (person, basket, session);
    ``shrinkage`` added to the similarity's denominator, damping pairs seen in few documents;
    ``popularity_penalty`` β of the module docstring (0.5: cosine); ``half_life_days`` None
    weighs every history sku 1, else by the age of the person's latest purchase of it.

    Tuned on the Complete Journey (train to week 45, validate on weeks 46-49): 100 neighbours
    and a shrinkage of 10 for persons; for baskets, a popularity penalty of 0.3 as well."""

    neighbours: int = 100
    by: str = "person"
    shrinkage: float = 10.0
    popularity_penalty: float = 0.5
    half_life_days: float | None = None

    constraints: ClassVar[Constraints] = {
        "exclude_seen": (bool,),
        "neighbours": (Interval(1, None, integer=True),),
        "by": (Options(("person", "basket", "session")),),
        "shrinkage": (Interval(0, None),),
        "popularity_penalty": (Interval(0, 1),),
        "half_life_days": (None, Interval(0, None, closed="neither")),
    }


class ItemKNNRecommender(MatrixRecommender[ItemKNNSettings]):
    """Scores skus by their similarity to what each person bought."""

    family = "item_knn"
    settings_type = ItemKNNSettings

    similarity_: sp.csr_matrix  # anchor sku x candidate sku, float32, <= neighbours per row
    profile_: sp.csr_matrix  # person x sku history weights (1, or decayed)

    def anchors(self, rows: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.int64]:
        """For each (person row, candidate sku code) pair, the code of the history sku adding
        most to that candidate's score (ties: the smaller sku); -1 where none does."""
        self.check_fitted()
        rows, items = self._codes(rows, len(self.users_)), self._codes(items, len(self.items_))
        if rows.shape != items.shape:
            raise ValueError(f"rows and items must pair up; got {rows.shape} and {items.shape}")
        out = np.full(len(rows), -1, dtype=np.int64)
        for start in range(0, len(rows), ANCHOR_PAIRS):
            batch = slice(start, start + ANCHOR_PAIRS)
            out[batch] = self._anchors(rows[batch], items[batch])
        return out

    def _anchors(self, rows: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.int64]:
        contribution = sp.csr_matrix(self.profile_[rows].multiply(self._reverse[items]))
        contribution.eliminate_zeros()
        contribution.sort_indices()
        owner = np.repeat(np.arange(len(rows)), np.diff(contribution.indptr))
        best = np.full(len(rows), -np.inf, dtype=contribution.dtype)
        np.maximum.at(best, owner, contribution.data)
        at_best = np.flatnonzero(contribution.data == best[owner])
        # Indices are sorted within a row: each row's first entry at its best is the smaller sku.
        winners, first = np.unique(owner[at_best], return_index=True)
        out = np.full(len(rows), -1, dtype=np.int64)
        out[winners] = contribution.indices[at_best[first]]
        return out

    def similar_items(
        self, items: NDArray[np.int64], k: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Each sku's ``k`` nearest neighbours: (len(items), k) codes (-1: none) and their
        similarities."""
        self.check_fitted()
        items = self._codes(items, len(self.items_))
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        rows = sp.csr_matrix(self.similarity_[items])
        owner = np.repeat(np.arange(len(items)), np.diff(rows.indptr))
        # Rows hold at most ``neighbours`` entries: order them all, ties to the smaller sku.
        order = np.lexsort((rows.indices, -rows.data, owner))
        rank = np.arange(len(order)) - rows.indptr[owner[order]]
        kept = order[rank < k]
        codes = np.full((len(items), k), -1, dtype=np.int64)
        values = np.full((len(items), k), -np.inf, dtype=np.float32)
        codes[owner[kept], rank[rank < k]] = rows.indices[kept]
        values[owner[kept], rank[rank < k]] = rows.data[kept]
        return codes, values

    def score_basket(self, baskets: Sequence[Sequence[int]]) -> Scores:
        """Scores (len(baskets), skus) of each basket's complements (sku codes in, each weighed
        1); the basket's own skus and skus no basket sku points to are -inf."""
        self.check_fitted()
        sizes = np.array([len(basket) for basket in baskets], dtype=np.int64)
        held_codes = [np.asarray(basket, dtype=np.int64) for basket in baskets]
        codes = self._codes(
            np.concatenate([np.empty(0, dtype=np.int64), *held_codes]), len(self.items_)
        )
        held = sp.csr_matrix(
            (
                np.ones(len(codes), dtype=np.float32),
                (np.repeat(np.arange(len(sizes)), sizes), codes),
            ),
            shape=(len(sizes), len(self.items_)),
        )
        held.sum_duplicates()
        held.data[:] = 1.0
        scores = self._dense(held @ self.similarity_)
        scores[np.repeat(np.arange(len(sizes)), np.diff(held.indptr)), held.indices] = -np.inf
        return scores

    # The recommender's hooks.
    def _fit(self, frame: pd.DataFrame) -> None:
        if self.settings.by == "session" and "session_id" in frame.columns:
            # Sessions take the place of orders as the documents; rows without one fall back.
            frame = frame.assign(order_id=frame["session_id"])
        super()._fit(frame)

    def _fit_matrix(self, data: Interactions) -> None:
        self.similarity_ = item_similarity(
            document_matrix(data, self.settings.by),
            self.settings.neighbours,
            shrinkage=self.settings.shrinkage,
            popularity_penalty=self.settings.popularity_penalty,
        )
        self.profile_ = history_weights(data, self.settings.half_life_days)
        self._prepare()

    def _prepare(self) -> None:
        # Candidate -> anchors, for explanations.
        self._reverse = sp.csr_matrix(self.similarity_.T)

    def _score(self, rows: NDArray[np.int64]) -> Scores:
        return self._dense(self.sparse_scores(rows))

    def sparse_scores(self, rows: NDArray[np.int64]) -> sp.csr_matrix:
        """The scores of ``_score`` where they are finite, as CSR (in any column order)."""
        scores: sp.csr_matrix = self.profile_[rows] @ self.similarity_
        return scores

    def _dense(self, matrix: sp.csr_matrix) -> Scores:
        """A sparse score matrix as dense float32, -inf where it holds no entry."""
        matrix = sp.csr_matrix(matrix)
        scores = np.full(matrix.shape, -np.inf, dtype=np.float32)
        scores[np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)), matrix.indices] = (
            matrix.data
        )
        return scores

    @staticmethod
    def _codes(values: NDArray[np.int64], size: int) -> NDArray[np.int64]:
        codes = np.asarray(values, dtype=np.int64).ravel()
        if len(codes) and (codes.min() < 0 or codes.max() >= size):
            raise ValueError(f"codes must lie in [0, {size}); got {codes.min()}..{codes.max()}")
        return codes

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays, state = super()._learned()
        for name, matrix in (("similarity", self.similarity_), ("profile", self.profile_)):
            arrays[f"{name}_indptr"] = matrix.indptr
            arrays[f"{name}_indices"] = matrix.indices
            arrays[f"{name}_data"] = matrix.data
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        super()._restore(arrays, state)
        n_users, n_items = len(self.users_), len(self.items_)
        self.similarity_, self.profile_ = (
            sp.csr_matrix(
                (arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]),
                shape=shape,
            )
            for name, shape in (("similarity", (n_items, n_items)), ("profile", (n_users, n_items)))
        )
        self._prepare()


def history_weights(data: Interactions, half_life_days: float | None) -> sp.csr_matrix:
    """Persons x skus float32: 1 where the person interacted, or 0.5 ** (age / half-life) with
    the age of their latest interaction with the sku, relative to the latest in the frame."""
    if half_life_days is None:
        return data.binary
    n_items = data.shape[1]
    key = data.user * n_items + data.item
    order = np.lexsort((data.days, key))
    key, days = key[order], data.days[order]
    latest = np.flatnonzero(np.append(key[1:] != key[:-1], True))
    weight = 0.5 ** ((data.latest_day - days[latest]) / half_life_days)
    return sp.csr_matrix(
        (weight.astype(np.float32), (key[latest] // n_items, key[latest] % n_items)),
        shape=data.shape,
    )


def document_matrix(data: Interactions, by: str) -> sp.csr_matrix:
    """Documents x skus, 1 where the document holds the sku: one document per person, or per
    order (``data.basket``) with rows outside any order grouped by person and day."""
    if by == "person":
        document = data.user
    else:
        loose = data.basket < 0
        days = np.floor(data.days[loose]).astype(np.int64)
        days -= days.min(initial=0)
        person_day, _ = pd.factorize(data.user[loose] * (days.max(initial=0) + 1) + days)
        document = data.basket.copy()
        document[loose] = data.basket.max(initial=-1) + 1 + person_day
    matrix = sp.csr_matrix(
        (np.ones(len(document), dtype=np.float32), (document, data.item)),
        shape=(int(document.max(initial=-1)) + 1, data.shape[1]),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def item_similarity(
    documents: sp.csr_matrix,
    neighbours: int,
    *,
    shrinkage: float = 0.0,
    popularity_penalty: float = 0.5,
) -> sp.csr_matrix:
    """Skus x skus float32: each anchor's ``neighbours`` most similar other skus (ties: the
    smaller sku), from a 0/1 documents x skus matrix; see the module docstring for the formula."""
    documents = sp.csr_matrix(documents, dtype=np.float32)
    n_items = documents.shape[1]
    by_item = sp.csr_matrix(documents.T)
    popularity = np.diff(by_item.indptr).astype(np.float64)
    anchor_scale = popularity ** (1.0 - popularity_penalty)
    candidate_scale = (popularity**popularity_penalty).astype(np.float32)
    # Co-occurrence entries an anchor can produce at most: the lengths of its documents, summed.
    work = by_item @ np.diff(documents.indptr).astype(np.float64)
    order = np.argsort(work, kind="stable")
    ordered_work = np.maximum(work[order], 1.0)
    parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
    start = 0
    while start < n_items:
        # Anchors in ascending work, so a chunk's widest row is about its last one.
        span = np.arange(1, n_items - start + 1) * ordered_work[start:]
        stop = start + max(1, int(np.searchsorted(span, CHUNK_ENTRIES, side="right")))
        anchors = order[start:stop]
        co = sp.csr_matrix(by_item[anchors] @ documents)
        counts = np.diff(co.indptr)
        # Within an anchor's row, co / (n(c) ** β + shrinkage / n(a) ** (1 - β)) orders the
        # candidates as the similarity does; the anchor's own factor is applied to the few kept.
        denominator = candidate_scale[co.indices]
        if shrinkage:
            denominator += np.repeat((shrinkage / anchor_scale[anchors]).astype(np.float32), counts)
        row, column, value = _best_per_row(co, co.data / denominator, anchors, neighbours)
        parts.append((anchors[row], column, value / anchor_scale[anchors[row]]))
        start = stop
    anchor, column, similarity = (np.concatenate(values) for values in zip(*parts, strict=True))
    matrix = sp.csr_matrix(
        (similarity.astype(np.float32), (anchor, column)), shape=(n_items, n_items)
    )
    matrix.sort_indices()
    return matrix


def _best_per_row(
    co: sp.csr_matrix, value: NDArray[np.float32], anchors: NDArray[np.int64], k: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """(row, column, value) of the k largest values of each row of ``co``, leaving out the
    row's anchor itself; ties go to the smaller column."""
    counts = np.diff(co.indptr)
    rows, width = len(counts), int(counts.max(initial=0))
    # The rows padded to the widest (an ELL layout) so that one partition serves them all:
    # each entry's column replaced by its place in the row. Values are > 0; 0 is padding.
    place = np.arange(len(value), dtype=np.int32) - np.repeat(
        co.indptr[:-1].astype(np.int32), counts
    )
    padded = sp.csr_matrix((value, place, co.indptr), shape=(rows, width)).toarray()
    keep = k + 1  # the anchor itself is in its row, and may be among the best
    if width > keep:
        kth = np.partition(padded, width - keep, axis=1)[:, width - keep]
        # A row shorter than k + 1 has a k-th of 0: padding, never a candidate.
        row, slot = np.nonzero(padded >= np.maximum(kth, np.finfo(np.float32).tiny)[:, None])
    else:
        row, slot = np.nonzero(padded)
    best = padded[row, slot]
    column = co.indices[co.indptr[row] + slot].astype(np.int64)
    real = (best > 0) & (column != anchors[row])
    row, column, best = row[real], column[real], best[real]
    # Every value tying with a row's k-th is still here: order exactly, then cut at k.
    order = np.lexsort((column, -best, row))
    row, column, best = row[order], column[order], best[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)
    chosen = rank < k
    return row[chosen].astype(np.int64), column[chosen], best[chosen]


__all__ = [
    "ItemKNNRecommender",
    "ItemKNNSettings",
    "document_matrix",
    "history_weights",
    "item_similarity",
]
