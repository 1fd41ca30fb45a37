"""What the forecaster learns on its validation origins: tiers, ensemble weights, intervals.

A tier (a department's own model) is adopted where its WAPE on its series' held-out rows is
at least ``min_gain`` below the global model's there; both figures are reported.

Simple forecasts are strong on grocery demand (a 4-week moving average and TSB beat AutoETS
on The Complete Journey), so the model's forecast is a weighted blend of the gradient-boosted
model with them, one set of weights per Syntetos-Boylan demand class, chosen on held-out
origins by the total absolute error. Intervals are split-conformal: the quantiles of the
blend's validation errors, divided by each series' scale, per horizon and demand class (per
horizon alone where a class has too few rows), so their coverage is measured, not assumed.
Each side is its own conformal quantile with the finite-sample correction: of n errors, the
upper bound is the ceil((n + 1)(1 + level) / 2)-th smallest and the lower bound the
floor((n + 1)(1 - level) / 2)-th, so that a new error exchangeable with them falls above (below)
with probability at most (1 - level) / 2. Rows of a series with no sale in its scale window
(a product not launched yet, or discontinued) have no scale to divide by: they are a group of
their own, their errors in units.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shelfwise.forecast.baselines import CLASSES

Matrix = NDArray[np.float64]
STEP = 0.1
MIN_ROWS = 200
UNSCALED = len(CLASSES)  # the interval group of rows with no scale: errors in units


def simplex(members: int, step: float = STEP) -> Matrix:
    """Every weight vector on a grid of ``step`` that sums to 1."""
    ticks = round(1 / step)
    grid = [
        combo
        for combo in itertools.product(range(ticks + 1), repeat=members)
        if sum(combo) == ticks
    ]
    return np.asarray(grid, dtype=float) / ticks


def fit_weights(members: Matrix, actual: NDArray[np.float64], classes: NDArray[np.int64]) -> Matrix:
    """Weights (classes x members) minimising the absolute error of each class's blend; the
    first member alone where a class has no validation row."""
    candidates = simplex(members.shape[1])
    weights = np.zeros((len(CLASSES), members.shape[1]))
    weights[:, 0] = 1.0
    for index in range(len(CLASSES)):
        rows = classes == index
        if not rows.any():
            continue
        errors = np.abs(members[rows] @ candidates.T - actual[rows, None]).sum(axis=0)
        weights[index] = candidates[int(np.argmin(errors))]
    return weights


def conformal_bounds(errors: NDArray[np.float64], level: float) -> NDArray[np.float64]:
    """The lower and upper split-conformal bounds of ``errors`` at ``level``, each side on its
    own: the floor((n + 1)(1 - level) / 2)-th and the ceil((n + 1)(1 + level) / 2)-th smallest
    of the n errors (the smallest and largest where n is too small for the level); zeros
    without an error."""
    n = len(errors)
    if n == 0:
        return np.zeros(2)
    tail = (1 - level) / 2
    ordered = np.sort(errors)
    low = min(max(math.floor((n + 1) * tail + 1e-9), 1), n)
    high = min(max(math.ceil((n + 1) * (1 - tail) - 1e-9), 1), n)
    return np.array([ordered[low - 1], ordered[high - 1]])


def fit_intervals(
    error: NDArray[np.float64],
    horizon: NDArray[np.int64],
    groups: NDArray[np.int64],
    horizons: int,
    level: float,
) -> NDArray[np.float64]:
    """Lower and upper error bounds, shape (horizons, classes + 1, 2). ``groups``: each row's
    demand class (its ``error`` scaled), or :data:`UNSCALED` (its error in units). A class with
    fewer than ``MIN_ROWS`` rows at a horizon takes the bounds of every scaled row there; the
    unscaled group, with too few there, the bounds of its rows over every horizon."""
    out = np.zeros((horizons, len(CLASSES) + 1, 2))
    unscaled = groups == UNSCALED
    pooled_unscaled = conformal_bounds(error[unscaled], level)
    for h in range(1, horizons + 1):
        at = horizon == h
        scaled = at & ~unscaled
        fallback = conformal_bounds(error[scaled if scaled.any() else ~unscaled], level)
        for index in range(len(CLASSES)):
            rows = at & (groups == index)
            out[h - 1, index] = (
                conformal_bounds(error[rows], level) if rows.sum() >= MIN_ROWS else fallback
            )
        rows = at & unscaled
        out[h - 1, UNSCALED] = (
            conformal_bounds(error[rows], level) if rows.sum() >= MIN_ROWS else pooled_unscaled
        )
    return out


def adopt_tiers(
    actual: NDArray[np.float64],
    model: NDArray[np.float64],
    tiers: dict[str, NDArray[np.float64]],
    covered: dict[str, NDArray[np.bool_]],
    min_gain: float,
) -> tuple[NDArray[np.float64], list[str], dict[str, dict[str, Any]]]:
    """The routed forecasts (each adopted tier's rows from the tier), the adopted tiers and the
    comparison per tier. ``tiers``: each tier model's forecasts of every row; ``covered``:
    which rows are its series'."""
    adopted, comparison = [], {}
    for name, tiered in tiers.items():
        rows = covered[name]
        total = max(float(actual[rows].sum()), 1e-9)
        global_wape = float(np.abs(model[rows] - actual[rows]).sum()) / total
        tier_wape = float(np.abs(tiered[rows] - actual[rows]).sum()) / total
        adopt = tier_wape <= (1 - min_gain) * global_wape
        comparison[name] = {
            "rows": int(rows.sum()),
            "global_wape": round(global_wape, 4),
            "tier_wape": round(tier_wape, 4),
            "adopted": bool(adopt),
        }
        if adopt:
            adopted.append(name)
            model = np.where(rows, tiered, model)
    return model, adopted, comparison
