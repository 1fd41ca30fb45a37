"""The state of every aggregate after each row of a stream, as SQL.

One statement per feature set turns its stream into *states*: for each entity and each moment
it had rows, the running value of every aggregate (counts and sums so far, the decayed sum at
that moment, the first and last times, the current session's sums...). The offline frame reads
the latest state strictly before each label's moment (an as-of join); the online store keeps
the latest state per entity and folds new rows into it with **the same statement**, fed with
the stored state as a *prior row* (a pseudo-row at the state's time whose contributions are the
state's values) followed by the new rows. Counts, sums, extremes and the decayed sum are exact
under that fold, late rows included; :mod:`shelfwise.features.compute` then turns a state into
feature values at the moment asked about, for both paths alike.

Decayed sums are computed without overflow for any history length: rows are grouped in epochs
of 256 half-lives, each epoch's sum is carried into the next one decayed by 2^-256 per epoch
(what an epoch two back would add is below 2^-256 of the total, under any float's precision).
"""

from __future__ import annotations

from dataclasses import dataclass

from shelfwise.data.validation import quote
from shelfwise.features.definitions import Aggregate, FeatureSet

EPOCH_HALF_LIVES = 256
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Dialect:
    """The few expressions where DuckDB and Spark SQL differ."""

    name: str

    def quote(self, identifier: str) -> str:
        if self.name == "spark":
            return "`" + identifier.replace("`", "``") + "`"
        return quote(identifier)

    def epoch(self, timestamp: str) -> str:
        # A double, as DuckDB's epoch() (Spark divides a BIGINT by a decimal literal exactly).
        if self.name == "spark":
            return f"(CAST(unix_micros({timestamp}) AS DOUBLE) / 1000000.0)"
        return f"epoch({timestamp})"

    def timestamp(self, seconds: str) -> str:
        if self.name == "spark":
            return f"timestamp_micros(CAST(round({seconds} * 1000000) AS BIGINT))"
        return f"make_timestamp(CAST(round({seconds} * 1000000) AS BIGINT))"

    def last_non_null(self, expression: str) -> str:
        if self.name == "spark":
            return f"last_value({expression}, true)"
        return f"last_value({expression} IGNORE NULLS)"

    def seconds_before(self, timestamp: str, seconds: float) -> str:
        return self.timestamp(f"({self.epoch(timestamp)} - {float(seconds)!r})")


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")


def _where(aggregate: Aggregate) -> str:
    return f"({aggregate.where})" if aggregate.where else "true"


def _number(expression: str) -> str:
    return f"CAST({expression} AS DOUBLE)"


def _contribution(aggregate: Aggregate, dialect: Dialect) -> tuple[str, str]:
    """What a stream row contributes to the aggregate's column, and how ties at one moment
    are combined. ``sessions`` and ``session_seconds`` are decided after sessionising."""
    when = _where(aggregate)
    kind = aggregate.kind
    if kind == "count":
        return f"CASE WHEN {when} THEN 1.0 ELSE 0.0 END", "sum"
    if kind in ("sum", "decayed", "window", "session"):
        return (
            f"CASE WHEN {when} THEN coalesce({_number(aggregate.value)}, 0.0) ELSE 0.0 END",
            "sum",
        )
    if kind == "first":
        return f"CASE WHEN {when} THEN {dialect.epoch('event_at')} END", "min"
    if kind == "last":
        return f"CASE WHEN {when} THEN {dialect.epoch('event_at')} END", "max"
    if kind in ("latest", "max", "active"):
        return f"CASE WHEN {when} THEN {_number(aggregate.value)} END", "max"
    if kind == "sessions":
        return "0.0", "sum"
    if kind == "session_seconds":
        return "CAST(NULL AS DOUBLE)", "min"
    raise ValueError(f"unknown aggregate kind {kind!r}")


