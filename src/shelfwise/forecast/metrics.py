"""Forecast accuracy as BENCHMARKS.md defines it: forecasts clipped at 0, MAE over every series
and horizon, WAPE = Σ|e| / Σy, RMSSE per series on the scale of its own training part (the
mean squared one-period change), bias = Σe / Σy, and the share of actuals inside the interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.forecast.baselines import ratio
from shelfwise.lifecycle.segments import segment_key

Vector = NDArray[np.float64]


def naive_scale(y: NDArray[np.float64]) -> Vector:
    """Per series: the mean squared one-period change of its history (NaN-aware)."""
    change = np.diff(y, axis=1) ** 2
    counted = (~np.isnan(change)).sum(axis=1)
    return ratio(np.nansum(change, axis=1), counted.astype(float), fill=np.nan)


def forecast_metrics(
    actual: Vector,
    forecast: Vector,
    *,
    lower: Vector | None = None,
    upper: Vector | None = None,
    series: NDArray[np.object_] | None = None,
    scale: Vector | None = None,
) -> dict[str, float]:
    """mae, wape, bias, rows; rmsse where ``series`` and their ``scale`` (one per row) are
    given; coverage and mean interval width where ``lower`` and ``upper`` are."""
    forecast = np.maximum(np.asarray(forecast, float), 0.0)
    actual = np.asarray(actual, float)
    if len(actual) == 0:
        raise ValueError("no forecast rows to score")
    error = forecast - actual
    total = actual.sum()
    out = {
        "mae": float(np.abs(error).mean()),
        "wape": float(np.abs(error).sum() / total) if total > 0 else float("nan"),
        "bias": float(error.sum() / total) if total > 0 else float("nan"),
        "rows": float(len(actual)),
    }
    if series is not None and scale is not None:
        squared = pd.DataFrame({"s": series, "e": error**2, "scale": scale})
        per = squared.groupby("s", sort=False).agg(e=("e", "mean"), scale=("scale", "first"))
        usable = per["scale"] > 0
        out["rmsse"] = float(np.sqrt(per.loc[usable, "e"] / per.loc[usable, "scale"]).mean())
    if lower is not None and upper is not None:
        inside = (actual >= lower) & (actual <= upper)
        out["coverage"] = float(inside.mean())
        out["interval_width"] = float(np.mean(np.asarray(upper) - np.asarray(lower)))
    return out


def metrics_by_level(
    group: str,
    levels: NDArray[np.object_],
    actual: Vector,
    forecast: Vector,
    *,
    lower: Vector | None = None,
    upper: Vector | None = None,
) -> dict[str, float]:
    """Each level's MAE, WAPE, bias (and coverage, with the interval) as
    ``<group>/<level>/<metric>``, the level named as segments are (:func:`segment_key`), so
    that every version of a model logs the same names and reviews compare them; a figure that
    is not finite (WAPE where nothing sold) is left out."""
    out: dict[str, float] = {}
    for level in pd.unique(levels):
        part = levels == level
        scores = forecast_metrics(
            actual[part],
            forecast[part],
            lower=None if lower is None else lower[part],
            upper=None if upper is None else upper[part],
        )
        for name in ("mae", "wape", "bias", "coverage"):
            if name in scores and np.isfinite(scores[name]):
                out[f"{group}/{segment_key(str(level))}/{name}"] = scores[name]
    return out
