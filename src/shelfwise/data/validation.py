"""The contract as SQL: one query splits a source into accepted and quarantined rows.

For a table spec and a source's column types, :func:`plan_validation` writes a DuckDB query
that yields, for each source row, the typed contract columns, the list of issues found (each a
``reason`` for counting and a ``message`` with the offending value) and a status: ``new``,
``updated`` or ``unchanged`` for accepted rows, ``quarantined`` for the rest. Doing this in SQL
keeps a 20-million-row promotion file to seconds, and the same statements will run on Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shelfwise.data.contract import Column, DType, Table
from shelfwise.data.sources import ROW_COLUMN

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
MESSAGE_VALUE_CHARS = 60


class ContractError(ValueError):
    """A source the contract refuses as a whole (a required column is missing, say)."""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def type_family(duckdb_type: str) -> str:
    """Coarse family of a DuckDB type name: string, integer, float, boolean, timestamp, ..."""
    name = duckdb_type.upper()
    if name in ("VARCHAR", "TEXT", "STRING") or name.startswith("VARCHAR"):
        return "string"
    if name == '"NULL"' or name == "NULL":
        return "null"
    if name in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT") or name.startswith("U"):
        return "integer"
    if name in ("FLOAT", "DOUBLE", "REAL") or name.startswith("DECIMAL"):
        return "float"
    if name == "BOOLEAN":
        return "boolean"
    if name.startswith("TIMESTAMP"):
        return "timestamp"
    if name == "DATE":
        return "date"
    if name == "JSON":
        return "json"
    return "other"


# The source families that convert to a contract type without going through text.
NATURAL_FAMILIES: dict[DType, tuple[str, ...]] = {
    DType.STRING: ("string",),
    DType.INTEGER: ("integer",),
    DType.FLOAT: ("integer", "float"),
    DType.BOOLEAN: ("boolean",),
    DType.TIMESTAMP: ("timestamp", "date"),
    DType.DATE: ("date", "timestamp"),
    DType.JSON: ("json", "string", "other"),
}
# Source families a typed file may use for a contract type without it counting as drift.
COMPATIBLE_FAMILIES: dict[DType, tuple[str, ...]] = {
    **NATURAL_FAMILIES,
    DType.STRING: ("string", "integer"),
}


def typed_expression(column: Column, raw: str, family: str) -> str:
    """SQL converting the raw source expression ``raw`` to the column's contract type.

    The result is NULL when the value is missing or does not parse; the caller tells the two
    apart by looking at the raw value.
    """
    target = column.dtype.value
    if family == "null":
        return f"CAST(NULL AS {target})"
    text = f"NULLIF(TRIM(CAST({raw} AS VARCHAR)), '')"
    dtype = column.dtype
    if dtype is DType.STRING:
        if family == "float":  # ids exported through a float column: 123.0 -> '123'
            return (
                f"CASE WHEN {raw} = TRUNC({raw}) THEN CAST(CAST({raw} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({raw} AS VARCHAR) END"
            )
        return text
    if dtype is DType.INTEGER:
        if family == "integer":
            return f"CAST({raw} AS BIGINT)"
        number = f"TRY_CAST({text} AS DOUBLE)"
        return (
            f"CASE WHEN {number} = TRUNC({number}) AND abs({number}) < 9e18 "
            f"THEN CAST({number} AS BIGINT) END"
        )
    if dtype is DType.FLOAT:
        number = (
            f"CAST({raw} AS DOUBLE)"
            if family in ("integer", "float")
            else (f"TRY_CAST({text} AS DOUBLE)")
        )
        return f"CASE WHEN isfinite({number}) THEN {number} END"
    if dtype is DType.BOOLEAN:
        if family == "boolean":
            return raw
        words = f"lower({text})"
        return (
            f"CASE WHEN {words} IN ({', '.join(map(literal, TRUE_WORDS))}) THEN true "
            f"WHEN {words} IN ({', '.join(map(literal, FALSE_WORDS))}) THEN false END"
        )
    if dtype is DType.TIMESTAMP:
        if family in ("timestamp", "date"):
            return f"CAST({raw} AS TIMESTAMP)"
        # The session's time zone is UTC: offsets are honoured, naive times are taken as UTC.
        return f"CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if dtype is DType.DATE:
        if family in ("timestamp", "date"):
            return f"CAST({raw} AS DATE)"
        return f"COALESCE(TRY_CAST({text} AS DATE), CAST(TRY_CAST({text} AS TIMESTAMP) AS DATE))"
    if dtype is DType.JSON:
        if family in ("string", "json"):
            return f"CASE WHEN json_valid({text}) THEN CAST({text} AS JSON) END"
        return f"to_json({raw})"
    raise AssertionError(f"unhandled type {dtype}")


TYPE_WORDS = {
    DType.STRING: "text",
    DType.INTEGER: "integer",
    DType.FLOAT: "number",
    DType.BOOLEAN: "boolean (true/false)",
    DType.TIMESTAMP: "timestamp",
    DType.DATE: "date",
    DType.JSON: "JSON document",
}


@dataclass(frozen=True)
class Issue:
    """A check: the SQL condition that flags a row, and the reason and message it records."""

    condition: str
    reason: str
    message: str

    def struct(self) -> str:
        return (
            f"CASE WHEN {self.condition} THEN "
            f"{{'reason': {literal(self.reason)}, 'message': {self.message}}} END"
        )


def _issue(condition: str, reason: str, message_sql: str | None = None) -> Issue:
    message = message_sql if message_sql is not None else literal(reason)
    return Issue(condition=condition, reason=reason, message=message)


def _with_value(reason: str, value_sql: str) -> str:
    value = f"left(CAST({value_sql} AS VARCHAR), {MESSAGE_VALUE_CHARS})"
    return f"{literal(reason + ': ')} || coalesce({value}, 'NULL')"


def _bound_issues(column: Column) -> list[Issue]:
    name = quote(column.name)
    issues = []
    if column.minimum is not None:
        op = "<=" if column.exclusive_minimum else "<"
        word = (
            "negative"
            if column.minimum == 0 and not column.exclusive_minimum
            else (
                f"not above {column.minimum:g}"
                if column.exclusive_minimum
                else f"below {column.minimum:g}"
            )
        )
        reason = f"{column.name}: {word}"
        issues.append(_issue(f"{name} {op} {column.minimum!r}", reason, _with_value(reason, name)))
    if column.maximum is not None:
        reason = f"{column.name}: above {column.maximum:g}"
        issues.append(_issue(f"{name} > {column.maximum!r}", reason, _with_value(reason, name)))
    if column.allowed is not None:
        reason = f"{column.name}: not one of {', '.join(column.allowed)}"
        allowed = ", ".join(map(literal, column.allowed))
        issues.append(_issue(f"{name} NOT IN ({allowed})", reason, _with_value(reason, name)))
    if column.max_length is not None:
        reason = f"{column.name}: longer than {column.max_length} characters"
        issues.append(_issue(f"length({name}) > {column.max_length}", reason))
    return issues


@dataclass
class ValidationPlan:
    """The query that checks one source against one table, and what it found on the way.

    ``sql`` yields ``_row``, the typed contract columns, ``_extras``, ``_issues`` and
    ``_status``; ``raw_sql(checked)`` recovers quarantined rows exactly as the source wrote them.
    """

    table: Table
    sql: str
    mapping: dict[str, str]  # contract column -> source column
    extras: list[str]
    source_sql: str
    source_columns: list[str]
    drift: list[dict[str, Any]] = field(default_factory=list)

    def raw_sql(self, checked: str) -> str:
        """Quarantined rows of ``checked`` as JSON of their source values, by source row."""
        raw = ", ".join(f"{quote(s)} := src.{quote(s)}" for s in self.source_columns)
        return (
            f"SELECT c.{ROW_COLUMN}, to_json(struct_pack({raw})) AS raw "
            f"FROM {checked} AS c JOIN ({self.source_sql}) AS src "
            f"ON src.{ROW_COLUMN} = c.{ROW_COLUMN} WHERE c._status = 'quarantined'"
        )


def match_columns(
    table: Table,
    source_types: dict[str, str],
    column_map: dict[str, str] | None,
    *,
    source_name: str,
    typed_source: bool,
) -> tuple[dict[str, str], list[str], list[dict[str, Any]]]:
    """Map contract columns to source columns; refuse a source that lacks a required one."""
    renamed = dict(column_map or {})
    unknown = [s for s in renamed if s not in source_types]
    if unknown:
        raise ContractError(
            f"{table.name}: column map names source columns {unknown} that {source_name} "
            f"does not have; it has {sorted(source_types)}"
        )
    mapping: dict[str, str] = {}
    for source in source_types:
        target = renamed.get(source, source)
        if target in table.column_names and target not in mapping:
            mapping[target] = source
    missing_required = [c for c in table.required_columns if c not in mapping]
    if missing_required:
        raise ContractError(
            f"{table.name}: {source_name} lacks required column(s) "
            f"{', '.join(missing_required)}; its columns are {', '.join(sorted(source_types))}"
        )
    drift: list[dict[str, Any]] = []
    extras = [s for s in source_types if s not in mapping.values()]
    drift += [{"kind": "new_column", "column": s, "kept_in": "_extras"} for s in extras]
    drift += [
        {"kind": "missing_column", "column": c, "filled_with": "NULL"}
        for c in table.column_names
        if c not in mapping
    ]
    if typed_source:
        for target, source in mapping.items():
            dtype = table.column(target).dtype
            family = type_family(source_types[source])
            if family not in COMPATIBLE_FAMILIES[dtype] and family != "null":
                drift.append(
                    {
                        "kind": "retyped_column",
                        "column": target,
                        "source_type": source_types[source],
                        "contract_type": dtype.value,
                    }
                )
    return mapping, extras, drift


def plan_validation(
    table: Table,
    source_sql: str,
    source_types: dict[str, str],
    *,
    column_map: dict[str, str] | None = None,
    source_name: str = "source",
    typed_source: bool = True,
    target_empty: bool = False,
) -> ValidationPlan:
    """Write the query that types, checks and classifies every row of ``source_sql``.

    ``target_empty`` skips the comparison with stored rows (the first load of a table).
    """
    mapping, extras, drift = match_columns(
        table, source_types, column_map, source_name=source_name, typed_source=typed_source
    )
    typed: list[str] = []
    issues: list[Issue] = []
    for column in table.columns:
        name = quote(column.name)
        bad = quote("_bad_" + column.name)
        if column.name not in mapping:
            typed.append(f"CAST(NULL AS {column.dtype.value}) AS {name}")
            typed.append(f"CAST(NULL AS VARCHAR) AS {bad}")
        else:
            raw = "src." + quote(mapping[column.name])
            family = type_family(source_types[mapping[column.name]])
            expression = typed_expression(column, raw, family)
            typed.append(f"{expression} AS {name}")
            present = (
                f"TRIM(CAST({raw} AS VARCHAR)) <> ''"
                if family in ("string", "json")
                else f"{raw} IS NOT NULL"
            )
            # The raw text of a value that is there but does not parse, else NULL.
            typed.append(
                f"CASE WHEN {present} AND ({expression}) IS NULL "
                f"THEN left(CAST({raw} AS VARCHAR), {MESSAGE_VALUE_CHARS}) END AS {bad}"
            )
        reason = f"{column.name}: not a valid {TYPE_WORDS[column.dtype]}"
        issues.append(
            _issue(f"t.{bad} IS NOT NULL", reason, f"{literal(reason + ': ')} || t.{bad}")
        )
        if column.required or column.name in table.key:
            issues.append(
                _issue(
                    f"t.{name} IS NULL AND t.{bad} IS NULL",
                    f"{column.name}: missing required value",
                )
            )
        issues += _bound_issues(column)
    for rule in table.rules:
        issues.append(_issue(f"coalesce(({rule.violated}), false)", rule.message))

    joins: list[str] = []
    for index, column in enumerate(c for c in table.columns if c.references):
        assert column.references is not None
        ref_table, ref_column = column.references.split(".")
        alias = f"_ref{index}"
        joins.append(
            f"LEFT JOIN (SELECT DISTINCT {quote(ref_column)} AS k FROM {quote(ref_table)}) "
            f"{alias} ON t.{quote(column.name)} = {alias}.k"
        )
        reason = f"{column.name}: unknown (not in {ref_table})"
        issues.append(
            _issue(
                f"t.{quote(column.name)} IS NOT NULL AND {alias}.k IS NULL",
                reason,
                _with_value(reason, f"t.{quote(column.name)}"),
            )
        )

    keys = [quote(k) for k in table.key]
    dup_keys = [quote(f"_dk{i}") for i in range(len(keys))]
    key_match = " AND ".join(
        f"t.{k} IS NOT DISTINCT FROM dup.{d}" for k, d in zip(keys, dup_keys, strict=True)
    )
    joins.append(f"LEFT JOIN duplicated AS dup ON {key_match}")
    issues.append(
        _issue(
            f"dup._first_row < t.{ROW_COLUMN}",
            "duplicate key in this source",
            f"'duplicate key in this source: same ' || {literal(', '.join(table.key))} "
            f"|| ' as row ' || dup._first_row",
        )
    )
    content = (
        "hash(struct_pack("
        + ", ".join(f"{quote(c)} := {quote(c)}" for c in table.column_names)
        + "))"
    )
    if target_empty:
        stored_hash, status_stored = "CAST(NULL AS UBIGINT)", "'new'"
    else:
        stored_keys = ", ".join(f"{k} AS {quote('_sk' + str(i))}" for i, k in enumerate(keys))
        stored_match = " AND ".join(
            f"t.{k} IS NOT DISTINCT FROM stored.{quote('_sk' + str(i))}" for i, k in enumerate(keys)
        )
        joins.append(
            f"LEFT JOIN (SELECT {stored_keys}, {content} AS _hash FROM {quote(table.name)}) "
            f"AS stored ON {stored_match}"
        )
        stored_hash = "stored._hash"
        status_stored = (
            f"CASE WHEN {stored_hash} IS NULL THEN 'new' "
            f"WHEN {stored_hash} = t._hash THEN 'unchanged' "
            "ELSE 'updated' END"
        )
        if table.on_conflict == "reject":
            issues.append(
                _issue(
                    f"{stored_hash} IS NOT NULL AND {stored_hash} <> t._hash",
                    "key already stored with different values",
                )
            )
    extras_sql = (
        "to_json(struct_pack(" + ", ".join(f"{quote(s)} := src.{quote(s)}" for s in extras) + "))"
        if extras
        else "CAST(NULL AS JSON)"
    )
    hash_column = f", {content} AS _hash" if not target_empty else ""
    # Most rows are clean: test the conditions first, build the list of issues only if one holds.
    any_issue = " OR ".join(f"coalesce({i.condition}, false)" for i in issues)
    all_issues = ", ".join(i.struct() for i in issues)
    issues_sql = (
        f"CASE WHEN {any_issue} THEN list_filter([{all_issues}], lambda x: x IS NOT NULL) "
        "ELSE [] END"
    )
    columns = ", ".join(quote(c) for c in table.column_names)
    key_list = ", ".join(f"{k} AS {d}" for k, d in zip(keys, dup_keys, strict=True))
    sql = f"""
