"""The contract every model family follows, so that the lifecycle never asks which family it holds.

A family subclasses :class:`Estimator`, names itself (``family``), its settings type, the
columns it needs, its primary metric and direction, and writes the private hooks: ``_fit``,
``_predict``, ``_evaluate``, and ``_learned`` / ``_restore`` for persistence. The public
methods here validate the frames, check that the model is fitted, time the call and save or
load the model as JSON plus numpy arrays (never a pickle).
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, cast, final

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.features.definitions import FEATURE_VERSIONS, check_versions
from shelfwise.models import persistence
from shelfwise.models.settings import EstimatorSettings

logger = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=EstimatorSettings)
LearnedArrays = dict[str, NDArray[Any]]


class NotFittedError(RuntimeError):
    """A model was asked to predict, evaluate or save before it was fitted."""


@dataclass(frozen=True)
class Column:
    """One column of what a family's ``predict`` takes or returns (its serving signature)."""

    name: str
    dtype: Literal["string", "long", "double", "boolean", "datetime"]
    required: bool = True


@dataclass(frozen=True)
class Evaluation:
    """Named metrics of one model on one held-out frame, and which of them decides."""

    metrics: dict[str, float]
    primary_metric: str
    higher_is_better: bool

    def __post_init__(self) -> None:
        if self.primary_metric not in self.metrics:
            raise ValueError(
                f"primary metric {self.primary_metric!r} is not among the metrics "
                f"{sorted(self.metrics)}"
            )

    @property
    def primary_value(self) -> float:
        return self.metrics[self.primary_metric]

    def better_than(self, other: Evaluation, min_improvement: float = 0.0) -> bool:
        """Is this strictly better than ``other``, by at least ``min_improvement`` (relative)?

        ``min_improvement`` is a share of ``other``'s value, as in the promotion policies of
        the operational tables: 0.05 asks for 5% better. A NaN on either side is never better.
        """
        if (other.primary_metric, other.higher_is_better) != (
            self.primary_metric,
            self.higher_is_better,
        ):
            raise ValueError(
                f"cannot compare {self.primary_metric!r} (higher_is_better="
                f"{self.higher_is_better}) with {other.primary_metric!r} "
                f"(higher_is_better={other.higher_is_better})"
            )
        if min_improvement < 0:
            raise ValueError(f"min_improvement must be >= 0, got {min_improvement}")
        gain = self.primary_value - other.primary_value
        if not self.higher_is_better:
            gain = -gain
        if math.isnan(gain):
            return False
        margin = min_improvement * abs(other.primary_value)
        # Exactly the margin counts: 0.21 over 0.20 is 5% better, whatever floats round to.
        return gain > 0 and (gain >= margin or math.isclose(gain, margin, rel_tol=1e-9))


