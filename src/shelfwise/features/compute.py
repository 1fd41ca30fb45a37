"""From states to feature values: the one code path of offline frames and online vectors.

Both paths find, for each row asked about (an entity and a moment), the entity's latest state
strictly before that moment: the offline frame by an as-of join in the analytic store, the
online store by a key lookup. Everything after that is here and shared: decaying a sum to the
moment, days since a time, whether a session or a promotion is still running, the defaults of
entities without any state, derived ratios, the keys one set lends another (a product's
category for the person x category set), calendar and context features, and the features that
cross two sets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.features.definitions import FEATURE_VERSIONS, Aggregate, Derived, FeatureSet
from shelfwise.features.states import SECONDS_PER_DAY

CONTEXT_COLUMNS = ("device", "page")
CONTEXT_FEATURES = (
    "hour", "weekday", "is_weekend", "day_of_month", "month", "week_of_year",
    "device", "page",
)  # fmt: skip
# Keys a set can lend to the others: column -> (static set, attribute).
LENT_KEYS = {
    "category": ("product_attributes", "category"),
    "brand": ("product_attributes", "brand"),
}

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class StateBlock:
    """States of one set aligned with the rows asked about: columns and whether a state exists."""

    columns: Mapping[str, NDArray[Any]]
    present: NDArray[np.bool_]


StateLookup = Callable[[FeatureSet, Mapping[str, Any]], StateBlock]


def finalize(feature_set: FeatureSet, block: StateBlock, as_of: Floats) -> dict[str, NDArray[Any]]:
    """Feature values of ``feature_set`` at ``as_of`` (seconds since the epoch, UTC)."""
    present = block.present
    out: dict[str, NDArray[Any]] = {}
    if feature_set.static:
        for attribute in feature_set.attributes:
            raw = block.columns[attribute.name]
            if attribute.kind == "category":
                values = np.asarray(raw, dtype=object).copy()
                values[~present] = None
                out[attribute.name] = values
                continue
            number = np.asarray(raw, dtype=np.float64)
            if attribute.kind == "days_since":
                number = (as_of - number) / SECONDS_PER_DAY
            default = math.nan if attribute.default is None else attribute.default
            out[attribute.name] = np.where(present & ~np.isnan(number), number, default)
    else:
        last = np.asarray(block.columns["_last_at"], dtype=np.float64)
        gap = (feature_set.session_gap_minutes or 0.0) * 60.0
        in_session = (as_of - last) <= gap
        with np.errstate(over="ignore", invalid="ignore"):
            for aggregate in feature_set.aggregates:
                value = _at_moment(aggregate, block, as_of, last, in_session)
                out[aggregate.name] = np.where(
                    present & ~np.isnan(value), value, aggregate.missing_value
                )
    columns: dict[str, NDArray[Any]] = dict(out)
    for derived in feature_set.derived:
        columns[derived.name] = derived.evaluate(columns)
    columns[feature_set.missing_indicator] = (~present).astype(np.float64)
    return columns


def _at_moment(
    aggregate: Aggregate,
    block: StateBlock,
    as_of: Floats,
    last: Floats,
    in_session: NDArray[np.bool_],
) -> Floats:
    """An aggregate's state as its value at ``as_of``."""
    value = np.asarray(block.columns[aggregate.name], dtype=np.float64)
    kind = aggregate.kind
    if kind == "decayed":
        half_life = float(aggregate.half_life_days or 1.0) * SECONDS_PER_DAY
        return value * np.exp2(-(as_of - last) / half_life)
    if kind in ("first", "last"):
        return (as_of - value) / SECONDS_PER_DAY
    if kind == "active":
        until = np.asarray(block.columns[f"_until_{aggregate.name}"], dtype=np.float64)
        return np.where(as_of < until, np.nan_to_num(value), 0.0)
    if kind == "session":
        return np.where(in_session, value, 0.0)
    if kind == "session_seconds":
        return np.where(in_session, as_of - value, 0.0)
    return value


