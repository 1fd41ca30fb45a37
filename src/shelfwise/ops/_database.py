"""The operational database: one URL, a lazily made engine, sessions and migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Separate processes (the API, the scheduler) write to one SQLite file; waiting this long for
# a lock beats failing a request with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000
# A server that does not answer is reported by `shelfwise doctor`, not waited on.
CHECK_CONNECT_TIMEOUT_S = 3
CONNECT_TIMEOUT_S = 10


class OperationalDatabase:
    """The lifecycle's own tables (policies, history, alerts, experiments, audit).

    SQLite by default, PostgreSQL by URL. Nothing connects until :attr:`engine` is first
    used, so constructing one is free and safe at import or configuration time::

        database = OperationalDatabase("sqlite:///operational.db")
        database.upgrade()
        with database.session() as session:
            session.add(JobRun(job_name="drift_sweep", model_name="store_demand"))
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        # The first requests of a threaded server may race to make the engine.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OperationalDatabase({self._display_url()!r})"

    @property
    def engine(self) -> Engine:
        return self._open()[0]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Objects stay readable after the block, since nothing is expired on commit.
        """
        _, sessions = self._open()
        with sessions() as session, session.begin():
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to ``revision``; a database already there is left as it is."""
        with self.engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                # pysqlite opens transactions only for DML, so each CREATE would commit alone
                # and a failed migration would leave half a schema behind.
                connection.exec_driver_sql("BEGIN")
            command.upgrade(self._alembic_config(connection), revision)

    def current_revision(self) -> str | None:
        """The revision the database is at, or None before the first migration."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str:
        """The newest revision shipped with this version of shelfwise."""
        head = self._scripts().get_current_head()
        if head is None:
            raise RuntimeError(f"no migrations found in {MIGRATIONS}")
        return head

    def check(self) -> tuple[bool, str]:
        """Whether the database is reachable and at head, with a one-line reason; never raises."""
        where = f"operational database {self._display_url()}"
        try:
            is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        except sa.exc.ArgumentError as error:
            return False, f"{where}: not a database URL ({error})"
        database_file = _sqlite_file(self.url)
        if database_file is not None and not database_file.exists():
            # Connecting would create an empty file, hiding a mistyped path.
            return False, f"{where}: the file does not exist; run the migrations"
        probe: Engine | None = None
        try:
            # A probe of its own for a server, so that a dead one is given up on in seconds.
            probe = (
                self.engine
                if is_sqlite
                else _create_engine(self.url, connect_timeout=CHECK_CONNECT_TIMEOUT_S, pooled=False)
            )
            with probe.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
        except sa.exc.SQLAlchemyError as error:
            return False, f"{where} is unreachable: {_first_line(error)}"
        finally:
            if probe is not None and probe is not self._engine:
                probe.dispose()
        head = self.head_revision()
        if current == head:
            return True, f"{where} is at head revision {head}"
        if current is None:
            return False, f"{where} has no tables yet (head is {head}); run the migrations"
        if current not in {script.revision for script in self._scripts().walk_revisions()}:
            return False, (
                f"{where} is at revision {current}, unknown to this shelfwise (head is {head}); "
                "upgrade shelfwise"
            )
        return False, f"{where} is at revision {current}, behind head {head}; run the migrations"

    def dispose(self) -> None:
        """Close pooled connections; the engine is made again on next use."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
            self._sessions = None

    def _open(self) -> tuple[Engine, sessionmaker[Session]]:
        with self._lock:
            if self._engine is None or self._sessions is None:
                self._engine = _create_engine(self.url, connect_timeout=CONNECT_TIMEOUT_S)
                self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            return self._engine, self._sessions

    def _alembic_config(self, connection: Connection) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        # env.py runs on this connection, so the SQLite pragmas and the outer transaction hold.
        config.attributes["connection"] = connection
        return config

    def _scripts(self) -> ScriptDirectory:
        return ScriptDirectory(str(MIGRATIONS))

    def _display_url(self) -> str:
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return self.url


def _create_engine(url: str, *, connect_timeout: int, pooled: bool = True) -> Engine:
    options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    if make_url(url).get_backend_name() == "sqlite":
        engine = sa.create_engine(url, **options)
        sa.event.listen(engine, "connect", _configure_sqlite)
        return engine
    return sa.create_engine(
        url,
        # Connections in the pool die with a server restart; test them before use.
        pool_pre_ping=pooled,
        connect_args={"connect_timeout": connect_timeout},
        **options,
    )


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Per connection, because SQLite forgets both settings when a connection closes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other backends and in-memory databases."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _first_line(error: sa.exc.SQLAlchemyError) -> str:
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__
