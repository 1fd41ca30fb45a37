"""The analytic store: contract tables, the quarantine and the ingest log in one DuckDB file.

Every contract table gets two bookkeeping columns: ``_extras`` (source columns the contract does
not know, kept as JSON so that nothing is lost) and ``_ingest_id`` (which ingest wrote the row,
for lineage). ``_quarantine`` keeps each refused row as it was written, with its reasons and its
place in the source; ``_ingest_log`` keeps one line per ingest with its counts and drift.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from shelfwise.data.contract import TABLES, Table
from shelfwise.data.validation import quote
from shelfwise.settings import duckdb_path

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS _quarantine (
    ingest_id VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    source_row BIGINT NOT NULL,
    reasons VARCHAR[] NOT NULL,
    messages VARCHAR[] NOT NULL,
    raw JSON,
    quarantined_at TIMESTAMP NOT NULL
)"""

INGEST_LOG_DDL = """
CREATE TABLE IF NOT EXISTS _ingest_log (
    ingest_id VARCHAR PRIMARY KEY,
    table_name VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    file_format VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    rows_in BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    reasons JSON NOT NULL,
    drift JSON NOT NULL,
    source_schema JSON NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL
)"""


def table_ddl(table: Table) -> str:
    columns = [f"{quote(c.name)} {c.dtype.value}" for c in table.columns]
    columns += ["_extras JSON", "_ingest_id VARCHAR"]
    return f"CREATE TABLE IF NOT EXISTS {quote(table.name)} ({', '.join(columns)})"


class AnalyticStore:
    """A DuckDB database holding the contract tables (``duckdb:///path`` or ``:memory:``).

    The connection is opened on first use; DuckDB allows one writing process per file, so a
    second process gets a clear error naming the file rather than a silent wait. ``read_only``:
    any number of processes may read the file together (none writing); temporary tables and
    views still work, and :meth:`create_tables` leaves the file as it is.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.path = duckdb_path(url)
        self.read_only = read_only and self.path != ":memory:"
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()

    @property
    def exists(self) -> bool:
        """Is there a store to open (an in-memory one always is)? Opening one makes it."""
        return self.path == ":memory:" or Path(self.path).is_file()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            if self.path != ":memory:" and not self.read_only:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                connection = duckdb.connect(self.path, read_only=self.read_only)
            except duckdb.IOException as error:
                raise RuntimeError(
                    f"cannot open the analytic store {self.path}"
                    f"{' read-only' if self.read_only else ''}: {error}. Is another "
                    "shelfwise process writing to it? (To read it beside a running "
                    "`shelfwise serve`, set SHELFWISE_ANALYTIC_READ_ONLY=true.)"
                ) from error
            connection.execute("SET TimeZone = 'UTC'")
            self._connection = connection
        return self._connection

    def create_tables(self) -> None:
        """Create every contract table and the bookkeeping tables if they do not exist (a
        read-only store is left as it is: a missing table fails where it is read)."""
        if self.read_only:
            return
        with self._lock:
            for table in TABLES.values():
                self.connection.execute(table_ddl(table))
            self.connection.execute(QUARANTINE_DDL)
            self.connection.execute(INGEST_LOG_DDL)

    def execute(self, sql: str, parameters: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.connection.execute(sql, parameters or []).fetchall()

    def frame(self, sql: str, parameters: list[Any] | None = None) -> pd.DataFrame:
        with self._lock:
            return self.connection.execute(sql, parameters or []).df()

    def count(self, table: str) -> int:
        rows = self.execute(f"SELECT count(*) FROM {quote(table)}")
        return int(rows[0][0])

    def counts(self) -> dict[str, int]:
        """Accepted rows per contract table."""
        return {name: self.count(name) for name in TABLES}

    def quarantine(self, table: str | None = None, limit: int = 100) -> pd.DataFrame:
        """Quarantined rows, newest first, with their reasons and place in the source."""
        where = "WHERE table_name = ?" if table else ""
        params: list[Any] = [table] if table else []
        return self.frame(
            "SELECT table_name, source, source_row, reasons, messages, raw, quarantined_at "
            f"FROM _quarantine {where} ORDER BY quarantined_at DESC, source_row LIMIT {int(limit)}",
            params,
        )

    def quarantine_summary(self) -> pd.DataFrame:
        """Quarantined rows per table and reason."""
        return self.frame(
            "SELECT table_name, reason, count(*) AS rows FROM "
            "(SELECT table_name, unnest(reasons) AS reason FROM _quarantine) "
            "GROUP BY ALL ORDER BY table_name, rows DESC"
        )

    def check(self) -> tuple[bool, str]:
        """Can the store be opened and read? A one-line truthful answer for `doctor`."""
        try:
            if not self.exists:
                return True, f"{self.path} does not exist yet (created by `shelfwise init`)"
            tables = self.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                f"({', '.join(repr(name) for name in TABLES)})"
            )[0][0]
            return True, f"{self.path}: {tables} of {len(TABLES)} contract tables"
        except (duckdb.Error, RuntimeError) as error:
            return False, f"{self.path}: {error}"

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
