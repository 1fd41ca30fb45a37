"""One operational database per backend: every test here runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shelfwise.ops import OperationalDatabase


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
