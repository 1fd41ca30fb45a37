"""The estimator contract, held against every model family at once.

Adding a family means adding one :class:`Case` to ``CASES``: it is then checked for fit
returning self, the not-fitted error, named missing columns, settings that round-trip,
a save/load round-trip with identical answers, and artefacts without a pickle.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shelfwise.models import Estimator, Evaluation, NotFittedError, read_meta
from shelfwise.models.persistence import FILES, LINKS, TEXT, _as_bytes
from shelfwise.recommend import PopularityRecommender, PopularitySettings
from shelfwise.recommend.als import ALSRecommender, ALSSettings
from shelfwise.recommend.buy_again import BuyAgainRecommender
from shelfwise.recommend.content import ContentRecommender
from shelfwise.recommend.ease import EaseRecommender, EaseSettings
from shelfwise.recommend.item_knn import ItemKNNRecommender, ItemKNNSettings
from shelfwise.recommend.popular import PopularSettings, TrendingRecommender
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.two_stage import TwoStageRecommender

PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@dataclass(frozen=True)
class Case:
    """A family under test; ``training`` and ``held_out`` name fixtures (see conftest.py)."""

    name: str
    make: Callable[[], Estimator[Any]]
    training_fixture: str
    held_out_fixture: str
    prediction_input: Callable[[], pd.DataFrame]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def training(self) -> pd.DataFrame:
        return self.frames["training"].copy()

    def held_out(self) -> pd.DataFrame:
        return self.frames["held_out"].copy()


def _people() -> pd.DataFrame:
    return pd.DataFrame({"person_id": ["p0", "p1", "p7", "someone-new"], "k": [5, 5, 3, 5]})


def _catalogue() -> pd.DataFrame:
    skus = [f"s{i:02d}" for i in range(32)]
    return pd.DataFrame({"sku": skus, "category": [f"c{i % 4}" for i in range(32)], "brand": "b"})


def _family(name: str, make: Callable[[], Estimator[Any]]) -> Case:
    return Case(name, make, "interactions", "held_out", _people)


CASES = [
    _family("buy_again", BuyAgainRecommender),
    _family("ease", lambda: EaseRecommender(EaseSettings(l2=10.0, exclude_seen=True))),
    _family("trending", lambda: TrendingRecommender(PopularSettings(half_life_days=7.0))),
    _family("item_knn", lambda: ItemKNNRecommender(ItemKNNSettings(neighbours=10))),
    _family("als", lambda: ALSRecommender(ALSSettings(factors=4, iterations=3))),
    _family("content", lambda: ContentRecommender(catalogue=_catalogue())),
    _family(
        "recommender",
        lambda: TwoStageRecommender(
            RecommenderSettings(label_days=14.0, ranker_trees=10, ranker_leaves=7)
        ),
    ),
    Case("popularity", PopularityRecommender, "interactions", "held_out", _people),
    Case(
        "popularity-decayed-unseen",
        lambda: PopularityRecommender(PopularitySettings(half_life_days=7, exclude_seen=True)),
        "interactions",
        "held_out",
        _people,
    ),
]


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    frames = {
        "training": request.getfixturevalue(chosen.training_fixture),
        "held_out": request.getfixturevalue(chosen.held_out_fixture),
    }
    return replace(chosen, frames=frames)


def test_fit_returns_self_and_learns_underscored_attributes(case: Case) -> None:
    estimator = case.make()
    assert not estimator.is_fitted
    assert estimator.fit(case.training()) is estimator
    assert estimator.is_fitted
    assert estimator.training_data_["rows"] == len(case.training())
    assert estimator.fit_seconds_ >= 0
    learned = [name for name in vars(estimator) if name.endswith("_")]
    assert "fitted_at_" in learned


def test_an_unfitted_model_refuses_to_answer(case: Case, tmp_path: Path) -> None:
    estimator = case.make()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        estimator.predict(case.prediction_input())
    with pytest.raises(NotFittedError):
        estimator.evaluate(case.held_out())
    with pytest.raises(NotFittedError):
        estimator.save(tmp_path / "model")


def test_missing_columns_are_named(case: Case) -> None:
    estimator = case.make()
    column = estimator.training_columns[-1]
    with pytest.raises(ValueError, match=rf"lacks required column\(s\) \['{column}'\]"):
        estimator.fit(case.training().drop(columns=column))
    with_gap = case.training()
    with_gap.loc[3, column] = None
    with pytest.raises(ValueError, match=f"missing values in \\['{column}'\\]"):
        estimator.fit(with_gap)
    with pytest.raises(ValueError, match="has no rows"):
        estimator.fit(case.training().iloc[:0])
    fitted = case.make().fit(case.training())
    with pytest.raises(ValueError, match="lacks required column"):
        fitted.predict(pd.DataFrame({"who": ["p1"]}))


def test_settings_round_trip(case: Case) -> None:
    settings = case.make().settings
    assert type(settings).from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_evaluate_names_its_primary_metric(case: Case) -> None:
    estimator = case.make().fit(case.training())
    evaluation = estimator.evaluate(case.held_out())
    assert isinstance(evaluation, Evaluation)
    assert evaluation.primary_metric == estimator.primary_metric
    assert evaluation.higher_is_better == estimator.higher_is_better
    assert all(np.isfinite(value) for value in evaluation.metrics.values())


def test_save_and_load_give_an_identical_model(case: Case, tmp_path: Path) -> None:
    estimator = case.make().fit(case.training())
    folder = estimator.save(tmp_path / "model")
    loaded: Estimator[Any] = Estimator.load(folder)
    assert type(loaded) is type(estimator)
    assert loaded.settings == estimator.settings
    assert loaded.fitted_at_ == estimator.fitted_at_
    assert loaded.training_data_ == estimator.training_data_
    pd.testing.assert_frame_equal(
        loaded.predict(case.prediction_input()), estimator.predict(case.prediction_input())
    )
    assert loaded.evaluate(case.held_out()) == estimator.evaluate(case.held_out())
    assert read_meta(folder)["family"] == estimator.family


def test_saved_artefacts_hold_no_pickle(case: Case, tmp_path: Path) -> None:
    folder = case.make().fit(case.training()).save(tmp_path / "model")
    assert set(FILES) <= {p.name for p in folder.iterdir()} <= {*FILES, LINKS, TEXT}
    for path in folder.iterdir():
        assert not path.read_bytes().startswith(PICKLE_MAGIC), path
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        assert all(not arrays[name].dtype.hasobject for name in arrays.files)


def test_text_is_stored_as_ascii_bytes_and_loads_as_it_was(case: Case, tmp_path: Path) -> None:
    estimator = case.make().fit(case.training())
    arrays, _ = estimator._learned()
    folder = estimator.save(tmp_path / "model")
    with np.load(folder / "arrays.npz", allow_pickle=False) as stored:
        kinds = {name: stored[name].dtype.kind for name in stored.files}
    assert "U" not in kinds.values()  # the fixtures' text is ASCII
    loaded, _ = Estimator.load(folder)._learned()
    for name, array in arrays.items():
        if array.dtype.kind == "U" and array.size < 10_000:  # names, codes: as they were
            assert loaded[name].dtype == array.dtype, name
            np.testing.assert_array_equal(loaded[name], array)


def test_only_ascii_text_becomes_bytes() -> None:
    skus = np.array(["1001", "27", ""], dtype="U6")
    names = np.array(["crème", "tea"])
    out, text = _as_bytes({"skus": skus, "names": names, "codes": np.arange(3)})
    assert text == ["skus"]
    assert out["skus"].dtype == np.dtype("S6")
    assert out["names"] is names
    assert out["skus"].astype("U6").tolist() == skus.tolist()


def test_a_fresh_process_loads_the_family_by_name(case: Case, tmp_path: Path) -> None:
    estimator = case.make().fit(case.training())
    folder = estimator.save(tmp_path / "model")
    script = (
        "import sys; from shelfwise.models import Estimator; "
        "print(type(Estimator.load(sys.argv[1])).__name__)"
    )
    found = subprocess.run(
        [sys.executable, "-c", script, str(folder)], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == type(estimator).__name__
