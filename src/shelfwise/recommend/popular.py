"""Popularity as a candidate generator: all-time popular skus, and what is trending now.

The same decayed count as :class:`~shelfwise.recommend.popularity.PopularityRecommender` (the
reference and last-resort fallback), fitted on the recommender's encoded log so that it shares
persons and skus with the other generators. With ``half_life_days`` of a week or two it is
"trending": what is selling now, not what sold all year. Everyone gets the same scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from shelfwise.models.base import LearnedArrays
from shelfwise.models.settings import Constraints, Interval
from shelfwise.recommend.matrix import Interactions, MatrixRecommender, MatrixSettings, Scores


@dataclass(frozen=True)
class PopularSettings(MatrixSettings):
    """``half_life_days``: None counts every interaction alike (popular); a few days: trending."""

    half_life_days: float | None = None

    constraints: ClassVar[Constraints] = {
        "exclude_seen": (bool,),
        "half_life_days": (None, Interval(0, None, closed="neither")),
    }


class TrendingRecommender(MatrixRecommender[PopularSettings]):
    """Decayed interaction counts per sku, the same for every person."""

    family = "trending"
    settings_type = PopularSettings

    popularity_: NDArray[np.float32]

    def _fit_matrix(self, data: Interactions) -> None:
        weight = data.weight
        if self.settings.half_life_days is not None:
            age = data.latest_day - data.days
            weight = weight * 0.5 ** (age / self.settings.half_life_days)
        counts = np.bincount(data.item, weights=weight, minlength=len(data.items))
        self.popularity_ = counts.astype(np.float32)

    def _score(self, rows: NDArray[np.int64]) -> Scores:
        return np.broadcast_to(self.popularity_, (len(rows), len(self.popularity_))).copy()

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays, state = super()._learned()
        arrays["popularity"] = self.popularity_
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        super()._restore(arrays, state)
        self.popularity_ = arrays["popularity"]
