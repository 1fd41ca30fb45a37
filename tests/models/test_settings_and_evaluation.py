"""Settings limits written as data, the Evaluation comparison, and what persistence refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from shelfwise.models import (
    Estimator,
    EstimatorSettings,
    Evaluation,
    Interval,
    Options,
    family_class,
)
from shelfwise.models.base import LearnedArrays
from shelfwise.models.settings import Constraints
from shelfwise.recommend import PopularityRecommender, PopularitySettings


@dataclass(frozen=True)
class ExampleSettings(EstimatorSettings):
    rate: float = 0.1
    depth: int = 3
    loss: str = "l2"
    lags: tuple[int, ...] = (1, 7)

    constraints: ClassVar[Constraints] = {
        "rate": (Interval(0, 1, closed="right"),),
        "depth": (Interval(1, None, integer=True), None),
        "loss": (Options(("l1", "l2")),),
        "lags": (tuple,),
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, r"ExampleSettings.rate=0: expected a number in \(0, 1\]"),
        ({"rate": 1.5}, r"ExampleSettings.rate=1.5: expected a number in \(0, 1\]"),
        ({"rate": float("nan")}, "ExampleSettings.rate=nan"),
        ({"depth": 2.5}, r"ExampleSettings.depth=2.5: expected an integer in \[1, inf\) or None"),
        ({"depth": True}, "ExampleSettings.depth=True"),
        ({"loss": "huber"}, "ExampleSettings.loss='huber': expected one of 'l1', 'l2'"),
    ],
)
def test_limits_are_checked_and_the_parameter_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExampleSettings(**kwargs)


def test_valid_settings_and_json_round_trip() -> None:
    settings = ExampleSettings(rate=1, depth=None, loss="l1", lags=(1, 2, 3))  # type: ignore[arg-type]
    restored = ExampleSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert restored == settings
    assert restored.lags == (1, 2, 3)
    with pytest.raises(ValueError, match=r"unknown settings \['learning_rate'\]"):
        ExampleSettings.from_dict({"learning_rate": 0.1})


def test_popularity_limits() -> None:
    with pytest.raises(ValueError, match=r"PopularitySettings.half_life_days=0"):
        PopularitySettings(half_life_days=0)
    with pytest.raises(ValueError, match=r"PopularitySettings.exclude_seen='yes': expected bool"):
        PopularitySettings(exclude_seen="yes")  # type: ignore[arg-type]
    assert PopularitySettings(half_life_days=3).half_life_days == 3
    with pytest.raises(TypeError, match="takes PopularitySettings"):
        PopularityRecommender(ExampleSettings())  # type: ignore[arg-type]


def _evaluation(value: float, higher: bool = True) -> Evaluation:
    return Evaluation({"ndcg@10": value, "recall@20": 0.3}, "ndcg@10", higher)


def test_better_than_respects_direction_and_relative_margin() -> None:
    assert _evaluation(0.21).better_than(_evaluation(0.20))
    assert not _evaluation(0.20).better_than(_evaluation(0.20))
    assert _evaluation(0.21).better_than(_evaluation(0.20), min_improvement=0.05)
    assert not _evaluation(0.209).better_than(_evaluation(0.20), min_improvement=0.05)
    assert _evaluation(0.9, higher=False).better_than(_evaluation(1.0, higher=False), 0.1)
    assert not _evaluation(1.1, higher=False).better_than(_evaluation(1.0, higher=False))
    assert not _evaluation(float("nan")).better_than(_evaluation(0.2))
    assert _evaluation(0.21).primary_value == 0.21


def test_evaluations_that_cannot_be_compared_are_refused() -> None:
    with pytest.raises(ValueError, match="primary metric 'mae' is not among"):
        Evaluation({"wape": 0.4}, "mae", False)
    with pytest.raises(ValueError, match="cannot compare"):
        _evaluation(0.2).better_than(_evaluation(0.2, higher=False))
    with pytest.raises(ValueError, match="min_improvement"):
        _evaluation(0.2).better_than(_evaluation(0.1), min_improvement=-1)


class ObjectArrays(Estimator[ExampleSettings]):
    """A family that (wrongly) learns an object array, to show save refuses it."""

    family = "test-object-arrays"
    settings_type = ExampleSettings
    primary_metric = "mae"
    higher_is_better = False

    def _fit(self, frame: pd.DataFrame) -> None:
        self.names_ = frame["name"].to_numpy()  # dtype object

    def _predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame

    def _evaluate(self, frame: pd.DataFrame) -> Evaluation:
        return Evaluation({"mae": 0.0}, "mae", False)

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        return {"names": self.names_}, {}

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        self.names_ = arrays["names"]


def test_object_arrays_are_refused_rather_than_pickled(tmp_path: Path) -> None:
    estimator = ObjectArrays().fit(pd.DataFrame({"name": ["a", "b"]}))
    with pytest.raises(TypeError, match="'names' has an object dtype"):
        estimator.save(tmp_path / "model")


def test_unknown_families_and_folders_are_refused(tmp_path: Path) -> None:
    assert family_class("popularity") is PopularityRecommender
    assert family_class("test-object-arrays") is ObjectArrays
    with pytest.raises(ValueError, match=r"unknown model family 'nope'; known: .*popularity"):
        family_class("nope")
    with pytest.raises(FileNotFoundError, match="not a saved shelfwise model"):
        Estimator.load(tmp_path)
    frame = pd.DataFrame(
        {"person_id": ["a"], "sku": ["x"], "occurred_at": [pd.Timestamp("2024-01-01")]}
    )
    folder = PopularityRecommender().fit(frame).save(tmp_path / "model")
    with pytest.raises(TypeError, match="holds a PopularityRecommender, not a ObjectArrays"):
        ObjectArrays.load(folder)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ValueError, match="format 99"):
        Estimator.load(folder)


def test_arrays_are_read_without_pickle(tmp_path: Path) -> None:
    np.savez(tmp_path / "arrays.npz", names=np.array(["a", None], dtype=object))
    with (
        pytest.raises(ValueError, match="allow_pickle"),
        np.load(tmp_path / "arrays.npz", allow_pickle=False) as saved,
    ):
        saved["names"]
