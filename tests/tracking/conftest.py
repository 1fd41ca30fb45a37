"""Trackers on fresh SQLite stores, copied from one migrated at the start of the session.

Creating MLflow's schema takes seconds; copying the empty, migrated file takes milliseconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from shelfwise.settings import Settings
from shelfwise.tracking import Tracker

TrackerFactory = Callable[[Settings], Tracker]


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    Tracker(f"sqlite:///{path}").ensure_store()
    return path


@pytest.fixture
def make_tracker(empty_store: Path) -> TrackerFactory:
    def make(settings: Settings) -> Tracker:
        settings.workspace.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(empty_store, settings.workspace / "mlflow.db")
        return Tracker.from_settings(settings)

    return make


@pytest.fixture
def tracker(settings: Settings, make_tracker: TrackerFactory) -> Tracker:
    return make_tracker(settings)
