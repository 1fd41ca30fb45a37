"""The demand forecaster on a synthetic panel: forecasts, intervals, tiers, saving, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.forecast.panel import panel_from_frame
from shelfwise.models.base import Estimator

FAST = ForecasterSettings(rounds=40, min_leaf=5, tier_min_series=4, validation_origins=3)


@pytest.fixture(scope="module")
def fitted(weekly: pd.DataFrame) -> DemandForecaster:
    return DemandForecaster(FAST).fit(weekly)


def _next_weeks(model: DemandForecaster) -> pd.DataFrame:
    weeks = model.panel_.future_periods(4)
    grid = pd.MultiIndex.from_product(
        [model.panel_.ids, weeks], names=["series_id", "period_start"]
    )
    return grid.to_frame(index=False)


def test_the_panel_starts_each_series_at_its_first_sale_and_fills_gaps_with_zero() -> None:
    frame = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "b", "b"],
            "period_start": pd.to_datetime(
                ["2024-01-15", "2024-01-29", "2024-01-01", "2024-01-08", "2024-02-05"]
            ),
            "quantity": [3.0, 1.0, 0.0, 2.0, np.nan],
            "display_stores": [0, 0, 0, 5, 9],
        }
    )
    panel = panel_from_frame(frame, "W-MON", known=("display_stores",), known_fill=0.0)
    assert panel.y.shape == (2, 5)  # 2024-01-01 .. 2024-01-29; 2024-02-05 is planned
    assert np.isnan(panel.y[0, :2]).all()
    assert panel.y[0, 2:].tolist() == [3.0, 0.0, 1.0]
    assert np.isnan(panel.y[1, 0])
    assert panel.y[1, 1:].tolist() == [2.0, 0.0, 0.0, 0.0]
    assert panel.known["display_stores"][1].tolist() == [0, 5, 0, 0, 0, 9]
    off = frame.assign(period_start=frame["period_start"] + pd.Timedelta(days=1))
    with pytest.raises(ValueError, match="not on the W-MON grid"):
        panel_from_frame(
            off.iloc[[0, 2]].assign(
                period_start=[off["period_start"][0], pd.Timestamp("2024-01-03")]
            ),
            "W-MON",
        )


def test_forecasts_with_intervals_for_every_series_and_week(fitted: DemandForecaster) -> None:
    out = fitted.predict(_next_weeks(fitted))
    assert len(out) == 12 * 4
    assert (out["lower"] <= out["forecast"]).all()
    assert (out["forecast"] <= out["upper"]).all()
    assert (out["lower"] >= 0).all()
    assert set(out["demand_class"]) <= {"smooth", "erratic", "intermittent", "lumpy"}
    levels = out.groupby("series_id")["forecast"].mean()
    assert levels["sku11"] > levels["sku05"] > levels["sku01"]  # the levels it was given
    assert (
        fitted.report_["validation_wape"]["blend"]
        < fitted.report_["validation_wape"]["moving_average"]
    )


def test_a_planned_display_raises_the_forecast(fitted: DemandForecaster) -> None:
    week = fitted.panel_.future_periods(1)[0]
    base = pd.DataFrame({"series_id": ["sku09"], "period_start": [week], "display_stores": [0.0]})
    plain = fitted.predict(base)["forecast"].iloc[0]
    shown = fitted.predict(base.assign(display_stores=25.0))["forecast"].iloc[0]
    assert shown > 1.3 * plain
    with pytest.raises(ValueError, match="one plan per request"):
        fitted.predict(pd.concat([base, base.assign(display_stores=25.0)]))


def test_zero_dominated_series_get_no_fractional_noise(fitted: DemandForecaster) -> None:
    out = fitted.predict(_next_weeks(fitted))
    rare = out[out["series_id"] == "sku00"]["forecast"]
    assert ((rare == 0) | (rare >= 0.5)).all()


def test_tiers_are_compared_with_the_global_model(fitted: DemandForecaster) -> None:
    tiers = fitted.report_["tiers"]
    assert set(tiers) == {"department:BAKERY", "department:DAIRY"}
    for tier in tiers.values():
        assert {"global_wape", "tier_wape", "adopted", "series", "rows"} <= set(tier)
        assert tier["adopted"] == (tier["tier_wape"] <= 0.98 * tier["global_wape"])
    routed = set(fitted.predict(_next_weeks(fitted))["model"])
    assert routed == {"global"} | {t for t in tiers if tiers[t]["adopted"]}


def test_save_and_load_give_the_same_forecasts(fitted: DemandForecaster, tmp_path: Path) -> None:
    fitted.save(tmp_path / "model")
    loaded = Estimator.load(tmp_path / "model")
    assert isinstance(loaded, DemandForecaster)
    pd.testing.assert_frame_equal(
        loaded.predict(_next_weeks(fitted)), fitted.predict(_next_weeks(fitted))
    )


def test_evaluate_scores_mae_first(fitted: DemandForecaster) -> None:
    truth = _next_weeks(fitted).assign(quantity=5.0)
    evaluation = fitted.evaluate(truth)
    assert evaluation.primary_metric == "mae"
    assert not evaluation.higher_is_better
    assert {"wape", "bias", "rmsse", "coverage"} <= set(evaluation.metrics)


def test_bad_requests_say_what_is_wrong(fitted: DemandForecaster, weekly: pd.DataFrame) -> None:
    week = fitted.panel_.future_periods(1)[0]
    with pytest.raises(ValueError, match=r"not trained on, e.g. \['nope'\]"):
        fitted.predict(pd.DataFrame({"series_id": ["nope"], "period_start": [week]}))
    with pytest.raises(ValueError, match="is not one of the 4 periods"):
        fitted.predict(
            pd.DataFrame({"series_id": ["sku01"], "period_start": [week + pd.Timedelta(weeks=9)]})
        )
    with pytest.raises(ValueError, match="lacks \\['display_stores'"):
        DemandForecaster(FAST).fit(weekly.drop(columns=["display_stores"]))
    with pytest.raises(ValueError, match="too few for horizon 4"):
        DemandForecaster(FAST).fit(weekly[weekly["period_start"] < "2024-02-26"])
    with pytest.raises(ValueError, match="tier_by 'brand' must be one of static"):
        ForecasterSettings(tier_by="brand")


def test_a_rolling_backtest_refits_at_each_origin(weekly: pd.DataFrame) -> None:
    from shelfwise.forecast.backtest import rolling_backtest

    origins = ["2024-08-12", "2024-09-09"]  # weeks 33 and 37 of the 40 observed
    result = rolling_backtest(weekly, FAST, origins, group="department")
    assert len(result.models) == 2
    assert [str(m.panel_.periods[-1].date()) for m in result.models] == origins
    assert len(result.rows) == 12 * 4 + 12 * 3  # the last origin's fourth week is not observed
    late = result.rows[result.rows["origin"] == pd.Timestamp(origins[1])]
    sold = weekly.set_index(["series_id", "period_start"])["quantity"]
    expected = sold.reindex(pd.MultiIndex.from_frame(late[["series_id", "period_start"]]))
    assert late["actual"].tolist() == expected.fillna(0.0).tolist()
    metrics = result.metrics()
    assert {"mae", "wape", "rmsse", "bias", "coverage"} <= set(metrics)
    groups = result.by_group()
    assert set(groups) == {"BAKERY", "DAIRY"}
    assert sum(g["rows"] for g in groups.values()) == len(result.rows)


def test_a_row_a_season_older_counts_half(fitted: DemandForecaster) -> None:
    from shelfwise.forecast.design import Rows

    origins = np.array([60, 8, 56])
    rows = Rows(np.zeros((3, 1)), np.zeros(3, np.int64), origins, np.ones(3, np.int64), np.ones(3))
    assert fitted._recency(rows).tolist() == pytest.approx([1.0, 0.5, 0.5 ** (4 / 52)])


def test_a_fitted_model_forecasts_from_a_newer_history_without_refitting(
    weekly: pd.DataFrame,
) -> None:
    early = weekly[weekly["period_start"] <= "2024-08-26"].copy()  # 35 of the 40 weeks
    model = DemandForecaster(FAST).fit(early)
    same = model.with_history(early)
    asked = _next_weeks(model)
    pd.testing.assert_frame_equal(same.predict(asked), model.predict(asked))
    later = model.with_history(weekly)
    assert later.boosters_ is model.boosters_
    assert later.panel_.periods[-1] == pd.Timestamp("2024-09-30")
    assert model.panel_.periods[-1] == pd.Timestamp("2024-08-26")  # unchanged
    out = later.predict(_next_weeks(later))
    assert len(out) == 12 * 4
    assert out["period_start"].min() == pd.Timestamp("2024-10-07")


def test_series_with_no_sale_in_the_scale_window_get_intervals_in_units(
    weekly: pd.DataFrame,
) -> None:
    import copy

    from shelfwise.forecast.blend import UNSCALED

    frame = weekly.copy()
    week = (frame["period_start"] - frame["period_start"].min()).dt.days // 7
    observed = frame["quantity"].notna()
    # sku00: nothing sold in weeks 5-35 (at every validation origin, 33-35, its 17-week spread
    # window is empty), then a relaunch at 6 a week; sku02: discontinued after week 14.
    quiet = (frame["series_id"] == "sku00") & observed
    frame.loc[quiet & week.between(5, 35), "quantity"] = 0.0
    frame.loc[quiet & (week >= 36), "quantity"] = 6.0
    frame.loc[(frame["series_id"] == "sku02") & observed & (week >= 15), "quantity"] = 0.0
    model = DemandForecaster(FAST).fit(frame)
    assert model.intervals_.shape == (4, UNSCALED + 1, 2)
    # The relaunch's errors are in units (at most the 6 sold), not divided by a zero scale
    # (they were tens of thousands of "scales" wide in the intermittent class).
    assert 0 < model.intervals_[:, UNSCALED, 1].max() <= 6.0
    assert np.abs(model.intervals_[:, :UNSCALED]).max() < 100
    out = model.predict(_next_weeks(model))
    gone = out[out["series_id"] == "sku02"]
    bounds = model.intervals_[np.arange(4), UNSCALED]
    assert gone["upper"].tolist() == pytest.approx(
        (gone["forecast"] + np.maximum(bounds[:, 1], 0.0)).tolist()
    )
    # A model saved before the group existed keeps the classes and the floored scale.
    old = copy.copy(model)
    old.intervals_ = model.intervals_[:, :UNSCALED]
    before = old.predict(_next_weeks(model))
    assert before["forecast"].tolist() == out["forecast"].tolist()
    assert (before.loc[gone.index, "upper"] - gone["forecast"]).max() < 0.01
