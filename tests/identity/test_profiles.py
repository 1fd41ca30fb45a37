"""360° profiles: hand-made orders and events with known RFM and affinities, then a simulated
world end to end.

The hand-made world: P1 (loyalty card h1 and web account w1) buys o1, o2 and, later, o4; P2
(card h2) buys o3; P3 (crm record c3, created late) never buys. P1's web events are stitched.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from shelfwise.data.ingest import ingest
from shelfwise.data.store import AnalyticStore
from shelfwise.identity.profiles import build_profiles
from shelfwise.identity.sessions import stitch_sessions
from shelfwise.simulate import (
    fragment_customers,
    simulate_churn,
    simulate_people,
    simulate_sessions,
)

T = pd.Timestamp
PRODUCTS = pd.DataFrame(
    {
        "sku": ["A", "B", "C", "D"],
        "department": ["Grocery", "Grocery", "Drinks", None],
        "category": ["Dairy", "Bakery", "Beer", None],
        "brand": ["Brandy", "Crust", None, None],
    }
)
RECORDS = pd.DataFrame(
    {
        "source_system": ["loyalty_card", "web", "loyalty_card", "crm"],
        "source_id": ["h1", "w1", "h2", "c3"],
        "created_at": [T("2017-01-01"), T("2017-02-01"), T("2017-01-10"), T("2017-04-20")],
        "updated_at": [T("2017-01-05"), T("2017-02-15"), T("2017-01-10"), T("2017-04-20")],
    }
)
PERSON_MAP = [
    ("loyalty_card", "h1", "P1"),
    ("web", "w1", "P1"),
    ("loyalty_card", "h2", "P2"),
    ("crm", "c3", "P3"),
]
ORDERS = pd.DataFrame(
    {
        "order_id": ["o1", "o2", "o3", "o4"],
        "ordered_at": [T("2017-03-01"), T("2017-03-10"), T("2017-04-01"), T("2017-05-01")],
        "source_system": "loyalty_card",
        "customer_ref": ["h1", "h1", "h2", "h1"],
        "channel": ["store", "web", "store", "store"],
    }
)
LINES = pd.DataFrame(
    {
        "order_id": ["o1", "o1", "o2", "o2", "o3", "o4"],
        "line_id": ["1", "2", "1", "2", "1", "1"],
        "sku": ["A", "B", "C", "D", "A", "B"],
        "quantity": [2.0, 1.0, 1.0, 3.0, 1.0, 1.0],
        "sales_value": [6.0, 2.0, 3.0, 1.0, 3.0, 2.0],
    }
)
EVENTS = pd.DataFrame(
    {
        "event_id": ["e1", "e2", "e3"],
        "occurred_at": [T("2017-03-05 10:00"), T("2017-03-05 09:59"), T("2017-04-20")],
        "source_system": "web",
        "event_type": ["login", "view", "return"],
        "customer_ref": ["w1", None, "w1"],
        "anonymous_id": ["k1", "k1", "k3"],
        "session_id": ["s1", "s1", "s3"],
        "sku": [None, "A", "B"],
    }
)
APRIL_15 = datetime(2017, 4, 15)


def person_map_table(store: AnalyticStore, rows: list[tuple[str, str, str]]) -> None:
    store.execute(
        "CREATE TABLE person_map (source_system VARCHAR, source_id VARCHAR, person_id VARCHAR)"
    )
    store.connection.executemany("INSERT INTO person_map VALUES (?, ?, ?)", rows)


@pytest.fixture
def store() -> AnalyticStore:
    store = AnalyticStore("duckdb:///:memory:")
    for table, frame in (
        ("products", PRODUCTS),
        ("customer_records", RECORDS),
        ("orders", ORDERS),
        ("order_lines", LINES),
        ("events", EVENTS),
    ):
        assert ingest(store, table, frame).quarantined == 0, table
    person_map_table(store, PERSON_MAP)
    stitch_sessions(store)
    return store


def profiles(store: AnalyticStore, **kwargs: Any) -> dict[str, dict[str, Any]]:
    written = build_profiles(store, **kwargs)
    output = str(kwargs.get("output", "person_profiles"))
    frame = store.frame(f'SELECT * FROM "{output}"')
    assert written == len(frame)
    return {
        str(row["person_id"]): {str(k): v for k, v in row.items()}
        for row in frame.to_dict("records")
    }


def shares(value: object) -> dict[str, float]:
    assert isinstance(value, str)
    parsed: dict[str, float] = json.loads(value)
    return parsed


def test_rfm_of_persons_with_orders(store: AnalyticStore) -> None:
    p1, p2 = (profiles(store)[p] for p in ("P1", "P2"))
    assert (p1["frequency"], p1["monetary"], p1["distinct_skus"]) == (3, 14.0, 4)
    assert p1["avg_basket_value"] == pytest.approx(14 / 3)
    assert p1["avg_basket_items"] == pytest.approx((3 + 4 + 1) / 3)
    # as_of defaults to the latest order or event: o4, 2017-05-01.
    assert p1["as_of"] == T("2017-05-01")
    assert p1["recency_days"] == 0.0
    assert p2["recency_days"] == 30.0
    assert (p2["frequency"], p2["monetary"], p2["avg_basket_items"]) == (1, 3.0, 1.0)


def test_affinities_are_spend_shares_largest_first(store: AnalyticStore) -> None:
    p1 = profiles(store)["P1"]
    category = shares(p1["category_affinity"])
    assert list(category) == ["Dairy", "Bakery", "Beer"]
    assert category == pytest.approx({"Dairy": 6 / 14, "Bakery": 4 / 14, "Beer": 3 / 14})
    # sku D has no category: its spend is in the total and in no share.
    assert sum(category.values()) == pytest.approx(13 / 14)
    assert shares(p1["department_affinity"]) == pytest.approx(
        {"Grocery": 10 / 14, "Drinks": 3 / 14}
    )
    assert shares(p1["brand_affinity"]) == pytest.approx({"Brandy": 6 / 14, "Crust": 4 / 14})
    assert list(shares(profiles(store, top_k=1)["P1"]["category_affinity"])) == ["Dairy"]
    with pytest.raises(ValueError, match="top_k"):
        build_profiles(store, top_k=0)


def test_records_events_and_channels(store: AnalyticStore) -> None:
    p1 = profiles(store)["P1"]
    assert list(p1["systems"]) == ["loyalty_card", "web"]
    assert list(p1["source_ids"]) == ["loyalty_card:h1", "web:w1"]
    assert p1["records"] == 2
    assert (p1["events"], p1["sessions"], p1["anonymous_events_attributed"]) == (3, 2, 1)
    assert p1["returns"] == 1
    assert p1["first_seen"] == T("2017-01-01")
    assert p1["last_seen"] == T("2017-05-01")
    use = json.loads(str(p1["channel_use"]))
    assert use["orders"] == pytest.approx({"store": 2 / 3, "web": 1 / 3})
    assert use["events"] == {"web": 1.0}


def test_a_person_with_no_orders_gets_zeros_and_nulls(store: AnalyticStore) -> None:
    p3 = profiles(store)["P3"]
    assert (p3["frequency"], p3["monetary"], p3["distinct_skus"], p3["events"]) == (0, 0.0, 0, 0)
    for column in ("recency_days", "avg_basket_value", "avg_basket_items"):
        assert pd.isna(p3[column]), column
    for column in ("category_affinity", "department_affinity", "brand_affinity"):
        assert p3[column] is None, column
    assert json.loads(str(p3["channel_use"])) == {"orders": {}, "events": {}}
    assert (p3["first_seen"], p3["last_seen"]) == (T("2017-04-20"), T("2017-04-20"))


def test_as_of_counts_only_what_came_strictly_before(store: AnalyticStore) -> None:
    rows = profiles(store, as_of=APRIL_15)
    p1, p3 = rows["P1"], rows["P3"]
    assert (p1["frequency"], p1["monetary"]) == (2, 12.0)
    assert p1["recency_days"] == 36.0  # from o2, 2017-03-10
    assert shares(p1["category_affinity"]) == pytest.approx(
        {"Dairy": 0.5, "Beer": 0.25, "Bakery": 2 / 12}
    )
    assert (p1["events"], p1["returns"]) == (2, 0)
    assert p1["last_seen"] == T("2017-03-10")
    assert rows["P2"]["recency_days"] == 14.0
    # P3's only record was created after as_of: still a row, with nothing in it.
    assert (p3["records"], list(p3["systems"])) == (0, [])
    assert pd.isna(p3["first_seen"])
    # An order exactly at as_of is not before it.
    assert profiles(store, as_of=datetime(2017, 3, 10))["P1"]["frequency"] == 1


def test_an_aware_as_of_is_read_in_utc(store: AnalyticStore) -> None:
    eastern = timezone(timedelta(hours=-5))
    build_profiles(store, as_of=datetime(2017, 4, 14, 19, tzinfo=eastern), output="aware")
    build_profiles(store, as_of=APRIL_15.replace(tzinfo=UTC), output="utc")
    build_profiles(store, as_of=APRIL_15, output="naive")
    naive = store.frame("SELECT * FROM naive")
    assert naive["as_of"].eq(T(APRIL_15)).all()
    for other in ("aware", "utc"):
        assert_frame_equal(store.frame(f"SELECT * FROM {other}"), naive)


def test_without_a_stitched_relation_events_count_by_login_alone(store: AnalyticStore) -> None:
    store.execute("DROP TABLE stitched_events")
    p1 = profiles(store)["P1"]
    assert (p1["events"], p1["anonymous_events_attributed"]) == (2, 0)


def test_a_store_with_only_a_person_map_gives_empty_profiles() -> None:
    bare = AnalyticStore("duckdb:///:memory:")
    person_map_table(bare, PERSON_MAP)
    rows = profiles(bare, output="bare_profiles")
    assert sorted(rows) == ["P1", "P2", "P3"]
    assert {r["frequency"] for r in rows.values()} == {0}
    assert all(pd.isna(r["as_of"]) for r in rows.values())


def test_a_simulated_world_profiles_end_to_end() -> None:
    people = simulate_people([str(1000 + i) for i in range(2000)], seed=7)
    customers = fragment_customers(people, seed=7)
    sessions = simulate_sessions(people, customers, seed=7)
    churn = simulate_churn(seed=7, n_customers=300, weeks=30)
    skus = [f"SKU-{i:05d}" for i in range(1, 201)]
    products = pd.DataFrame(
        {
            "sku": skus,
            "department": [f"dept-{i % 4}" for i in range(200)],
            "category": [f"cat-{i % 10}" if i % 9 else None for i in range(200)],
            "brand": [f"brand-{i % 7}" for i in range(200)],
        }
    )
    store = AnalyticStore("duckdb:///:memory:")
    for table, frame in (
        ("products", products),
        ("customer_records", customers.records),
        ("customer_records", churn.customers),
        ("events", sessions.events),
        ("orders", churn.orders),
        ("order_lines", churn.order_lines),
    ):
        assert ingest(store, table, frame).quarantined == 0, table
    # The churn world's 300 loyalty cards belong to the first 300 simulated persons.
    cards = pd.DataFrame(
        {
            "source_system": "loyalty_card",
            "source_id": churn.customers["source_id"].astype(str),
            "person_id": people["person_id"].astype(str).head(300).to_numpy(),
        }
    )
    truth = pd.concat([customers.truth.astype(str), cards], ignore_index=True)
    store.connection.register("truth", truth)
    store.execute("CREATE TABLE person_map AS SELECT * FROM truth")
    report = stitch_sessions(store)

    written = build_profiles(store)
    assert written == truth["person_id"].nunique() == store.count("person_profiles")
    totals = store.execute(
        "SELECT sum(frequency), sum(monetary), sum(events), sum(anonymous_events_attributed), "
        "count(*) FILTER (frequency > 0), count(*) FILTER (frequency = 0 AND recency_days "
        "IS NULL AND category_affinity IS NULL) FROM person_profiles"
    )[0]
    assert totals[0] == len(churn.orders)
    assert totals[1] == pytest.approx(churn.order_lines["sales_value"].sum())
    assert totals[2] == store.count("stitched_events")
    assert totals[3] == report.attributed_anonymous
    assert totals[4] + totals[5] == written
    most = store.execute(
        "SELECT max(s) FROM (SELECT sum(CAST(value AS DOUBLE)) AS s FROM person_profiles, "
        "json_each(category_affinity) GROUP BY person_id)"
    )[0][0]
    assert most <= 1 + 1e-9

    middle = churn.orders["ordered_at"].sort_values().iloc[len(churn.orders) // 2]
    build_profiles(store, as_of=middle.to_pydatetime(), output="profiles_then")
    before = store.execute("SELECT sum(frequency) FROM profiles_then")[0][0]
    assert before == (churn.orders["ordered_at"] < middle).sum()
