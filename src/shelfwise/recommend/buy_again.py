"""Buy-again: the person's own repurchases, which grocery lives on.

Each past purchase of a sku adds a weight that halves with every ``half_life_days`` of age
(relative to the latest purchase in the training frame); only skus the person bought are
candidates. Beside the score the model keeps, per (person, sku), the number of distinct
purchase days, the days since the last one and the typical interval between them (the median
gap), so the re-ranker can tell a sku that is due from one bought yesterday and the
explanation can say "you buy this about every 2 weeks". It also keeps how often each person
shops (distinct days, over everything and the last 28 and 56 days), the pair's purchase days in
the last 28, 56 and 112 days, and per sku the share of its buyers who bought it again and its
purchase days per buyer: milk comes back, a barbecue does not (measured on CJ validation
windows: +0.003 NDCG@10 over the features above alone).
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
from shelfwise.recommend.matrix import (
    Interactions,
    MatrixRecommender,
    MatrixSettings,
    Scores,
    row_entries,
)


@dataclass(frozen=True)
class BuyAgainSettings(MatrixSettings):
    """``half_life_days``: age at which a purchase counts half (tuned on CJ validation)."""

    half_life_days: float = 60.0

    constraints: ClassVar[Constraints] = {
        "exclude_seen": (bool,),
        "half_life_days": (Interval(0, None, closed="neither"),),
    }


RECENT_DAYS = (28, 56, 112)  # the windows of the pair's recent purchase days
_SPARSE = ("decayed", "cycle", "last_day", "purchase_days", *(f"recent{d}" for d in RECENT_DAYS))
_DENSE = ("shopping_days", "sku_repeat_rate", "sku_days_per_buyer")


class BuyAgainRecommender(MatrixRecommender[BuyAgainSettings]):
    """Decayed purchase counts of the person's own skus; nothing for skus never bought."""

    family = "buy_again"
    settings_type = BuyAgainSettings

    decayed_: sp.csr_matrix
    cycle_: sp.csr_matrix  # median days between distinct purchase days (0: bought once)
    last_day_: sp.csr_matrix  # the day of the last purchase, as days since the epoch
    purchase_days_: sp.csr_matrix  # distinct purchase days
    shopping_days_: NDArray[np.float64]  # (persons, 3): distinct days, in the last 28 and 56
    sku_repeat_rate_: NDArray[np.float64]  # share of a sku's buyers who bought it on 2+ days
    sku_days_per_buyer_: NDArray[np.float64]

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
        self._learn_habits(data, pairs, summary)

    def _learn_habits(self, data: Interactions, pairs: pd.DataFrame, summary: pd.DataFrame) -> None:
        """How often each person shops, the pairs' recent purchase days, the skus' repeat rates."""
        age = np.floor(data.latest_day) - pairs["day"].to_numpy()
        for days in RECENT_DAYS:
            recent = pairs[age < days]
            matrix = sp.csr_matrix(
                (np.ones(len(recent)), (recent["user"], recent["item"])), shape=data.shape
            )
            matrix.sum_duplicates()
            setattr(self, f"recent{days}_", matrix)
        visits = pairs.drop_duplicates(["user", "day"])
        visit_age = np.floor(data.latest_day) - visits["day"].to_numpy()
        n_users, n_items = data.shape
        self.shopping_days_ = np.stack(
            [
                np.bincount(visits["user"], minlength=n_users),
                np.bincount(visits["user"][visit_age < 28], minlength=n_users),
                np.bincount(visits["user"][visit_age < 56], minlength=n_users),
            ],
            axis=1,
        ).astype(np.float64)
        item = summary.index.get_level_values(1).to_numpy()
        bought_days = summary["days"].to_numpy(float)
        buyers = np.bincount(item, minlength=n_items).astype(np.float64)
        again = np.bincount(item, weights=(bought_days >= 2).astype(float), minlength=n_items)
        total = np.bincount(item, weights=bought_days, minlength=n_items)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.sku_repeat_rate_ = np.where(buyers > 0, again / buyers, np.nan)
            self.sku_days_per_buyer_ = np.where(buyers > 0, total / buyers, np.nan)

    def _score(self, rows: NDArray[np.int64]) -> Scores:
        block = self.sparse_scores(rows)
        scores = np.full(block.shape, -np.inf, dtype=np.float32)
        row = np.repeat(np.arange(len(rows)), np.diff(block.indptr))
        scores[row, block.indices] = block.data
        return scores

    def sparse_scores(self, rows: NDArray[np.int64]) -> sp.csr_matrix:
        """The scores of ``_score`` where they are finite (the skus bought), as CSR."""
        block: sp.csr_matrix = self.decayed_[rows]
        return block

    def pair_features(
        self, rows: NDArray[np.int64], items: NDArray[np.int64], as_of_day: float | None = None
    ) -> dict[str, NDArray[np.float64]]:
        """Per (person row, sku code): decayed score, purchase days, days since the last, the
        typical cycle (NaN: bought once or never), how due it is (days since / cycle), the
        recent purchase days, the share of the person's shopping days that took the sku, how
        often the person shops, and the sku's repeat rate among its buyers."""
        as_of = self.latest_day_ if as_of_day is None else as_of_day
        pairs = _Pairs(rows, items, len(self.items_))
        score = pairs.values(self.decayed_)
        days = pairs.values(self.purchase_days_)
        last = pairs.values(self.last_day_)
        cycle = pairs.values(self.cycle_)
        since = np.where(days > 0, as_of - last, np.nan)
        cycle = np.where(cycle > 0, cycle, np.nan)
        known = rows >= 0
        shopping = np.full((len(rows), 3), np.nan)
        shopping[known] = self.shopping_days_[rows[known]]
        recent = {d: pairs.values(getattr(self, f"recent{d}_")) for d in RECENT_DAYS}
        with np.errstate(invalid="ignore", divide="ignore"):
            share = days / shopping[:, 0]
            share56 = recent[56] / np.maximum(shopping[:, 2], 1.0)
        return {
            "buy_again_score": score,
            "buy_again_days": days,
            "buy_again_days_since": since,
            "buy_again_cycle": cycle,
            "buy_again_due": since / cycle,
            **{f"buy_again_recent{d}": recent[d] for d in RECENT_DAYS},
            "buy_again_basket_share": share,
            "buy_again_basket_share56": share56,
            "person_shopping_days": shopping[:, 0],
            "person_shopping_days28": shopping[:, 1],
            "person_shopping_days56": shopping[:, 2],
            "sku_repeat_rate": self.sku_repeat_rate_[items],
            "sku_days_per_buyer": self.sku_days_per_buyer_[items],
        }

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays, state = super()._learned()
        for name in _SPARSE:
            matrix: sp.csr_matrix = getattr(self, f"{name}_")
            arrays[f"{name}_indptr"] = matrix.indptr
            arrays[f"{name}_indices"] = matrix.indices
            arrays[f"{name}_data"] = matrix.data
        arrays.update({name: getattr(self, f"{name}_") for name in _DENSE})
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        super()._restore(arrays, state)
        shape = (len(self.users_), len(self.items_))
        for name in _DENSE:
            setattr(self, f"{name}_", arrays[name])
        for name in _SPARSE:
            matrix = sp.csr_matrix(
                (arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]),
                shape=shape,
            )
            setattr(self, f"{name}_", matrix)


