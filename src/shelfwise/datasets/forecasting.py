"""Stallion beverage sales: monthly volume per agency x SKU, with prices, discounts and events.

Stallion has no home in the data contract: it is an aggregate panel (hectolitres per agency,
SKU and month) with no orders, customers or shelf prices behind it, so only the raw loader is
offered, and forecasting benchmarks read the panel directly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shelfwise.datasets.registry import dataset_file

STALLION_SERIES = ("agency", "sku")
STALLION_TARGET = "volume"


def load_stallion(datasets_dir: Path | str | None = None) -> pd.DataFrame:
    """The panel as shipped: 21,000 rows = 350 series (58 agencies x 25 SKUs) x 60 months.

    26 columns: ``agency`` and ``sku`` (categoricals), ``volume`` (the target), ``date``
    (month start, 2013-01 .. 2017-12), industry and soda volumes, temperature, regular and
    actual price, ``discount`` and ``discount_in_percent``, 2017 demographics, 0/1 holiday and
    event flags, and ``timeseries`` (an integer series id).
    """
    return pd.read_parquet(
        dataset_file("stallion_beverage_sales", "stallion.parquet", datasets_dir)
    )


STALLION_KNOWN = ("price_actual", "price_regular", "discount_in_percent")


def stallion_demand(datasets_dir: Path | str | None = None) -> pd.DataFrame:
    """The panel as a demand frame: ``series_id`` = agency|sku, ``period_start`` = the month,
    ``quantity`` = volume, prices and discount (known ahead, as planned), agency and sku."""
    raw = load_stallion(datasets_dir)
    return pd.DataFrame(
        {
            "series_id": raw["agency"].astype(str) + "|" + raw["sku"].astype(str),
            "period_start": pd.to_datetime(raw["date"]),
            "quantity": raw[STALLION_TARGET].astype(float),
            **{name: raw[name].astype(float) for name in STALLION_KNOWN},
            "agency": raw["agency"].astype(str),
            "sku": raw["sku"].astype(str),
        }
    ).sort_values(["series_id", "period_start"], ignore_index=True)
