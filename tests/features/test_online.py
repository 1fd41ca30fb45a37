"""The online store: parity with the offline frame, versions, freshness, in-process and Redis."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from shelfwise.features.definitions import FEATURE_VERSIONS, FeatureVersionError
from shelfwise.features.online import KEY_SEPARATOR, entity_keys
from shelfwise.features.parity import check_parity, order_batches
from shelfwise.features.retail import PERSON_PURCHASES, RETAIL_FEATURE_SETS
from shelfwise.features.store import FRESHNESS, FeatureStore
from shelfwise.workspace import Workspace

START, END = pd.Timestamp("2024-02-10"), pd.Timestamp("2024-03-20")


def test_events_replayed_into_the_online_store_match_the_offline_frame(
    shop_workspace: Workspace,
) -> None:
    store = FeatureStore(shop_workspace, online_url="memory://")
    report = check_parity(store, START, END, sample=300, batch_rows=250, seed=1)
    assert report.replayed_rows > 1_000
    assert report.batches > 3
    assert report.entities_compared > 300
    assert report.features_compared >= 80
    assert report.mismatched == {}, report.to_dict()


@pytest.mark.service
def test_parity_holds_on_redis_too(shop_workspace: Workspace, redis_url: str) -> None:
    store = FeatureStore(shop_workspace, online_url=redis_url)
    report = check_parity(store, START, END, sample=200, batch_rows=400, seed=2)
    assert report.ok, report.to_dict()
    memory = FeatureStore(shop_workspace, online_url="memory://")
    memory.materialise(as_of=END.to_pydatetime())
    store.materialise(as_of=END.to_pydatetime())
    asked = pd.DataFrame(
        {"person_id": ["P0001", "P0002", "nobody"], "sku": "sku0003", "as_of": END}
    )
    from_redis, from_memory = store.vectors(asked), memory.vectors(asked)
    pd.testing.assert_frame_equal(from_redis, from_memory)


def test_batches_never_split_an_order() -> None:
    rows = pd.DataFrame({"order_id": ["a", "a", "b", "b", "b", None, None, "c"]})
    batches = order_batches(rows, 2)
    assert [len(b) for b in batches] == [2, 3, 2, 1]
    assert sum(len(b) for b in batches) == len(rows)


def test_an_event_reaches_the_person_and_session_features_at_once(
    shop_workspace: Workspace,
) -> None:
    store = FeatureStore(shop_workspace, online_url="memory://")
    store.materialise(as_of=END.to_pydatetime())
    asked = pd.DataFrame({"person_id": ["P0003"], "sku": ["sku0007"], "as_of": [END]})
    before = store.vectors(asked)
    report = store.ingest(pd.DataFrame({
        "person_id": ["P0003", "P0003"], "sku": ["sku0007", "sku0007"],
        "kind": ["view", "add_to_cart"], "page": "product",
        "event_at": [END - pd.Timedelta(seconds=30), END - pd.Timedelta(seconds=10)],
    }))  # fmt: skip
    after = store.vectors(asked)
    assert report["seconds"] < 60  # a sanity bound; speed is measured by `bench features`
    assert after["pp_views"].iloc[0] == before["pp_views"].iloc[0] + 1
    assert after["pp_carts"].iloc[0] == before["pp_carts"].iloc[0] + 1
    assert after["session_events"].iloc[0] == 2.0
    assert after["session_seconds"].iloc[0] == pytest.approx(30.0)
    assert after["carts_decayed"].iloc[0] > before["carts_decayed"].iloc[0]
    # The product's category came from the online catalogue, so the category set moved too.
    assert after["category_views"].iloc[0] == before["category_views"].iloc[0] + 1
    assert set(after.attrs[FRESHNESS]) >= {"person_product", "session"}


def test_batches_ingested_from_many_threads_at_once_all_count(
    shop_workspace: Workspace,
) -> None:
    """The service folds events from several request threads: every batch is counted once,
    as it would be one after another (they share one DuckDB connection, which two folds at
    once broke for good: 'connection has an unfinished result')."""
    store = FeatureStore(shop_workspace, online_url="memory://")
    store.materialise(as_of=END.to_pydatetime())
    asked = pd.DataFrame({"person_id": ["P0003"], "sku": ["sku0007"], "as_of": [END]})
    before = store.vectors(asked)["pp_views"].iloc[0]
    seen = END - pd.Timedelta(seconds=5)
    view = pd.DataFrame(
        {"person_id": ["P0003"], "sku": ["sku0007"], "kind": ["view"], "event_at": [seen]}
    )
    threads = 8
    with ThreadPoolExecutor(threads) as pool:
        reports = list(pool.map(lambda _: store.ingest(view), range(threads * 3)))
    assert [r["rows"] for r in reports] == [1] * threads * 3
    assert store.vectors(asked)["pp_views"].iloc[0] == before + threads * 3


def test_vectors_of_another_version_are_refused(shop_workspace: Workspace) -> None:
    store = FeatureStore(shop_workspace, online_url="memory://")
    with pytest.raises(LookupError, match="materialise"):
        store.vectors(pd.DataFrame({"person_id": ["P0001"]}))
    store.materialise(as_of=END.to_pydatetime(), sets=["person_purchases"])
    vector = store.vectors(pd.DataFrame({"person_id": ["P0001"]}), sets=["person_purchases"])
    assert vector.attrs[FEATURE_VERSIONS] == {"person_purchases": PERSON_PURCHASES.version}
    changed = dataclasses.replace(PERSON_PURCHASES, stream=PERSON_PURCHASES.stream + " AND true")
    newer = FeatureStore(shop_workspace, online_url="memory://")
    newer.backend = store.backend  # the same stored states, read by a newer definition
    newer.sets = (changed,)
    with pytest.raises(FeatureVersionError, match="materialise it again"):
        newer.vectors(pd.DataFrame({"person_id": ["P0001"]}))
    with pytest.raises(FeatureVersionError, match="trained on"):
        store.vectors(
            pd.DataFrame({"person_id": ["P0001"]}),
            sets=["person_purchases"],
            expected_versions={"person_purchases": "123456789abc"},
        )


def test_freshness_is_reported_against_each_target(shop_workspace: Workspace) -> None:
    store = FeatureStore(shop_workspace, online_url="memory://")
    assert not store.freshness()["product"]["ok"]
    store.materialise(as_of=END.to_pydatetime())
    store.ingest(pd.DataFrame({"person_id": ["P0001"], "kind": ["view"], "sku": ["sku0001"],
                               "event_at": [END]}))  # fmt: skip
    report = store.freshness()
    assert set(report) == {s.name for s in RETAIL_FEATURE_SETS}
    assert all(item["ok"] for item in report.values()), report
    assert report["session"]["ingest_seconds"] <= report["session"]["target_seconds"]
    assert report["product"]["as_of"] == END.isoformat()


def test_bad_interactions_are_refused_with_the_column_named(shop_workspace: Workspace) -> None:
    store = FeatureStore(shop_workspace, online_url="memory://")
    with pytest.raises(ValueError, match="event_at"):
        store.ingest(pd.DataFrame({"person_id": ["P1"], "kind": ["view"]}))
    with pytest.raises(ValueError, match="event_at"):
        store.ingest(pd.DataFrame({"person_id": ["P1"], "event_at": ["not a time"]}))


def test_posted_events_reach_their_person_by_record_or_by_session(
    shop_workspace: Workspace,
) -> None:
    from shelfwise.features.events import EventFeed

    store = FeatureStore(shop_workspace, online_url="memory://")
    store.materialise(as_of=END.to_pydatetime())
    feed = EventFeed(store)
    asked = pd.DataFrame({"person_id": ["P0004"], "sku": ["sku0009"], "as_of": [END]})
    before = store.vectors(asked)
    moment = END - pd.Timedelta(minutes=5)
    events = pd.DataFrame({
        "occurred_at": [moment, moment + pd.Timedelta(seconds=20), moment],
        "source_system": "loyalty_card",  # the loyalty app: its customer_ref is the card
        "event_type": ["login", "view", "purchase"],
        "customer_ref": ["c4", None, "c4"],  # the view is anonymous, in the login's session
        "session_id": ["new-session", "new-session", "new-session"],
        "anonymous_id": "a-cookie",
        "sku": [None, "sku0009", "sku0009"],
        "context": [None, '{"page": "product"}', None],
    })  # fmt: skip
    report = feed.ingest(events)
    after = store.vectors(asked)
    assert report["events"] == 3
    assert report["attributed"] == 2  # the purchase echo is left to its order
    assert after["pp_views"].iloc[0] == before["pp_views"].iloc[0] + 1
    assert after["session_events"].iloc[0] == 2.0
    assert after["pp_purchases"].iloc[0] == before["pp_purchases"].iloc[0]
    stranger = feed.interactions(events.assign(customer_ref=None, session_id="other"))
    assert stranger["person_id"].isna().all()
    assert set(stranger["actor_id"]) == {"anonymous:a-cookie"}
    with pytest.raises(ValueError, match="event_type"):
        feed.ingest(events.drop(columns="event_type"))


def test_entity_keys_join_text_and_object_columns_and_leave_missing_keys_none() -> None:
    persons = np.array(["p1", "p2", "p3", "p4"])  # fixed-width text
    categories = np.array(["milk", None, np.nan, 7], dtype=object)
    keys = entity_keys({"person_id": persons, "category": categories}, ["person_id", "category"])
    assert keys == [f"p1{KEY_SEPARATOR}milk", None, None, f"p4{KEY_SEPARATOR}7"]
    assert entity_keys({"sku": categories}, ["sku"]) == ["milk", None, None, "7"]
    # a pandas column takes the row-by-row path, to the same keys
    frame = pd.DataFrame({"person_id": persons, "category": categories})
    assert entity_keys(frame, ["person_id", "category"]) == keys
