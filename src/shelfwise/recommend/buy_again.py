"""Buy-again: the person's own repurchases, which grocery lives on.

Each past purchase of a sku adds a weight that halves with every ``half_life_days`` of age
(relative to the latest purchase in the training frame); only skus the person bought are
candidates. Beside the score the model keeps, per (person, sku), the number of distinct
purchase days, the days since the last one and the typical interval between them (the median
gap), so the re-ranker can tell a sku that is due from one bought yesterday and the
explanation can say "you buy this about every 2 weeks".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from shelfwise.models.base import LearnedArrays
from shelfwise.models.settings import Constraints, Interval
from shelfwise.recommend.matrix import Interactions, MatrixRecommender, MatrixSettings, Scores


@dataclass(frozen=True)
class BuyAgainSettings(MatrixSettings):
    """``half_life_days``: age at which a purchase counts half (tuned on CJ validation)."""

    half_life_days: float = 60.0

    constraints: ClassVar[Constraints] = {
        "exclude_seen": (bool,),
        "half_life_days": (Interval(0, None, closed="neither"),),
    }


class BuyAgainRecommender(MatrixRecommender[BuyAgainSettings]):
    """Decayed purchase counts of the person's own skus; nothing for skus never bought."""

    family = "buy_again"
    settings_type = BuyAgainSettings

    decayed_: sp.csr_matrix
    cycle_: sp.csr_matrix  # median days between distinct purchase days (0: bought once)
    last_day_: sp.csr_matrix  # the day of the last purchase, as days since the epoch
    purchase_days_: sp.csr_matrix  # distinct purchase days

    def _fit_matrix(self, data: Interactions) -> None:
        if self.settings.exclude_seen:
            raise ValueError("buy-again recommends what was seen; exclude_seen must be False")
        age = data.latest_day - data.days
        decay = data.weight * 0.5 ** (age / self.settings.half_life_days)
        self.decayed_ = _matrix(data, decay)
        pairs = pd.DataFrame(
            {"user": data.user, "item": data.item, "day": np.floor(data.days)}
        ).drop_duplicates()
        pairs = pairs.sort_values(["user", "item", "day"], kind="stable")
        gap = pairs["day"].diff()
        first = (pairs["user"].diff() != 0) | (pairs["item"].diff() != 0)
        pairs["gap"] = gap.mask(first)
        summary = pairs.groupby(["user", "item"], sort=True).agg(
            days=("day", "size"), last=("day", "max"), cycle=("gap", "median")
        )
        user = summary.index.get_level_values(0).to_numpy()
        item = summary.index.get_level_values(1).to_numpy()
        shape = data.shape
        self.purchase_days_ = sp.csr_matrix((summary["days"].to_numpy(float), (user, item)), shape)
        self.last_day_ = sp.csr_matrix((summary["last"].to_numpy(float), (user, item)), shape)
        cycle = summary["cycle"].fillna(0.0).to_numpy(float)
        self.cycle_ = sp.csr_matrix((cycle, (user, item)), shape)

    def _score(self, rows: NDArray[np.int64]) -> Scores:
        block = self.decayed_[rows]
        scores = np.full(block.shape, -np.inf, dtype=np.float32)
        row = np.repeat(np.arange(len(rows)), np.diff(block.indptr))
        scores[row, block.indices] = block.data
        return scores

    def pair_features(
        self, rows: NDArray[np.int64], items: NDArray[np.int64], as_of_day: float | None = None
    ) -> dict[str, NDArray[np.float64]]:
        """Per (person row, sku code): decayed score, purchase days, days since the last, the
        typical cycle (NaN: bought once or never) and how due it is (days since / cycle)."""
        as_of = self.latest_day_ if as_of_day is None else as_of_day
        score = _values(self.decayed_, rows, items)
        days = _values(self.purchase_days_, rows, items)
        last = _values(self.last_day_, rows, items)
        cycle = _values(self.cycle_, rows, items)
        since = np.where(days > 0, as_of - last, np.nan)
        cycle = np.where(cycle > 0, cycle, np.nan)
        return {
            "buy_again_score": score,
            "buy_again_days": days,
            "buy_again_days_since": since,
            "buy_again_cycle": cycle,
            "buy_again_due": since / cycle,
        }

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays, state = super()._learned()
        for name in ("decayed", "cycle", "last_day", "purchase_days"):
            matrix: sp.csr_matrix = getattr(self, f"{name}_")
            arrays[f"{name}_indptr"] = matrix.indptr
            arrays[f"{name}_indices"] = matrix.indices
            arrays[f"{name}_data"] = matrix.data
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        super()._restore(arrays, state)
        shape = (len(self.users_), len(self.items_))
        for name in ("decayed", "cycle", "last_day", "purchase_days"):
            matrix = sp.csr_matrix(
                (arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]),
                shape=shape,
            )
            setattr(self, f"{name}_", matrix)


def _matrix(data: Interactions, values: NDArray[np.float64]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((values, (data.user, data.item)), shape=data.shape)
    matrix.sum_duplicates()
    return matrix


def _values(
    matrix: sp.csr_matrix, rows: NDArray[np.int64], items: NDArray[np.int64]
) -> NDArray[np.float64]:
    """matrix[rows[i], items[i]] for each i, 0 where not stored (or rows[i] < 0)."""
    known = rows >= 0
    out = np.zeros(len(rows))
    out[known] = np.asarray(matrix[rows[known], items[known]]).ravel()
    return out
