"""The forecasting references: the simple ones and TSB checked by hand on a small synthetic
panel, the Stallion set wired to its known prices, and AutoETS on the real Stallion panel
near the protocol author's figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.bench.forecast_reference import PROTOCOLS, references
from shelfwise.datasets.registry import available_datasets, resolve_datasets_dir
from shelfwise.forecast.panel import Panel

WEEKS, ORIGIN, HORIZON = 30, 29, 4


def _weekly_panel() -> Panel:
    """6 series x 30 weeks: smooth, intermittent, trending, a young one (4 weeks at the
    origin), one with no history at all, and one mostly zero."""
    rng = np.random.default_rng(0)
    t = np.arange(WEEKS)
    y = np.vstack(
        [
            20 + 5 * np.sin(t / 3) + rng.normal(0, 1, WEEKS),
            rng.poisson(1.0, WEEKS) * (rng.random(WEEKS) < 0.4),
            5 + 0.5 * t + rng.normal(0, 1, WEEKS),
            np.where(t >= 26, rng.poisson(8.0, WEEKS), np.nan),
            np.full(WEEKS, np.nan),
            np.where(t % 7 == 3, 4.0, 0.0),
        ]
    ).astype(np.float64)
    periods = pd.date_range("2024-01-01", periods=WEEKS, freq="W-MON")
    series = pd.DataFrame({"series_id": [f"s{i}" for i in range(len(y))]})
    return Panel(np.maximum(y, 0.0), periods, series, "W-MON")


def _ses(values: np.ndarray, alpha: float) -> float:
    level = float(values[0])
    for value in values[1:]:
        level = alpha * float(value) + (1 - alpha) * level
    return level


def test_weekly_references_by_hand() -> None:
    panel = _weekly_panel()
    out = references(panel, ORIGIN, HORIZON, "cj-weekly-top500")
    assert list(out) == list(PROTOCOLS["cj-weekly-top500"])
    for name, forecasts in out.items():
        assert forecasts.shape == (6, HORIZON), name
        assert forecasts.dtype == np.float64, name
        assert np.isfinite(forecasts).all(), name
        assert (forecasts >= 0).all(), name
        assert (forecasts[4] == 0).all(), f"{name}: a series with no history forecasts 0"
    y = panel.y
    last = np.nan_to_num(y[:, -1])
    np.testing.assert_allclose(out["naive"], np.repeat(last[:, None], HORIZON, axis=1))
    average = np.nan_to_num(np.nanmean(y[[0, 1, 2, 3, 5], -4:], axis=1))
    np.testing.assert_allclose(
        out["moving_average_4"][[0, 1, 2, 3, 5]], average[:, None].repeat(4, 1)
    )
    # TSB(0.2, 0.2) on the intermittent series: smoothed P(sale) x smoothed size of a sale.
    intermittent = y[1]
    expected = _ses((intermittent > 0).astype(float), 0.2) * _ses(
        intermittent[intermittent > 0], 0.2
    )
    np.testing.assert_allclose(out["tsb"][1], expected, rtol=1e-9)
    for name in ("naive", "moving_average_4", "croston", "tsb"):
        assert np.ptp(out[name], axis=1).max() == pytest.approx(0.0), f"{name} is flat"
    # One global model over few rows: only a sanity bound (its trees average training targets).
    assert out["lightgbm"].max() <= 2 * np.nanmax(y)


def test_weekly_references_do_not_read_the_future() -> None:
    panel = _weekly_panel()
    spoiled = panel.y.copy()
    spoiled[:, ORIGIN - 2 :] = 1e6  # after the origin only: the fit must not change
    early = Panel(spoiled, panel.periods, panel.series, panel.freq)
    origin = ORIGIN - 3
    clean = references(panel, origin, HORIZON, "cj-weekly-top500")
    dirty = references(early, origin, HORIZON, "cj-weekly-top500")
    for name in clean:
        np.testing.assert_array_equal(clean[name], dirty[name], err_msg=name)


def _monthly_panel() -> Panel:
    """8 series x 36 months of seasonal demand that falls with the price; prices are known
    6 months past the end."""
    rng = np.random.default_rng(1)
    months, future = 36, 6
    t = np.arange(months + future)
    base = rng.uniform(50, 150, (8, 1))
    regular = np.repeat(rng.uniform(2.0, 4.0, (8, 1)), months + future, axis=1)
    discount = np.where(rng.random((8, months + future)) < 0.3, rng.uniform(10, 40, (8, 1)), 0.0)
    actual = regular * (1 - discount / 100)
    demand = base * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) * (1 + discount / 25)
    y = (demand + rng.normal(0, 2, demand.shape))[:, :months]
    y[7, :20] = np.nan  # a series that starts in year two
    periods = pd.date_range("2020-01-01", periods=months, freq="MS")
    series = pd.DataFrame({"series_id": [f"m{i}" for i in range(8)]})
    known = {"price_actual": actual, "price_regular": regular, "discount_in_percent": discount}
    return Panel(y, periods, series, "MS", known)


def test_stallion_references_on_a_monthly_panel() -> None:
    panel = _monthly_panel()
    origin, horizon = 29, 6
    out = references(panel, origin, horizon, "stallion")
    assert list(out) == list(PROTOCOLS["stallion"])
    for name, forecasts in out.items():
        assert forecasts.shape == (8, horizon), name
        assert np.isfinite(forecasts).all(), name
        assert (forecasts >= 0).all(), name
    y = panel.y[:, : origin + 1]
    np.testing.assert_allclose(out["naive"], np.repeat(y[:, [-1]], horizon, axis=1))
    np.testing.assert_allclose(out["seasonal_naive"][:7], y[:7, -12 : -12 + horizon])
    # The young series has 10 months: where a year back is before its start, it is naive.
    np.testing.assert_allclose(out["seasonal_naive"][7], [y[7, -1]] * 2 + list(y[7, 20:24]))
    # Demand here is driven by the discount: knowing the planned discounts must help.
    truth = panel.y[:, origin + 1 : origin + 1 + horizon]
    wape = {name: np.abs(f - truth).sum() / truth.sum() for name, f in out.items()}
    assert wape["lightgbm_price"] < wape["lightgbm"]


def test_bad_arguments() -> None:
    monthly = _monthly_panel()
    with pytest.raises(ValueError, match="unknown forecasting protocol"):
        references(monthly, 29, 6, "m5")
    bare = Panel(monthly.y, monthly.periods, monthly.series, "MS")
    with pytest.raises(ValueError, match="known covariates"):
        references(bare, 29, 6, "stallion")
    with pytest.raises(ValueError, match="origin"):
        references(monthly, 36, 6, "stallion")


def _stallion_dir() -> Path:
    base = resolve_datasets_dir()
    status = next(s for s in available_datasets(base) if s.name == "stallion_beverage_sales")
    if base is None or not status.available:
        pytest.skip(f"stallion_beverage_sales not found ({status.location})")
    return base


@pytest.mark.data
def test_stallion_auto_ets_near_the_protocol_figure() -> None:
    from shelfwise.datasets.forecasting import STALLION_KNOWN, stallion_demand
    from shelfwise.forecast.panel import panel_from_frame

    frame = stallion_demand(_stallion_dir())
    panel = panel_from_frame(
        frame, "MS", known=STALLION_KNOWN, static=("agency", "sku"), start_at_first_sale=False
    )
    origin, horizon = 53, 6
    assert panel.periods[origin] == pd.Timestamp("2017-06-01")
    out = references(panel, origin, horizon, "stallion")
    truth = panel.y[:, origin + 1 : origin + 1 + horizon]
    wape = {name: float(np.abs(f - truth).sum() / truth.sum()) for name, f in out.items()}
    assert 0.15 <= wape["auto_ets"] <= 0.18, wape  # protocol author: 0.162
    assert wape["auto_ets"] < wape["naive"], wape
