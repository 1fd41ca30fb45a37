"""Fixtures shared by every test tier.

Service tests never skip: when PostgreSQL or Redis cannot be reached the fixture fails with the
URL it tried, so a CI run without its services fails loudly (`.ci/run` starts them first).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.ops import OperationalDatabase
from shelfwise.settings import Settings
from shelfwise.simulate.shop import SimulatedShop, load_shop, simulate_shop
from shelfwise.tracking import Tracker
from shelfwise.workspace import Workspace

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

POSTGRES_URL = os.environ.get(
    "SHELFWISE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SHELFWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DATASETS = Path(
    os.environ.get(
        "SHELFWISE_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults in a fresh workspace."""
    return Settings(workspace=tmp_path / "workspace")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"sw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {error.orig}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL on a test database, flushed before and after."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {error}")
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """../shared/datasets (or SHELFWISE_DATASETS); data tests fail clearly when it is missing."""
    if not DATASETS.is_dir():
        pytest.fail(f"benchmark datasets not found at {DATASETS}; set SHELFWISE_DATASETS")
    return DATASETS


# A small simulated shop, loaded once per module (the feature store and recommender tests).
@pytest.fixture(scope="module")
def shop() -> SimulatedShop:
    return simulate_shop(seed=0)


@pytest.fixture(scope="module")
def shop_workspace(
    shop: SimulatedShop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    folder: Path = tmp_path_factory.mktemp("shop")
    workspace = Workspace(Settings(workspace=folder / "workspace"))
    load_shop(workspace, shop)
    yield workspace
    workspace.close()


# A planted purchase log for the recommender's and the service's tests.
PLANTED_T0 = pd.Timestamp("2024-01-01", tz="UTC")


@cache
def planted(seed: int = 0) -> pd.DataFrame:
    """60 persons in 6 taste groups; each buys its group's 4 staples weekly and a random extra."""
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(60):
        group = person % 6
        for week in range(16):
            day = week * 7 + int(rng.integers(0, 3))
            for staple in range(4):
                if rng.random() < 0.7:
                    rows.append((f"p{person:02d}", f"s{group * 4 + staple:02d}", day))
            rows.append((f"p{person:02d}", f"x{int(rng.integers(0, 30)):02d}", day))
    frame = pd.DataFrame(rows, columns=["person_id", "sku", "day"])
    frame["occurred_at"] = PLANTED_T0 + pd.to_timedelta(frame.pop("day"), unit="D")
    frame["order_id"] = frame["person_id"] + "-" + frame["occurred_at"].dt.strftime("%Y%m%d")
    return frame


@pytest.fixture(scope="session")
def planted_log() -> Callable[[int], pd.DataFrame]:
    """``planted_log(seed)``: a copy of the planted log drawn with ``seed``."""
    return lambda seed: planted(seed).copy()


# One operational database per backend (SQLite, and PostgreSQL as a service test).
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OperationalDatabase]:
    """An empty operational database, not yet migrated."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'operational.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = OperationalDatabase(url)
    try:
        yield database
    finally:
        # Before postgres_url drops the schema, so no pooled connection outlives it.
        database.dispose()


@pytest.fixture
def migrated(database: OperationalDatabase) -> OperationalDatabase:
    """The same database, upgraded to head."""
    database.upgrade()
    return database


# Trackers on fresh SQLite stores, copied from one migrated at the start of the session:
# creating MLflow's schema takes seconds, copying the empty, migrated file milliseconds.
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
