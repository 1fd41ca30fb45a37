"""A planted purchase log shared by the recommender's tests."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd
import pytest

T0 = pd.Timestamp("2024-01-01", tz="UTC")


@cache
def planted(seed: int = 0) -> pd.DataFrame:
    """60 persons in 6 taste groups; each buys its group's 4 staples weekly and a random extra."""
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(60):
        group = person % 6
        for week in range(16):
            day = week * 7 + int(rng.integers(0, 3))
            for staple in range(4):
                if rng.random() < 0.7:
                    rows.append((f"p{person:02d}", f"s{group * 4 + staple:02d}", day))
            rows.append((f"p{person:02d}", f"x{int(rng.integers(0, 30)):02d}", day))
    frame = pd.DataFrame(rows, columns=["person_id", "sku", "day"])
    frame["occurred_at"] = T0 + pd.to_timedelta(frame.pop("day"), unit="D")
    frame["order_id"] = frame["person_id"] + "-" + frame["occurred_at"].dt.strftime("%Y%m%d")
    return frame


@pytest.fixture(scope="session")
def planted_log() -> Callable[[int], pd.DataFrame]:
    """``planted_log(seed)``: a copy of the planted log drawn with ``seed``."""
    return lambda seed: planted(seed).copy()
