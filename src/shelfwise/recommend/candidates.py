"""The first stage: every generator proposes, the proposals merge, their scores become features.

A :class:`Source` wraps one fitted generator with its quota (how many skus it may propose per
person) and whether it proposes only skus the person has not bought (``novel``: EASE, ALS,
content and popularity leave repeats to buy-again). For a batch of persons the stage asks each
source for its top skus, takes the union, and for every (person, sku) of the union records each
source's score (standardised over the person's catalogue; for the scores everyone shares,
popularity and trending, a share of the best seller's) and its rank among that source's
proposals (NaN where it did not propose the sku), which source proposed it best (the lowest
rank relative to the quota), and buy-again's facts about the pair. The re-ranker reads all of
it; a source's score is kept even where it did not propose the sku, so the ranker sees, say,
EASE's opinion of a buy-again candidate.

Sources proposing through an :class:`~shelfwise.recommend.ann.VectorIndex` (ALS over the ANN
index) give their proposals from the index and their pair scores exactly from the factors.

A request scores one person, and a dense row over the catalogue costs more than the few
hundred pairs the stage keeps of it: sources that can say the same scores more cheaply do
(``Source.sparse``, ``Source.linear``), and the stage reads them without the dense rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from shelfwise.recommend.buy_again import BuyAgainRecommender
from shelfwise.recommend.matrix import (
    BATCH_USERS,
    Scores,
    at_least_kth,
    group_positions,
    row_entries,
    top_k,
)

Proposer = Callable[[NDArray[np.int64], int], tuple[NDArray[np.int64], NDArray[np.float32]]]
Proposals = tuple[NDArray[np.int64], NDArray[np.float32]]  # (persons, quota) skus, scores
Columns = dict[str, NDArray[Any]]  # equal-length columns by name: a frame's content, no frame


def take_rows(columns: Columns, at: NDArray[Any]) -> Columns:
    """The rows of ``columns`` at ``at`` (positions, or a mask)."""
    return {name: values[at] for name, values in columns.items()}


class LinearScores(Protocol):
    """A model scoring by inner products of factors (ALS)."""

    def pair_scores(self, rows: NDArray[np.int64], items: NDArray[np.int64]) -> Scores:
        """The score of each (person row, sku code) pair."""
        ...

    def score_moments(
        self, rows: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """Each person's mean and standard deviation of their scores over the catalogue;
        None where some score might not be finite."""
        ...


@dataclass
class Source:
    """One generator in the candidate stage.

    ``scores`` gives dense (persons, skus) scores of known person rows (-inf: no candidate),
    a new array each call (the stage masks seen skus in it for a while); ``propose``, when
    set, replaces the top-k of those scores (an ANN index).
    """

    name: str
    quota: int
    scores: Callable[[NDArray[np.int64]], Scores]
    novel: bool = False
    propose: Proposer | None = None
    # (person rows, sku codes) -> the history sku behind each proposal (-1: none), for the
    # explanation "often bought with X"; item-to-item sources have one.
    anchors: Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.int64]] | None = None
    # The same scores in a cheaper form, read instead of the dense rows: ``sparse`` as a CSR
    # matrix with no entry where the score is -inf (buy-again, item-to-item: a person's
    # candidates are a few hundred skus); ``linear`` for a source that proposes through
    # ``propose`` and scores by inner products (ALS).
    sparse: Callable[[NDArray[np.int64]], sp.csr_matrix] | None = None
    linear: LinearScores | None = None


@dataclass
class CandidateStage:
    """Sources over one catalogue, and buy-again for the person's own history."""

    sources: Sequence[Source]
    buy_again: BuyAgainRecommender
    n_items: int
    batch: int = BATCH_USERS
    seconds: dict[str, float] = field(default_factory=dict)
    _shared_scores: dict[str, _Shared] = field(default_factory=dict, repr=False)

    def _shared(self, source: Source) -> _Shared:
        shared = self._shared_scores.get(source.name)
        if shared is None:
            shared = self._shared_scores[source.name] = _Shared.of(source)
        return shared

    @property
    def names(self) -> list[str]:
        return [source.name for source in self.sources]

    def generate(self, rows: NDArray[np.int64], as_of_day: float | None = None) -> pd.DataFrame:
        """One row per distinct (person row, sku code) proposed, with the source features."""
        return pd.DataFrame(self.columns(rows, as_of_day))

    def columns(self, rows: NDArray[np.int64], as_of_day: float | None = None) -> Columns:
        """:meth:`generate`'s columns as arrays: a request's few hundred candidates cost more
        as a frame (its construction and every column read) than their scores do."""
        parts = [
            self._batch(rows[start : start + self.batch], as_of_day)
            for start in range(0, len(rows), self.batch)
        ]
        if len(parts) <= 1:
            return parts[0] if parts else {}
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def _batch(self, rows: NDArray[np.int64], as_of_day: float | None) -> Columns:
        history = self.buy_again.history_
        seen_row, at = row_entries(history.indptr, rows)
        seen = _Seen(seen_row, history.indices[at].astype(np.int64), len(rows), self.n_items)
        scored: dict[str, _Scored] = {}
        proposed: dict[str, Proposals] = {}
        for source in self.sources:
            if source.name in _SHARED_SCORES:  # one row for everyone: scored and sorted once
                proposed[source.name] = self._shared(source).top(seen, source)
                continue
            if source.propose is not None:
                items, values = source.propose(rows, source.quota + (200 if source.novel else 0))
                if source.novel:
                    items = _drop_seen(items, seen)[:, : source.quota]
                proposed[source.name] = (items, values)
                scored[source.name] = self._proposing(source, rows)
                continue
            view = self._scores(source, rows)
            proposed[source.name] = view.top(source.quota, seen if source.novel else None)
            scored[source.name] = view

        offset = np.arange(len(rows))[:, None] * self.n_items
        codes = [  # a short list's padding (-1) stays no key (not the previous person's last sku)
            np.where(items >= 0, offset + items, -1) for items, _ in proposed.values()
        ]
        keys = np.concatenate([c[c >= 0] for c in codes])
        keys = np.unique(keys)
        person, item = keys // self.n_items, keys % self.n_items
        out: Columns = {"row": rows[person], "item": item}
        best_share = np.full(len(keys), np.inf)
        best_source = np.full(len(keys), "", dtype=object)
        for source in self.sources:
            items, _ = proposed[source.name]
            rank = np.full(len(keys), np.nan)
            # Flat, not np.argwhere: a 2-d mask's nonzero costs ten times a flat one's.
            person_of, place = np.divmod(np.flatnonzero(items >= 0), max(items.shape[1], 1))
            found = person_of * self.n_items + items[person_of, place]
            where = np.searchsorted(keys, found)
            rank[where] = place + 1
            out[f"{source.name}_rank"] = rank
            if source.name in _SHARED_SCORES:
                # A share of the best seller's score: counts grow with the log, shares do not.
                shared = self._shared(source)
                out[f"{source.name}_score"] = shared.row[item] / max(shared.best, 1e-12)
            else:
                # The score against the person's own scores over the catalogue, not the raw
                # score: comparable across persons and between a model fitted on less data
                # (the ranker's examples) and one fitted on everything (serving). Measured:
                # +0.005 NDCG@10 on ml100k-msr's random windows, +0.001 on CJ's.
                out[f"{source.name}_z"] = scored[source.name].standardised_at(person, item)
            share = np.where(np.isnan(rank), np.inf, rank / max(source.quota, 1))
            better = share < best_share
            best_share = np.where(better, share, best_share)
            best_source[better] = source.name
        out["source"] = best_source
        anchor = np.full(len(keys), -1, dtype=np.int64)
        for source in self.sources:
            if source.anchors is not None:
                mine = np.flatnonzero(best_source == source.name)
                anchor[mine] = source.anchors(rows[person[mine]], item[mine])
        out["anchor"] = anchor
        facts = self.buy_again.pair_features(rows[person], item, as_of_day)
        out.update(facts)
        return out

    def _proposing(self, source: Source, rows: NDArray[np.int64]) -> _Scored:
        """The scores of a source proposing through an index: only standardised pairs are
        read of them, which a linear source gives without the dense rows."""
        if source.linear is not None:
            moments = source.linear.score_moments(rows)
            if moments is not None:
                return _Linear(source.linear, rows, *moments)
        return self._scores(source, rows)

    def _scores(self, source: Source, rows: NDArray[np.int64]) -> _Dense | _Sparse:
        if source.sparse is not None:
            return _Sparse.of(source.sparse(rows), self.n_items)
        return _Dense(np.asarray(source.scores(rows), dtype=np.float32))