def states_sql(
    feature_set: FeatureSet,
    stream: str,
    *,
    prior: str | None = None,
    dialect: Dialect = DUCKDB,
    latest_only: bool = False,
) -> str:
    """A query of the states of ``feature_set`` after each moment of ``stream`` (a relation or
    a parenthesised query). ``prior``: a relation of stored states (key columns and
    :attr:`FeatureSet.state_columns`) to fold the stream into. ``latest_only``: one row per
    entity, its last state (what the online store keeps)."""
    if feature_set.static:
        raise ValueError(f"{feature_set.name} is static: it has attributes, not states")
    q = dialect.quote
    keys = ", ".join(q(k) for k in feature_set.keys)
    aggregates = feature_set.aggregates
    contributions = {a.name: _contribution(a, dialect) for a in aggregates}
    actives = [a for a in aggregates if a.kind == "active"]

    real = [f"{keys}", "event_at", "false AS _prior"]
    real += [
        f"{sql} AS {q('c_' + a.name)}" for a in aggregates for sql in [contributions[a.name][0]]
    ]
    real += [
        f"CASE WHEN {_where(a)} THEN {dialect.epoch(str(a.until))} END AS {q('u_' + a.name)}"
        for a in actives
    ]
    rows = f"SELECT {', '.join(real)} FROM {stream} AS stream WHERE event_at IS NOT NULL"
    if prior is not None:
        carried = [f"{keys}", f"{dialect.timestamp('_last_at')} AS event_at", "true AS _prior"]
        carried += [f"{q(a.name)} AS {q('c_' + a.name)}" for a in aggregates]
        carried += [f"{q('_until_' + a.name)} AS {q('u_' + a.name)}" for a in actives]
        rows += f" UNION ALL SELECT {', '.join(carried)} FROM {prior}"

    grouped_columns = [f"{keys}", "event_at", "max(CASE WHEN _prior THEN 1 ELSE 0 END) AS _prior"]
    grouped_columns += [
        f"{how}({q('c_' + a.name)}) AS {q('c_' + a.name)}"
        for a in aggregates
        for how in [contributions[a.name][1]]
    ]
    grouped_columns += [f"max({q('u_' + a.name)}) AS {q('u_' + a.name)}" for a in actives]

    ordered = f"PARTITION BY {keys} ORDER BY event_at"
    running = f"({ordered} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    ctes = [
        f"rows_ AS ({rows})",
        f"grouped AS (SELECT {', '.join(grouped_columns)} FROM rows_ GROUP BY {keys}, event_at)",
    ]
    source = "grouped"
    session_by = keys
    if feature_set.session_gap_minutes is not None:
        gap = float(feature_set.session_gap_minutes) * 60.0
        epoch = dialect.epoch("event_at")
        ctes.append(
            f"gapped AS (SELECT *, {epoch} - lag({epoch}) OVER ({ordered}) AS _gap FROM grouped)"
        )
        ctes.append(
            "flagged AS (SELECT *, CASE WHEN _gap IS NULL OR _gap > "
            f"{gap!r} THEN 1 ELSE 0 END AS _new_session FROM gapped)"
        )
        ctes.append(
            f"sessioned AS (SELECT *, sum(_new_session) OVER {running} AS _session FROM flagged)"
        )
        source = "sessioned"
        session_by = f"{keys}, _session"

    decayed = [a for a in aggregates if a.kind == "decayed"]
    if decayed:
        ctes.extend(_decay_ctes(decayed, source, keys, dialect))
        source = "decay_carried"

    columns = [f"{keys}", "event_at", f"{dialect.epoch('event_at')} AS _last_at"]
    for aggregate in aggregates:
        column = q("c_" + aggregate.name)
        name = q(aggregate.name)
        kind = aggregate.kind
        if kind in ("count", "sum", "window"):
            columns.append(f"sum({column}) OVER {running} AS {name}")
        elif kind == "first":
            columns.append(f"min({column}) OVER {running} AS {name}")
        elif kind in ("last", "max"):
            columns.append(f"max({column}) OVER {running} AS {name}")
        elif kind in ("latest", "active"):
            columns.append(f"{dialect.last_non_null(column)} OVER {running} AS {name}")
        elif kind == "decayed":
            columns.append(_decayed_value(aggregate, dialect))
        elif kind == "session":
            window = f"(PARTITION BY {session_by} ORDER BY event_at ROWS UNBOUNDED PRECEDING)"
            columns.append(f"sum({column}) OVER {window} AS {name}")
        elif kind == "sessions":
            contribution = f"CASE WHEN _prior = 1 THEN {column} ELSE _new_session END"
            columns.append(f"sum({contribution}) OVER {running} AS {name}")
        elif kind == "session_seconds":
            window = f"(PARTITION BY {session_by} ORDER BY event_at ROWS UNBOUNDED PRECEDING)"
            start = f"coalesce({column}, {dialect.epoch('event_at')})"
            columns.append(f"min({start}) OVER {window} AS {name}")
    for aggregate in actives:
        until = q("u_" + aggregate.name)
        name = q("_until_" + aggregate.name)
        columns.append(f"{dialect.last_non_null(until)} OVER {running} AS {name}")

    ctes.append(f"states AS (SELECT {', '.join(columns)} FROM {source})")
    final = "SELECT * FROM states"
    if latest_only:
        final = (
            "SELECT * FROM (SELECT *, row_number() OVER "
            f"(PARTITION BY {keys} ORDER BY event_at DESC) AS _rank FROM states) WHERE _rank = 1"
        )
    return "WITH " + ",\n".join(ctes) + "\n" + final


