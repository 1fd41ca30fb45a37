"""A market with known effects: elasticities and lifts recoverable from the contract frames."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from shelfwise.simulate import SimulatedMarket, simulate_market

ContractCheck = Callable[[pd.DataFrame, str], None]
PROMOTED = ("display", "mailer", "display_mailer")


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    return simulate_market(seed=21, n_products=12, n_stores=4, n_weeks=78)


def weekly_panel(market: SimulatedMarket) -> pd.DataFrame:
    """Units per sku, store and week rebuilt from orders, order lines, prices and promotions."""
    lines = market.order_lines.merge(market.orders, on="order_id", validate="m:1")
    lines["week_start"] = lines["ordered_at"].dt.normalize() - pd.to_timedelta(
        lines["ordered_at"].dt.weekday, unit="D"
    )
    units = lines.groupby(["sku", "store_id", "week_start"], as_index=False)["quantity"].sum()
    prices = market.price_history
    weeks = pd.DataFrame({"week_start": market.truth.seasonality["week_start"]})
    cells = prices[["sku", "store_id"]].drop_duplicates().merge(weeks, how="cross")
    cells = pd.merge_asof(
        cells.sort_values("week_start"),
        prices.sort_values("valid_from"),
        left_on="week_start",
        right_on="valid_from",
        by=["sku", "store_id"],
    )
    promotions = market.promotions[market.promotions["promotion_type"].isin(PROMOTED)]
    placed = promotions.rename(columns={"starts_at": "week_start"})[
        ["sku", "store_id", "week_start", "promotion_type"]
    ]
    panel = cells.merge(units, on=["sku", "store_id", "week_start"], how="left").merge(
        placed, on=["sku", "store_id", "week_start"], how="left", validate="1:1"
    )
    return panel.fillna({"quantity": 0.0})


def test_frames_are_contract_frames(
    market: SimulatedMarket, assert_contract: ContractCheck
) -> None:
    for table in ("products", "stores", "price_history", "promotions", "orders", "order_lines"):
        assert_contract(getattr(market, table), table)
    assert market.order_lines["sku"].isin(market.products["sku"]).all()
    assert market.orders["store_id"].isin(market.stores["store_id"]).all()
    assert market.promotions["sku"].isin(market.products["sku"]).all()
    history = market.price_history
    assert (history["valid_to"] > history["valid_from"]).all()
    assert (history["price"] <= history["regular_price"]).all()


def test_sold_units_are_the_truths_draws(market: SimulatedMarket) -> None:
    panel = weekly_panel(market)
    demand = market.truth.demand
    merged = demand.merge(panel, on=["sku", "store_id", "week_start"], validate="1:1")
    assert len(merged) == len(demand)
    assert (merged["units"] == merged["quantity"]).all()
    assert np.allclose(merged["price_x"], merged["price_y"])
    assert (merged["promotion_type_x"].fillna("") == merged["promotion_type_y"].fillna("")).all()


def test_a_log_log_regression_recovers_each_elasticity(market: SimulatedMarket) -> None:
    panel = weekly_panel(market)
    panel = panel[panel["quantity"] > 0]
    truth = market.truth.elasticities.set_index("sku")["elasticity"]
    errors = []
    for sku, rows in panel.groupby("sku"):
        design = pd.concat(
            [
                pd.Series(np.log(rows["price"] / rows["regular_price"]), name="log_price"),
                pd.get_dummies(rows["promotion_type"]).reindex(columns=PROMOTED, fill_value=0),
                pd.get_dummies(rows["store_id"], drop_first=True),
                pd.get_dummies(rows["week_start"], drop_first=True),
            ],
            axis=1,
        ).astype(float)
        design.insert(0, "intercept", 1.0)
        beta, *_ = np.linalg.lstsq(design.to_numpy(), np.log(rows["quantity"].to_numpy()))
        errors.append(beta[1] - truth[sku])
    assert np.max(np.abs(errors)) < 0.3
    assert abs(np.mean(errors)) < 0.1


def test_a_pooled_regression_recovers_the_promotion_lifts(market: SimulatedMarket) -> None:
    panel = weekly_panel(market)
    panel = panel[panel["quantity"] > 0]
    elasticity = market.truth.elasticities.set_index("sku")["elasticity"]
    # Remove the known price effect, then regress on promotions with sku-store and week effects.
    response = np.log(panel["quantity"]) - panel["sku"].map(elasticity) * np.log(
        panel["price"] / panel["regular_price"]
    )
    design = pd.concat(
        [
            pd.get_dummies(panel["promotion_type"]).reindex(columns=PROMOTED, fill_value=0),
            pd.get_dummies(panel["sku"] + panel["store_id"]),
            pd.get_dummies(panel["week_start"], drop_first=True),
        ],
        axis=1,
    ).astype(float)
    beta, *_ = np.linalg.lstsq(design.to_numpy(), response.to_numpy())
    lifts = market.truth.promotion_lifts.set_index("promotion_type")["lift"]
    for i, kind in enumerate(PROMOTED):
        assert abs(np.exp(beta[i]) / lifts[kind] - 1) < 0.05, kind


def test_discounts_are_confounded_with_display(market: SimulatedMarket) -> None:
    demand = market.truth.demand
    displayed = demand["promotion_type"].isin(["display", "display_mailer"])
    discounted = demand["discount_pct"] > 0
    assert discounted[displayed].mean() > 2 * discounted[~displayed].mean()


def test_same_seed_same_market_other_seed_other_market() -> None:
    first = simulate_market(seed=1, n_products=4, n_stores=2, n_weeks=10)
    again = simulate_market(seed=1, n_products=4, n_stores=2, n_weeks=10)
    for name in ("products", "stores", "price_history", "promotions", "orders", "order_lines"):
        assert_frame_equal(getattr(first, name), getattr(again, name))
    assert_frame_equal(first.truth.demand, again.truth.demand)
    other = simulate_market(seed=2, n_products=4, n_stores=2, n_weeks=10)
    assert not first.order_lines.equals(other.order_lines)
