"""One job at a time per model, across processes: the lock a job holds while it runs.

On PostgreSQL it is a session-level advisory lock (``pg_try_advisory_lock``) taken on a
connection of its own, outside any transaction, for the job's whole run: the server lets it go
on ``pg_advisory_unlock`` or when the connection dies with its process. On SQLite, the embedded
default on one machine, it is an OS lock (``flock``) on a file beside the database, which the
kernel lets go when the file is closed or its process dies. Either way a crashed job leaves no
lock behind, and whoever takes the lock next may trust that a run still marked ``running`` has
lost its process (:mod:`shelfwise.lifecycle.jobs` relies on exactly that).

Taking the lock never waits: a busy model is refused at once, so that a weekly retraining and a
retraining started by hand do not run one after the other on the same data.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from shelfwise.ops import OperationalDatabase


class ModelLock:
    """The job lock of one model: :meth:`acquire` without waiting, :meth:`release` when done.

    Two threads of one process conflict as two processes do: each acquisition has its own
    connection or its own open file.
    """

    def __init__(self, operational: OperationalDatabase, tenant: str, model: str) -> None:
        self.operational, self.tenant, self.model = operational, tenant, model
        self._connection: Connection | None = None
        self._file: int | None = None

    def __repr__(self) -> str:
        return f"ModelLock({self.tenant!r}, {self.model!r})"

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def acquire(self) -> bool:
        """Take the lock; False when another holds it."""
        if self.held:
            raise RuntimeError(f"{self!r} is already held here")
        if self.operational.engine.dialect.name == "postgresql":
            return self._acquire_advisory()
        return self._acquire_file()

    def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            except sa.exc.SQLAlchemyError:
                # Not back to the pool with the lock still on it: closed, the server lets go.
                connection.invalidate()
            finally:
                connection.close()
        if self._file is not None:
            import fcntl

            descriptor, self._file = self._file, None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
            finally:
                os.close(descriptor)

    @property
    def key(self) -> int:
        """The advisory lock's key: apart from the registry's (``registry:``) by its prefix."""
        digest = hashlib.sha256(f"job:{self.tenant}:{self.model}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    @property
    def path(self) -> Path:
        """The lock file: in a folder beside the SQLite database, so every workspace that
        shares the database shares its locks."""
        database = make_url(self.operational.url).database
        if database in (None, "", ":memory:"):
            raise ValueError(
                "an in-memory SQLite database cannot be shared between processes; "
                "jobs need a database file or PostgreSQL"
            )
        readable = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{self.tenant}.{self.model}")
        digest = hashlib.sha256(f"{self.tenant}:{self.model}".encode()).hexdigest()[:8]
        return Path(f"{database}.locks") / f"{readable}-{digest}.lock"

    def _acquire_advisory(self) -> bool:
        # AUTOCOMMIT: a job runs for minutes, and must not hold a transaction open meanwhile.
        connection = self.operational.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        )
        try:
            # A process that dies frees its lock at once; a machine that dies is noticed by
            # the server's keepalives, here within a minute rather than the system's hours.
            connection.execute(
                sa.text(
                    "SELECT set_config('tcp_keepalives_idle', :idle, false), "
                    "set_config('tcp_keepalives_interval', :interval, false), "
                    "set_config('tcp_keepalives_count', :count, false)"
                ),
                {"idle": "30", "interval": "10", "count": "3"},
            )
            taken = connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar_one()
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def _acquire_file(self) -> bool:
        import fcntl  # POSIX: the embedded default's lock is for one Linux or macOS machine

        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file is never removed: removing it would let two processes lock two files.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        except BaseException:
            os.close(descriptor)
            raise
        self._file = descriptor
        return True
