"""The references of the forecasting protocols: what a forecaster has to beat.

BENCHMARKS.md ("Forecasting protocols") names them; :func:`references` fits every one of a
protocol on the panel cut at an origin (``panel.until(origin)``) and forecasts ``horizon``
periods ahead. Each series is fitted from its own start (the NaN before its first period are
dropped, never read as zero demand); a series with no history at the origin gets 0. Forecasts
come back as a series x horizon matrix per reference, in the panel's row order, clipped at 0
as the protocols score them. There is no tuning: every setting is fixed below, and every
random generator is seeded, so a run is reproducible.

``cj-weekly-top500`` (The Complete Journey, 500 products, weekly; origins after weeks 45 and
49, horizon 4, refitted at each origin):

- ``naive``: the last week, repeated.
- ``moving_average_4``: the mean of the last 4 weeks (of all weeks, for a younger series).
- ``auto_ets``: statsforecast ``AutoETS`` chosen by AICc, non-seasonal (``season_length=1``).
  One year of weeks cannot hold two yearly seasons, and statsforecast knows it: with
  ``len(y) <= season_length`` its ``ets_f`` drops the seasonal component itself, so 52 would
  give the same models; 1 says so. A series too short for ETS (statsforecast refuses 6
  points or fewer) falls back to simple exponential smoothing with an optimized alpha (the
  StatsForecast fallback of every model here; R's ``forecast::ets`` likewise falls back to
  plain exponential smoothing).
- ``croston``: statsforecast ``CrostonOptimized`` (demand sizes and intervals each smoothed
  with an optimized alpha).
- ``tsb``: statsforecast ``TSB(alpha_d=0.2, alpha_p=0.2)``: the smoothed probability of a
  sale times the smoothed size of a sale.
- ``lightgbm``: one global mlforecast ``LGBMRegressor`` over all series, on lags 1-4, rolling
  means over 4 and 8 weeks of lag 1 and the ISO week of the year, forecasting recursively
  (each forecast week feeds the next one's lags).

``stallion`` (agency x sku, monthly volume; train through 2017-06, horizon 6):

- ``naive``: the last month, repeated.
- ``seasonal_naive``: the same month a year earlier (the naive forecast where that month is
  before the series' start).
- ``auto_ets``: statsforecast ``AutoETS(season_length=12)`` chosen by AICc.
- ``lightgbm``: a global mlforecast ``LGBMRegressor`` on lags 6-12 and the month; every lag is
  at least the horizon, so no forecast feeds another.
- ``lightgbm_price``: the same plus ``price_actual``, ``price_regular`` and
  ``discount_in_percent`` as regressors, whose future values (planned prices, as in the
  pytorch-forecasting tutorial) come from ``panel.known``.

statsforecast runs with ``n_jobs=1`` and LightGBM with ``n_jobs=1`` and ``random_state=0``.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMean
from numpy.typing import NDArray
from statsforecast import StatsForecast
from statsforecast.models import (
    TSB,
    AutoETS,
    CrostonOptimized,
    SimpleExponentialSmoothingOptimized,
)

from shelfwise.forecast import baselines
from shelfwise.forecast.panel import Panel

Matrix = NDArray[np.float64]

CJ_WEEKLY = "cj-weekly-top500"
STALLION = "stallion"
PROTOCOLS: dict[str, tuple[str, ...]] = {
    CJ_WEEKLY: ("naive", "moving_average_4", "auto_ets", "croston", "tsb", "lightgbm"),
    STALLION: ("naive", "seasonal_naive", "auto_ets", "lightgbm", "lightgbm_price"),
}
STALLION_PRICES = ("price_actual", "price_regular", "discount_in_percent")
SEED = 0

_ID, _DS, _Y = "unique_id", "ds", "y"


def references(panel: Panel, origin: int, horizon: int, protocol: str) -> dict[str, Matrix]:
    """Every reference of ``protocol``, fitted on ``panel.until(origin)``: name -> forecasts
    of the ``horizon`` periods after ``origin``, series x horizon in panel order, >= 0."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown forecasting protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, not {horizon}")
    if not 0 <= origin < len(panel.periods):
        raise ValueError(f"origin {origin} is outside the panel's {len(panel.periods)} periods")
    history = panel.until(origin)
    if protocol == CJ_WEEKLY:
        out = {
            "naive": _naive(history.y, horizon),
            "moving_average_4": _moving_average(history.y, horizon, 4),
            **_statistical(history, horizon, season_length=1, intermittent=True),
            "lightgbm": _lightgbm(
                history, horizon, lags=range(1, 5), rolling=(4, 8), date_feature="week"
            ),
        }
    else:
        prices = tuple(name for name in STALLION_PRICES if name in history.known)
        if len(prices) != len(STALLION_PRICES):
            missing = sorted(set(STALLION_PRICES) - set(prices))
            raise ValueError(f"the stallion protocol needs the known covariates {missing}")
        lags = range(max(horizon, 6), max(horizon, 6) + 7)
        out = {
            "naive": _naive(history.y, horizon),
            "seasonal_naive": baselines.seasonal_naive(history.y, 12, horizon),
            **_statistical(history, horizon, season_length=12, intermittent=False),
            "lightgbm": _lightgbm(history, horizon, lags=lags, date_feature="month"),
            "lightgbm_price": _lightgbm(
                history, horizon, lags=lags, date_feature="month", exogenous=prices
            ),
        }
    return {name: np.clip(out[name], 0.0, None) for name in PROTOCOLS[protocol]}


