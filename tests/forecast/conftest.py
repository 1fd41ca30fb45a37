"""A synthetic weekly demand frame with a known promotion effect, for the forecaster's tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

T0 = pd.Timestamp("2024-01-01")  # a Monday


@pytest.fixture(scope="session")
def weekly() -> pd.DataFrame:
    return weekly_demand()


def weekly_demand() -> pd.DataFrame:
    """Poisson demand per series with a level per series, doubled in a week on display; two
    departments; one intermittent series. Four planned weeks past the end carry displays only."""
    series, weeks = 12, 40
    rng = np.random.default_rng(0)
    rows = []
    for s in range(series):
        level = 0.3 if s == 0 else 5.0 + 3.0 * s
        for w in range(weeks + 4):
            display = int(rng.random() < 0.25) * int(rng.integers(5, 30))
            mailer = int(rng.random() < 0.1) * 40
            rate = level * (2.0 if display else 1.0) * (1.3 if mailer else 1.0)
            quantity = float(rng.poisson(rate)) if w < weeks else np.nan
            rows.append(
                (
                    f"sku{s:02d}",
                    T0 + pd.Timedelta(weeks=w),
                    quantity,
                    display,
                    mailer,
                    "DAIRY" if s % 2 else "BAKERY",
                    f"cat{s % 3}",
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "series_id",
            "period_start",
            "quantity",
            "display_stores",
            "mailer_stores",
            "department",
            "category",
        ],
    )
