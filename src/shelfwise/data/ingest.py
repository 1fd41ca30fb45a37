"""Ingest: every source row is either accepted into its contract table or quarantined.

``rows_in == accepted + quarantined`` always. Accepted rows are ``inserted`` (new keys),
``updated`` (a dimension row that changed) or ``unchanged`` (already stored as they are), so
ingesting the same file twice changes nothing the second time. The whole ingest is one
transaction: a failure leaves the store as it was.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shelfwise.data.contract import get_table
from shelfwise.data.sources import ROW_COLUMN, Source, read_source
from shelfwise.data.store import AnalyticStore
from shelfwise.data.validation import ValidationPlan, plan_validation, quote

EXAMPLES_PER_REASON = 3


@dataclass
class IngestReport:
    """What happened to one source: counts, reasons, schema drift, and where it went."""

    table: str
    source: str
    rows_in: int
    accepted: int
    quarantined: int
    inserted: int
    updated: int
    unchanged: int
    reasons: dict[str, int]
    examples: dict[str, list[str]]
    drift: list[dict[str, Any]]
    ingest_id: str
    seconds: float
    extras: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _source_types(store: AnalyticStore, source: Source) -> dict[str, str]:
    described = store.connection.execute(f"DESCRIBE {source.sql}").fetchall()
    return {str(row[0]): str(row[1]) for row in described if row[0] != ROW_COLUMN}


def _drift_since_last(
    store: AnalyticStore, table: str, source: Source, types: dict[str, str]
) -> list[dict[str, Any]]:
    """Columns whose type changed, appeared or vanished since the last ingest of this format."""
    rows = store.execute(
        "SELECT source_schema FROM _ingest_log WHERE table_name = ? AND file_format = ? "
        "ORDER BY finished_at DESC LIMIT 1",
        [table, source.file_format],
    )
    if not rows:
        return []
    before: dict[str, str] = json.loads(rows[0][0])
    drift: list[dict[str, Any]] = []
    for column, kind in types.items():
        if column not in before:
            drift.append({"kind": "column_added_since_last_ingest", "column": column})
        elif before[column] != kind:
            drift.append(
                {"kind": "type_changed", "column": column, "before": before[column], "now": kind}
            )
    drift += [
        {"kind": "column_removed_since_last_ingest", "column": column}
        for column in before
        if column not in types
    ]
    return drift


def ingest(
    store: AnalyticStore,
    table_name: str,
    data: Any,
    *,
    column_map: dict[str, str] | None = None,
    name: str | None = None,
) -> IngestReport:
    """Validate ``data`` against the contract table ``table_name`` and store it.

    ``data`` is a file path (CSV, Parquet, JSON lines), a pandas or polars frame, an Arrow
    table or a :class:`~shelfwise.data.sources.Source` (see ``from_sql``). ``column_map``
    renames source columns to contract columns. Raises
    :class:`~shelfwise.data.validation.ContractError` when the source lacks a required column.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC).replace(tzinfo=None)
    table = get_table(table_name)
    source = read_source(data, name=name)
    store.create_tables()
    ingest_id = uuid.uuid4().hex
    with store._lock:
        connection = store.connection
        for view, frame in source.frames.items():
            connection.register(view, frame)
        try:
            types = _source_types(store, source)
            plan = plan_validation(
                table,
                source.sql,
                types,
                column_map=column_map,
                source_name=source.name,
                typed_source=source.file_format not in ("csv",),
                target_empty=store.count(table.name) == 0,
            )
            drift = plan.drift + _drift_since_last(store, table.name, source, types)
            checked = f"_checked_{ingest_id}"
            connection.execute(f"CREATE TEMP TABLE {checked} AS {plan.sql}")
            try:
                counts, reasons, examples = _summarise(store, checked)
                columns = ", ".join(quote(c) for c in table.column_names)
                connection.execute("BEGIN TRANSACTION")
                try:
                    _store_rows(connection, table.name, table.key, columns, checked, ingest_id)
                    _store_quarantine(connection, table.name, checked, source, ingest_id, plan)
                    connection.execute(
                        "INSERT INTO _ingest_log VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            ingest_id,
                            table.name,
                            source.name,
                            source.file_format,
                            source.fingerprint,
                            counts["rows_in"],
                            counts["accepted"],
                            counts["new"],
                            counts["updated"],
                            counts["unchanged"],
                            counts["quarantined"],
                            json.dumps(reasons),
                            json.dumps(drift, default=str),
                            json.dumps(types),
                            started_at,
                            datetime.now(UTC).replace(tzinfo=None),
                        ],
                    )
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            finally:
                connection.execute(f"DROP TABLE IF EXISTS {checked}")
        finally:
            for view in source.frames:
                connection.unregister(view)
    return IngestReport(
        table=table.name,
        source=source.name,
        rows_in=counts["rows_in"],
        accepted=counts["accepted"],
        quarantined=counts["quarantined"],
        inserted=counts["new"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        reasons=reasons,
        examples=examples,
        drift=drift,
        ingest_id=ingest_id,
        seconds=round(time.perf_counter() - started, 3),
        extras=plan.extras,
    )


def _summarise(
    store: AnalyticStore, checked: str
) -> tuple[dict[str, int], dict[str, int], dict[str, list[str]]]:
    """Counts by status, quarantine reasons with counts, and a few example messages each."""
    status = dict(store.execute(f"SELECT _status, count(*) FROM {checked} GROUP BY 1"))
    counts = {key: int(status.get(key, 0)) for key in ("new", "updated", "unchanged")}
    counts["quarantined"] = int(status.get("quarantined", 0))
    counts["accepted"] = counts["new"] + counts["updated"] + counts["unchanged"]
    counts["rows_in"] = counts["accepted"] + counts["quarantined"]
    rows = store.execute(
        f"SELECT issue.reason, count(*), "
        f"list('row ' || {ROW_COLUMN} || ': ' || issue.message ORDER BY {ROW_COLUMN})"
        f"[1:{EXAMPLES_PER_REASON}] "
        f"FROM (SELECT {ROW_COLUMN}, unnest(_issues) AS issue FROM {checked} "
        f"WHERE _status = 'quarantined') GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    reasons = {str(reason): int(n) for reason, n, _ in rows}
    examples = {str(reason): list(sample) for reason, _, sample in rows}
    return counts, reasons, examples


def _store_rows(
    connection: Any, table: str, key: tuple[str, ...], columns: str, checked: str, ingest_id: str
) -> None:
    match = " AND ".join(
        f"{quote(table)}.{quote(k)} IS NOT DISTINCT FROM c.{quote(k)}" for k in key
    )
    connection.execute(
        f"DELETE FROM {quote(table)} WHERE EXISTS "
        f"(SELECT 1 FROM {checked} AS c WHERE c._status = 'updated' AND {match})"
    )
    connection.execute(
        f"INSERT INTO {quote(table)} ({columns}, _extras, _ingest_id) "
        f"SELECT {columns}, _extras, ? FROM {checked} WHERE _status IN ('new', 'updated')",
        [ingest_id],
    )


def _store_quarantine(
    connection: Any,
    table: str,
    checked: str,
    source: Source,
    ingest_id: str,
    plan: ValidationPlan,
) -> None:
    # The quarantine holds the latest verdict on each source: re-ingesting a file replaces
    # its earlier quarantine (rows that now pass, because their skus arrived, leave it).
    connection.execute(
        "DELETE FROM _quarantine WHERE table_name = ? AND fingerprint = ?",
        [table, source.fingerprint],
    )
    connection.execute(
        f"INSERT INTO _quarantine SELECT ?, ?, ?, ?, c.{ROW_COLUMN}, "
        "list_transform(c._issues, lambda x: x.reason), "
        "list_transform(c._issues, lambda x: x.message), raw.raw, now()::TIMESTAMP "
        f"FROM {checked} AS c JOIN ({plan.raw_sql(checked)}) AS raw USING ({ROW_COLUMN}) "
        f"ORDER BY c.{ROW_COLUMN}",
        [ingest_id, table, source.name, source.fingerprint],
    )
