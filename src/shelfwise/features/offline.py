"""Point-in-time training frames, built inside the analytic store.

For every labelled row (entity keys and the moment ``as_of``) each feature reads only the
entity's rows strictly before ``as_of``: the states of :mod:`shelfwise.features.states` are
joined with DuckDB's ``ASOF JOIN ... ON key = key AND label.as_of > state.event_at``; a window
of *w* days is the running sum before ``as_of`` less the running sum before ``as_of - w``.
Static sets (current catalogue and demographic attributes) are a plain join on their keys.
The values then come from :func:`shelfwise.features.compute.assemble`, the code online vectors
use too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.data.contract import TABLES
from shelfwise.data.store import AnalyticStore
from shelfwise.data.validation import quote
from shelfwise.features.compute import StateBlock, assemble, select_sets
from shelfwise.features.definitions import Attribute, Derived, FeatureSet
from shelfwise.features.retail import (
    BASE_RELATIONS,
    CROSS_FEATURES,
    RETAIL_FEATURE_SETS,
    base_relations_of,
)
from shelfwise.features.states import SECONDS_PER_DAY, states_sql
from shelfwise.identity.sessions import relation_exists

# Identity relations the streams read; before identity has run they are empty.
IDENTITY_RELATIONS = {
    "person_map": "SELECT CAST(NULL AS VARCHAR) AS source_system, "
    "CAST(NULL AS VARCHAR) AS source_id, CAST(NULL AS VARCHAR) AS person_id WHERE false",
    "stitched_events": "SELECT CAST(NULL AS VARCHAR) AS event_id, "
    "CAST(NULL AS VARCHAR) AS person_id WHERE false",
}


class OfflineFeatures:
    """Builds states in the analytic store and joins them to labelled rows as of their moment.

    States are made once per instance and kept in temporary tables; :meth:`refresh` drops
    them, so that the next frame sees newly ingested data.
    """

    def __init__(
        self,
        store: AnalyticStore,
        sets: Sequence[FeatureSet] = RETAIL_FEATURE_SETS,
        cross: Sequence[Derived] = CROSS_FEATURES,
    ) -> None:
        self.store = store
        self.sets = tuple(sets)
        self.cross = tuple(cross)
        self._tag = uuid.uuid4().hex[:8]
        self._built: dict[str, str] = {}  # set or base relation name -> temp table
        self.build_seconds: dict[str, float] = {}

    def _table(self, name: str) -> str:
        return f"_fs_{name}_{self._tag}"

    def _prepare_sources(self) -> None:
        """Contract tables and identity relations that are missing become empty ones."""
        if "_sources" in self._built:
            return
        for name, sql in IDENTITY_RELATIONS.items():
            if not relation_exists(self.store, name):
                self.store.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS {sql}")
        for name, table in TABLES.items():
            if not relation_exists(self.store, name):
                columns = ", ".join(
                    f"CAST(NULL AS {c.dtype.value}) AS {quote(c.name)}" for c in table.columns
                )
                self.store.execute(
                    f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS SELECT {columns} WHERE false"
                )
        self._built["_sources"] = ""

    def _stream(self, feature_set: FeatureSet) -> str:
        """The set's stream as a parenthesised query, its base relations made first."""
        self._prepare_sources()
        sql = feature_set.stream
        for name in base_relations_of(sql):
            if name not in self._built:
                started = time.perf_counter()
                body = BASE_RELATIONS[name]
                for made, table in self._built.items():
                    if made in BASE_RELATIONS:
                        body = _rename(body, made, table)
                table = self._table(name)
                self.store.execute(f"CREATE OR REPLACE TEMP TABLE {quote(table)} AS {body}")
                self._built[name] = table
                self.build_seconds[name] = round(time.perf_counter() - started, 3)
        for name in base_relations_of(sql):
            sql = _rename(sql, name, self._built[name])
        return f"({sql})"

    def base_relation(self, name: str) -> str:
        """The temp table holding base relation ``name`` (``fs_interactions``, ``fs_orders``),
        made from the store on first use."""
        if name not in BASE_RELATIONS:
            raise ValueError(f"unknown base relation {name!r}; known: {sorted(BASE_RELATIONS)}")
        self._stream(FeatureSet(name="probe", entity="person", stream=f"SELECT * FROM {name}"))
        return self._built[name]

    def states_table(self, feature_set: FeatureSet) -> str:
        """The temp table of the set's states (or, for a static set, its attribute rows)."""
        if feature_set.name in self._built:
            return self._built[feature_set.name]
        stream = self._stream(feature_set)
        started = time.perf_counter()
        table = self._table(f"set_{feature_set.name}")
        if feature_set.static:
            keys = ", ".join(quote(k) for k in feature_set.keys)
            values = ", ".join(
                f"{_attribute_sql(a)} AS {quote(a.name)}" for a in feature_set.attributes
            )
            sql = f"SELECT {keys}, {values} FROM {stream} AS source"
        else:
            sql = states_sql(feature_set, stream)
        self.store.execute(f"CREATE OR REPLACE TEMP TABLE {quote(table)} AS {sql}")
        self._built[feature_set.name] = table
        self.build_seconds[feature_set.name] = round(time.perf_counter() - started, 3)
        return table

    def lookup(self, feature_set: FeatureSet, rows: Mapping[str, Any]) -> StateBlock:
        """Each row's latest state of ``feature_set`` strictly before its ``as_of``."""
        table = self.states_table(feature_set)
        keys = list(feature_set.keys)
        labels = pd.DataFrame({k: pd.Series(rows[k], dtype="string") for k in keys})
        labels["as_of"] = pd.to_datetime(pd.Series(rows["as_of"])).to_numpy()
        labels["_row"] = np.arange(len(labels), dtype=np.int64)
        view = self._table("labels")
        connection = self.store.connection
        with self.store._lock:
            connection.register(view, labels)
            try:
                frame = connection.execute(_lookup_sql(feature_set, table, view)).df()
            finally:
                connection.unregister(view)
        present = frame["_found"].notna().to_numpy()
        columns: dict[str, Any] = {}
        for column in feature_set.state_columns:
            values = frame[column]
            if feature_set.static and column in feature_set.categorical:
                columns[column] = values.astype(object).where(values.notna(), None).to_numpy()
            else:
                columns[column] = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        return StateBlock(columns, present)

    def frame(self, rows: pd.DataFrame, sets: Sequence[str] | None = None) -> pd.DataFrame:
        """``rows`` with every applicable feature as of each row's ``as_of``."""
        return assemble(rows, select_sets(self.sets, sets), self.lookup, cross=self.cross)

    def refresh(self) -> None:
        """Drop the states made so far; the next frame rebuilds them from the store."""
        for table in self._built.values():
            if table:
                self.store.execute(f"DROP TABLE IF EXISTS {quote(table)}")
        self._built.clear()

    def close(self) -> None:
        self.refresh()


