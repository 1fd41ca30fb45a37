"""Mapped datasets go through the real contract ingest with no row quarantined."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from shelfwise.data.ingest import ingest
from shelfwise.data.store import AnalyticStore
from shelfwise.datasets.bandits import load_open_bandit, open_bandit_to_bandit_logs
from shelfwise.datasets.causal import (
    hillstrom_to_campaigns,
    hillstrom_to_treatment_assignments,
    load_hillstrom,
)
from shelfwise.datasets.identity import (
    abt_buy_to_products,
    febrl_to_customer_records,
    load_abt_buy,
    load_febrl,
    load_splink_fake_1000,
    splink_fake_1000_to_customer_records,
)
from shelfwise.datasets.interactions import (
    load_movielens_100k,
    movielens_to_events,
    movielens_to_products,
)
from shelfwise.datasets.survival import cdnow_to_orders, load_cdnow

pytestmark = pytest.mark.data


@pytest.fixture
def store() -> Iterator[AnalyticStore]:
    analytic = AnalyticStore("duckdb:///:memory:")
    yield analytic
    analytic.close()


def _ingest_all(store: AnalyticStore, table: str, frame: pd.DataFrame) -> None:
    report = ingest(store, table, frame, name=f"test {table}")
    assert report.quarantined == 0, report.reasons
    assert report.accepted == report.rows_in == len(frame)
    assert report.drift == []


def test_people_and_products(store: AnalyticStore, datasets_dir: Path) -> None:
    for name in ("febrl4a", "febrl4b"):
        records = febrl_to_customer_records(load_febrl(name, datasets_dir), name)
        _ingest_all(store, "customer_records", records)
    fake = splink_fake_1000_to_customer_records(load_splink_fake_1000(datasets_dir))
    _ingest_all(store, "customer_records", fake)
    abt, buy, _ = load_abt_buy(datasets_dir)
    _ingest_all(store, "products", abt_buy_to_products(abt, buy))
    assert store.count("customer_records") == 11_000


def test_behaviour(store: AnalyticStore, datasets_dir: Path) -> None:
    ml = load_movielens_100k(datasets_dir)
    _ingest_all(store, "products", movielens_to_products(ml.items))
    _ingest_all(store, "events", movielens_to_events(ml.interactions))
    customers = load_hillstrom(datasets_dir)
    _ingest_all(store, "campaigns", hillstrom_to_campaigns())
    _ingest_all(store, "treatment_assignments", hillstrom_to_treatment_assignments(customers))
    for policy in ("random", "bts"):
        log = load_open_bandit(policy, "all", datasets_dir).log
        _ingest_all(store, "bandit_logs", open_bandit_to_bandit_logs(log, policy))


def test_orders(store: AnalyticStore, datasets_dir: Path) -> None:
    tables = cdnow_to_orders(load_cdnow("master", datasets_dir))
    _ingest_all(store, "products", tables.products)
    _ingest_all(store, "orders", tables.orders)
    _ingest_all(store, "order_lines", tables.order_lines)
    assert store.count("order_lines") == 69_659
