"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008): persons and skus as vectors in one space.

Every (person, sku) pair is a preference ``p`` (1 where the person interacted, else 0) held with
a confidence ``c``: 1 for pairs never seen and, for seen ones, ``1 + alpha * log1p(count /
epsilon)`` (``confidence="log"``) or ``1 + alpha * count`` (``"linear"``). ALS minimises

    Σ_{u,i} c_ui (p_ui - x_u · y_i)² + regularization (Σ_u |x_u|² + Σ_i |y_i|²)

by solving for all persons with the skus fixed, then for all skus with the persons fixed. Each
row's solve uses the identity ``Yᵀ C_u Y = YᵀY + Yᵀ (C_u - I) Y``, so only the seen pairs cost
anything, and a few conjugate-gradient steps warm-started from the previous iteration (as the
``implicit`` package does), run for every row at once with sparse products and gathers.

The learned ``user_factors_`` and ``item_factors_`` are the embeddings the ANN index serves
(from ``RecommenderSettings.ann_min_items`` skus; under that, their exact products do);
:meth:`ALSRecommender.embed_history` folds an unseen person in from their history with one
exact least-squares solve against the fixed sku factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from shelfwise.models.base import LearnedArrays
from shelfwise.models.settings import Constraints, Interval, Options
from shelfwise.recommend.matrix import Interactions, MatrixRecommender, MatrixSettings, Scores

Factors = NDArray[np.float32]

FLOAT32_SAFE = 1e37  # scores below this in size are far from float32's overflow (3.4e38)
GATHER_ROWS = 1 << 17  # seen pairs gathered at once: 131,072 x 64 float32 factors is 32 MB


@dataclass(frozen=True)
class ALSSettings(MatrixSettings):
    """``factors`` per vector; ``regularization`` λ; ``alpha`` and ``epsilon`` shape the
    confidence of seen pairs (``confidence``: "log" or "linear" in the count); ``iterations``
    of alternating solves, each of ``cg_steps`` conjugate-gradient steps; ``seed`` of the
    initial factors. The defaults were tuned on the Complete Journey (train to week 45, validate
    on weeks 46-49); "log" keeps large weights (quantities) from swamping the counts."""

    factors: int = 64
    regularization: float = 30.0
    alpha: float = 1.0
    confidence: str = "log"
    epsilon: float = 1.0
    iterations: int = 15
    cg_steps: int = 3
    seed: int = 0

    constraints: ClassVar[Constraints] = {
        "exclude_seen": (bool,),
        "factors": (Interval(1, None, integer=True),),
        "regularization": (Interval(0, None, closed="neither"),),
        "alpha": (Interval(0, None),),
        "confidence": (Options(("log", "linear")),),
        "epsilon": (Interval(0, None, closed="neither"),),
        "iterations": (Interval(1, None, integer=True),),
        "cg_steps": (Interval(1, None, integer=True),),
        "seed": (Interval(0, None, integer=True),),
    }


