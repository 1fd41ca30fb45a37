"""EASE (Steck 2019): a closed-form item-to-item linear model, the strongest simple reference.

B minimises ||X - XB||² + λ||B||² with diag(B) = 0, for X the 0/1 person x sku matrix. With
P = (XᵀX + λI)⁻¹, B = I - P·diag(1/diag P). Scores are XB.

Two ways to the same B, by the shape of X:
- **direct** when the catalogue is small (MovieLens' 1,682 items): P is inverted and B kept;
- **Woodbury** when persons are fewer than skus (the Complete Journey: 2,469 households and
  65,821 products, whose dense B would take 17 GB): P = (I - XᵀKX)/λ with K = (λI + XXᵀ)⁻¹, a
  persons x persons inverse. B is never formed: a batch of persons scores as
  X_b - (X_b - (X_b Xᵀ) K X) / (λ·diag P), and diag P comes from K column block by block.
Both give the same scores up to rounding (a test checks it).

**Rating order** (``order_floor``, the direct form only): each pair of skus a person has counts
``floor + (1 - floor)·exp(-d / order_scale)`` in the gram instead of 1, d the pair's distance
in the order the person's skus first came (by time, then sku; 1: next to each other), so that
skus taken up close together weigh more. On MovieLens-100k's split (ml100k-msr), where a user rates
in sessions, floor 0.3 and scale 10 at λ 350, chosen on its validation split, took NDCG@10 from
0.4829 to 0.4891 (docs/accuracy-experiments.md). A weighted gram is no longer XᵀX, so the
Woodbury route cannot take it.
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

DIRECT_LIMIT = 12_000  # largest catalogue whose dense items x items inverse is worth keeping
DIAGONAL_BLOCK = 4_096  # skus per block when computing diag P through Woodbury


@dataclass(frozen=True)
class EaseSettings(MatrixSettings):
    """``l2``: the ridge λ (tuned: 500 on both benchmarks). ``method``: "auto" takes the
    direct inverse for catalogues up to 12,000 skus, else Woodbury when persons are fewer."""

    l2: float = 500.0
    method: str = "auto"
    order_floor: float | None = None  # None: every pair counts 1 (plain EASE)
    order_scale: float = 10.0  # the distance in a person's order at which the extra is 1/e

    constraints: ClassVar[Constraints] = {
        "exclude_seen": (bool,),
        "l2": (Interval(0, None, closed="neither"),),
        "method": (Options(("auto", "direct", "woodbury")),),
        "order_floor": (None, Interval(0, 1)),
        "order_scale": (Interval(0, None, closed="neither"),),
    }


def order_gram(data: Interactions, scale: float) -> NDArray[np.float64]:
    """Σ over persons of exp(-d / scale) for each pair of their skus, d the pair's distance in
    the order the person's skus first came (by time, then sku; 1: next to each other), and 1 on
    the diagonal for each person. Pairs more than 10 scales apart (under 5e-5) are left out."""
    order = np.lexsort((data.item, data.days, data.user))
    user, item = data.user[order], data.item[order]
    _, first = np.unique(user * len(data.items) + item, return_index=True)
    first.sort()  # each person's distinct skus, in the order they first came
    user, item = user[first], item[first]
    n = len(data.items)
    gram = np.zeros((n, n))
    np.add.at(gram, (item, item), 1.0)
    for gap in range(1, int(np.ceil(10 * scale)) + 1):
        same = user[gap:] == user[:-gap]
        if not same.any():
            break
        before, after = item[:-gap][same], item[gap:][same]
        near = np.exp(-gap / scale)
        np.add.at(gram, (before, after), near)
        np.add.at(gram, (after, before), near)
    return gram


class EaseRecommender(MatrixRecommender[EaseSettings]):
    """EASE over the 0/1 history; fit cost is O(min(persons, skus)³)."""

    family = "ease"
    settings_type = EaseSettings

    method_: str
    weights_: NDArray[np.float32]  # direct: B (skus x skus); woodbury: K (persons x persons)
    binary_: sp.csr_matrix
    inverse_diagonal_: NDArray[np.float64]  # woodbury: 1 / (λ·diag P)

    def _fit_matrix(self, data: Interactions) -> None:
        n_users, n_items = data.shape
        method = self.settings.method
        if method == "auto":
            method = "direct" if n_items <= max(DIRECT_LIMIT, n_users) else "woodbury"
        if method == "woodbury" and n_users > max(n_items, DIRECT_LIMIT):
            raise ValueError(
                f"EASE woodbury needs fewer persons than skus; got {n_users} persons and "
                f"{n_items} skus (use method='direct')"
            )
        floor = self.settings.order_floor
        if floor is not None and method != "direct":
            raise ValueError(
                f"EASE's rating-order weighting (order_floor={floor}) needs the direct form, "
                f"a catalogue of at most {DIRECT_LIMIT:,} skus; got {n_items:,} skus"
            )
        self.method_ = method
        self.binary_ = data.binary.astype(np.float64)
        l2 = self.settings.l2
        if method == "direct":
            gram = (self.binary_.T @ self.binary_).toarray()
            if floor is not None:
                gram = floor * gram + (1.0 - floor) * order_gram(data, self.settings.order_scale)
            gram[np.diag_indices_from(gram)] += l2
            inverse = np.linalg.inv(gram)
            weights = -inverse / np.diag(inverse)
            np.fill_diagonal(weights, 0.0)
            self.weights_ = weights.astype(np.float32)
            self.inverse_diagonal_ = np.empty(0)
            return
        gram = (self.binary_ @ self.binary_.T).toarray()
        gram[np.diag_indices_from(gram)] += l2
        kernel = np.linalg.inv(gram)
        # diag P_j = (1 - x_jᵀ K x_j) / λ, with x_j the sku's column, block by block.
        columns = self.binary_.T.tocsr()
        quadratic = np.empty(n_items)
        for start in range(0, n_items, DIAGONAL_BLOCK):
            block = columns[start : start + DIAGONAL_BLOCK]
            quadratic[start : start + block.shape[0]] = np.asarray(
                block.multiply(block @ kernel).sum(axis=1)
            ).ravel()
        self.inverse_diagonal_ = 1.0 / (1.0 - quadratic)
        self.weights_ = kernel.astype(np.float32)

    def _score(self, rows: NDArray[np.int64]) -> Scores:
        history = self.binary_[rows]
        if self.method_ == "direct":
            return np.asarray(history @ self.weights_, dtype=np.float32)
        columns = self._columns()
        # float32 like the kernel: a float64 product would upcast the whole kernel each call.
        gram = np.asarray((history @ columns).todense(), dtype=np.float32)
        weighted = gram @ self.weights_
        if len(rows) == 1:  # a vector: scipy's matrix-times-vector, 1.3 ms against 2.1 on CJ
            projected = (columns @ weighted[0])[None, :]
        else:
            projected = np.asarray((columns @ weighted.T).T)
        # x - (x - p) * d, where x (the history) is 0 almost everywhere: there it is p * d
        # exactly, so only the history's own entries take the whole expression (no dense copy
        # of the history and three passes fewer over the catalogue).
        scores = projected * self.inverse_diagonal_
        row = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))
        item, bought = history.indices, history.data.astype(np.float64)
        scores[row, item] = bought - (bought - projected[row, item]) * self.inverse_diagonal_[item]
        out: Scores = scores.astype(np.float32)
        return out

    def _columns(self) -> sp.csr_matrix:
        """The history transposed (skus x persons), stored by rows once: transposing on
        every call converted the whole matrix again (10 ms a request on CJ)."""
        cached = self.__dict__.get("_columns_of")
        if cached is None or cached[0] is not self.binary_:  # refitted or restored since
            cached = (self.binary_, sp.csr_matrix(self.binary_.T))
            self.__dict__["_columns_of"] = cached
        columns: sp.csr_matrix = cached[1]
        return columns

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays, state = super()._learned()
        arrays.update(
            weights=self.weights_,
            binary_indptr=self.binary_.indptr,
            binary_indices=self.binary_.indices,
            inverse_diagonal=self.inverse_diagonal_,
        )
        state["method"] = self.method_
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        super()._restore(arrays, state)
        self.method_ = str(state["method"])
        self.weights_ = arrays["weights"]
        indices = arrays["binary_indices"]
        self.binary_ = sp.csr_matrix(
            (np.ones(len(indices)), indices, arrays["binary_indptr"]),
            shape=(len(self.users_), len(self.items_)),
        )
        self.inverse_diagonal_ = arrays["inverse_diagonal"]
