"""Can the tracking store be reached? Answered without importing MLflow, quickly and truthfully.

Used by ``shelfwise doctor``: each check returns ``(ok, detail)``, never raises and never
waits longer than its timeout.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

TIMEOUT_S = 2.0


def check_store(uri: str, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """Whether the MLflow store at ``uri`` answers (or, for a local one, can be created)."""
    shown = redact(uri)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    try:
        if scheme == "sqlite":
            ok, detail = _check_sqlite(uri, timeout)
        elif scheme in ("http", "https"):
            ok, detail = _check_http(uri, timeout)
        elif scheme.startswith("postgresql"):
            ok, detail = _check_database(uri, timeout)
        elif scheme == "file":
            ok, detail = _check_folder(Path(uri.removeprefix("file://")))
        else:
            ok, detail = False, "unsupported tracking URI scheme"
    except Exception as error:  # doctor reports; it must not crash on a broken backend
        ok, detail = False, f"{type(error).__name__}: {error}"
    return ok, f"{shown}: {detail}"


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(uri: str) -> Path | None:
    """The file behind a ``sqlite://`` URI (as SQLAlchemy reads it), or None for in-memory."""
    path = uri.split("://", 1)[1]
    path = path[1:] if path.startswith("/") else path
    path = path.split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _check_sqlite(uri: str, timeout: float) -> tuple[bool, str]:
    path = sqlite_path(uri)
    if path is None:
        return True, "in-memory SQLite (lost when the process ends)"
    if not path.exists():
        return _check_creatable(path)
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if "experiments" not in tables:
            return True, "SQLite file without MLflow tables yet (created on first use)"
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        (experiments,) = connection.execute("SELECT count(*) FROM experiments").fetchone()
        return True, f"MLflow store (schema {revision}, {experiments} experiment(s))"
    except sqlite3.DatabaseError as error:
        return False, f"not a usable SQLite database ({error})"
    finally:
        connection.close()


def _check_creatable(path: Path) -> tuple[bool, str]:
    """A missing local store is fine if its nearest existing folder is writable."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.is_dir() and os.access(ancestor, os.W_OK):
        return True, "does not exist yet; created on first use"
    return False, f"cannot be created: {ancestor} is not a writable folder"


def _check_folder(path: Path) -> tuple[bool, str]:
    if path.is_dir():
        writable = os.access(path, os.W_OK)
        return writable, "folder store" + ("" if writable else " (read-only)")
    return _check_creatable(path)


def _check_http(uri: str, timeout: float) -> tuple[bool, str]:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        return False, f"MLflow server answered {error.code} on /health"
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        return False, f"not reachable within {timeout:g} s ({reason})"
    return status == 200, f"MLflow server answers /health ({status})"


def _check_database(uri: str, timeout: float) -> tuple[bool, str]:
    import sqlalchemy as sa

    engine = sa.create_engine(uri, connect_args={"connect_timeout": max(1, round(timeout))})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            initialised = sa.inspect(connection).has_table("experiments")
        if not initialised:
            return True, "database answers; MLflow tables are created on first use"
        return True, "database answers, MLflow tables present"
    finally:
        engine.dispose()