class ALSRecommender(MatrixRecommender[ALSSettings]):
    """Scores each sku by the dot product of its factors with the person's."""

    family = "als"
    settings_type = ALSSettings

    user_factors_: Factors  # persons x factors, rows as users_
    item_factors_: Factors  # skus x factors, rows as items_

    def embed_history(self, history: sp.csr_matrix) -> Factors:
        """Person vectors (len(history), factors) from histories over ``items_`` (a persons x
        skus matrix of interaction counts), the sku factors fixed: how a person unseen in
        training joins the embedding space. An empty history embeds at the origin."""
        self.check_fitted()
        history = sp.csr_matrix(history)
        if history.shape[1] != len(self.items_):
            raise ValueError(
                f"history must have one column per sku ({len(self.items_)}), got {history.shape}"
            )
        confidence = self._confidence(history)
        items = self.item_factors_.astype(np.float64)
        gram = items.T @ items + self.settings.regularization * np.eye(items.shape[1])
        out = np.zeros((history.shape[0], items.shape[1]))
        for person in range(history.shape[0]):
            seen = slice(confidence.indptr[person], confidence.indptr[person + 1])
            factors, weight = items[confidence.indices[seen]], confidence.data[seen]
            system = gram + (factors.T * (weight - 1.0)) @ factors
            out[person] = np.linalg.solve(system, factors.T @ weight)
        return out.astype(np.float32)

    # The recommender's hooks.
    def _fit_matrix(self, data: Interactions) -> None:
        settings = self.settings
        by_user = self._confidence(data.counts)
        by_item = sp.csr_matrix(by_user.T)
        rng = np.random.default_rng(settings.seed)
        users = (0.01 * rng.standard_normal((by_user.shape[0], settings.factors))).astype(
            np.float32
        )
        items = (0.01 * rng.standard_normal((by_user.shape[1], settings.factors))).astype(
            np.float32
        )
        for _ in range(settings.iterations):
            users = least_squares_cg(
                by_user, items, users, settings.regularization, settings.cg_steps
            )
            items = least_squares_cg(
                by_item, users, items, settings.regularization, settings.cg_steps
            )
        self.user_factors_, self.item_factors_ = users, items

    def _confidence(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """The confidence of each seen pair, float32, on the pattern of ``counts``."""
        settings = self.settings
        confidence = sp.csr_matrix(counts, dtype=np.float64, copy=True)
        if settings.confidence == "log":
            confidence.data = 1.0 + settings.alpha * np.log1p(confidence.data / settings.epsilon)
        else:
            confidence.data = 1.0 + settings.alpha * confidence.data
        return confidence.astype(np.float32)

    def _score(self, rows: NDArray[np.int64]) -> Scores:
        scores: Scores = self.user_factors_[rows] @ self.item_factors_.T
        return scores

    def pair_scores(self, rows: NDArray[np.int64], items: NDArray[np.int64]) -> Scores:
        """The score of each (person row, sku code) pair: ``_score`` at it, up to rounding."""
        scores: Scores = np.einsum("ij,ij->i", self.user_factors_[rows], self.item_factors_[items])
        return scores

    def score_moments(
        self, rows: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """Each person's mean and standard deviation of their scores over every sku, without
        scoring every sku: a score is linear in the sku's factors, so the mean is u · mean(Y)
        and the variance uᵀ cov(Y) u. None unless every score is finite (the factors are, and
        no product can overflow float32)."""
        moments = self._item_moments()
        if moments is None:
            return None
        mean, covariance, longest = moments
        users = self.user_factors_[rows].astype(np.float64)
        if not np.isfinite(users).all():
            return None
        # Cauchy-Schwarz: no score exceeds the product of the two vectors' norms.
        if len(users) and np.linalg.norm(users, axis=1).max() * longest > FLOAT32_SAFE:
            return None
        variance = ((users @ covariance) * users).sum(axis=1)
        return users @ mean, np.sqrt(np.maximum(variance, 0.0))

    def _item_moments(self) -> tuple[NDArray[np.float64], NDArray[np.float64], float] | None:
        """The sku factors' mean, covariance (over the skus) and longest norm, once per fit;
        None when a factor is not finite."""
        cached = self.__dict__.get("_moments_of")
        if cached is None or cached[0] is not self.item_factors_:  # refitted or restored since
            items = self.item_factors_.astype(np.float64)
            moments = None
            if len(items) and np.isfinite(items).all():
                mean = items.mean(axis=0)
                centred = items - mean
                longest = float(np.linalg.norm(items, axis=1).max())
                moments = (mean, centred.T @ centred / len(items), longest)
            cached = (self.item_factors_, moments)
            self.__dict__["_moments_of"] = cached
        result: tuple[NDArray[np.float64], NDArray[np.float64], float] | None = cached[1]
        return result

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays, state = super()._learned()
        arrays["user_factors"] = self.user_factors_
        arrays["item_factors"] = self.item_factors_
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        super()._restore(arrays, state)
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]


def least_squares_cg(
    confidence: sp.csr_matrix,
    fixed: Factors,
    start: Factors,
    regularization: float,
    steps: int,
) -> Factors:
    """New factors for every row of ``confidence`` (rows x columns, the confidence of each seen
    pair) with the columns' factors ``fixed``: ``steps`` conjugate-gradient steps per row on
    (YᵀC_uY + λI) x_u = YᵀC_u p_u, from ``start``."""
    exact = fixed.astype(np.float64)
    gram = (exact.T @ exact + regularization * np.eye(fixed.shape[1])).astype(np.float32)
    factors = start.copy()
    if not confidence.nnz:
        # With no seen pair the right-hand side is 0, and so is every solution.
        factors[:] = 0.0
        return factors
    # Rows are independent: solve them in blocks of about GATHER_ROWS seen pairs, gathering a
    # block's fixed factors once for all its steps. Buffers are reused across blocks: fresh
    # arrays this large cost more in page faults than the arithmetic done in them.
    indptr = confidence.indptr
    width = min(confidence.nnz, GATHER_ROWS + int(np.diff(indptr).max()))
    buffers = _Buffers(
        np.empty((width, fixed.shape[1]), dtype=np.float32),
        np.empty((width, fixed.shape[1]), dtype=np.float32),
        np.empty(width, dtype=np.float32),
    )
    bounds = np.unique(np.searchsorted(indptr, np.arange(0, confidence.nnz, GATHER_ROWS)))
    for first, last in zip(bounds, [*bounds[1:], confidence.shape[0]], strict=True):
        block = _Block.gather(confidence, fixed, int(first), int(last), gram, buffers)
        rows = factors[first:last]
        residual = block.right_hand_side() - block.times_system(rows)
        direction = residual.copy()
        norm = np.einsum("ij,ij->i", residual, residual)
        for _ in range(steps):
            moved = block.times_system(direction)
            curvature = np.einsum("ij,ij->i", direction, moved)
            step = np.divide(norm, curvature, out=np.zeros_like(norm), where=curvature > 0)
            rows += step[:, None] * direction
            residual -= step[:, None] * moved
            new_norm = np.einsum("ij,ij->i", residual, residual)
            ratio = np.divide(new_norm, norm, out=np.zeros_like(norm), where=norm > 0)
            direction = residual + ratio[:, None] * direction
            norm = new_norm
    return factors


@dataclass(frozen=True)
class _Buffers:
    seen: Factors  # the fixed factors of a block's seen pairs
    mine: Factors  # the row's vector, repeated for each of its seen pairs
    along: NDArray[np.float32]  # y_i · v_u per seen pair


@dataclass(frozen=True)
class _Block:
    """Rows ``first:last`` of a least-squares side, with their seen pairs' fixed factors."""

    gram: Factors  # YᵀY + λI
    seen: Factors
    confidence: NDArray[np.float32]
    extra: NDArray[np.float32]  # confidence - 1
    owner: NDArray[np.int64]  # each seen pair's row within the block
    summing: sp.csr_matrix  # (rows, pairs): its product with ``seen`` sums each row's pairs
    buffers: _Buffers

    @classmethod
    def gather(
        cls,
        matrix: sp.csr_matrix,
        fixed: Factors,
        first: int,
        last: int,
        gram: Factors,
        buffers: _Buffers,
    ) -> _Block:
        begin, end = int(matrix.indptr[first]), int(matrix.indptr[last])
        seen = buffers.seen[: end - begin]
        # mode="clip" writes straight into ``out``; "raise" would buffer a copy first.
        np.take(fixed, matrix.indices[begin:end], axis=0, out=seen, mode="clip")
        local = matrix.indptr[first : last + 1] - begin
        summing = sp.csr_matrix(
            (np.empty(end - begin, dtype=np.float32), np.arange(end - begin), local),
            shape=(last - first, end - begin),
        )
        owner = np.repeat(np.arange(last - first), np.diff(local))
        mine, along = buffers.mine[: end - begin], buffers.along[: end - begin]
        confidence = matrix.data[begin:end]
        buffers = _Buffers(seen, mine, along)
        return cls(gram, seen, confidence, confidence - 1.0, owner, summing, buffers)

    def right_hand_side(self) -> Factors:
        """YᵀC_u p_u: each row's seen factors summed, weighted by their confidence."""
        self.summing.data = self.confidence
        summed: Factors = self.summing @ self.seen
        return summed

    def times_system(self, vectors: Factors) -> Factors:
        """(YᵀY + λI + Yᵀ(C_u - I)Y) v_u for every row u of the block."""
        mine, along = self.buffers.mine, self.buffers.along
        np.take(vectors, self.owner, axis=0, out=mine, mode="clip")
        np.einsum("ij,ij->i", self.seen, mine, out=along)
        along *= self.extra
        self.summing.data = along
        product: Factors = vectors @ self.gram + self.summing @ self.seen
        return product


__all__ = ["ALSRecommender", "ALSSettings", "least_squares_cg"]
