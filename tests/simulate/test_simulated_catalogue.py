"""The legacy catalogue: old skus for a share of products, written differently, with truth."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from shelfwise.simulate import LegacyCatalogue, legacy_catalogue, simulate_market

ContractCheck = Callable[[pd.DataFrame, str], None]


@pytest.fixture(scope="module")
def products() -> pd.DataFrame:
    return simulate_market(seed=2, n_products=300, n_stores=1, n_weeks=1).products


@pytest.fixture(scope="module")
def legacy(products: pd.DataFrame) -> LegacyCatalogue:
    return legacy_catalogue(products, seed=3, share=0.4)


def test_legacy_rows_are_products_with_new_skus(
    legacy: LegacyCatalogue, products: pd.DataFrame, assert_contract: ContractCheck
) -> None:
    assert_contract(legacy.products, "products")
    assert len(legacy.products) == 120
    assert not legacy.products["sku"].isin(products["sku"]).any()
    assert legacy.truth["legacy_sku"].tolist() == legacy.products["sku"].tolist()
    assert legacy.truth["sku"].is_unique
    assert legacy.truth["sku"].isin(products["sku"]).all()


def test_legacy_rows_differ_but_stay_recognisable(
    legacy: LegacyCatalogue, products: pd.DataFrame
) -> None:
    pairs = legacy.truth.merge(
        legacy.products, left_on="legacy_sku", right_on="sku", suffixes=("", "_legacy")
    ).merge(products, on="sku", suffixes=("_legacy", ""))
    assert (pairs["title_legacy"] != pairs["title"]).mean() > 0.4
    assert (pairs["title_legacy"].str.upper() == pairs["title"].str.upper()).mean() > 0.2
    assert (pairs["size_legacy"].fillna("") != pairs["size"]).mean() > 0.3
    assert ((pairs["price_legacy"] / pairs["price"] - 1).abs() <= 0.1 + 0.01).all()
    assert (pairs["department_legacy"] == pairs["department"]).all()


def test_same_seed_same_legacy_rows(products: pd.DataFrame) -> None:
    first = legacy_catalogue(products, seed=8)
    assert_frame_equal(first.products, legacy_catalogue(products, seed=8).products)
    assert not first.products.equals(legacy_catalogue(products, seed=9).products)
