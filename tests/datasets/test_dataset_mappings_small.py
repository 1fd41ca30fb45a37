"""Mappings and truth helpers on small hand-made frames with known answers."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import pytest

from shelfwise.datasets._frames import contract_frame, json_records
from shelfwise.datasets.identity import (
    FEBRL_COLUMNS,
    abt_buy_to_products,
    febrl_entity_id,
    febrl_to_customer_records,
    febrl_true_links,
    febrl_true_pairs,
    parse_price,
    true_pairs_within,
)
from shelfwise.datasets.survival import cdnow_to_orders

ContractCheck = Callable[[pd.DataFrame, str], None]


def _febrl(rows: list[list[str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FEBRL_COLUMNS)).astype("string")


DOB_OK = ["19800229", "0012345"]  # a leap day, and a soc_sec_id with leading zeros
DOB_BAD = ["19371233", "0012345"]  # day 33: corrupted on purpose
FEBRL = _febrl(
    [
        ["rec-7-org", "ann", "lee", "12", "main st", "unit 4", "carlton", "3053", "vic", *DOB_OK],
        ["rec-7-dup-0", "anne", None, None, "main st", None, "carlton", "3053", None, *DOB_BAD],
        ["rec-12-dup-3", None, "ng", "5", None, "farm", None, "2000", "nsw", None, "42"],
    ]
)


def test_febrl_entity_id() -> None:
    ids = pd.Series(["rec-0-org", "rec-123-dup-4", "rec-9-dup-0"], dtype="string")
    assert febrl_entity_id(ids).tolist() == [0, 123, 9]
    with pytest.raises(ValueError, match="rec-<N>"):
        febrl_entity_id(pd.Series(["rec-1-org", "rec-x-org"]))


def test_febrl_truth_pairs_and_links() -> None:
    pairs = febrl_true_pairs(FEBRL)
    assert pairs.to_dict("records") == [{"rec_id_l": "rec-7-dup-0", "rec_id_r": "rec-7-org"}]
    other = _febrl([["rec-12-org", *[None] * 10], ["rec-99-org", *[None] * 10]])
    links = febrl_true_links(FEBRL, other)
    assert links.to_dict("records") == [{"rec_id_l": "rec-12-dup-3", "rec_id_r": "rec-12-org"}]


def test_true_pairs_within_counts_every_unordered_pair() -> None:
    frame = pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "entity": [1, 1, 1, 2, 3]})
    pairs = true_pairs_within(frame, "id", "entity")
    assert list(map(tuple, pairs.to_numpy())) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_febrl_to_customer_records(contract_check: ContractCheck) -> None:
    records = febrl_to_customer_records(FEBRL, "febrl-test")
    contract_check(records, "customer_records")
    assert records["address_line"].tolist() == ["12 main st, unit 4", "main st", "5, farm"]
    assert records["date_of_birth"].iloc[0] == pd.Timestamp("1980-02-29")
    assert records["date_of_birth"].iloc[1:].isna().all()
    attributes = [json.loads(a) for a in records["attributes"]]
    assert attributes[0] == {"state": "vic", "soc_sec_id": "0012345", "date_of_birth_raw": None}
    assert attributes[1]["date_of_birth_raw"] == "19371233"  # corrupted, kept raw
    assert attributes[2]["date_of_birth_raw"] is None  # empty, nothing to keep
    assert records["last_name"].isna().tolist() == [False, True, False]
    assert (records["country"] == "AU").all()


def test_parse_price() -> None:
    text = pd.Series(["$1,234.00", "$9.99", None, "call"], dtype="string")
    assert parse_price(text).tolist()[:2] == [1234.0, 9.99]
    assert parse_price(text).iloc[2:].isna().all()


def test_abt_buy_to_products(contract_check: ContractCheck) -> None:
    abt = pd.DataFrame({"id": ["1"], "name": ["tv"], "description": [None], "price": ["$5.00"]})
    buy = pd.DataFrame(
        {"id": ["1"], "name": ["TV"], "description": ["big"], "manufacturer": ["Sony"]}
        | {"price": [None]}
    )
    products = abt_buy_to_products(abt.astype("string"), buy.astype("string"))
    contract_check(products, "products")
    assert products["sku"].tolist() == ["abt:1", "buy:1"]
    assert products["manufacturer"].isna().tolist() == [True, False]
    assert products["price"].iloc[0] == 5.0


def test_cdnow_orders_number_same_day_purchases(contract_check: ContractCheck) -> None:
    purchases = pd.DataFrame(
        {
            "customer_id": [2, 2, 3],
            "date": pd.Series(["1997-01-12", "1997-01-12", "1997-01-12"], dtype="string"),
            "quantity": [1, 5, 2],
            "amount": [12.0, 77.0, 0.0],
        }
    )
    tables = cdnow_to_orders(purchases)
    contract_check(tables.orders, "orders")
    contract_check(tables.order_lines, "order_lines")
    contract_check(tables.products, "products")
    assert tables.orders["order_id"].tolist() == [
        "cdnow-2-1997-01-12-1",
        "cdnow-2-1997-01-12-2",
        "cdnow-3-1997-01-12-1",
    ]
    assert tables.order_lines["sales_value"].tolist() == [12.0, 77.0, 0.0]


def test_json_records_and_empty_rows() -> None:
    frame = pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": ["x/y", None]})
    records = json_records(frame)
    assert json.loads(records.iloc[0]) == {"a": 1, "b": "x/y"}
    assert pd.isna(records.iloc[1])
    assert json.loads(json_records(frame, null_if_empty=False).iloc[1]) == {"a": None, "b": None}


def test_contract_frame_refuses_unknown_columns_and_repeated_keys() -> None:
    with pytest.raises(ValueError, match="no columns"):
        contract_frame("products", {"sku": "a", "colour": "red"}, 1)
    with pytest.raises(ValueError, match="repeat a key"):
        contract_frame("products", {"sku": "a"}, 2)
