"""What the simulator writes, the contract accepts: no row of a simulated world is refused."""

from __future__ import annotations

import pandas as pd

from shelfwise.data.ingest import ingest
from shelfwise.data.store import AnalyticStore
from shelfwise.simulate import (
    fragment_customers,
    simulate_churn,
    simulate_market,
    simulate_people,
    simulate_sessions,
)


def test_simulated_customers_sessions_and_market_ingest_cleanly() -> None:
    store = AnalyticStore("duckdb:///:memory:")
    market = simulate_market(seed=3, n_products=20, n_stores=3, n_weeks=20)
    for table, frame in (
        ("products", market.products),
        ("stores", market.stores),
        ("price_history", market.price_history),
        ("promotions", market.promotions),
        ("orders", market.orders),
        ("order_lines", market.order_lines),
    ):
        report = ingest(store, table, frame)
        assert report.quarantined == 0, (table, report.examples)

    people = simulate_people([str(i) for i in range(300)], seed=5)
    customers = fragment_customers(people, seed=5)
    report = ingest(store, "customer_records", customers.records)
    assert (report.accepted, report.quarantined) == (len(customers.records), 0)

    skus = list(market.products["sku"])
    sessions = simulate_sessions(people, customers, seed=5, skus=skus)
    report = ingest(store, "events", sessions.events)
    assert report.quarantined == 0, report.examples
    assert report.accepted == len(sessions.events) == len(sessions.truth)

    churn = simulate_churn(seed=7, n_customers=200, weeks=20, skus=skus)
    for table, frame in (("orders", churn.orders), ("order_lines", churn.order_lines)):
        assert isinstance(frame, pd.DataFrame)
        assert ingest(store, table, frame).quarantined == 0
