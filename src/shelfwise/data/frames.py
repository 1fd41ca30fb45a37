"""Frames shaped like contract tables, for the dataset adapters and the simulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype

from shelfwise.data.contract import DType, get_table

# How each contract type is held in a pandas frame: strings and JSON as pandas strings, DATE as
# datetime64 at midnight, so that every time in a contract frame is a naive-UTC datetime64.
CONTRACT_DTYPES: dict[DType, ExtensionDtype | np.dtype[Any]] = {
    DType.STRING: pd.StringDtype(),
    DType.INTEGER: pd.Int64Dtype(),
    DType.FLOAT: np.dtype("float64"),
    DType.BOOLEAN: pd.BooleanDtype(),
    DType.TIMESTAMP: np.dtype("datetime64[ns]"),
    DType.DATE: np.dtype("datetime64[ns]"),
    DType.JSON: pd.StringDtype(),
}


def contract_frame(table: str, values: Mapping[str, object], length: int) -> pd.DataFrame:
    """A frame with exactly the columns of contract ``table``, in contract order.

    ``values`` maps column names to an array-like of ``length`` values or a scalar; columns not
    given are missing. A duplicated key is a bug in the adapter or simulator and raises.
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


def json_records(frame: pd.DataFrame, *, null_if_empty: bool = True) -> pd.Series:
    """One JSON object (as text) per row of ``frame``, keyed by its column names.

    Built by pandas' C encoder, not a Python loop. Missing values are ``null``; a row whose
    values are all missing gives a missing object when ``null_if_empty``. The encoder writes
    ``/`` as ``\\/``, which is valid JSON and decodes to ``/``.
    """
    if frame.empty:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    text = frame.to_json(
        orient="records", lines=True, force_ascii=False, double_precision=15, date_format="iso"
    )
    # Newlines inside values are escaped by the encoder, so each line is one record.
    lines = text.rstrip("\n").split("\n")
    records = pd.Series(lines, index=frame.index, dtype="string")
    if null_if_empty:
        records = records.where(frame.notna().any(axis=1))
    return records