class Estimator(ABC, Generic[SettingsT]):
    """Base of every model family: public steps here, mathematics in the family's hooks."""

    family: ClassVar[str]
    settings_type: ClassVar[type[EstimatorSettings]]
    training_columns: ClassVar[tuple[str, ...]] = ()
    evaluation_columns: ClassVar[tuple[str, ...]] = ()
    input_schema: ClassVar[tuple[Column, ...]] = ()
    output_schema: ClassVar[tuple[Column, ...]] = ()
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    # True for a family that reads its features itself (the recommender fetches each
    # candidate's from the feature store and checks their versions there): predict's input is
    # then ids, not features, and carries no versions to check.
    fetches_features: ClassVar[bool] = False
    # What a reviewer should know the family cannot do (printed on every model card).
    limitations: ClassVar[tuple[str, ...]] = ()

    # Learned by every family's fit (or restored by load).
    fitted_at_: datetime
    fit_seconds_: float
    training_data_: dict[str, Any]
    # The feature-set versions of the training frame (empty when it did not come from the
    # feature store); predict refuses features of other versions.
    feature_versions_: dict[str, str]

    def __init__(self, settings: SettingsT | None = None) -> None:
        if settings is None:
            settings = cast(SettingsT, self.settings_type())
        elif not isinstance(settings, self.settings_type):
            raise TypeError(
                f"{type(self).__name__} takes {self.settings_type.__name__}, "
                f"got {type(settings).__name__}"
            )
        self.settings: SettingsT = settings

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            persistence.register_family(cls.family, cls)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "fitted_at_")

    @property
    def feature_versions(self) -> dict[str, str]:
        """The feature-set versions it was trained on (empty: not on feature-store features)."""
        return dict(getattr(self, "feature_versions_", {}))

    def feature_importance(self) -> dict[str, float]:
        """Each input feature's share of the model's total importance (LightGBM gain for the
        tree families), largest first, summing to 1; empty for a family without one. Logged
        with every training run, so a reviewer sees how a challenger's reliance moved."""
        return {}

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(frame) first"
            )

    @final
    def fit(self, frame: pd.DataFrame) -> Self:
        """Learn from a training frame holding at least ``training_columns``."""
        self._require(frame, self.training_columns, "fit", "the training frame")
        started = time.perf_counter()
        # The frame's feature versions; a family that fetches its own features sets them in _fit.
        self.feature_versions_ = dict(frame.attrs.get(FEATURE_VERSIONS, {}))
        self._fit(frame)
        self.fit_seconds_ = time.perf_counter() - started
        self.fitted_at_ = datetime.now(UTC)
        self.training_data_ = persistence.describe_frame(frame)
        logger.debug("%s fitted on %d rows in %.3f s", self, len(frame), self.fit_seconds_)
        return self

    @final
    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The family's answer for each row of ``frame`` (columns as in ``input_schema``)."""
        self.check_fitted()
        required = tuple(c.name for c in self.input_schema if c.required)
        self._require(frame, required, "predict", "the input", allow_empty=True)
        if self.feature_versions and not self.fetches_features:
            check_versions(
                self.feature_versions,
                dict(frame.attrs.get(FEATURE_VERSIONS, {})),
                where=f"{type(self).__name__}.predict",
            )
        started = time.perf_counter()
        out = self._predict(frame)
        logger.debug(
            "%s predicted %d rows in %.3f s", self, len(frame), time.perf_counter() - started
        )
        return out

    @final
    def evaluate(self, frame: pd.DataFrame) -> Evaluation:
        """Metrics on a held-out frame holding at least ``evaluation_columns``."""
        self.check_fitted()
        self._require(frame, self.evaluation_columns, "evaluate", "the held-out frame")
        started = time.perf_counter()
        evaluation = self._evaluate(frame)
        if (evaluation.primary_metric, evaluation.higher_is_better) != (
            self.primary_metric,
            self.higher_is_better,
        ):
            raise TypeError(
                f"{type(self).__name__}._evaluate must decide on {self.primary_metric!r}, "
                f"got {evaluation.primary_metric!r}"
            )
        logger.debug("%s evaluated in %.3f s", self, time.perf_counter() - started)
        return evaluation

    def input_example(self) -> pd.DataFrame | None:
        """A small valid ``predict`` input, shipped with the logged model (None: no example)."""
        self.check_fitted()
        return self._input_example()

    @final
    def save(self, directory: str | Path) -> Path:
        """Write settings.json, meta.json, state.json and arrays.npz into ``directory``."""
        self.check_fitted()
        return persistence.save_estimator(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Restore a saved model; its family is read from meta.json and looked up by name."""
        estimator = persistence.load_estimator(Path(directory))
        if not isinstance(estimator, cls):
            raise TypeError(f"{directory} holds a {type(estimator).__name__}, not a {cls.__name__}")
        return estimator

    def _require(
        self,
        frame: pd.DataFrame,
        columns: tuple[str, ...],
        method: str,
        what: str,
        *,
        allow_empty: bool = False,
    ) -> None:
        where = f"{type(self).__name__}.{method}"
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"{where}: {what} must be a pandas DataFrame, got {type(frame).__name__}"
            )
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{where}: {what} lacks required column(s) {missing}; it has {list(frame.columns)}"
            )
        if frame.empty and not allow_empty:
            raise ValueError(f"{where}: {what} has no rows")
        with_nulls = [c for c in columns if frame[c].isna().any()]
        if with_nulls:
            raise ValueError(f"{where}: {what} has missing values in {with_nulls}")

    # The family's hooks.
    @abstractmethod
    def _fit(self, frame: pd.DataFrame) -> None: ...

    @abstractmethod
    def _predict(self, frame: pd.DataFrame) -> pd.DataFrame: ...

    @abstractmethod
    def _evaluate(self, frame: pd.DataFrame) -> Evaluation: ...

    @abstractmethod
    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        """What fit learned: numpy arrays (no object dtype) and small JSON-ready state."""

    @abstractmethod
    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        """Set the learned attributes back from what :meth:`_learned` returned."""

    def _input_example(self) -> pd.DataFrame | None:
        return None


__all__ = ["Column", "Estimator", "Evaluation", "NotFittedError"]


def gain_shares(booster: Any) -> dict[str, float]:
    """A LightGBM booster's total gain per feature as shares of the whole, largest first."""
    gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
    total = gains.sum()
    if total <= 0:
        return {}
    pairs = sorted(zip(booster.feature_name(), gains / total, strict=True), key=lambda p: -p[1])
    return {str(name): float(share) for name, share in pairs if share > 0}
