"""Demand out of the contract tables: quantity, money and promotions per product (and store), per
week or per day.

One SQL, written against the contract's ``orders``, ``order_lines``, ``promotions`` and
``products``, serves both the workspace (its DuckDB tables) and the benchmarks (DuckDB views
that map The Complete Journey's package files into the same columns, so a benchmark needs no
ingested workspace). Only whole weeks are kept: a first or last week that the orders cover only
in part (The Complete Journey's week 1 is a single Sunday) would read as a collapse in demand.
Per day, a promotion counts on every day from its start to its end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import duckdb
import pandas as pd

from shelfwise.datasets.complete_journey import (
    NOT_MERCHANDISE_CATEGORIES,
    NOT_MERCHANDISE_DEPARTMENTS,
)
from shelfwise.forecast.panel import PERIOD, SERIES, TARGET

Query = Callable[[str], pd.DataFrame]
KNOWN = ("display_stores", "mailer_stores")  # planned ahead of the week: known covariates
STATIC = ("department", "category")
# Not demand a forecast should learn from (The Complete Journey's names for them).
EXCLUDED_DEPARTMENTS = NOT_MERCHANDISE_DEPARTMENTS
EXCLUDED_CATEGORIES = NOT_MERCHANDISE_CATEGORIES
GRAINS = {"week": "W-MON", "day": "D"}


@dataclass(frozen=True)
class DemandQuery:
    """Which demand to read. ``top``: the products with the highest total quantity up to
    ``ranked_until`` (all products when None); ``by_store``: one series per product x store."""

    top: int | None = 500
    ranked_until: pd.Timestamp | None = None
    by_store: bool = False
    excluded_departments: tuple[str, ...] = EXCLUDED_DEPARTMENTS
    excluded_categories: tuple[str, ...] = EXCLUDED_CATEGORIES
    # Orders carry UTC times; a retail week runs Monday to Sunday in the stores' own time.
    timezone: str = "UTC"
    grain: Literal["week", "day"] = "week"

    def __post_init__(self) -> None:
        if self.grain not in GRAINS:
            raise ValueError(f"grain {self.grain!r} is not one of {sorted(GRAINS)}")

    @property
    def freq(self) -> str:
        """The panel frequency of this grain (``W-MON`` or ``D``)."""
        return GRAINS[self.grain]

    def sql(self) -> str:
        def listed(values: tuple[str, ...]) -> str:
            return ", ".join("'" + v.replace("'", "''") + "'" for v in values) or "NULL"

        days = 7 if self.grain == "week" else 1
        until = (
            f"AND period_start < TIMESTAMP '{self.ranked_until + pd.Timedelta(days=days)}'"
            if self.ranked_until is not None
            else ""
        )
        grain = self.grain
        if grain == "week":
            promoted_period = "date_trunc('week', starts_at)"
        else:  # every day the promotion runs
            promoted_period = (
                "unnest(generate_series(date_trunc('day', starts_at), "
                "date_trunc('day', ends_at - INTERVAL 1 SECOND), INTERVAL 1 DAY))"
            )
        zone = self.timezone.replace("'", "")
        limit = f"LIMIT {int(self.top)}" if self.top is not None else ""
        store = "store_id" if self.by_store else "''"
        key = "coalesce(w.sku, p.sku)"
        if self.by_store:
            key += " || '@' || coalesce(w.store_id, p.store_id)"
        return f"""
WITH local AS (
    SELECT order_id, store_id, timezone('{zone}', timezone('UTC', ordered_at)) AS ordered_at
    FROM orders
),
lines AS (
    SELECT l.sku, o.store_id, date_trunc('{grain}', o.ordered_at) AS period_start,
           l.quantity, l.sales_value, l.discount_value
    FROM order_lines l JOIN local o USING (order_id)
),
span AS (  -- whole periods only
    SELECT CASE WHEN min(o.ordered_at) > date_trunc('{grain}', min(o.ordered_at))
                THEN date_trunc('{grain}', min(o.ordered_at)) + INTERVAL {days} DAY
                ELSE date_trunc('{grain}', min(o.ordered_at)) END AS first_period,
           CASE WHEN max(o.ordered_at) < date_trunc('{grain}', max(o.ordered_at))
                                         + INTERVAL {days - 1} DAY
                THEN date_trunc('{grain}', max(o.ordered_at)) - INTERVAL {days} DAY
                ELSE date_trunc('{grain}', max(o.ordered_at)) END AS last_period
    FROM local o
),
kept AS (
    SELECT p.sku, p.department, p.category FROM products p
    WHERE coalesce(p.department, '') NOT IN ({listed(self.excluded_departments)})
      AND coalesce(p.category, '') NOT IN ({listed(self.excluded_categories)})
),
ranked AS (
    SELECT sku FROM lines JOIN kept USING (sku)
    WHERE TRUE {until}
    GROUP BY sku ORDER BY sum(quantity) DESC, sku {limit}
),
sold AS (
    SELECT sku, {store} AS store_id, period_start, sum(quantity) AS quantity,
           sum(sales_value) AS sales_value, sum(discount_value) AS discount_value
    FROM lines JOIN ranked USING (sku), span
    WHERE period_start BETWEEN first_period AND last_period
    GROUP BY ALL
),
promoted AS (
    SELECT sku, store_id, period_start,
           count(*) FILTER (WHERE display_location IS NOT NULL) AS display_stores,
           count(*) FILTER (WHERE mailer_location IS NOT NULL) AS mailer_stores
    FROM (
        SELECT sku, {store} AS store_id, {promoted_period} AS period_start,
               display_location, mailer_location
        FROM promotions JOIN ranked USING (sku)
        WHERE promotion_type IN ('display', 'mailer', 'display_mailer')
    ), span
    WHERE period_start >= first_period
    GROUP BY ALL
)
SELECT {key} AS {SERIES},
       coalesce(w.period_start, p.period_start) AS {PERIOD},
       w.quantity AS {TARGET}, w.sales_value, w.discount_value,
       coalesce(p.display_stores, 0) AS display_stores,
       coalesce(p.mailer_stores, 0) AS mailer_stores,
       k.department, k.category
FROM sold w FULL JOIN promoted p USING (sku, store_id, period_start)
JOIN kept k ON k.sku = coalesce(w.sku, p.sku)
ORDER BY 1, 2"""


def demand_frame(query: Query, demand: DemandQuery | None = None) -> pd.DataFrame:
    """The long demand frame: series_id, period_start, quantity (NaN where only a promotion
    is known, e.g. a planned week), money, display/mailer store counts, department, category."""
    frame = query((demand or DemandQuery()).sql())
    if frame.empty:
        raise ValueError("no demand: the order lines, orders or products tables are empty")
    frame[PERIOD] = pd.to_datetime(frame[PERIOD])
    return frame


def complete_journey_query() -> Query:
    """The Complete Journey's package files as contract-shaped DuckDB views (no workspace)."""
    from shelfwise.datasets.complete_journey import _queries

    connection = duckdb.connect()
    queries = _queries()
    for view, name in (
        ("orders", "orders"),
        ("order_lines", "order_lines"),
        ("products", "products"),
        ("promotions", "display_mailer"),
    ):
        connection.execute(f"CREATE VIEW {view} AS {queries[name][1]}")

    def query(sql: str) -> pd.DataFrame:
        return connection.execute(sql).df()

    return query
