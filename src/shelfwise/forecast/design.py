"""The global model's design matrix: one row per series, forecast origin and horizon.

A row describes a series as it stood at the origin ``t`` (the last period it has seen) and
asks for period ``t + h``. Every history feature is divided by the series' *scale* (its mean
over the last ``scale_window`` periods), so one model serves a product selling 2 units a week
and one selling 2,000, and its target is ``y[t + h] / scale`` with the scale as weight (an L1
fit on it is an L1 fit on units: the MAE and WAPE that the forecast is judged on).

Features: the horizon; lags; rolling means; the value one (and two) seasons before the target
where the history holds them; zero share, periods since the last sale, dispersion, age and
size; each known covariate at the target period, at the origin, and against its recent mean
(a display in 40 stores next week when the product had 5 lately); the season position of the
target only where the history spans two seasons (a calendar feature that the training range
never saw would be extrapolated, not learned); static attributes as categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shelfwise.forecast.baselines import mean_and_variance, ratio, zero_share
from shelfwise.forecast.panel import Panel

Matrix = NDArray[np.float64]
MIN_SCALE = 1e-3


@dataclass(frozen=True)
class Design:
    """How features are made; fixed at fit and saved with the model."""

    lags: int
    windows: tuple[int, ...]
    scale_window: int
    season: int
    calendar: bool
    known: tuple[str, ...]
    static_levels: tuple[int, ...]  # number of levels of each static attribute

    @classmethod
    def for_panel(
        cls, panel: Panel, known: tuple[str, ...], static_levels: tuple[int, ...]
    ) -> Design:
        season = panel.season_length
        if panel.freq == "W-MON":
            lags, windows, scale_window = 8, (4, 13, 26), 8
        elif panel.freq == "D":  # a week's season; two weeks of lags, up to four of means
            lags, windows, scale_window = 14, (7, 14, 28), 14
        else:
            lags, windows, scale_window = season, (3, 6, season), season
        calendar = panel.y.shape[1] >= 2 * season + 1
        return cls(lags, windows, scale_window, season, calendar, known, static_levels)

    def state(self) -> dict[str, Any]:
        """What a saved model keeps of it (the known covariates are in its settings)."""
        return {
            "lags": self.lags,
            "windows": list(self.windows),
            "scale_window": self.scale_window,
            "season": self.season,
            "calendar": self.calendar,
            "static_levels": list(self.static_levels),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], known: tuple[str, ...]) -> Design:
        return cls(
            state["lags"],
            tuple(state["windows"]),
            state["scale_window"],
            state["season"],
            state["calendar"],
            known,
            tuple(state["static_levels"]),
        )

    @property
    def names(self) -> list[str]:
        out = ["horizon"]
        out += [f"lag_{k}" for k in range(1, self.lags + 1)]
        out += [f"mean_{w}" for w in self.windows]
        out += [
            "season_back_1",
            "season_back_2",
            "zero_share",
            "since_sale",
            "dispersion",
            "age",
            "log_scale",
        ]
        for name in self.known:
            out += [f"{name}", f"{name}_at_origin", f"{name}_vs_recent"]
        if self.calendar:
            out.append("season_position")
        out += [f"static_{i}" for i in range(len(self.static_levels))]
        return out

    @property
    def categorical(self) -> list[int]:
        names = self.names
        return [names.index(f"static_{i}") for i in range(len(self.static_levels))]


@dataclass(frozen=True)
class Rows:
    """Design rows with where they came from: series row, origin column and horizon."""

    features: Matrix
    series: NDArray[np.int64]
    origin: NDArray[np.int64]
    horizon: NDArray[np.int64]
    scale: NDArray[np.float64]

    def subset(self, keep: NDArray[np.bool_]) -> Rows:
        return Rows(
            self.features[keep],
            self.series[keep],
            self.origin[keep],
            self.horizon[keep],
            self.scale[keep],
        )

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(
            np.vstack([p.features for p in parts]),
            np.concatenate([p.series for p in parts]),
            np.concatenate([p.origin for p in parts]),
            np.concatenate([p.horizon for p in parts]),
            np.concatenate([p.scale for p in parts]),
        )


def scale_at(y: Matrix, window: int) -> NDArray[np.float64]:
    recent = y[:, -window:]
    counted = (~np.isnan(recent)).sum(axis=1)
    return np.maximum(ratio(np.nansum(recent, axis=1), counted.astype(float)), MIN_SCALE)


def rows_at(
    design: Design,
    y: Matrix,
    known: dict[str, Matrix],
    static: NDArray[np.int64],
    origin: int,
    horizons: range,
    season_offset: int,
    eligible: NDArray[np.bool_],
) -> Rows:
    """Rows of the ``eligible`` series at column ``origin`` for each horizon in ``horizons``.

    ``y`` may run past the origin (training): only columns up to ``origin`` are read for
    history. ``season_offset``: the season position of column 0.
    """
    index = np.flatnonzero(eligible)
    history = y[index, : origin + 1]
    scale = scale_at(history, design.scale_window)
    columns = [_lag(history, k) / scale for k in range(1, design.lags + 1)]
    columns += [_mean(history, w) / scale for w in design.windows]
    observed = ~np.isnan(history)
    started = observed.argmax(axis=1)
    sold = np.nan_to_num(history, nan=0.0) > 0
    since = np.where(sold.any(axis=1), sold[:, ::-1].argmax(axis=1), origin + 1 - started).astype(
        float
    )
    recent = history[:, -design.scale_window :]
    dispersion = np.sqrt(mean_and_variance(recent)[1]) / scale
    shared = [
        zero_share(history, max(design.windows[:2])),
        since,
        dispersion,
        (origin - started).astype(float),
        np.log1p(scale),
    ]
    blocks = []
    for h in horizons:
        target = origin + h
        block = [np.full(len(index), float(h)), *columns]
        for back in (1, 2):
            column = target - back * design.season
            values = y[index, column] / scale if 0 <= column <= origin else np.nan
            block.append(np.broadcast_to(values, (len(index),)).astype(float))
        block += shared
        for name in design.known:
            values = known[name][index]
            ahead = values[:, target] if target < values.shape[1] else np.full(len(index), np.nan)
            at_origin = values[:, origin]
            window = values[:, max(0, origin - design.scale_window + 1) : origin + 1]
            counted = (~np.isnan(window)).sum(axis=1)
            mean = np.divide(
                np.nansum(window, axis=1),
                counted,
                out=np.full(len(index), np.nan),
                where=counted > 0,
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                relative = np.where(mean > 0, ahead / mean, np.where(ahead > 0, np.inf, 1.0))
            block += [ahead, at_origin, np.minimum(relative, 50.0)]
        if design.calendar:
            block.append(np.full(len(index), float((season_offset + target) % design.season)))
        block += [static[index, i].astype(float) for i in range(static.shape[1])]
        blocks.append(np.column_stack(block))
    count = len(horizons)
    return Rows(
        np.vstack(blocks) if blocks else np.empty((0, len(design.names))),
        np.tile(index, count),
        np.full(len(index) * count, origin),
        np.repeat(np.asarray(list(horizons), dtype=np.int64), len(index)),
        np.tile(scale, count),
    )


def _lag(history: Matrix, k: int) -> NDArray[np.float64]:
    if history.shape[1] < k:
        return np.full(len(history), np.nan)
    return history[:, -k]


def _mean(history: Matrix, window: int) -> NDArray[np.float64]:
    recent = history[:, -window:]
    counted = (~np.isnan(recent)).sum(axis=1)
    return ratio(np.nansum(recent, axis=1), counted.astype(float), fill=np.nan)
