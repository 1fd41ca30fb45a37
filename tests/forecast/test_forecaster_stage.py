"""The forecasting stage on the simulated shop: demand from the contract, backtested, registered."""

from __future__ import annotations

import pandas as pd

from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.forecast.stage import MODEL_NAME, train_forecaster, workspace_demand
from shelfwise.lifecycle.segments import segment_key
from shelfwise.workspace import Workspace

SMALL = ForecasterSettings(rounds=40, min_leaf=10)


def test_weekly_demand_comes_from_the_order_lines(shop_workspace: Workspace) -> None:
    demand = workspace_demand(shop_workspace)
    lines = shop_workspace.analytic.frame(
        "SELECT sum(l.quantity) AS q FROM order_lines l JOIN orders o USING (order_id)"
    )["q"].iloc[0]
    observed = demand[demand["quantity"].notna()]
    assert (observed["period_start"].dt.dayofweek == 0).all()  # weeks start on Mondays
    assert observed.groupby(["series_id", "period_start"]).size().max() == 1
    # whole weeks only: at most the first and last (partial) weeks' lines are left out
    assert 0.8 * lines <= observed["quantity"].sum() <= lines


def test_stage_backtests_registers_and_keeps_an_unchanged_champion(
    shop_workspace: Workspace,
) -> None:
    messages: list[str] = []
    summary, checks, seconds = train_forecaster(shop_workspace, messages.append, SMALL)
    assert checks["forecaster: registered"]["ok"]
    backtest = summary["backtest"]
    assert 0 < backtest["wape"] < 1
    assert 0 < backtest["coverage"] <= 1
    assert {"backtest", "fit", "register"} <= set(seconds)
    tracker = shop_workspace.tracker
    assert tracker.get_alias_version(MODEL_NAME, "champion") == summary["version"]
    loaded = tracker.load_estimator(f"models:/{MODEL_NAME}/{summary['version']}")
    assert isinstance(loaded, DemandForecaster)
    assert str(loaded.panel_.periods[-1].date()) == summary["last_week"]
    weeks = loaded.panel_.future_periods(4)
    asked = pd.DataFrame({"series_id": [loaded.panel_.ids[0]] * 4, "period_start": weeks})
    assert (loaded.predict(asked)["forecast"] >= 0).all()
    evaluation = tracker.evaluation(
        tracker.client.get_model_version(MODEL_NAME, summary["version"]).run_id
    )
    assert evaluation is not None
    assert evaluation.primary_metric == "mae"
    assert _department_metrics(evaluation.metrics) == _department_metrics_expected(shop_workspace)
    again, _, seconds = train_forecaster(shop_workspace, lambda _: None, SMALL)
    assert again["run"] == "unchanged"
    assert again["version"] == summary["version"]
    assert "fit" not in seconds


def test_demand_per_product_and_store_adds_up_to_the_product(shop_workspace: Workspace) -> None:
    from shelfwise.datasets.complete_journey import TIMEZONE
    from shelfwise.forecast.demand import DemandQuery, demand_frame

    by_product = workspace_demand(shop_workspace, top=20)
    query = DemandQuery(top=20, by_store=True, timezone=TIMEZONE)
    by_store = demand_frame(shop_workspace.analytic.frame, query)
    assert by_store["series_id"].str.contains("@").all()
    sku = by_store["series_id"].str.split("@").str[0]
    summed = by_store.groupby([sku, "period_start"])["quantity"].sum(min_count=1).dropna()
    product = by_product.set_index(["series_id", "period_start"])["quantity"].dropna()
    pd.testing.assert_series_equal(
        summed.sort_index(), product.sort_index(), check_names=False, check_index_type=False
    )


def test_daily_demand_fits_and_forecasts_by_day_of_week(shop_workspace: Workspace) -> None:
    from shelfwise.forecast.demand import DemandQuery, demand_frame

    daily = demand_frame(shop_workspace.analytic.frame, DemandQuery(top=20, grain="day"))
    weekly = workspace_demand(shop_workspace, top=20)
    assert daily["period_start"].dt.normalize().equals(daily["period_start"])
    assert daily["quantity"].sum() >= weekly["quantity"].sum()  # whole days cover whole weeks
    settings = ForecasterSettings(freq="D", horizon=7, rounds=30, min_leaf=10)
    model = DemandForecaster(settings).fit(daily)
    assert model.design_.calendar  # day of week, once two weeks are known
    days = model.panel_.future_periods(7)
    asked = pd.DataFrame({"series_id": [model.panel_.ids[0]] * 7, "period_start": days})
    out = model.predict(asked)
    assert len(out) == 7
    assert (out["forecast"] >= 0).all()


def test_the_registered_forecaster_has_a_card_with_its_departments(
    shop_workspace: Workspace,
) -> None:
    from shelfwise.lifecycle.cards import model_card

    summary, _, _ = train_forecaster(shop_workspace, lambda _: None, SMALL)
    card = model_card(shop_workspace.registry, MODEL_NAME, summary["version"])
    assert card["family"] == "demand_forecaster"
    assert card["purpose"].startswith("Demand per series and period ahead")
    assert card["owner"] == "quickstart"  # who registered it
    assert card["primary_metric"] == "mae"
    # named as the lifecycle names segments (and their own models): "DRUG GM" is DRUG_GM
    assert set(card["segments"]["department"]) == {
        segment_key(d) for d in workspace_demand(shop_workspace)["department"].unique()
    }
    assert any("median" in item for item in card["limitations"])
    assert card["history"][0]["actor"] == "quickstart"


def _department_metrics(metrics: dict[str, float]) -> set[str]:
    return {name for name in metrics if name.startswith("department/")}


def _department_metrics_expected(workspace: Workspace) -> set[str]:
    """Every department's MAE, WAPE, bias and coverage, named as segments are: the names the
    lifecycle's retrains log too (tests/lifecycle/test_retrain.py), so reviews compare them."""
    departments = workspace_demand(workspace)["department"].unique()
    return {
        f"department/{segment_key(str(d))}/{m}"
        for d in departments
        for m in ("mae", "wape", "bias", "coverage")
    }
