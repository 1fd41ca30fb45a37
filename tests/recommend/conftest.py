"""The Complete Journey split of BENCHMARKS.md's cj-next4w protocol, read once per session
(the planted purchase log the recommender's tests share is in the root conftest)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


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
