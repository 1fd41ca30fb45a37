"""OperationalDatabase: lazy, transactional, and truthful in `check()`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import shelfwise.ops
from shelfwise.ops import Base, JobRun, OperationalDatabase
from shelfwise.ops._database import CHECK_CONNECT_TIMEOUT_S

UNREACHABLE = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test"


def test_public_surface() -> None:
    assert sorted(shelfwise.ops.__all__) == shelfwise.ops.__all__
    for name in shelfwise.ops.__all__:
        assert hasattr(shelfwise.ops, name), name
    exported = [getattr(shelfwise.ops, name) for name in shelfwise.ops.__all__]
    tables = {obj.__tablename__ for obj in exported if hasattr(obj, "__tablename__")}
    assert tables == set(Base.metadata.tables)


def test_constructing_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "operational.db"
    database = OperationalDatabase(f"sqlite:///{path}")

    assert repr(database) == f"OperationalDatabase('sqlite:///{path}')"
    assert not path.exists()


def test_sqlite_connections_enforce_foreign_keys_and_wait_for_locks(tmp_path: Path) -> None:
    database = OperationalDatabase(f"sqlite:///{tmp_path / 'operational.db'}")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15_000
    database.dispose()


def test_a_session_commits_on_success(migrated: OperationalDatabase) -> None:
    with migrated.session() as session:
        run = JobRun(job_name="nightly_retraining")
        session.add(run)

    assert run.id is not None  # still readable after the block
    with migrated.session() as session:
        assert session.scalars(sa.select(JobRun.job_name)).all() == ["nightly_retraining"]


def test_a_session_rolls_back_on_error(migrated: OperationalDatabase) -> None:
    def start_a_run_then_fail() -> None:
        with migrated.session() as session:
            session.add(JobRun(job_name="nightly_retraining"))
            session.flush()
            raise RuntimeError("scheduler stopped")

    with pytest.raises(RuntimeError, match="scheduler stopped"):
        start_a_run_then_fail()

    with migrated.session() as session:
        assert session.scalars(sa.select(JobRun)).all() == []


def test_dispose_then_use_again(migrated: OperationalDatabase) -> None:
    migrated.dispose()
    assert migrated.current_revision() == migrated.head_revision()


def test_check_before_and_after_upgrade(database: OperationalDatabase) -> None:
    healthy, message = database.check()
    assert not healthy
    assert "run the migrations" in message

    database.upgrade()

    healthy, message = database.check()
    assert healthy
    assert message.endswith("is at head revision 0002")


def test_check_names_a_revision_this_shelfwise_does_not_know(
    migrated: OperationalDatabase,
) -> None:
    with migrated.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))

    healthy, message = migrated.check()

    assert not healthy
    assert "revision 0999, unknown to this shelfwise (head is 0002)" in message


def test_check_does_not_create_a_missing_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "operational.db"

    healthy, message = OperationalDatabase(f"sqlite:///{path}").check()

    assert not healthy
    assert "does not exist" in message
    assert not path.exists()


def test_check_reports_an_unreachable_server_quickly() -> None:
    started = time.monotonic()
    healthy, message = OperationalDatabase(UNREACHABLE).check()

    assert time.monotonic() - started < CHECK_CONNECT_TIMEOUT_S + 2
    assert not healthy
    assert message.startswith("operational database postgresql+psycopg://postgres:***@127.0.0.1:1")
    assert "is unreachable" in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_check_refuses_something_that_is_not_a_url() -> None:
    healthy, message = OperationalDatabase("operational.db").check()

    assert not healthy
    assert "not a database URL" in message