WITH typed AS (
    SELECT src.{ROW_COLUMN}, {", ".join(typed)}, {extras_sql} AS _extras
    FROM ({source_sql}) AS src
),
hashed AS (SELECT *{hash_column} FROM typed),
collided AS (
    SELECT hash({", ".join(keys)}) AS _key_hash FROM typed
    GROUP BY ALL HAVING count(*) > 1
),
duplicated AS (
    SELECT {key_list}, min({ROW_COLUMN}) AS _first_row FROM typed
    WHERE {" AND ".join(f"{k} IS NOT NULL" for k in keys)}
      AND hash({", ".join(keys)}) IN (SELECT _key_hash FROM collided)
    GROUP BY ALL HAVING count(*) > 1
),
checked AS (
    SELECT t.*, {issues_sql} AS _issues,
           {status_stored} AS _stored_status
    FROM hashed AS t
    {" ".join(joins)}
)
SELECT {ROW_COLUMN}, {columns}, _extras, _issues,
       CASE WHEN len(_issues) > 0 THEN 'quarantined' ELSE _stored_status END AS _status
FROM checked
"""
    return ValidationPlan(
        table=table,
        sql=sql,
        mapping=mapping,
        extras=extras,
        source_sql=source_sql,
        source_columns=list(source_types),
        drift=drift,
    )
