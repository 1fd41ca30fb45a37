"""Small interaction logs with fixed seeds, shared by the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def interaction_log(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in rng.integers(0, 40, rows)],
            "sku": [f"s{i:02d}" for i in rng.zipf(1.6, rows) % 30],
            "occurred_at": pd.Timestamp("2024-03-01")
            + pd.to_timedelta(rng.integers(0, 60 * 86_400, rows), unit="s"),
        }
    )


@pytest.fixture
def interactions() -> pd.DataFrame:
    return interaction_log(seed=0)


@pytest.fixture
def held_out() -> pd.DataFrame:
    return interaction_log(rows=200, seed=1)