def _matrix(data: Interactions, values: NDArray[np.float64]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((values, (data.user, data.item)), shape=data.shape)
    matrix.sum_duplicates()
    return matrix


class _Pairs:
    """(person row, sku code) pairs, to read persons x skus matrices at.

    A request reads seven matrices at a few hundred pairs of one person; scipy's fancy
    indexing checks its arguments on each call, which cost more than finding the pairs
    among the person's entries, ordered by (row, sku) like the pairs' keys."""

    def __init__(self, rows: NDArray[np.int64], items: NDArray[np.int64], n_items: int) -> None:
        self.known = rows >= 0
        self.rows, place = np.unique(rows[self.known], return_inverse=True)
        self.keys = place * n_items + items[self.known]
        self.n_items = n_items

    def values(self, matrix: sp.csr_matrix) -> NDArray[np.float64]:
        """matrix[rows[i], items[i]] for each pair i, 0 where not stored (or rows[i] < 0)."""
        if not matrix.has_sorted_indices:  # the searched keys must ascend within a row
            matrix = matrix.sorted_indices()
        owner, at = row_entries(matrix.indptr, self.rows)
        stored = owner * self.n_items + matrix.indices[at]
        out = np.zeros(len(self.known))
        if len(stored):
            place = np.minimum(np.searchsorted(stored, self.keys), len(stored) - 1)
            found = stored[place] == self.keys
            out[np.flatnonzero(self.known)[found]] = matrix.data[at[place[found]]]
        return out
