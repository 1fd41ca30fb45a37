"""Reading dataset files into typed frames, and shaping frames into contract tables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype

from shelfwise.data.contract import DType, get_table

# How each logical contract type is held in a pandas frame. DATE columns are datetime64 at
# midnight, so that every time in a mapped frame is a naive-UTC datetime64.
CONTRACT_DTYPES: dict[DType, ExtensionDtype | np.dtype[Any]] = {
    DType.STRING: pd.StringDtype(),
    DType.INTEGER: pd.Int64Dtype(),
    DType.FLOAT: np.dtype("float64"),
    DType.BOOLEAN: pd.BooleanDtype(),
    DType.TIMESTAMP: np.dtype("datetime64[ns]"),
    DType.DATE: np.dtype("datetime64[ns]"),
    DType.JSON: pd.StringDtype(),
}


def read_csv_typed(
    path: Path, dtypes: Mapping[str, str], *, more_columns: str | None = None
) -> pd.DataFrame:
    """A CSV read with the column types its SOURCE.md states; an empty field is missing.

    ``dtypes`` lists the columns in file order. ``more_columns`` is the dtype of any further
    columns (Open Bandit's affinity columns, whose number depends on the campaign); without it,
    a file whose header differs from ``dtypes`` is an error.
    """
    frame = pd.read_csv(path, dtype=dict(dtypes), keep_default_na=False, na_values=[""])
    columns = list(frame.columns)
    expected = list(dtypes)
    if columns[: len(expected)] != expected or (
        more_columns is None and len(columns) != len(expected)
    ):
        raise ValueError(f"{path}: columns {columns} differ from the documented {expected}")
    if more_columns is not None:
        dtype = pd.api.types.pandas_dtype(more_columns)
        for name in columns[len(expected) :]:
            frame[name] = frame[name].astype(dtype)
    return frame


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


def contract_frame(table: str, values: Mapping[str, object], length: int) -> pd.DataFrame:
    """A frame with exactly the columns of contract ``table``, in contract order.

    ``values`` maps column names to a Series of ``length`` rows or a scalar for every row;
    columns not given are missing. Each column is cast to its contract dtype
    (:data:`CONTRACT_DTYPES`), and duplicated keys are refused.
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
        if isinstance(value, pd.Series):
            if len(value) != length:
                raise ValueError(f"{table}.{column.name}: {len(value)} values for {length} rows")
            series = value.reset_index(drop=True).astype(dtype)
        else:
            series = pd.Series(value, index=index, dtype=dtype)
        columns[column.name] = series
    frame = pd.DataFrame(columns, index=index)
    duplicated = frame.duplicated(list(spec.key))
    if duplicated.any():
        raise ValueError(f"{table}: {int(duplicated.sum())} rows repeat a key {spec.key}")
    return frame


def join_present(parts: list[pd.Series], sep: str) -> pd.Series:
    """Join string columns row by row with ``sep``, skipping the missing ones."""
    joined = parts[0]
    for part in parts[1:]:
        joined = (joined + sep + part).fillna(joined).fillna(part)
    return joined


def row_numbers(length: int) -> pd.Series:
    """1-based row numbers as strings (the convention of ``shelfwise.data.sources``)."""
    return pd.Series(range(1, length + 1), dtype="int64").astype("string")
