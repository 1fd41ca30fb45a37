"""Point-in-time training frames on the simulated shop: nothing from the future leaks in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.features.definitions import FEATURE_VERSIONS, FeatureVersionError
from shelfwise.features.store import FeatureStore
from shelfwise.recommend import PopularityRecommender
from shelfwise.simulate.shop import SimulatedShop
from shelfwise.workspace import Workspace

MOMENT = pd.Timestamp("2024-03-01 12:00")


def labels(shop: SimulatedShop, rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "person_id": rng.choice(shop.person_map["person_id"], rows),
        "sku": rng.choice(shop.tables["products"]["sku"].astype(str), rows),
        "store_id": "s1",
        "as_of": MOMENT,
    })  # fmt: skip


def test_a_planted_future_purchase_and_view_change_nothing_before_they_happen(
    shop: SimulatedShop, shop_workspace: Workspace
) -> None:
    asked = labels(shop)
    before = FeatureStore(shop_workspace).training_frame(asked)
    person, sku = str(asked["person_id"].iloc[0]), str(asked["sku"].iloc[0])
    record = shop.person_map.loc[shop.person_map["person_id"] == person, "source_id"].iloc[0]
    # A purchase exactly at the moment asked about, one a day later, and a view a second later.
    planted = {
        "orders": pd.DataFrame({
            "order_id": ["future-1", "future-2"],
            "ordered_at": [MOMENT, MOMENT + pd.Timedelta(days=1)],
            "source_system": "loyalty_card", "customer_ref": record, "store_id": "s1",
        }),
        "order_lines": pd.DataFrame({
            "order_id": ["future-1", "future-2"], "line_id": sku, "sku": sku,
            "quantity": 500.0, "sales_value": 9_999.0,
        }),
        "events": pd.DataFrame({
            "event_id": ["future-view"], "occurred_at": [MOMENT + pd.Timedelta(seconds=1)],
            "source_system": "web_shop", "event_type": "view", "customer_ref": record, "sku": sku,
            "session_id": "future-session",
        }),
    }  # fmt: skip
    for table, frame in planted.items():
        report = shop_workspace.ingest(table, frame)
        assert report.inserted == len(frame), report.reasons
    # Events reach persons through stitching; the shop's stitching is given.
    shop_workspace.analytic.execute(
        "INSERT INTO stitched_events VALUES ('future-view', ?)", [person]
    )
    try:
        after = FeatureStore(shop_workspace).training_frame(asked)
        pd.testing.assert_frame_equal(before, after)
        later = FeatureStore(shop_workspace).training_frame(
            asked.iloc[:1].assign(as_of=MOMENT + pd.Timedelta(days=2))
        )
        assert later["pp_quantity"].iloc[0] >= 1_000.0  # both planted purchases, once visible
        assert later["pp_views"].iloc[0] >= 1.0
    finally:
        store = shop_workspace.analytic
        store.execute("DELETE FROM order_lines WHERE order_id LIKE 'future-%'")
        store.execute("DELETE FROM orders WHERE order_id LIKE 'future-%'")
        store.execute("DELETE FROM events WHERE event_id = 'future-view'")
        store.execute("DELETE FROM stitched_events WHERE event_id = 'future-view'")


def test_frames_name_their_versions_and_mark_what_is_missing(
    shop: SimulatedShop, shop_workspace: Workspace
) -> None:
    store = FeatureStore(shop_workspace)
    asked = labels(shop).iloc[:3].copy()
    asked.loc[2, "person_id"] = "nobody"
    asked.loc[2, "sku"] = "no-such-sku"
    frame = store.training_frame(asked)
    assert frame.attrs[FEATURE_VERSIONS] == store.versions()
    assert frame.loc[2, "person_purchases_missing"] == 1.0
    assert frame.loc[2, "orders_total"] == 0.0  # counts of nothing are 0
    assert np.isnan(frame.loc[2, "days_since_last_order"])  # "never" is NaN, not a number
    assert frame.loc[2, "category"] is None
    assert (frame.loc[:1, "product_attributes_missing"] == 0.0).all()
    only_products = store.training_frame(
        asked[["sku", "as_of"]], sets=["product", "product_attributes"]
    )
    assert "orders_total" not in only_products.columns
    assert set(only_products.attrs[FEATURE_VERSIONS]) == {"product", "product_attributes"}
    with pytest.raises(ValueError, match="as_of"):
        store.training_frame(asked.drop(columns="as_of"))
    with pytest.raises(ValueError, match="unknown feature sets"):
        store.training_frame(asked, sets=["nope"])


def test_a_model_refuses_features_of_another_version(
    shop: SimulatedShop, shop_workspace: Workspace
) -> None:
    frame = FeatureStore(shop_workspace).training_frame(labels(shop))
    training = frame.assign(occurred_at=frame["as_of"])
    model = PopularityRecommender().fit(training)
    assert model.feature_versions_ == frame.attrs[FEATURE_VERSIONS]
    asked = pd.DataFrame({"person_id": ["P0001"]})
    asked.attrs[FEATURE_VERSIONS] = dict(model.feature_versions_)
    assert len(model.predict(asked)) == 10
    stale = asked.copy()
    stale.attrs[FEATURE_VERSIONS] = {**model.feature_versions_, "person_purchases": "000000000000"}
    with pytest.raises(FeatureVersionError, match="person_purchases: version 000000000000"):
        model.predict(stale)
    with pytest.raises(FeatureVersionError, match="no feature versions"):
        model.predict(pd.DataFrame({"person_id": ["P0001"]}))
