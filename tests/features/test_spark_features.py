"""The feature sets computed on Spark (local mode) equal those computed in DuckDB.

A small contract world (stores, a catalogue, customers in two systems with identity already
resolved, orders, browsing sessions, promotions, prices and stock) is ingested into a fresh
workspace; the same labelled rows get their point-in-time features from
:class:`OfflineFeatures` (DuckDB's ASOF JOIN) and from :class:`SparkFeatures` (windows over
label and state moments), and every feature must agree. The labels include the moments where
an as-of join can go wrong: exactly at a purchase, exactly a window's length after one, at a
session's gap and a promotion's end, at ties of several rows at one timestamp, and before
anything happened. Money is in quarters, so that sums are exact whatever order engines add in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.contract import TABLES
from shelfwise.features.offline import OfflineFeatures
from shelfwise.settings import Settings
from shelfwise.workspace import Workspace

START = pd.Timestamp("2024-01-01")
DAYS = 100
STORES = ["s1", "s2", "web"]
SKUS = [f"sku{i:02d}" for i in range(12)]
# (source_system, source_id, person_id): wX is claimed by two persons, so it stays unresolved.
PERSON_MAP = [
    ("web", "w1", "P1"), ("loyalty", "L1", "P1"), ("web", "w2", "P2"), ("loyalty", "L3", "P3"),
    ("web", "w4", "P4"), ("web", "w5", "P5"), ("loyalty", "L5", "P5"), ("web", "w6", "P6"),
    ("web", "wX", "P7"), ("web", "wX", "P8"), ("web", "w8", "P8"),
]  # fmt: skip
CUSTOMERS = [*dict.fromkeys((s, i) for s, i, _ in PERSON_MAP), ("web", "w9")]  # w9: unmapped
PERSON_OF = {(s, i): p for s, i, p in PERSON_MAP if i != "wX"}


def quarters(rng: np.random.Generator, low: int, high: int) -> float:
    return float(rng.integers(low, high)) / 4


def contract_world(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The contract tables and the identity relations (``person_map``, ``stitched_events``)."""
    stores = pd.DataFrame({"store_id": STORES, "name": STORES, "format": ["big", "small", "web"]})
    products = pd.DataFrame({
        "sku": SKUS,
        "department": [["food", "home", "drinks"][i % 3] for i in range(12)],
        "category": [None if i == 11 else f"cat{i % 5}" for i in range(12)],
        "subcategory": [f"sub{i % 7}" for i in range(12)],
        "brand": [None if i in (3, 7) else f"brand{i % 4}" for i in range(12)],
        "manufacturer": [f"maker{i % 2}" for i in range(12)],
        "price": [quarters(rng, 4, 80) for _ in range(12)],
        "cost": [None if i == 5 else quarters(rng, 2, 16) for i in range(12)],
        "launch_date": [None if i == 2 else (START - pd.Timedelta(days=30 * i)).date()
                        for i in range(12)],
        "sensitive_category": [None] * 10 + ["health", None],
    })  # fmt: skip
    attributes = [
        {"age": "25-34", "income": "50-74K", "household_size": 2, "kids_count": 0},
        None,  # L1: P1's other record, without demographics
        {"age": "45-54", "income": None, "home_ownership": "owner", "marital_status": "A"},
        {"age": "65+", "household_size": "5+", "kids_count": "3+"},
        {},
        {"income": "100-124K", "extra": {"nested": [1, 2]}},
        None,
        {"age": "19-24", "marital_status": "B"},
        {"age": "35-44"},
        {"age": "35-44", "income": "75-99K"},
        {"age": "55-64"},
    ]
    customer_records = pd.DataFrame({
        "source_system": [s for s, _ in CUSTOMERS],
        "source_id": [i for _, i in CUSTOMERS],
        "email": [f"{i}@example.com" for _, i in CUSTOMERS],
        "attributes": [None if a is None else json.dumps(a) for a in attributes],
    })  # fmt: skip

    orders: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for number in range(100):
        customer = CUSTOMERS[rng.integers(len(CUSTOMERS))] if number % 9 else (None, None)
        moment = START + pd.Timedelta(seconds=int(rng.integers(0, DAYS * 86_400)))
        orders.append({
            "order_id": f"o{number:03d}", "ordered_at": moment, "source_system": customer[0],
            "customer_ref": customer[1], "store_id": STORES[number % 3] if number % 13 else None,
            "channel": ["store", "web", "app"][number % 3],
        })  # fmt: skip
    # Ties: orders of one customer (and of the same store) at the same second.
    for first, second in ((1, 2), (10, 11), (20, 23), (30, 31), (40, 41)):
        for column in ("ordered_at", "source_system", "customer_ref", "store_id"):
            orders[second][column] = orders[first][column]
    # Purchases exactly 1, 7 and 30 days apart (an order on another's window edge).
    for earlier, later, days in ((50, 51, 7), (52, 53, 30), (54, 55, 1), (56, 57, 90)):
        orders[later]["ordered_at"] = orders[earlier]["ordered_at"] + pd.Timedelta(days=days)
        for column in ("source_system", "customer_ref", "store_id"):
            orders[later][column] = orders[earlier][column]
    for order in orders:
        for line in range(int(rng.integers(1, 5))):
            lines.append({
                "order_id": order["order_id"], "line_id": str(line),
                "sku": SKUS[int(rng.integers(0, 12))] if line else SKUS[int(rng.integers(0, 4))],
                "quantity": float(rng.integers(1, 4)), "sales_value": quarters(rng, 1, 80),
                "discount_value": quarters(rng, 1, 8) if rng.random() < 0.3 else None,
                "coupon_value": quarters(rng, 1, 4) if rng.random() < 0.1 else None,
            })  # fmt: skip

    events: list[dict[str, Any]] = []
    stitched: list[tuple[str, str]] = []
    actors: list[dict[str, Any]] = [
        {"source_system": s, "customer_ref": i} for s, i in CUSTOMERS if i != "wX"
    ]
    actors += [{"source_system": "app", "anonymous_id": f"a{i}"} for i in range(4)]
    actors += [{"source_system": "app", "anonymous_id": "", "session_id": f"sess{i}"}
               for i in range(3)]  # fmt: skip
    steps = [30, 120, 600, 1_740, 1_800, 1_801, 5, 0]  # seconds; 1800 is the gap, 0 a tie
    kinds = ["view", "view", "click", "add_to_cart", "remove_from_cart", "search", "login",
             "purchase"]  # fmt: skip
    for number in range(330):
        actor = actors[number % len(actors)]
        if number < len(actors) or rng.random() < 0.15:  # a new visit
            moment = START + pd.Timedelta(seconds=int(rng.integers(0, DAYS * 86_400)))
        else:
            previous = next(e for e in reversed(events) if e["_actor"] == id(actor))
            moment = previous["occurred_at"] + pd.Timedelta(seconds=int(rng.choice(steps)))
        kind = kinds[int(rng.integers(0, len(kinds)))]
        page = ["home", "pdp", "search", None][int(rng.integers(0, 4))]
        event = {
            "event_id": f"e{number:03d}", "occurred_at": moment, "event_type": kind,
            "sku": None if kind in ("search", "login") else SKUS[int(rng.integers(0, 12))],
            "quantity": float(rng.integers(1, 3)) if kind in ("add_to_cart", "purchase") else None,
            "price": quarters(rng, 4, 40) if rng.random() < 0.5 else None,
            "context": None if page is None else json.dumps({"page": page, "n": number}),
            "customer_ref": None, "anonymous_id": None, "session_id": None,
            "_actor": id(actor), **actor,
        }  # fmt: skip
        events.append(event)
        customer = (actor["source_system"], actor.get("customer_ref"))
        if customer in PERSON_OF and number % 5:
            stitched.append((event["event_id"], PERSON_OF[customer]))
        elif actor.get("anonymous_id") == "a0":
            stitched.append((event["event_id"], "P2"))  # a cookie stitched to a person

    promotions: list[dict[str, Any]] = []
    for number in range(24):
        sku = SKUS[number % 6]
        starts = START + pd.Timedelta(days=int(rng.integers(0, DAYS)), hours=9)
        for store in STORES[: 1 + number % 3]:  # the same start in several stores: a tie
            promotions.append({
                "sku": sku, "store_id": store, "starts_at": starts,
                "ends_at": starts + pd.Timedelta(days=int(rng.integers(1, 15))),
                "promotion_type": ["display", "mailer", "display_mailer", "discount"][number % 4],
                "discount_pct": quarters(rng, 20, 160) if number % 4 == 3 else None,
            })  # fmt: skip
    coupon_runs = [("sku00", 1, 10), ("sku00", 5, 15), ("sku00", 20, 25), ("sku01", 3, 4),
                   ("sku01", 3, 9), ("sku02", 40, 60)]  # fmt: skip
    for sku, begin, end in coupon_runs:
        promotions.append({
            "sku": sku, "store_id": None, "promotion_type": "coupon",
            "starts_at": START + pd.Timedelta(days=begin),
            "ends_at": START + pd.Timedelta(days=end), "discount_pct": None,
        })  # fmt: skip
    promotion_frame = pd.DataFrame(promotions)
    promotion_frame.insert(0, "promotion_id", [f"pr{i:03d}" for i in range(len(promotions))])

    # Chain-wide prices have no store (NULL or ''), which the contract's key refuses: they are
    # inserted as they are, the store's own are ingested.
    prices = [{"sku": SKUS[i % 5], "store_id": ["s1", None, "", None][i % 4],
               "valid_from": START + pd.Timedelta(days=7 * i), "price": quarters(rng, 8, 60),
               "regular_price": None if i % 6 == 0 else quarters(rng, 60, 80)}
              for i in range(14)]  # fmt: skip
    stock = [{"store_id": STORES[i % 2], "sku": SKUS[i % 4],
              "snapshot_at": START + pd.Timedelta(days=7 * (i // 2)),  # two stores at a time
              "on_hand": float(rng.integers(0, 50))} for i in range(16)]  # fmt: skip

    event_frame = pd.DataFrame(events).drop(columns="_actor")
    return {
        "stores": stores,
        "products": products,
        "customer_records": customer_records,
        "orders": pd.DataFrame(orders),
        "order_lines": pd.DataFrame(lines),
        "events": event_frame,
        "promotions": promotion_frame,
        "price_history": pd.DataFrame(prices),
        "inventory_snapshots": pd.DataFrame(stock),
        "person_map": pd.DataFrame(PERSON_MAP, columns=["source_system", "source_id", "person_id"]),
        "stitched_events": pd.DataFrame(stitched, columns=["event_id", "person_id"]),
    }


def labelled_rows(world: dict[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """Random rows and rows at the moments where an as-of join can go wrong."""
    persons = [f"P{i}" for i in range(1, 9)] + ["P404"]
    actors = [*persons, "anonymous:a1", "anonymous:a3", "anonymous:sess0", "anonymous:sess2"]
    orders = world["orders"].merge(
        pd.DataFrame(
            [(s, i, p) for (s, i), p in PERSON_OF.items()],
            columns=["source_system", "customer_ref", "person_id"],
        ),
        how="left",
    )
    lines = world["order_lines"].merge(orders, on="order_id")
    lines = lines.astype({"person_id": object, "store_id": object})
    lines = lines.where(lines.notna(), None)
    events = world["events"]
    moments: list[pd.Timestamp] = []
    for _, line in lines.sample(40, random_state=1).iterrows():
        for shift in (0, 1, 7, 30, 90):  # at a purchase, and a window's length after it
            moments.append(line["ordered_at"] + pd.Timedelta(days=shift))
    for moment in events["occurred_at"].sample(30, random_state=2):
        for seconds in (0, 1, 1_800, 1_801):  # at an event, and at the session's gap
            moments.append(moment + pd.Timedelta(seconds=seconds))
    promotions = world["promotions"]
    moments += list(promotions["starts_at"]) + list(promotions["ends_at"])
    moments += [START - pd.Timedelta(days=1), START + pd.Timedelta(days=DAYS + 5)]
    first = lines["ordered_at"].min()  # just after, by a microsecond and by half of one
    moments += [first + pd.Timedelta(microseconds=1), first + pd.Timedelta(nanoseconds=500)]
    count = len(moments)
    sku_choices = [*SKUS, "sku-unknown"]
    rows = pd.DataFrame({
        "person_id": [None if i % 17 == 0 else persons[i % len(persons)] for i in range(count)],
        "sku": [sku_choices[int(rng.integers(0, len(sku_choices)))] for _ in range(count)],
        "store_id": [STORES[i % 3] if i % 11 else None for i in range(count)],
        "actor_id": [actors[int(rng.integers(0, len(actors)))] for _ in range(count)],
        "as_of": moments,
    })  # fmt: skip
    # Half the rows ask about the entity whose purchase set the moment.
    purchase_rows = lines.sample(40, random_state=1)
    for index, (_, line) in enumerate(purchase_rows.iterrows()):
        for shift in range(5):
            row = index * 5 + shift
            if row % 2 == 0:
                rows.loc[row, ["person_id", "sku", "store_id"]] = [
                    line["person_id"],
                    line["sku"],
                    line["store_id"],
                ]
    return rows


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from shelfwise.identity.spark import local_spark

    session = local_spark(app_name="shelfwise-features", cores=2)
    yield session
    session.stop()


def test_features_on_spark_equal_those_in_duckdb(spark: Any, tmp_path: Path) -> None:
    from shelfwise.features.spark import SparkFeatures, spark_tables_from_store

    rng = np.random.default_rng(11)
    world = contract_world(rng)
    workspace = Workspace(Settings(workspace=tmp_path / "workspace"))
    workspace.init()
    store = workspace.analytic
    prices = world["price_history"]
    world["price_history"] = prices[prices["store_id"] == "s1"]
    for table in TABLES:
        if table in world:
            report = workspace.ingest(table, world[table])
            assert report.quarantined == 0, (table, report.reasons, report.examples)
    given = {
        "price_history": "INSERT INTO price_history BY NAME SELECT * FROM _given",
        "person_map": "CREATE TABLE person_map AS SELECT * FROM _given",
        "stitched_events": "CREATE TABLE stitched_events AS SELECT * FROM _given",
    }
    world["price_history"] = prices[prices["store_id"] != "s1"]
    for relation, sql in given.items():
        store.connection.register("_given", world[relation])
        store.execute(sql)
        store.connection.unregister("_given")
    rows = labelled_rows(world, rng)

    offline = OfflineFeatures(store).frame(rows)
    names = [*TABLES, "person_map", "stitched_events"]
    on_spark_features = SparkFeatures(spark, spark_tables_from_store(spark, store, names))
    try:
        on_spark = on_spark_features.frame(rows)
    finally:
        on_spark_features.close()
    workspace.close()

    assert list(on_spark.columns) == list(offline.columns)
    assert on_spark.attrs == offline.attrs
    for column in offline.columns.difference(rows.columns):
        expected, got = offline[column], on_spark[column]
        if expected.dtype == object:
            assert expected.tolist() == got.tolist(), column
        else:
            np.testing.assert_allclose(
                got.to_numpy(np.float64), expected.to_numpy(np.float64),
                rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=column,
            )  # fmt: skip
    # The world exercises what it is meant to.
    assert (offline["person_purchases_missing"] == 0).sum() > 50
    for column in ("orders_7d", "orders_1d", "store_orders_7d", "session_events",
                   "sessions_total", "views_decayed", "pp_purchases", "category_purchases",
                   "brand_purchases", "display_stores", "promotion_discount_pct",
                   "coupon_available", "coupon_campaigns", "on_hand", "shelf_price",
                   "person_records"):  # fmt: skip
        assert (offline[column] > 0).any(), column
    assert offline["age_band"].notna().any()
    assert offline["household_size"].isin(["2", "5+"]).any()
