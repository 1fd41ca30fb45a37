"""Every row is accepted or quarantined with its reason; the counts always add up."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from shelfwise.data.ingest import ingest
from shelfwise.data.store import AnalyticStore
from shelfwise.data.validation import ContractError

PRODUCTS = pd.DataFrame({"sku": ["A1", "A2", "A3"], "title": ["milk", "bread", "beer"]})

HEADER = "event_id,occurred_at,source_system,event_type,customer_ref,anonymous_id,sku,quantity"
EVENTS_CSV = (
    HEADER
    + """,price,colour
e1,2017-03-01 10:00:00,web,view,c1,,A1,1,1.2,red
e2,2017-13-45 10:00:00,web,view,c1,,A1,1,1.2,
e3,2017-03-01T10:00:00+02:00,web,purchase,c1,,A2,-2,2.0,
e4,2017-03-01 10:00:00,web,purchase,c1,,A2,abc,2.0,
e5,2017-03-01 10:00:00,web,purchase,c1,,ZZZ,1,2.0,
,2017-03-01 10:00:00,web,view,c1,,A1,1,1.2,
e1,2017-03-02 10:00:00,web,view,c1,,A1,1,1.2,
e8,2017-03-01 10:00:00,web,teleport,c1,,A1,1,1.2,
e9,2017-03-01 10:00:00,web,view,,,A1,1,1.2,
e10,2017-03-01T10:00:00+02:00,web,view,,anon9,A3,1.5,1.2,blue
e11,2117-03-01 10:00:00,web,view,c1,,A1,1,1.2,
"""
)
EXPECTED_REASONS = {
    2: ["occurred_at: not a valid timestamp"],
    3: ["quantity: negative"],
    4: ["quantity: not a valid number"],
    5: ["sku: unknown (not in products)"],
    6: ["event_id: missing required value"],
    7: ["duplicate key in this source"],
    8: ["event_type: not one of view, click, add_to_cart, remove_from_cart, purchase, search, "
        "return, login"],
    9: ["event has none of customer_ref, anonymous_id or session_id"],
    11: ["occurred_at: implausible time (before 1970 or in the future)"],
}  # fmt: skip


@pytest.fixture
def store() -> AnalyticStore:
    store = AnalyticStore("duckdb:///:memory:")
    ingest(store, "products", PRODUCTS)
    return store


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS_CSV)
    return path


def test_broken_rows_are_quarantined_with_their_reason_and_row(
    store: AnalyticStore, events_csv: Path
) -> None:
    report = ingest(store, "events", events_csv)
    assert (report.rows_in, report.accepted, report.quarantined) == (11, 2, 9)
    assert report.rows_in == report.accepted + report.quarantined
    quarantined = store.quarantine("events")
    found = {int(r.source_row): list(r.reasons) for r in quarantined.itertuples()}
    assert found == EXPECTED_REASONS
    assert sum(report.reasons.values()) == 9
    raw = json.loads(quarantined.set_index("source_row").loc[4, "raw"])
    assert raw["quantity"] == "abc"  # kept exactly as the file wrote it
    assert set(quarantined["source"]) == {str(events_csv.resolve())}


def test_accepted_rows_are_typed_and_times_are_utc(store: AnalyticStore, events_csv: Path) -> None:
    ingest(store, "events", events_csv)
    rows = store.frame("SELECT event_id, occurred_at, quantity, _extras FROM events ORDER BY 1")
    assert list(rows["event_id"]) == ["e1", "e10"]
    assert rows.loc[1, "occurred_at"] == pd.Timestamp("2017-03-01 08:00:00")  # +02:00 -> UTC
    assert rows.loc[1, "quantity"] == 1.5
    assert json.loads(rows.loc[0, "_extras"]) == {"colour": "red"}


def test_reingesting_the_same_file_is_idempotent(store: AnalyticStore, events_csv: Path) -> None:
    first = ingest(store, "events", events_csv)
    second = ingest(store, "events", events_csv)
    assert (second.inserted, second.unchanged, second.quarantined) == (0, first.accepted, 9)
    assert store.count("events") == first.accepted
    assert int(store.execute("SELECT count(*) FROM _quarantine")[0][0]) == 9


def test_quarantined_rows_pass_once_their_reference_arrives(
    store: AnalyticStore, events_csv: Path
) -> None:
    ingest(store, "events", events_csv)
    ingest(store, "products", pd.DataFrame({"sku": ["ZZZ"]}))
    again = ingest(store, "events", events_csv)
    assert again.inserted == 1
    assert "sku: unknown (not in products)" not in again.reasons


def test_a_changed_event_is_refused_but_a_changed_product_is_updated(store: AnalyticStore) -> None:
    event = {"event_id": ["x"], "occurred_at": ["2017-01-01"], "source_system": ["web"],
             "event_type": ["view"], "customer_ref": ["c"], "sku": ["A1"]}  # fmt: skip
    ingest(store, "events", pd.DataFrame(event))
    changed = ingest(store, "events", pd.DataFrame({**event, "sku": ["A2"]}))
    assert changed.reasons == {"key already stored with different values": 1}
    updated = ingest(store, "products", pd.DataFrame({"sku": ["A1"], "title": ["oat milk"]}))
    assert (updated.updated, updated.inserted) == (1, 0)
    assert store.execute("SELECT title FROM products WHERE sku = 'A1'") == [("oat milk",)]


def test_missing_required_column_refuses_the_file_and_names_it(store: AnalyticStore) -> None:
    frame = pd.DataFrame({"event_id": ["e1"], "source_system": ["web"], "event_type": ["view"]})
    with pytest.raises(ContractError, match="lacks required column\\(s\\) occurred_at"):
        ingest(store, "events", frame)
    assert store.count("events") == 0


def test_schema_drift_is_reported(store: AnalyticStore, tmp_path: Path) -> None:
    first = pd.DataFrame({"sku": ["B1"], "price": [1.5]})
    first.to_parquet(tmp_path / "a.parquet")
    ingest(store, "products", tmp_path / "a.parquet")
    second = pd.DataFrame({"sku": ["B2"], "price": ["cheap"], "shelf": ["top"]})
    second.to_parquet(tmp_path / "b.parquet")
    report = ingest(store, "products", tmp_path / "b.parquet")
    kinds = {(d["kind"], d["column"]) for d in report.drift}
    assert ("new_column", "shelf") in kinds
    assert ("retyped_column", "price") in kinds
    assert ("type_changed", "price") in kinds
    assert ("missing_column", "brand") in kinds
    assert report.reasons == {"price: not a valid number": 1}


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "csv", "parquet", "jsonl"])
def test_every_source_kind_reads_the_same_rows(kind: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"sku": ["s1", "s2", "s2"], "price": [1.0, -2.0, 3.0]})
    data: object = {
        "pandas": frame,
        "polars": pl.from_pandas(frame),
        "arrow": pa.Table.from_pandas(frame),
    }.get(kind)
    if data is None:
        path = tmp_path / f"products.{kind}"
        if kind == "csv":
            frame.to_csv(path, index=False)
        elif kind == "parquet":
            frame.to_parquet(path)
        else:
            frame.to_json(path, orient="records", lines=True)
        data = path
    store = AnalyticStore("duckdb:///:memory:")
    report = ingest(store, "products", data)
    assert (report.accepted, report.quarantined) == (1, 2)
    assert report.reasons == {"price: negative": 1, "duplicate key in this source": 1}


def test_column_map_renames_source_columns(store: AnalyticStore) -> None:
    frame = pd.DataFrame({"SKU Code": ["C1"], "Name": ["cheese"]})
    report = ingest(store, "products", frame, column_map={"SKU Code": "sku", "Name": "title"})
    assert report.accepted == 1
    assert store.execute("SELECT title FROM products WHERE sku = 'C1'") == [("cheese",)]


def test_unknown_table_lists_the_contract(store: AnalyticStore) -> None:
    with pytest.raises(ValueError, match="unknown table 'baskets'; the contract has"):
        ingest(store, "baskets", PRODUCTS)


def test_a_read_only_store_reads_and_leaves_the_file_as_it_is(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'analytic.duckdb'}"
    writer = AnalyticStore(url)
    writer.create_tables()
    writer.execute("INSERT INTO stores (store_id) VALUES ('s1')")
    writer.close()
    reader = AnalyticStore(url, read_only=True)
    reader.create_tables()  # nothing to do, and no error
    assert reader.count("stores") == 1
    reader.execute("CREATE TEMP TABLE scratch AS SELECT * FROM stores")  # temporary: allowed
    with pytest.raises(duckdb.Error, match="read-only"):
        reader.execute("INSERT INTO stores (store_id) VALUES ('s2')")
    reader.close()
    memory = AnalyticStore("duckdb:///:memory:", read_only=True)
    assert memory.read_only is False  # nothing to share