def _decay_ctes(decayed: list[Aggregate], source: str, keys: str, dialect: Dialect) -> list[str]:
    """Per decayed aggregate: each row's weight scaled within its epoch, the running sum within
    the epoch, and the previous epoch's total carried in."""
    q = dialect.quote
    epoch = dialect.epoch("event_at")
    scaled, running, carry_at_start, carry = [], [], [], []
    for aggregate in decayed:
        half_life = float(aggregate.half_life_days or 0.0) * SECONDS_PER_DAY
        length = EPOCH_HALF_LIVES * half_life
        name = aggregate.name
        scaled.append(f"floor({epoch} / {length!r}) AS {q('ep_' + name)}")
        scaled.append(
            f"{q('c_' + name)} * power(2.0, ({epoch} - floor({epoch} / {length!r}) * "
            f"{length!r}) / {half_life!r}) AS {q('x_' + name)}"
        )
        in_epoch = f"PARTITION BY {keys}, {q('ep_' + name)} ORDER BY event_at"
        running.append(
            f"sum({q('x_' + name)}) OVER ({in_epoch} ROWS UNBOUNDED PRECEDING) AS {q('s_' + name)}"
        )
        running.append(f"row_number() OVER ({in_epoch}) AS {q('n_' + name)}")
        by_key = f"PARTITION BY {keys} ORDER BY event_at"
        carry_at_start.append(
            f"CASE WHEN {q('n_' + name)} = 1 THEN coalesce(lag({q('s_' + name)}) "
            f"OVER ({by_key}) * power(2.0, -{EPOCH_HALF_LIVES}.0 * ({q('ep_' + name)} - "
            f"lag({q('ep_' + name)}) OVER ({by_key}))), 0.0) END AS {q('k_' + name)}"
        )
        carry.append(
            f"max({q('k_' + name)}) OVER (PARTITION BY {keys}, {q('ep_' + name)}) "
            f"AS {q('carry_' + name)}"
        )
    return [
        f"decay_scaled AS (SELECT *, {', '.join(scaled)} FROM {source})",
        f"decay_running AS (SELECT *, {', '.join(running)} FROM decay_scaled)",
        f"decay_started AS (SELECT *, {', '.join(carry_at_start)} FROM decay_running)",
        f"decay_carried AS (SELECT *, {', '.join(carry)} FROM decay_started)",
    ]


def _decayed_value(aggregate: Aggregate, dialect: Dialect) -> str:
    half_life = float(aggregate.half_life_days or 0.0) * SECONDS_PER_DAY
    length = EPOCH_HALF_LIVES * half_life
    name = aggregate.name
    q = dialect.quote
    epoch = dialect.epoch("event_at")
    return (
        f"({q('carry_' + name)} + {q('s_' + name)}) * power(2.0, -({epoch} - "
        f"{q('ep_' + name)} * {length!r}) / {half_life!r}) AS {q(name)}"
    )