def context_features(rows: Mapping[str, Any], as_of: Floats) -> dict[str, NDArray[Any]]:
    """Calendar features of each row's moment (UTC), and its device and page (categories)."""
    moment = (as_of * 1e6).astype("datetime64[us]")
    day = moment.astype("datetime64[D]")
    days = day.astype(np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    thursday = day - weekday + 3  # ISO weeks belong to the year of their Thursday
    week = (thursday - thursday.astype("datetime64[Y]").astype("datetime64[D]")).astype(
        np.int64
    ) // 7 + 1
    month = moment.astype("datetime64[M]")
    out: dict[str, NDArray[Any]] = {
        "hour": ((as_of % SECONDS_PER_DAY) // 3600).astype(np.float64),
        "weekday": weekday.astype(np.float64),
        "is_weekend": (weekday >= 5).astype(np.float64),
        "day_of_month": ((day - month.astype("datetime64[D]")).astype(np.int64) + 1).astype(
            np.float64
        ),
        "month": (month.astype(np.int64) % 12 + 1).astype(np.float64),
        "week_of_year": week.astype(np.float64),
    }
    for column in CONTEXT_COLUMNS:
        if column in rows:
            values = np.asarray(rows[column], dtype=object).copy()
            values[pd.isna(values)] = None
            out[column] = values
        else:
            out[column] = np.full(len(as_of), None, dtype=object)
    return out


def epoch_seconds(moments: Any) -> Floats:
    """Naive timestamps (UTC) or aware ones as seconds since the epoch."""
    index = pd.DatetimeIndex(pd.to_datetime(moments))
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("ns").asi8.astype(np.float64) / 1e9


def select_sets(sets: Sequence[FeatureSet], names: Sequence[str] | None) -> tuple[FeatureSet, ...]:
    """The sets named (all of them for None), refusing a name that is not a set."""
    if names is None:
        return tuple(sets)
    unknown = set(names) - {s.name for s in sets}
    if unknown:
        raise ValueError(f"unknown feature sets {sorted(unknown)}; known: {[s.name for s in sets]}")
    return tuple(s for s in sets if s.name in names)


def applicable(sets: Sequence[FeatureSet], columns: Sequence[str]) -> list[FeatureSet]:
    """The sets whose keys the rows have (or can borrow from another applicable set)."""
    have = set(columns)
    if "person_id" in have:
        have.add("actor_id")
    chosen = [s for s in sets if s.static and set(s.keys) <= have]
    names = {s.name for s in chosen}
    for key, (lender, _) in LENT_KEYS.items():
        if lender in names:
            have.add(key)
    chosen += [s for s in sets if not s.static and set(s.keys) <= have]
    return chosen


def feature_columns(
    rows: Mapping[str, Any],
    as_of: Floats,
    sets: Sequence[FeatureSet],
    lookup: StateLookup,
    *,
    cross: Sequence[Derived] = (),
) -> tuple[dict[str, NDArray[Any]], list[FeatureSet]]:
    """Every applicable set's features for ``rows`` (key columns) at ``as_of``, the context
    features and the cross features; and the sets used. ``rows`` gains the lent keys."""
    keyed = dict(rows)
    if "person_id" in keyed and "actor_id" not in keyed:
        keyed["actor_id"] = keyed["person_id"]
    chosen = applicable(sets, list(keyed))
    columns: dict[str, NDArray[Any]] = {}
    for feature_set in chosen:
        for key in feature_set.keys:
            if key not in keyed and key in LENT_KEYS:
                keyed[key] = columns[LENT_KEYS[key][1]]
        block = lookup(feature_set, keyed)
        columns.update(finalize(feature_set, block, as_of))
    columns.update(context_features(keyed, as_of))
    for derived in cross:
        if set(derived.inputs) <= set(columns):
            columns[derived.name] = derived.evaluate(columns)
    return columns, chosen


def assemble(
    rows: pd.DataFrame,
    sets: Sequence[FeatureSet],
    lookup: StateLookup,
    *,
    cross: Sequence[Derived] = (),
) -> pd.DataFrame:
    """``rows`` (key columns and ``as_of``) with their features; the frame's attrs name each
    set's version (:data:`FEATURE_VERSIONS`)."""
    if "as_of" not in rows.columns:
        raise ValueError(
            f"the rows need an as_of column (the moment asked about); got {list(rows.columns)}"
        )
    plain = rows.reset_index(drop=True)
    keys = {str(c): plain[c].to_numpy() for c in plain.columns}
    columns, chosen = feature_columns(
        keys, epoch_seconds(plain["as_of"]), sets, lookup, cross=cross
    )
    features = pd.DataFrame(
        {k: v for k, v in columns.items() if k not in rows.columns}, index=rows.index
    )
    out = pd.concat([rows, features], axis=1)
    out.attrs[FEATURE_VERSIONS] = {s.name: s.version for s in chosen}
    return out
