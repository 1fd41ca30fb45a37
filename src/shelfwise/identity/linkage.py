"""The linkage workspace: one in-memory DuckDB where records are normalised, keyed and scored.

Splink works on its own DuckDB connection; records arrive as frames or Arrow tables (the
analytic store hands them over without a copy through pandas), are normalised by
:mod:`shelfwise.identity.normalise`, have their shared devices and IPs blanked, and are then
linked: first by exact keys (:meth:`LinkageSession.deterministic_links`), then by the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd

from shelfwise.data.validation import quote
from shelfwise.identity.normalise import (
    LINKAGE_COLUMNS,
    NormaliseSettings,
    prepare_sql,
    register_functions,
)
from shelfwise.identity.settings import IdentitySettings, rule_columns

# Fields blanked when too many records share one value: a kiosk, a shop's Wi-Fi, a gateway.
SHARED_FIELDS = ("device_id", "ip")
NAMES_DISAGREE = (
    "{a}.first_name IS NOT NULL AND {b}.first_name IS NOT NULL "
    "AND NOT coalesce(list_has_any(string_split({a}.given_name_canonical, '|'), "
    "string_split({b}.given_name_canonical, '|')), false) "
    "AND jaro_winkler_similarity({a}.first_name, {b}.first_name) < 0.8 "
    "AND NOT ((length({a}.first_name) = 1 OR length({b}.first_name) = 1) "
    "AND {a}.first_name[1] = {b}.first_name[1]) "
    "AND NOT ({a}.first_name = {b}.last_name AND {a}.last_name = {b}.first_name)"
)
# Birth dates that agree up to a keying error or a day/month swap.
DATES_AGREE = (
    "{a}.date_of_birth IS NOT NULL AND {b}.date_of_birth IS NOT NULL "
    "AND (levenshtein({a}.date_of_birth, {b}.date_of_birth) <= 2 "
    "OR (substr({a}.date_of_birth, 6, 2) = substr({b}.date_of_birth, 9, 2) "
    "AND substr({a}.date_of_birth, 9, 2) = substr({b}.date_of_birth, 6, 2)))"
)


def unique_ids(frame: pd.DataFrame) -> pd.Series:
    """Each record's key, ``source_system:source_id``, as the linkage frame's SQL writes it."""
    keys: pd.Series = (
        frame["source_system"].astype("string") + ":" + frame["source_id"].astype("string")
    )
    return keys.rename("unique_id")


def normalise_settings(settings: IdentitySettings) -> NormaliseSettings:
    return NormaliseSettings(
        default_region=settings.default_region, attribute_columns=settings.attribute_columns
    )


class LinkageSession:
    """A private DuckDB connection holding normalised linkage tables; use as a context manager."""

    def __init__(self, settings: IdentitySettings, *, threads: int | None = None) -> None:
        self.settings = settings
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            self.connection.execute(f"SET threads = {int(threads)}")
        register_functions(self.connection, normalise_settings(settings))
        self._with_values: dict[str, list[str]] = {}

    def __enter__(self) -> LinkageSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def load(self, name: str, records: Any) -> int:
        """Normalise customer records (a frame or an Arrow table) into table ``name``.

        A ``behaviour`` column (a list of item ids per record) is carried through for the
        behavioural comparison.
        """
        raw = f"_raw_{name}"
        self._with_values.pop(name, None)
        self.connection.register(raw, records)
        columns = [row[0] for row in self.connection.execute(f"DESCRIBE {quote(raw)}").fetchall()]
        select = prepare_sql(quote(raw), normalise_settings(self.settings), columns)
        behaviour = "behaviour" in columns
        if behaviour:
            select = (
                f"SELECT p.*, CAST(r.behaviour AS VARCHAR[]) AS behaviour FROM ({select}) AS p "
                f"LEFT JOIN (SELECT source_system || ':' || source_id AS unique_id, behaviour "
                f"FROM {quote(raw)}) AS r USING (unique_id)"
            )
        else:
            select = f"SELECT *, CAST(NULL AS VARCHAR[]) AS behaviour FROM ({select})"
        self.connection.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS {select}")
        self.connection.unregister(raw)
        duplicated = self.connection.execute(
            f"SELECT unique_id, count(*) FROM {quote(name)} GROUP BY unique_id "
            "HAVING count(*) > 1 LIMIT 3"
        ).fetchall()
        if duplicated:
            raise ValueError(
                f"identity: records repeat (source_system, source_id): {duplicated}; each "
                "record must appear once"
            )
        return self.count(name)

    def count(self, name: str) -> int:
        return int(self.connection.execute(f"SELECT count(*) FROM {quote(name)}").fetchall()[0][0])

    def blank_shared(self, names: Sequence[str]) -> dict[str, int]:
        """Blank devices and IPs that more than ``shared_value_limit`` records carry."""
        limit = self.settings.shared_value_limit
        for name in names:
            self._with_values.pop(name, None)
        union = " UNION ALL ".join(f"SELECT * FROM {quote(n)}" for n in names)
        blanked: dict[str, int] = {}
        for field in SHARED_FIELDS:
            column = quote(field)
            shared = self.connection.execute(
                f"SELECT {column} FROM ({union}) WHERE {column} IS NOT NULL "
                f"GROUP BY {column} HAVING count(*) > {int(limit)}"
            ).df()
            blanked[field] = 0
            if shared.empty:
                continue
            self.connection.register("_shared_values", shared)
            for name in names:
                rows = self.connection.execute(
                    f"UPDATE {quote(name)} SET {column} = NULL, "
                    f"nulled = list_append(coalesce(nulled, []), '{field}:shared') "
                    f"WHERE {column} IN (SELECT {column} FROM _shared_values)"
                ).fetchall()
                blanked[field] += int(rows[0][0]) if rows else 0
            self.connection.unregister("_shared_values")
        return blanked

    def columns_with_values(self, name: str) -> list[str]:
        """Columns of table ``name`` with at least one value (others cannot be compared);
        counted once per table while it stays as loaded."""
        if name in self._with_values:
            return self._with_values[name]
        columns = [row[0] for row in self.connection.execute(f"DESCRIBE {quote(name)}").fetchall()]
        checks = ", ".join(f"count({quote(c)}) > 0" for c in columns)
        flags = self.connection.execute(f"SELECT {checks} FROM {quote(name)}").fetchall()[0]
        self._with_values[name] = [c for c, has in zip(columns, flags, strict=True) if has]
        return self._with_values[name]

    def sample(self, name: str, rows: int, seed: int, output: str) -> int:
        """A reproducible random sample of ``rows`` records (all of them when fewer)."""
        total = self.count(name)
        if total <= rows:
            self.connection.execute(
                f"CREATE OR REPLACE TABLE {quote(output)} AS FROM {quote(name)}"
            )
            return total
        self.connection.execute(
            f"CREATE OR REPLACE TABLE {quote(output)} AS SELECT * FROM {quote(name)} "
            f"ORDER BY hash(unique_id || '{int(seed)}') LIMIT {int(rows)}"
        )
        return rows

    def rule_pairs(self, name: str, rules: Sequence[str], new: str | None = None) -> dict[str, int]:
        """How many pairs each blocking rule would propose (with ``new``: pairs that involve
        one of its records), counted from block sizes without forming a pair."""
        counts: dict[str, int] = {}
        for rule in rules:
            columns = [quote(c) for c in rule_columns(rule)]
            keys = ", ".join(columns)
            present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
            if new is None:
                sql = (
                    f"SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) AS n FROM {quote(name)} "
                    f"WHERE {present} GROUP BY {keys})"
                )
            else:
                sql = (
                    f"SELECT sum(f.n * a.n) FROM (SELECT {keys}, count(*) AS n FROM {quote(new)} "
                    f"WHERE {present} GROUP BY ALL) AS f JOIN (SELECT {keys}, count(*) AS n "
                    f"FROM {quote(name)} WHERE {present} GROUP BY ALL) AS a USING ({keys})"
                )
            value = self.connection.execute(sql).fetchall()[0][0]
            counts[rule] = int(value or 0)
        return counts

    def deterministic_links(self, name: str, new: str | None = None) -> pd.DataFrame:
        """Pairs sharing a normalised exact key, unless the key is shared too widely or the
        given names contradict. With ``new``, only pairs that involve one of its records."""
        settings = self.settings
        available = set(self.columns_with_values(name))
        parts = []
        for key in settings.deterministic_keys:
            if key not in available:
                continue
            column = quote(key)
            guard = (
                f" AND NOT coalesce({NAMES_DISAGREE.format(a='a', b='b')}, false)"
                if settings.guard_given_names and key in settings.guarded_keys
                else ""
            )
            touches_new = (
                f" AND (a.unique_id IN (SELECT unique_id FROM {quote(new)}) "
                f"OR b.unique_id IN (SELECT unique_id FROM {quote(new)}))"
                if new
                else ""
            )
            other_system = (
                " AND a.source_system <> b.source_system"
                if settings.link_type == "link_only"
                else ""
            )
            parts.append(
                f"""SELECT a.unique_id AS unique_id_l, b.unique_id AS unique_id_r,
                       '{key}' AS rule
                FROM {quote(name)} AS a JOIN {quote(name)} AS b
                  ON a.{column} = b.{column} AND a.unique_id < b.unique_id
                WHERE a.{column} IN (
                    SELECT {column} FROM {quote(name)} WHERE {column} IS NOT NULL
                    GROUP BY {column} HAVING count(*) <= {int(settings.max_records_per_key)})
                  {guard}{touches_new}{other_system}"""
            )
        if not parts:
            return pd.DataFrame({"unique_id_l": [], "unique_id_r": [], "rule": []}, dtype="string")
        sql = " UNION ALL ".join(parts)
        # One row per pair: the first key (in settings order) that links it names the rule.
        order = " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(settings.deterministic_keys))
        return self.connection.execute(
            f"SELECT unique_id_l, unique_id_r, arg_min(rule, CASE rule {order} END) AS rule "
            f"FROM ({sql}) GROUP BY ALL ORDER BY unique_id_l, unique_id_r"
        ).df()

    def vetoed(self, name: str, pairs: str) -> str:
        """SQL: ``pairs`` (a table of unique_id_l, unique_id_r, ...) with a ``vetoed`` flag."""
        settings = self.settings
        available = set(self.columns_with_values(name))
        same_id = " OR ".join(
            f"a.{quote(c)} = b.{quote(c)}" for c in settings.veto_unless_same if c in available
        )
        condition = (
            f"({NAMES_DISAGREE.format(a='a', b='b')}) "
            f"AND NOT coalesce({DATES_AGREE.format(a='a', b='b')}, false)"
            + (f" AND NOT coalesce({same_id}, false)" if same_id else "")
            if settings.veto_conflicts
            else "false"
        )
        return (
            f"SELECT p.*, coalesce({condition}, false) AS vetoed FROM {pairs} AS p "
            f"JOIN {quote(name)} AS a ON a.unique_id = p.unique_id_l "
            f"JOIN {quote(name)} AS b ON b.unique_id = p.unique_id_r"
        )


__all__ = ["LINKAGE_COLUMNS", "LinkageSession", "normalise_settings", "unique_ids"]