_SHARED_SCORES = ("popularity", "trending")  # everyone's scores alike: nothing to standardise


@dataclass(frozen=True)
class _Seen:
    """The skus each person of a batch bought before: one (place in the batch, sku) per pair."""

    row: NDArray[np.int64]
    sku: NDArray[np.int64]
    persons: int
    n_items: int

    @cached_property
    def mask(self) -> NDArray[np.bool_]:
        """(persons, skus), True where bought: a lookup where np.isin would sort each time."""
        mask = np.zeros((self.persons, self.n_items), dtype=bool)
        mask[self.row, self.sku] = True
        return mask


class _Scored(Protocol):
    """A source's scores of one batch of persons (:class:`_Dense` and :class:`_Sparse` also
    give their ``top``: what :func:`top_k` gives over the dense scores, ``seen`` at -inf)."""

    def standardised_at(
        self, person: NDArray[np.int64], item: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        """Each (place in the batch, sku) score minus the person's mean over their finite
        scores, over their standard deviation; -inf where the score is not finite (a row
        without two distinct scores gives zeros)."""
        ...


@dataclass(frozen=True)
class _Dense:
    """Scores as dense (persons, skus) rows."""

    scores: Scores

    def top(self, quota: int, seen: _Seen | None) -> Proposals:
        if seen is None:
            return top_k(self.scores, quota)
        # The seen skus go to -inf for the top-k and come back after, where masking a copy
        # would copy every row (67 MB for a batch of 256 persons) for a few hundred skus each.
        kept = self.scores[seen.row, seen.sku]
        self.scores[seen.row, seen.sku] = -np.inf
        proposals = top_k(self.scores, quota)
        self.scores[seen.row, seen.sku] = kept
        return proposals

    def standardised_at(
        self, person: NDArray[np.int64], item: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        """Only the pairs asked for are divided out, not the whole catalogue."""
        scores = self.scores
        finite = np.isfinite(scores)
        every = bool(finite.all())  # EASE's rows: nothing to leave out of the sums
        count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
        values = scores if every else np.where(finite, scores, 0.0)
        mean = values.sum(axis=1, keepdims=True) / count
        squares = (values - mean) ** 2
        if not every:
            squares[~finite] = 0.0
        spread = np.sqrt(squares.sum(axis=1, keepdims=True) / count)
        return _z(values[person, item], finite[person, item], mean[person, 0], spread[person, 0])


@dataclass(frozen=True)
class _Sparse:
    """Scores of which only the finite ones are stored: (place in the batch, sku, score), by
    place. Sorting them all would cost more than the dense rows; only the best are sorted."""

    owner: NDArray[np.int64]
    item: NDArray[np.int64]
    values: NDArray[np.float32]
    persons: int
    n_items: int

    @classmethod
    def of(cls, matrix: sp.csr_matrix, n_items: int) -> _Sparse:
        """From (persons, skus) scores with no entry where a score is -inf."""
        values = np.asarray(matrix.data, dtype=np.float32)  # as the dense rows hold them
        owner = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        item = matrix.indices.astype(np.int64)
        finite = np.isfinite(values)
        if not finite.all():
            owner, item, values = owner[finite], item[finite], values[finite]
        return cls(owner, item, values, matrix.shape[0], n_items)

    def top(self, quota: int, seen: _Seen | None) -> Proposals:
        quota = min(quota, self.n_items)
        items = np.full((self.persons, quota), -1, dtype=np.int64)
        best = np.full((self.persons, quota), -np.inf, dtype=np.float32)
        owner, item, values = self.owner, self.item, self.values
        if seen is not None:
            fresh = ~seen.mask[owner, item]
            owner, item, values = owner[fresh], item[fresh], values[fresh]
        counts = np.bincount(owner, minlength=self.persons)
        width = int(counts.max(initial=0))
        if 0 < quota < width:
            # Only the scores reaching each person's quota-th best are sorted: the persons'
            # scores padded to the widest with -inf, a bound taken of them as top_k takes it.
            place = group_positions(owner)
            padded = np.full((self.persons, width), -np.inf, dtype=np.float32)
            padded[owner, place] = values
            chosen = at_least_kth(padded, quota)[owner, place]
            owner, item, values = owner[chosen], item[chosen], values[chosen]
        order = np.lexsort((item, -values, owner))  # as top_k: ties to the smaller sku
        owner, item, values = owner[order], item[order], values[order]
        rank = group_positions(owner)
        kept = rank < quota
        items[owner[kept], rank[kept]] = item[kept]
        best[owner[kept], rank[kept]] = values[kept]
        return items, best

    def standardised_at(
        self, person: NDArray[np.int64], item: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        # The sums run over dense rows as in _Dense, zeros where no score is stored: a float32
        # sum rounds by the order of its terms, and a row of equal scores must get the same
        # rounding (the same spread, or the same zero) as there.
        owner, sku, scores = self.owner, self.item, self.values
        count = np.maximum(np.bincount(owner, minlength=self.persons), 1)[:, None]
        values = np.zeros((self.persons, self.n_items), dtype=np.float32)
        values[owner, sku] = scores
        mean = values.sum(axis=1, keepdims=True) / count
        squares = np.zeros(values.shape)
        squares[owner, sku] = (scores - mean[owner, 0]) ** 2
        spread = np.sqrt(squares.sum(axis=1, keepdims=True) / count)
        stored = np.zeros(values.shape, dtype=bool)
        stored[owner, sku] = True
        return _z(values[person, item], stored[person, item], mean[person, 0], spread[person, 0])


@dataclass(frozen=True)
class _Linear:
    """Scores that are inner products: the pairs' scores and each person's moments over the
    catalogue come from the factors, and no dense row is made."""

    model: LinearScores
    rows: NDArray[np.int64]
    mean: NDArray[np.float64]
    spread: NDArray[np.float64]

    def standardised_at(
        self, person: NDArray[np.int64], item: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        picked = self.model.pair_scores(self.rows[person], item)
        finite = np.ones(len(person), dtype=bool)  # as the model's moments promised
        return _z(picked, finite, self.mean[person], self.spread[person])


def _z(
    picked: Scores,
    finite: NDArray[np.bool_],
    mean: NDArray[np.float64],
    spread: NDArray[np.float64],
) -> NDArray[np.float32]:
    """(picked - mean) / spread per pair (a spread of 0 divides by 1); -inf where not finite."""
    z = (picked - mean) / np.where(spread > 0, spread, 1.0)
    out: NDArray[np.float32] = np.where(finite, z, -np.inf).astype(np.float32)
    return out


@dataclass(frozen=True)
class _Shared:
    """A source whose scores are everyone's alike (popularity, trending), scored once: its
    row, best finite score, and skus from the best down (ties to the smaller sku, -inf never)."""

    row: NDArray[np.float32]
    best: float
    order: NDArray[np.int64]

    @classmethod
    def of(cls, source: Source) -> _Shared:
        row = np.asarray(source.scores(np.zeros(1, dtype=np.int64)), dtype=np.float32)[0]
        finite = np.isfinite(row)
        best = float(np.max(row, initial=0.0, where=finite))
        order = np.argsort(-row, kind="stable")
        return cls(row, best, order[finite[order]].astype(np.int64))

    def top(self, seen: _Seen, source: Source) -> Proposals:
        """Each person's best ``quota`` (not seen before, for a novel source), -1 padded: what
        :func:`top_k` gives over the row with the person's history masked."""
        quota = min(source.quota, len(self.row))
        items = np.full((seen.persons, quota), -1, dtype=np.int64)
        bought = np.bincount(seen.row, minlength=seen.persons) if source.novel else None
        for person in range(seen.persons):
            if bought is None:
                kept = self.order[:quota]
            else:
                head = self.order[: quota + bought[person]]
                kept = head[~seen.mask[person, head]][:quota]
            items[person, : len(kept)] = kept
        values = np.where(items >= 0, self.row[np.maximum(items, 0)], -np.inf)
        return items, values.astype(np.float32)


def _drop_seen(items: NDArray[np.int64], seen: _Seen) -> NDArray[np.int64]:
    """Each row's proposals without the skus it has seen, shifted left, -1 padded."""
    rows = np.arange(len(items))[:, None]
    kept = (items >= 0) & ~seen.mask[rows, np.maximum(items, 0)]
    order = np.argsort(~kept, axis=1, kind="stable")  # the kept first, in their order
    shifted: NDArray[np.int64] = np.where(
        np.take_along_axis(kept, order, axis=1), np.take_along_axis(items, order, axis=1), -1
    )
    return shifted
