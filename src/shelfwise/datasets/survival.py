"""CDNOW (Fader & Hardie): the purchase history of 23,570 customers of an online CD shop.

Every customer made a first purchase in Q1 1997; the log runs to the end of June 1998. The
conventional calibration period is 1997-01-01 .. 1997-09-30 and the holdout the next 39 weeks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple, get_args

import pandas as pd

from shelfwise.datasets._frames import contract_frame, read_csv_typed
from shelfwise.datasets.registry import dataset_file

CdnowKind = Literal["master", "sample", "summary", "summary_with_transactions"]
CDNOW_KINDS: tuple[str, ...] = get_args(CdnowKind)
CDNOW_SOURCE_SYSTEM = "cdnow"
CDNOW_SKU = "CD"
_FILES: dict[str, tuple[str, dict[str, str]]] = {
    "master": (
        "cdnow_master.csv.gz",
        {"customer_id": "int64", "date": "string", "quantity": "int64", "amount": "float64"},
    ),
    "sample": (
        "cdnow_sample.csv.gz",
        {
            "customer_id": "int64",
            "customer_index": "int64",
            "date": "string",
            "quantity": "int64",
            "amount": "float64",
        },
    ),
    "summary": (
        "cdnow_customers_summary.csv.gz",
        {"ID": "int64", "frequency": "int64", "recency": "float64", "T": "float64"},
    ),
    "summary_with_transactions": (
        "cdnow_customers_summary_with_transactions.csv.gz",
        {"ID": "int64", "x": "int64", "t_x": "float64", "T": "float64", "zbar": "float64"},
    ),
}


def load_cdnow(kind: CdnowKind = "master", datasets_dir: Path | str | None = None) -> pd.DataFrame:
    """One CDNOW file, typed as its SOURCE.md states.

    - ``master``: 69,659 purchases of all 23,570 customers: ``customer_id``, ``date``
      (ISO text), ``quantity`` (CDs), ``amount`` (USD).
    - ``sample``: the 1/10 systematic sample (2,357 customers, 6,919 rows), plus
      ``customer_index`` 1..2357.
    - ``summary`` / ``summary_with_transactions``: the sample's per-customer RFM summaries
      used in the Fader-Hardie papers (``T`` and recencies in weeks).
    """
    if kind not in CDNOW_KINDS:
        raise ValueError(f"unknown CDNOW file {kind!r}; expected one of {CDNOW_KINDS}")
    file, dtypes = _FILES[kind]
    return read_csv_typed(dataset_file("cdnow", file, datasets_dir), dtypes)


class CdnowOrders(NamedTuple):
    """CDNOW as contract tables; ``products`` holds the one placeholder sku the lines use."""

    orders: pd.DataFrame
    order_lines: pd.DataFrame
    products: pd.DataFrame


def cdnow_to_orders(purchases: pd.DataFrame) -> CdnowOrders:
    """CDNOW purchases (``master`` or ``sample``) as contract ``orders`` and ``order_lines``.

    CDNOW has no product detail: a row says how many CDs a customer bought on a day and for
    how much. Each row becomes one order ``cdnow-<customer>-<date>-<n>`` (``n`` = 1, 2, ...
    for a customer's purchases on the same day, in file order) with one line of the
    placeholder sku ``CD``: ``quantity`` CDs for ``sales_value`` = ``amount``. ``ordered_at``
    is the day at midnight (no time of day is recorded); a one-row ``products`` table gives
    the sku ``CD`` a home so the lines' references hold.
    """
    customers = purchases["customer_id"].astype("string")
    dates = purchases["date"].astype("string")
    nth = purchases.groupby(["customer_id", "date"], sort=False).cumcount() + 1
    order_ids = "cdnow-" + customers + "-" + dates + "-" + nth.astype("string")
    orders = contract_frame(
        "orders",
        {
            "order_id": order_ids,
            "ordered_at": pd.to_datetime(dates, format="%Y-%m-%d"),
            "source_system": CDNOW_SOURCE_SYSTEM,
            "customer_ref": customers,
        },
        len(purchases),
    )
    lines = contract_frame(
        "order_lines",
        {
            "order_id": order_ids,
            "line_id": "1",
            "sku": CDNOW_SKU,
            "quantity": purchases["quantity"],
            "sales_value": purchases["amount"],
        },
        len(purchases),
    )
    products = contract_frame(
        "products",
        {"sku": CDNOW_SKU, "title": "compact discs (CDNOW records no product detail)"},
        1,
    )
    return CdnowOrders(orders, lines, products)
