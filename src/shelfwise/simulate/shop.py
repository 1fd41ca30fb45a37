"""A small shop with every table the feature store reads, deterministic by seed.

For tests and smoke benchmarks of the feature store: a catalogue with price history, stock
snapshots, weekly display and mailer promotions and overlapping coupon campaigns; loyalty
customers with demographics and their own repurchase cycles; orders whose lines sometimes share
a moment with another order; browsing sessions (some anonymous, stitched to their person by
cookie) with gaps that split them. Identity is given (``person_map`` and ``stitched_events``),
since the feature store's correctness does not depend on how it was resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shelfwise.data.frames import contract_frame
from shelfwise.workspace import Workspace

START = pd.Timestamp("2024-01-01")
DEPARTMENTS = ("GROCERY", "PRODUCE", "DRUG GM", "MEAT")
LOAD_ORDER = (
    "stores", "products", "customer_records", "campaigns", "orders", "order_lines",
    "events", "promotions", "price_history", "inventory_snapshots",
)  # fmt: skip


@dataclass(frozen=True)
class SimulatedShop:
    tables: dict[str, pd.DataFrame]  # contract tables by name
    person_map: pd.DataFrame  # source_system, source_id, person_id
    stitched_events: pd.DataFrame  # event_id, person_id
    start: pd.Timestamp
    end: pd.Timestamp


def simulate_shop(
    seed: int = 0, persons: int = 60, products: int = 80, days: int = 120
) -> SimulatedShop:
    rng = np.random.default_rng(seed)
    end = START + pd.Timedelta(days=days)
    skus = [f"sku{i:04d}" for i in range(products)]
    price = np.round(rng.uniform(0.5, 20.0, products), 2)
    tables: dict[str, pd.DataFrame] = {}
    tables["stores"] = contract_frame(
        "stores", {"store_id": ["s1", "s2", "s3"], "format": "store"}, 3
    )
    tables["products"] = contract_frame(
        "products",
        {
            "sku": skus,
            "title": [f"product {i}" for i in range(products)],
            "department": rng.choice(DEPARTMENTS, products),
            "category": [f"cat{i}" for i in rng.integers(0, 10, products)],
            "brand": rng.choice(["National", "Private", "Local"], products),
            "manufacturer": [f"m{i}" for i in rng.integers(0, 6, products)],
            "price": price,
            "cost": np.where(rng.random(products) < 0.7, np.round(price * 0.6, 2), np.nan),
            "launch_date": START - pd.to_timedelta(rng.integers(0, 400, products), unit="D"),
            "sensitive_category": ["health" if r < 0.1 else None for r in rng.random(products)],
        },
        products,
    )
    people = [f"P{i:04d}" for i in range(persons)]
    attributes = [
        json.dumps({"age": str(rng.choice(["25-34", "35-44", "45-54"])), "income": "50-74K"})
        for _ in people
    ]
    tables["customer_records"] = contract_frame(
        "customer_records",
        {
            "source_system": "loyalty_card",
            "source_id": [f"c{i}" for i in range(persons)],
            "loyalty_id": [f"c{i}" for i in range(persons)],
            "created_at": [START] * persons,
            "updated_at": [START] * persons,
            "attributes": attributes,
        },
        persons,
    )
    tables["campaigns"] = contract_frame(
        "campaigns",
        {
            "campaign_id": ["k1", "k2", "k3"],
            "starts_at": [START + pd.Timedelta(days=d) for d in (10, 20, 70)],
            "ends_at": [START + pd.Timedelta(days=d) for d in (40, 35, 90)],
        },
        3,
    )
    orders, lines = _orders(rng, persons, skus, price, days)
    tables["orders"] = contract_frame("orders", orders, len(orders["order_id"]))
    tables["order_lines"] = contract_frame("order_lines", lines, len(lines["order_id"]))
    events, stitched = _events(rng, people, skus, days)
    tables["events"] = contract_frame("events", events, len(events["event_id"]))
    promotions = _promotions(rng, skus, days)
    tables["promotions"] = contract_frame("promotions", promotions, len(promotions["promotion_id"]))
    priced = skus[:20]
    changes = [(sku, d) for sku in priced for d in sorted({0, *rng.integers(1, days, 3).tolist()})]
    tables["price_history"] = contract_frame(
        "price_history",
        {
            "sku": [s for s, _ in changes],
            "store_id": "s1",
            "valid_from": [START + pd.Timedelta(days=d, hours=9) for _, d in changes],
            "price": np.round(rng.uniform(0.5, 20.0, len(changes)), 2),
            "regular_price": 21.0,
        },
        len(changes),
    )
    stocked = [
        (sku, store, w) for sku in skus[:30] for store in ("s1", "s2") for w in range(0, days, 7)
    ]
    tables["inventory_snapshots"] = contract_frame(
        "inventory_snapshots",
        {
            "sku": [s for s, _, _ in stocked],
            "store_id": [st for _, st, _ in stocked],
            "snapshot_at": [START + pd.Timedelta(days=w, hours=6) for _, _, w in stocked],
            "on_hand": rng.integers(0, 40, len(stocked)).astype(float),
        },
        len(stocked),
    )
    person_map = pd.DataFrame(
        {
            "source_system": "loyalty_card",
            "source_id": [f"c{i}" for i in range(persons)],
            "person_id": people,
        }
    )
    return SimulatedShop(tables, person_map, stitched, START, end)


def _orders(
    rng: np.random.Generator, persons: int, skus: list[str], price: np.ndarray, days: int
) -> tuple[dict[str, list[object]], dict[str, list[object]]]:
    orders: dict[str, list[object]] = {
        k: []
        for k in ("order_id", "ordered_at", "source_system", "customer_ref", "store_id", "channel")
    }
    lines: dict[str, list[object]] = {
        k: [] for k in ("order_id", "line_id", "sku", "quantity", "sales_value", "discount_value")
    }
    number = 0
    for person in range(persons):
        cycle = rng.uniform(2.0, 12.0)
        favourites = rng.choice(len(skus), 6, replace=False)
        moment = rng.uniform(0, cycle)
        while moment < days:
            number += 1
            # Minutes only: two orders of one person or store sometimes share a moment.
            at = START + pd.Timedelta(minutes=int(moment * 1440) // 30 * 30)
            order_id = f"o{number}"
            orders["order_id"].append(order_id)
            orders["ordered_at"].append(at)
            orders["source_system"].append("loyalty_card")
            orders["customer_ref"].append(f"c{person}" if rng.random() > 0.05 else None)
            orders["store_id"].append(str(rng.choice(["s1", "s2", "s3"])))
            orders["channel"].append("store")
            picks = set(rng.choice(favourites, rng.integers(1, 4)).tolist())
            picks |= set(rng.integers(0, len(skus), rng.integers(0, 3)).tolist())
            for item in sorted(picks):
                quantity = float(rng.integers(1, 4))
                discount = round(float(price[item]) * 0.2, 2) if rng.random() < 0.25 else 0.0
                lines["order_id"].append(order_id)
                lines["line_id"].append(skus[item])
                lines["sku"].append(skus[item])
                lines["quantity"].append(quantity)
                lines["sales_value"].append(round(float(price[item]) * quantity - discount, 2))
                lines["discount_value"].append(discount)
            moment += rng.exponential(cycle)
    return orders, lines


def _events(
    rng: np.random.Generator, people: list[str], skus: list[str], days: int
) -> tuple[dict[str, list[object]], pd.DataFrame]:
    events: dict[str, list[object]] = {k: [] for k in (
        "event_id", "occurred_at", "source_system", "event_type", "customer_ref",
        "anonymous_id", "session_id", "device_id", "sku", "quantity", "context")}  # fmt: skip
    truth: list[tuple[str, str]] = []
    number = 0
    for index, person in enumerate(people[: len(people) * 2 // 3]):
        cookie = f"cookie-{index}"
        for session in range(int(rng.integers(2, 8))):
            moment = START + pd.Timedelta(seconds=int(rng.integers(0, days * 86_400)))
            logged_in = rng.random() < 0.5
            for _ in range(int(rng.integers(1, 9))):
                number += 1
                kind = str(rng.choice(["view", "view", "click", "add_to_cart", "search"]))
                event_id = f"e{number}"
                events["event_id"].append(event_id)
                events["occurred_at"].append(moment)
                events["source_system"].append("web_shop")
                events["event_type"].append(kind)
                events["customer_ref"].append(f"c{index}" if logged_in else None)
                events["anonymous_id"].append(cookie)
                events["session_id"].append(f"{cookie}-{session}")
                events["device_id"].append(f"device-{index}")
                events["sku"].append(
                    None if kind == "search" else skus[int(rng.integers(0, len(skus)))]
                )
                events["quantity"].append(1.0 if kind == "add_to_cart" else None)
                events["context"].append(
                    json.dumps({"page": "product" if kind != "search" else "search"})
                )
                truth.append((event_id, person))
                # Mostly seconds apart; now and then past the 30-minute session gap.
                gap = rng.integers(0, 120) if rng.random() > 0.15 else rng.integers(1_900, 4_000)
                moment += pd.Timedelta(seconds=int(gap))
    stitched = pd.DataFrame(truth, columns=["event_id", "person_id"])
    return events, stitched


def _promotions(rng: np.random.Generator, skus: list[str], days: int) -> dict[str, list[object]]:
    promotions: dict[str, list[object]] = {k: [] for k in (
        "promotion_id", "sku", "store_id", "promotion_type", "starts_at", "ends_at",
        "discount_pct", "campaign_id")}  # fmt: skip
    for week in range(0, days, 7):
        for sku in rng.choice(skus, 8, replace=False):
            for store in rng.choice(["s1", "s2", "s3"], int(rng.integers(1, 4)), replace=False):
                kind = str(rng.choice(["display", "mailer", "display_mailer", "discount"]))
                promotions["promotion_id"].append(f"w{week}-{sku}-{store}")
                promotions["sku"].append(str(sku))
                promotions["store_id"].append(str(store))
                promotions["promotion_type"].append(kind)
                promotions["starts_at"].append(START + pd.Timedelta(days=week))
                promotions["ends_at"].append(START + pd.Timedelta(days=week + 7))
                promotions["discount_pct"].append(20.0 if kind == "discount" else None)
                promotions["campaign_id"].append(None)
    windows = {"k1": (10, 40), "k2": (20, 35), "k3": (70, 90)}
    for campaign, (first, last) in windows.items():
        for sku in skus[:12]:
            promotions["promotion_id"].append(f"coupon-{campaign}-{sku}")
            promotions["sku"].append(sku)
            promotions["store_id"].append(None)
            promotions["promotion_type"].append("coupon")
            promotions["starts_at"].append(START + pd.Timedelta(days=first))
            promotions["ends_at"].append(START + pd.Timedelta(days=last))
            promotions["discount_pct"].append(None)
            promotions["campaign_id"].append(campaign)
    return promotions


def load_shop(workspace: Workspace, shop: SimulatedShop) -> None:
    """Ingest the shop's tables through the contract and write its identity tables."""
    workspace.init()
    for name in LOAD_ORDER:
        report = workspace.ingest(name, shop.tables[name])
        if report.quarantined:
            raise ValueError(f"the simulated shop's {name} broke the contract: {report.reasons}")
    store = workspace.analytic
    with store._lock:
        for name, frame in (
            ("person_map", shop.person_map),
            ("stitched_events", shop.stitched_events),
        ):
            store.connection.register("_shop_frame", frame)
            store.connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _shop_frame")
            store.connection.unregister("_shop_frame")