def _attribute_sql(attribute: Attribute) -> str:
    if attribute.kind == "days_since":
        return f"epoch(CAST({attribute.expression} AS TIMESTAMP))"
    if attribute.kind == "number":
        return f"CAST({attribute.expression} AS DOUBLE)"
    return f"CAST({attribute.expression} AS VARCHAR)"


def _rename(sql: str, name: str, table: str) -> str:
    import re

    return re.sub(rf"\b{name}\b", quote(table), sql)


def _lookup_sql(feature_set: FeatureSet, table: str, view: str) -> str:
    keys = feature_set.keys
    if feature_set.static:
        on = " AND ".join(f"l.{quote(k)} = s.{quote(k)}" for k in keys)
        values = ", ".join(f"s.{quote(c)}" for c in feature_set.state_columns)
        return (
            f"SELECT l._row, {values}, CASE WHEN s.{quote(keys[0])} IS NOT NULL THEN 1 END "
            f"AS _found FROM {quote(view)} l LEFT JOIN {quote(table)} s ON {on} ORDER BY l._row"
        )
    windows = sorted({a.window_days for a in feature_set.aggregates if a.window_days})
    selected = []
    for column in feature_set.state_columns:
        aggregate = next((a for a in feature_set.aggregates if a.name == column), None)
        if aggregate is not None and aggregate.window_days:
            alias = f"w{windows.index(aggregate.window_days)}"
            selected.append(
                f"s.{quote(column)} - coalesce({alias}.{quote(column)}, 0.0) AS {quote(column)}"
            )
        else:
            selected.append(f"s.{quote(column)}")
    joins = [_asof(keys, table, "s", "l.as_of")]
    for index, days in enumerate(windows):
        shifted = f"l.as_of - to_microseconds(CAST({days * SECONDS_PER_DAY * 1e6!r} AS BIGINT))"
        joins.append(_asof(keys, table, f"w{index}", shifted))
    return (
        f"SELECT l._row, {', '.join(selected)}, s._last_at AS _found "
        f"FROM {quote(view)} l {' '.join(joins)} ORDER BY l._row"
    )


def _asof(keys: tuple[str, ...], table: str, alias: str, moment: str) -> str:
    on = " AND ".join(f"l.{quote(k)} = {alias}.{quote(k)}" for k in keys)
    return f"ASOF LEFT JOIN {quote(table)} {alias} ON {on} AND {moment} > {alias}.event_at"
