"""Shaping simulated columns into contract tables, and the small id and time helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shelfwise.data.frames import CONTRACT_DTYPES, contract_frame, json_records

__all__ = ["CONTRACT_DTYPES", "contract_frame", "json_records"]  # re-exported for the modules here

SECONDS_PER_DAY = 86_400


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
