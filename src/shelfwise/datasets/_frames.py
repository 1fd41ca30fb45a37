"""Reading dataset files into typed frames, and shaping frames into contract tables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from shelfwise.data.frames import CONTRACT_DTYPES, contract_frame, json_records

__all__ = ["CONTRACT_DTYPES", "contract_frame", "json_records"]  # re-exported for the modules here


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


def join_present(parts: list[pd.Series], sep: str) -> pd.Series:
    """Join string columns row by row with ``sep``, skipping the missing ones."""
    joined = parts[0]
    for part in parts[1:]:
        joined = (joined + sep + part).fillna(joined).fillna(part)
    return joined


def row_numbers(length: int) -> pd.Series:
    """1-based row numbers as strings (the convention of ``shelfwise.data.sources``)."""
    return pd.Series(range(1, length + 1), dtype="int64").astype("string")
