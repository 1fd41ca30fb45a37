"""What the lifecycle asks of a model family, and the promotion policy it applies to all.

A family (:mod:`shelfwise.lifecycle.families` lists them) trains a model on a window of the
workspace's data, scores a model on a later window with its primary metric, says which
sensitive categories its decisions cover and what its inputs look like (for drift); a
:class:`Segmented` one can also be trained per segment. The :class:`Policy` says which
windows a retrain uses and how much better a candidate must be to be promoted by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from shelfwise.models.base import Estimator, Evaluation

if TYPE_CHECKING:
    from shelfwise.settings import Settings

TRAINED_UNTIL = "trained_until"  # in a training run's dataset: the end of its data


class Family(Protocol):
    """What the lifecycle needs of a model family to retrain and judge it."""

    model_name: str
    experiment: str

    def latest(self) -> pd.Timestamp:
        """The time of the newest data."""
        ...

    def sensitive_scope(self) -> list[str]:
        """The sensitive categories the model's decisions cover (empty: none)."""
        ...

    def train(self, start: pd.Timestamp, end: pd.Timestamp) -> Estimator[Any]:
        """A model fitted on the data in (start, end]."""
        ...

    def score(self, model: Estimator[Any], start: pd.Timestamp, end: pd.Timestamp) -> Evaluation:
        """``model``, knowing the data up to ``start``, judged on (start, end]."""
        ...

    @property
    def segment_column(self) -> str:
        """What the family's segments are (a department, a kind of customer)."""
        ...

    def inputs(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """What the model reads about (start, end], one row per case, with the segment
        column: what drift checks compare between windows."""
        ...


class Segmented(Family, Protocol):
    """A family that can be trained per segment of ``segment_column``."""

    def segments(self) -> list[str]:
        """The segments with enough data for a model of their own."""
        ...

    def for_segment(self, level: str) -> Family:
        """The family restricted to one segment, registered under the segment's model name
        (:func:`shelfwise.lifecycle.segments.segment_model`) with ``overall_model`` set."""
        ...


@dataclass(frozen=True)
class Policy:
    window_days: int = 90
    backtest_days: int = 30
    drift_window_days: int = 30
    min_improvement: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """The policy the settings configure (``retrain_window_days`` and the rest)."""
        return cls(
            window_days=settings.retrain_window_days,
            backtest_days=settings.backtest_window_days,
            drift_window_days=settings.drift_window_days,
            min_improvement=settings.min_improvement,
        )
