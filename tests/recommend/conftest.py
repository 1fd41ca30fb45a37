"""A planted purchase log shared by the recommender's tests, and the Complete Journey split of
BENCHMARKS.md's cj-next4w protocol, read once per session."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

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


@pytest.fixture(scope="session")
def cj_next4w(datasets_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train (weeks <= 49) and the test targets (weeks 50-53) of households seen in train:
    every distinct purchase (the all track), then only the new ones (the discovery track)."""
    lines = pd.read_parquet(
        datasets_dir / "dunnhumby_complete_journey" / "transactions.parquet",
        columns=["household_id", "basket_id", "product_id", "week"],
    )
    frame = pd.DataFrame(
        {
            "person_id": lines["household_id"].astype(str),
            "sku": lines["product_id"].astype(str),
            "occurred_at": pd.Timestamp("2017-01-02", tz="UTC")
            + pd.to_timedelta(7 * (lines["week"] - 2), unit="D"),
            "order_id": lines["basket_id"].astype(str),
        }
    )
    train = frame[lines["week"] <= 49].reset_index(drop=True)
    test = frame.loc[lines["week"] >= 50, ["person_id", "sku"]].drop_duplicates()
    every = test[test["person_id"].isin(set(train["person_id"]))]
    seen = pd.MultiIndex.from_frame(train[["person_id", "sku"]].drop_duplicates())
    new = every[~pd.MultiIndex.from_frame(every).isin(seen)]
    return train, every.reset_index(drop=True), new.reset_index(drop=True)
