"""The second stage: a LightGBM learning-to-rank model over each person's candidates.

Trained with ``lambdarank`` (NDCG truncated at the depth that is served) on groups of one
person's candidates at one cut-off, labelled 1 where the person bought the sku in the days
after the cut-off. Numeric features go in as they are (NaN is LightGBM's "missing");
categorical ones (text columns of the feature store) through
:class:`~shelfwise.features.encoding.CategoricalEncoder`. The fitted booster round-trips as
LightGBM's own text format, kept in a numpy string array, never a pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.features.encoding import CategoricalEncoder
from shelfwise.models.settings import Constraints, EstimatorSettings, Interval, Options

# What the ranker scores: a frame, or its columns by name (a request's, without the frame).
Features = pd.DataFrame | Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class RankerSettings(EstimatorSettings):
    """LightGBM's parameters that matter here; the rest keep LightGBM's defaults."""

    objective: str = "lambdarank"
    trees: int = 400
    learning_rate: float = 0.03
    leaves: int = 15
    min_child_samples: int = 50
    subsample: float = 0.8
    colsample: float = 0.8
    truncation: int = 20
    max_bin: int = 63
    seed: int = 0
    threads: int = 2

    constraints: ClassVar[Constraints] = {
        "objective": (Options(("lambdarank", "binary")),),
        "trees": (Interval(1, None, integer=True),),
        "learning_rate": (Interval(0, 1, closed="right"),),
        "leaves": (Interval(2, None, integer=True),),
        "min_child_samples": (Interval(1, None, integer=True),),
        "subsample": (Interval(0, 1, closed="right"),),
        "colsample": (Interval(0, 1, closed="right"),),
        "truncation": (Interval(1, None, integer=True),),
        "max_bin": (Interval(3, 255, integer=True),),
        "seed": (int,),
        "threads": (Interval(1, None, integer=True),),
    }


class Ranker:
    """Fits on labelled candidate groups; scores any frame holding the same feature columns."""

    def __init__(self, settings: RankerSettings | None = None) -> None:
        self.settings = settings or RankerSettings()
        self.booster: lgb.Booster | None = None
        self.numeric: list[str] = []
        self.encoder: CategoricalEncoder | None = None

    @property
    def feature_names(self) -> list[str]:
        if self.booster is None:
            return []
        return list(self.booster.feature_name())

    def fit(
        self,
        frame: pd.DataFrame,
        numeric: Sequence[str],
        categorical: Sequence[str] = (),
        *,
        label: str = "label",
        group: str = "group",
    ) -> Ranker:
        """``frame`` sorted or not; rows of one ``group`` are ranked against each other."""
        if frame.empty:
            raise ValueError("the ranker has no training rows (no candidates were labelled)")
        if frame[label].sum() == 0:
            raise ValueError("the ranker's training rows hold no positive label")
        frame = frame.sort_values(group, kind="stable")
        self.numeric = list(numeric)
        self.encoder = None
        if categorical:
            self.encoder = CategoricalEncoder().fit(frame, list(categorical))
        matrix = self.matrix(frame)
        sizes = frame.groupby(group, sort=False).size().to_numpy()
        s = self.settings
        params: dict[str, Any] = {
            "objective": s.objective,
            "learning_rate": s.learning_rate,
            "num_leaves": s.leaves,
            "min_child_samples": s.min_child_samples,
            "bagging_fraction": s.subsample,
            "bagging_freq": 1,
            "feature_fraction": s.colsample,
            "seed": s.seed,
            "max_bin": s.max_bin,
            "deterministic": True,
            "num_threads": s.threads,
            "verbose": -1,
        }
        if s.objective == "lambdarank":
            params["lambdarank_truncation_level"] = s.truncation
            params["eval_at"] = [10]
        dataset = lgb.Dataset(
            matrix,
            label=frame[label].to_numpy(np.float32),
            feature_name=self.matrix_columns,
            group=sizes if s.objective == "lambdarank" else None,
            free_raw_data=True,
        )
        self.booster = lgb.train(params, dataset, num_boost_round=s.trees)
        return self

    def predict(self, features: Features) -> NDArray[np.float64]:
        """Scores of the rows of ``features`` (a frame, or equal-length columns by name)."""
        if self.booster is None:
            raise RuntimeError("the ranker is not fitted")
        values = self.matrix(features)
        if not len(values):
            return np.empty(0)
        scores: NDArray[np.float64] = np.asarray(
            self.booster.predict(values, num_threads=self.settings.threads)
        )
        return scores

    def importance(self) -> dict[str, float]:
        """Total gain per feature, largest first."""
        if self.booster is None:
            return {}
        gains = self.booster.feature_importance(importance_type="gain")
        pairs = sorted(zip(self.feature_names, gains, strict=True), key=lambda p: -p[1])
        return {name: float(gain) for name, gain in pairs}

    @property
    def matrix_columns(self) -> list[str]:
        """The names of :meth:`matrix`'s columns: the numeric features, then the encoded."""
        plans = {} if self.encoder is None else self.encoder.plans_
        return [*self.numeric, *(out for plan in plans.values() for out in plan.output_columns)]

    def matrix(self, features: Features) -> NDArray[np.float32]:
        """What the booster reads of ``features``: the numeric features, then the encoded
        ones, as one float32 array (LightGBM's checks of a DataFrame cost more than the trees
        on a request's few hundred rows)."""
        missing = [c for c in self.numeric if c not in features]
        if missing:
            raise ValueError(f"ranker features missing from the frame: {missing[:10]}")
        if self.encoder is not None:
            fitted = pd.DataFrame({name: features[name] for name in self.encoder.plans_})
            encoded = self.encoder.transform(fitted).to_numpy(np.float32)
        else:
            encoded = np.empty((len(features[self.numeric[0]]), 0), dtype=np.float32)
        out = np.empty((len(encoded), len(self.numeric) + encoded.shape[1]), dtype=np.float32)
        for at, name in enumerate(self.numeric):
            column = features[name]
            if isinstance(column, pd.Series):  # nullable types too: NA becomes NaN
                column = column.to_numpy(np.float32, na_value=np.nan)
            out[:, at] = column
        out[:, len(self.numeric) :] = encoded
        return out

    # Persistence: the booster as LightGBM text, the rest as JSON.
    def to_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        if self.booster is None:
            raise RuntimeError("the ranker is not fitted")
        arrays = {"ranker_model": np.array([self.booster.model_to_string()])}
        state = {
            "ranker_settings": self.settings.to_dict(),
            "ranker_numeric": self.numeric,
            "ranker_encoder": None if self.encoder is None else self.encoder.to_dict(),
        }
        return arrays, state

    @classmethod
    def from_state(cls, arrays: dict[str, NDArray[Any]], state: dict[str, Any]) -> Ranker:
        ranker = cls(RankerSettings.from_dict(state["ranker_settings"]))
        ranker.booster = lgb.Booster(model_str=str(arrays["ranker_model"][0]))
        ranker.numeric = list(state["ranker_numeric"])
        encoder = state.get("ranker_encoder")
        ranker.encoder = None if encoder is None else CategoricalEncoder.from_dict(encoder)
        return ranker
