"""Point-in-time training frames on Apache Spark (local mode or a cluster; the ``spark`` extra).

The feature sets are defined once, in DuckDB SQL (:mod:`shelfwise.features.retail`). Here the
base relations and the streams are translated to Spark SQL with sqlglot, the states come from
:func:`shelfwise.features.states.states_sql` in its Spark dialect (with each aggregate's SQL
translated too), and the as-of join that DuckDB does with ``ASOF JOIN`` is a window: the
labels' moments and the states' moments in one relation, ordered by key and time (a label
before a state at the same moment, since a label sees only states strictly before it), each
label taking the time of the last state before it; the state of that time is then joined back.
A window of *w* days reads the state before the label's moment less *w* days the same way.
From the states on, :func:`shelfwise.features.compute.assemble` makes the features, the code of
the DuckDB frames and of online vectors.

The session must run in UTC (``spark.sql.session.timeZone``, as
:func:`shelfwise.identity.spark.local_spark` sets it): naive timestamps are UTC throughout.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from shelfwise.data.contract import TABLES, DType
from shelfwise.data.store import AnalyticStore
from shelfwise.data.validation import quote
from shelfwise.features.compute import StateBlock, assemble, select_sets
from shelfwise.features.definitions import Aggregate, Attribute, Derived, FeatureSet
from shelfwise.features.offline import IDENTITY_RELATIONS
from shelfwise.features.retail import (
    BASE_RELATIONS,
    CROSS_FEATURES,
    RETAIL_FEATURE_SETS,
    base_relations_of,
)
from shelfwise.features.states import SECONDS_PER_DAY, SPARK, states_sql

UTC_ZONES = ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "+00:00", "Zulu", "Universal")
SPARK_TYPES = {
    DType.STRING: "STRING",
    DType.INTEGER: "BIGINT",
    DType.FLOAT: "DOUBLE",
    DType.BOOLEAN: "BOOLEAN",
    DType.TIMESTAMP: "TIMESTAMP",
    DType.DATE: "DATE",
    DType.JSON: "STRING",
}
ARROW_TYPES = {
    DType.STRING: pa.string(),
    DType.INTEGER: pa.int64(),
    DType.FLOAT: pa.float64(),
    DType.BOOLEAN: pa.bool_(),
    DType.TIMESTAMP: pa.timestamp("us"),
    DType.DATE: pa.date32(),
    DType.JSON: pa.string(),
}


def translate(sql: str, relations: Mapping[str, str] | None = None) -> str:
    """DuckDB SQL (a query or an expression) as Spark SQL; tables named in ``relations`` read
    the relation it maps them to instead (a CTE of the same name is left alone)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel

    tree = sqlglot.parse_one(sql, read="duckdb")
    renamed = dict(relations or {})
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        name = table.name
        if name in renamed and name not in ctes and not table.db:
            alias = table.alias
            table.set("this", exp.to_identifier(renamed[name], quoted=True))
            if not alias:  # columns qualified by the table's own name still resolve
                table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)


def _spark_set(feature_set: FeatureSet) -> FeatureSet:
    """The set with each aggregate's SQL (value, filter, end of validity) in Spark SQL."""

    def spark_aggregate(aggregate: Aggregate) -> Aggregate:
        return dataclasses.replace(
            aggregate,
            value=translate(aggregate.value),
            where=None if aggregate.where is None else translate(aggregate.where),
            until=None if aggregate.until is None else translate(aggregate.until),
        )

    return dataclasses.replace(
        feature_set, aggregates=tuple(spark_aggregate(a) for a in feature_set.aggregates)
    )


def _attribute_sql(attribute: Attribute) -> str:
    expression = f"({translate(attribute.expression)})"
    if attribute.kind == "days_since":
        return SPARK.epoch(f"CAST({expression} AS TIMESTAMP)")
    if attribute.kind == "number":
        return f"CAST({expression} AS DOUBLE)"
    return f"CAST({expression} AS STRING)"


def _ticks(name: str) -> str:
    return SPARK.quote(name)