def _naive(y: Matrix, horizon: int) -> Matrix:
    return np.repeat(baselines.last_value(y)[:, None], horizon, axis=1)


def _moving_average(y: Matrix, horizon: int, window: int) -> Matrix:
    return np.repeat(baselines.moving_average(y, window)[:, None], horizon, axis=1)


def _long(panel: Panel, rows: NDArray[np.int64], exogenous: tuple[str, ...] = ()) -> pd.DataFrame:
    """The observed part of ``rows`` as a long frame (unique_id = the panel row)."""
    sub = panel.y[rows]
    r, c = np.nonzero(~np.isnan(sub))
    frame = pd.DataFrame({_ID: rows[r], _DS: panel.periods[c], _Y: sub[r, c]})
    for name in exogenous:
        frame[name] = panel.known[name][rows[r], c]
    return frame


def _future(
    panel: Panel, rows: NDArray[np.int64], horizon: int, exogenous: tuple[str, ...]
) -> pd.DataFrame:
    """The future rows with the known covariates (NaN where they are not given)."""
    dates = panel.future_periods(horizon)
    start = len(panel.periods)
    frame = pd.DataFrame({_ID: np.repeat(rows, horizon), _DS: np.tile(dates, len(rows))})
    for name in exogenous:
        values = panel.known[name]
        future = np.full((len(rows), horizon), np.nan)
        given = min(horizon, values.shape[1] - start)
        if given > 0:
            future[:, :given] = values[rows, start : start + given]
        frame[name] = future.ravel()
    return frame


def _matrix(
    forecasts: pd.DataFrame, column: str, rows: NDArray[np.int64], n: int, dates: pd.DatetimeIndex
) -> Matrix:
    """Long forecasts -> series x horizon, zeros for the series not in ``rows``."""
    wide = forecasts.pivot(index=_ID, columns=_DS, values=column).reindex(index=rows, columns=dates)
    out = np.zeros((n, len(dates)))
    out[rows] = wide.to_numpy(dtype=np.float64)
    return out


def _statistical(
    panel: Panel, horizon: int, *, season_length: int, intermittent: bool
) -> dict[str, Matrix]:
    """AutoETS (and for intermittent demand Croston and TSB) through StatsForecast."""
    n = panel.y.shape[0]
    names = ("auto_ets", "croston", "tsb") if intermittent else ("auto_ets",)
    rows = np.flatnonzero(panel.starts < len(panel.periods)).astype(np.int64)
    if len(rows) == 0:
        return {name: np.zeros((n, horizon)) for name in names}
    models: list[Any] = [AutoETS(season_length=season_length, alias="auto_ets")]
    if intermittent:
        models += [CrostonOptimized(alias="croston"), TSB(0.2, 0.2, alias="tsb")]
    engine = StatsForecast(
        models=models,
        freq=panel.freq,
        n_jobs=1,
        fallback_model=SimpleExponentialSmoothingOptimized(),
    )
    forecasts = engine.forecast(df=_long(panel, rows), h=horizon)
    assert isinstance(forecasts, pd.DataFrame)  # pandas in, pandas out
    dates = panel.future_periods(horizon)
    return {name: _matrix(forecasts, name, rows, n, dates) for name in names}


def _lightgbm(
    panel: Panel,
    horizon: int,
    *,
    lags: range,
    date_feature: str,
    rolling: tuple[int, ...] = (),
    exogenous: tuple[str, ...] = (),
) -> Matrix:
    """A global LightGBM through mlforecast; recursive where a lag is shorter than the horizon."""
    n = panel.y.shape[0]
    rows = np.flatnonzero(panel.starts < len(panel.periods)).astype(np.int64)
    if len(rows) == 0:
        return np.zeros((n, horizon))
    model = lgb.LGBMRegressor(verbosity=-1, random_state=SEED, n_jobs=1, deterministic=True)
    forecaster = MLForecast(
        models={"lightgbm": model},
        freq=panel.freq,
        lags=list(lags),
        lag_transforms={1: [RollingMean(window_size=w) for w in rolling]} if rolling else None,
        date_features=[date_feature],
    )
    future = _future(panel, rows, horizon, exogenous) if exogenous else None
    with warnings.catch_warnings():
        # A series younger than the longest lag or window trains nothing and forecasts from
        # NaN features (LightGBM's missing branch); mlforecast warns about both, expectedly.
        warnings.filterwarnings("ignore", "The following series were dropped", UserWarning)
        warnings.filterwarnings("ignore", "Found null values", UserWarning)
        forecaster.fit(_long(panel, rows, exogenous), static_features=[])
        forecasts = forecaster.predict(horizon, X_df=future)
    return _matrix(forecasts, "lightgbm", rows, n, panel.future_periods(horizon))
