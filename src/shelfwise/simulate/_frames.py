"""Shaping simulated columns into contract tables, and the small id and time helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype

from shelfwise.data.contract import DType, get_table

# The same convention as the dataset adapters: strings and JSON as pandas strings, DATE as
# datetime64 at midnight, so that every time in a simulated frame is a naive-UTC datetime64.
CONTRACT_DTYPES: dict[DType, ExtensionDtype | np.dtype[Any]] = {
    DType.STRING: pd.StringDtype(),
    DType.INTEGER: pd.Int64Dtype(),
    DType.FLOAT: np.dtype("float64"),
    DType.BOOLEAN: pd.BooleanDtype(),
    DType.TIMESTAMP: np.dtype("datetime64[ns]"),
    DType.DATE: np.dtype("datetime64[ns]"),
    DType.JSON: pd.StringDtype(),
}

SECONDS_PER_DAY = 86_400


def contract_frame(table: str, values: Mapping[str, object], length: int) -> pd.DataFrame:
    """A frame with exactly the columns of contract ``table``, in contract order.

    ``values`` maps column names to an array-like of ``length`` values or a scalar; columns not
    given are missing. A duplicated key is a bug in the simulator and raises.
    """
    spec = get_table(table)
    unknown = sorted(set(values) - set(spec.column_names))
    if unknown:
        raise ValueError(f"table {table} has no columns {unknown}")
    index = pd.RangeIndex(length)
    columns: dict[str, pd.Series] = {}
    for column in spec.columns:
        dtype = CONTRACT_DTYPES[column.dtype]
        value = values.get(column.name)
        if value is None or np.isscalar(value):
            series = pd.Series(value, index=index, dtype=dtype)
        else:
            raw = pd.Series(np.asarray(value, dtype=object) if _is_text(dtype) else value)
            if len(raw) != length:
                raise ValueError(f"{table}.{column.name}: {len(raw)} values for {length} rows")
            series = raw.reset_index(drop=True).astype(dtype)
            if column.dtype is DType.DATE:
                series = pd.Series(pd.DatetimeIndex(series).normalize(), index=index)
        columns[column.name] = series
    frame = pd.DataFrame(columns, index=index)
    duplicated = frame.duplicated(list(spec.key))
    if duplicated.any():
        raise ValueError(f"{table}: {int(duplicated.sum())} rows repeat a key {spec.key}")
    return frame


def _is_text(dtype: ExtensionDtype | np.dtype[Any]) -> bool:
    return isinstance(dtype, pd.StringDtype)


def json_rows(frame: pd.DataFrame) -> pd.Series:
    """One JSON object (as text) per row of ``frame``; a row with no values gives a missing one."""
    if frame.empty or len(frame.columns) == 0:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    text = frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
    lines = text.rstrip("\n").split("\n")
    rows = pd.Series(lines, index=frame.index, dtype="string")
    return rows.where(frame.notna().any(axis=1))


def numbered(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` followed by each number zero-padded to ``width`` digits, as an object array."""
    return np.array([f"{prefix}{n:0{width}d}" for n in np.asarray(numbers).tolist()], dtype=object)


def hex_ids(rng: np.random.Generator, size: int, *, digits: int = 16) -> np.ndarray:
    """``size`` distinct random lower-case hex strings of ``digits`` digits (an even number)."""
    width = digits // 2
    chosen = np.empty(0, dtype=object)
    while chosen.size < size:
        text = rng.bytes(width * (size - chosen.size)).hex().encode()
        fresh = np.frombuffer(text, dtype=f"S{digits}").astype(str).astype(object)
        chosen = pd.unique(np.concatenate([chosen, fresh]))
    return np.asarray(chosen[:size], dtype=object)


def random_times(
    rng: np.random.Generator, size: int, start: pd.Timestamp, end: pd.Timestamp
) -> np.ndarray:
    """``size`` times uniform in [start, end), to the second, as datetime64[ns]."""
    span = int((end - start).total_seconds())
    offsets = rng.integers(0, max(span, 1), size=size)
    return seconds(start) + offsets.astype("timedelta64[s]")


def seconds(time: pd.Timestamp) -> np.datetime64:
    """A timestamp as a numpy datetime64 to the second."""
    return np.datetime64(time.value // 1_000_000_000, "s")


def masked(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``mask`` holds, ``None`` elsewhere, as an object array."""
    out = np.full(mask.size, None, dtype=object)
    out[mask] = np.asarray(values, dtype=object)[mask]
    return out


def objects(series: pd.Series) -> np.ndarray:
    """A column as an object array whose missing values are ``None``."""
    values: np.ndarray = series.astype(object).where(series.notna(), None).to_numpy()
    return values


def to_ns(times: np.ndarray) -> np.ndarray:
    return np.asarray(times).astype("datetime64[ns]")