def _arrow_to_spark(spark: Any, table: pa.Table) -> Any:
    """A Spark DataFrame of an Arrow table, nulls kept apart from NaN."""
    import pyspark
    from pyspark.sql.pandas.types import from_arrow_schema

    columns = [
        column.cast(pa.string()) if pa.types.is_null(column.type) else column
        for column in table.columns
    ]
    table = pa.table(columns, names=table.column_names)
    schema = from_arrow_schema(table.schema)
    if int(pyspark.__version__.split(".")[0]) >= 4:
        return spark.createDataFrame(table, schema)
    return spark.createDataFrame(table.to_pylist(), schema)  # pragma: no cover - Spark 3.5


def _pandas_to_arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    """A pandas frame as Arrow (NaN read as missing, pandas' convention), with the contract's
    types and its missing columns (as nulls) where ``name`` is a contract table."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    spec = TABLES.get(name)
    if spec is None:
        return table
    columns = {str(n): table.column(str(n)) for n in table.column_names}
    for column in spec.columns:
        wanted = ARROW_TYPES[column.dtype]
        if column.name in columns:
            if not columns[column.name].type.equals(wanted):
                columns[column.name] = columns[column.name].cast(wanted)
        else:
            columns[column.name] = pa.nulls(len(frame), wanted)
    return pa.table(list(columns.values()), names=list(columns))


def spark_tables_from_store(
    spark: Any, store: AnalyticStore, names: Sequence[str]
) -> dict[str, Any]:
    """The tables (or views) ``names`` of the analytic store as Spark DataFrames."""
    out: dict[str, Any] = {}
    for name in names:
        with store._lock:
            table = store.connection.sql(f"SELECT * FROM {quote(name)}").to_arrow_table()
        out[name] = _arrow_to_spark(spark, table)
    return out


class SparkFeatures:
    """Offline point-in-time frames computed on Spark from the same definitions.

    ``tables``: the contract tables and identity relations the streams read (``orders``,
    ``order_lines``, ``products``, ``events``, ``person_map``, ``stitched_events``,
    ``promotions``, ...) as Spark or pandas DataFrames. They are registered as temporary views
    of names of this instance's own; those missing are empty, with the contract's columns.
    Base relations and states are made once per instance, as local checkpoints: a plain
    ``cache()`` of a query with a WITH clause is not found again from another query with one
    (Spark matches the plans with their CTE ids), so a state would be recomputed at each
    lookup. :meth:`close` drops them (and ends the instance's use).
    """

    def __init__(
        self,
        spark: Any,
        tables: Mapping[str, Any],
        sets: Sequence[FeatureSet] = RETAIL_FEATURE_SETS,
        cross: Sequence[Derived] = CROSS_FEATURES,
    ) -> None:
        zone = str(spark.conf.get("spark.sql.session.timeZone"))
        if zone not in UTC_ZONES:
            raise ValueError(
                f"Spark features read naive timestamps as UTC: set spark.sql.session.timeZone "
                f"to UTC (it is {zone!r})"
            )
        self.spark = spark
        self.sets = tuple(sets)
        self.cross = tuple(cross)
        self._tag = uuid.uuid4().hex[:8]
        self._views: dict[str, str] = {}  # relation the SQL names -> temporary view
        self._kept: list[Any] = []  # the checkpointed frames, alive while the views are
        self._built: dict[str, str] = {}  # set name -> view of its states or attributes
        for name, table in tables.items():
            if isinstance(table, pd.DataFrame):
                table = _arrow_to_spark(spark, _pandas_to_arrow(name, table))
            self._register(name, table)
        for name, sql in IDENTITY_RELATIONS.items():
            if name not in self._views:
                self._register(name, spark.sql(translate(sql)))
        for name, spec in TABLES.items():
            if name not in self._views:
                columns = ", ".join(
                    f"CAST(NULL AS {SPARK_TYPES[c.dtype]}) AS {_ticks(c.name)}"
                    for c in spec.columns
                )
                self._register(name, spark.sql(f"SELECT {columns} WHERE false"))

    def _view(self, name: str) -> str:
        return f"_fs_{self._tag}_{name}"

    def _register(self, name: str, frame: Any, *, keep: bool = False) -> str:
        if keep:
            frame = frame.localCheckpoint(eager=True)
            self._kept.append(frame)
        view = self._view(name)
        frame.createOrReplaceTempView(view)
        self._views[name] = view
        return view

    def _stream(self, feature_set: FeatureSet) -> str:
        """A view of the set's stream, its base relations made (and kept) first."""
        for name in base_relations_of(feature_set.stream):
            if name not in self._views:
                body = translate(BASE_RELATIONS[name], self._views)
                self._register(name, self.spark.sql(body), keep=True)
        stream = translate(feature_set.stream, self._views)
        return self._register(f"stream_{feature_set.name}", self.spark.sql(stream))

    def states_view(self, feature_set: FeatureSet) -> str:
        """The view of the set's states (or, for a static set, its attribute rows)."""
        if feature_set.name in self._built:
            return self._built[feature_set.name]
        stream = _ticks(self._stream(feature_set))
        keys = ", ".join(_ticks(k) for k in feature_set.keys)
        if feature_set.static:
            values = ", ".join(
                f"{_attribute_sql(a)} AS {_ticks(a.name)}" for a in feature_set.attributes
            )
            frame = self.spark.sql(f"SELECT {keys}, {values} FROM {stream} AS source")
        else:
            # The state's moment in microseconds (what the as-of join orders and joins on);
            # states of a null key, which no label can match, are left out.
            not_null = " AND ".join(f"{_ticks(k)} IS NOT NULL" for k in feature_set.keys)
            frame = (
                self.spark.sql(states_sql(_spark_set(feature_set), stream, dialect=SPARK))
                .where(not_null)
                .selectExpr("*", "unix_micros(event_at) AS _at")
            )
        view = self._register(f"set_{feature_set.name}", frame, keep=True)
        self._built[feature_set.name] = view
        return view

    def lookup(self, feature_set: FeatureSet, rows: Mapping[str, Any]) -> StateBlock:
        """Each row's latest state of ``feature_set`` strictly before its ``as_of``."""
        from pyspark.sql.types import LongType, StringType, StructField, StructType

        view = self.states_view(feature_set)
        keys = list(feature_set.keys)
        labels = pd.DataFrame({k: pd.Series(rows[k], dtype="string").astype(object) for k in keys})
        labels = labels.where(labels.notna(), None)
        labels["_at"] = _micros(rows["as_of"])
        labels["_row"] = np.arange(len(labels), dtype=np.int64)
        schema = StructType(
            [StructField(k, StringType()) for k in keys]
            + [StructField("_at", LongType()), StructField("_row", LongType())]
        )
        labels_view = self._view("labels")
        self.spark.createDataFrame(labels, schema).createOrReplaceTempView(labels_view)
        try:
            found = self.spark.sql(_lookup_sql(feature_set, view, labels_view)).toPandas()
        finally:
            self.spark.catalog.dropTempView(labels_view)
        return _block(feature_set, found, len(labels))

    def frame(self, rows: pd.DataFrame, sets: Sequence[str] | None = None) -> pd.DataFrame:
        """``rows`` with every applicable feature as of each row's ``as_of``."""
        return assemble(rows, select_sets(self.sets, sets), self.lookup, cross=self.cross)

    def close(self) -> None:
        """Drop this instance's views and checkpointed relations."""
        for view in self._views.values():
            self.spark.catalog.dropTempView(view)
        self._views.clear()
        self._kept.clear()  # Spark drops a checkpoint's blocks once nothing refers to it
        self._built.clear()


def _micros(moments: Any) -> NDArray[np.int64]:
    """Moments (naive UTC or aware) as microseconds since the epoch, rounded up: a state at
    a whole microsecond is strictly before a moment exactly when it is before its ceiling."""
    index = pd.DatetimeIndex(pd.to_datetime(pd.Series(moments)))
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    nanos = index.as_unit("ns").asi8.astype(np.int64)
    return -((-nanos) // 1000)


def _lookup_sql(feature_set: FeatureSet, states: str, labels: str) -> str:
    """The states each label finds: ``_row`` (the label), ``_mark`` (0: at the label's moment,
    i: at its moment less the i-th window) and the state's columns, as doubles but for a static
    set's categories. Labels that find no state have no row."""
    keys = [_ticks(k) for k in feature_set.keys]
    states, labels = _ticks(states), _ticks(labels)
    if feature_set.static:
        on = " AND ".join(f"l.{k} = s.{k}" for k in keys)
        values = ", ".join(
            f"s.{_ticks(c)}" if c in feature_set.categorical else f"CAST(s.{_ticks(c)} AS DOUBLE)"
            for c in feature_set.state_columns
        )
        return f"SELECT l._row, 0 AS _mark, {values} FROM {labels} l JOIN {states} s ON {on}"
    key_list = ", ".join(keys)
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    # Each label once per moment asked about (its own, then less each window), ordered before
    # the states of the same microsecond: it takes the time of the last state before it.
    marks = [
        f"SELECT {key_list}, _at - {shift} AS _at, 0 AS _state, _row, {index} AS _mark "
        f"FROM {labels} WHERE {not_null}"
        for index, shift in enumerate(_shifts(feature_set))
    ]
    marks.append(
        f"SELECT {key_list}, _at, 1 AS _state, CAST(NULL AS BIGINT) AS _row, "
        f"CAST(NULL AS INT) AS _mark FROM {states}"
    )
    found = (
        f"SELECT *, last_value(CASE WHEN _state = 1 THEN _at END, true) OVER "
        f"(PARTITION BY {key_list} ORDER BY _at, _state "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS _before "
        f"FROM ({' UNION ALL '.join(marks)}) AS marks"
    )
    values = ", ".join(
        f"CAST(s.{_ticks(c)} AS DOUBLE) AS {_ticks(c)}" for c in feature_set.state_columns
    )
    on = " AND ".join(f"s.{k} = f.{k}" for k in keys)
    return (
        f"SELECT f._row, f._mark, {values} FROM ({found}) AS f "
        f"JOIN {states} s ON {on} AND s._at = f._before WHERE f._state = 0"
    )


def _windows(feature_set: FeatureSet) -> list[float]:
    return sorted({a.window_days for a in feature_set.aggregates if a.window_days})


def _shifts(feature_set: FeatureSet) -> list[int]:
    """Microseconds before the label's moment to read states at: 0, then each window."""
    return [0, *(round(days * SECONDS_PER_DAY * 1e6) for days in _windows(feature_set))]


def _block(feature_set: FeatureSet, found: pd.DataFrame, count: int) -> StateBlock:
    """The states found, aligned with the labels; a window is the running sum before the
    label's moment less the running sum before that moment less the window."""
    main = found[found["_mark"] == 0]
    at = main["_row"].to_numpy(np.int64)
    if len(np.unique(at)) != len(at):
        raise ValueError(f"{feature_set.name}: keys repeated in the set's source")
    present = np.zeros(count, dtype=bool)
    present[at] = True
    columns: dict[str, Any] = {}
    for column in feature_set.state_columns:
        if feature_set.static and column in feature_set.categorical:
            values = np.full(count, None, dtype=object)
            values[at] = main[column].astype(object).where(main[column].notna(), None)
        else:
            values = np.full(count, np.nan)
            values[at] = main[column].to_numpy(np.float64)
        columns[column] = values
    for index, days in enumerate(_windows(feature_set), start=1):
        shifted = found[found["_mark"] == index]
        for aggregate in feature_set.aggregates:
            if aggregate.window_days == days:
                before = np.zeros(count)
                before[shifted["_row"].to_numpy(np.int64)] = np.nan_to_num(
                    shifted[aggregate.name].to_numpy(np.float64)
                )
                columns[aggregate.name] = columns[aggregate.name] - before
    return StateBlock(columns, present)
