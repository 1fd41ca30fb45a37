"""Simple forecasts, vectorised over series: the strong baselines and the ensemble's members.

Every function takes the history ``y`` (series x periods, NaN before a series starts) and
returns one value per series, flat over the horizon, except :func:`seasonal_naive`, which
returns the horizon. Where a series has no history they return 0.

- :func:`moving_average`: the mean of the last ``window`` periods;
- :func:`croston`: Croston's method with the Syntetos-Boylan bias correction (SBA): demand
  size and interval between demands smoothed separately;
- :func:`tsb`: Teunter-Syntetos-Babai: demand size and *probability* of demand smoothed, so a
  product that stopped selling decays towards zero instead of keeping its last rate;
- :func:`demand_classes`: Syntetos-Boylan classes from the average inter-demand interval
  (ADI, cut 1.32) and the squared coefficient of variation of sizes (CV², cut 0.49).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]
Vector = NDArray[np.float64]

CLASSES = ("smooth", "erratic", "intermittent", "lumpy")
ADI_CUT = 1.32
CV2_CUT = 0.49


def ratio(numerator: Vector, denominator: Vector, fill: float = 0.0) -> Vector:
    """numerator / denominator, ``fill`` where the denominator is 0."""
    out = np.full(np.shape(numerator), fill, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def mean_and_variance(values: Matrix) -> tuple[Vector, Vector]:
    """Per row, the mean and (population) variance of the values that are not NaN; 0 and 0
    for a row with none (numpy's nanmean and nanvar warn there)."""
    counted = (~np.isnan(values)).sum(axis=1).astype(float)
    mean = ratio(np.nansum(values, axis=1), counted)
    squares = np.nansum((values - mean[:, None]) ** 2, axis=1)
    return mean, ratio(squares, counted)


def last_value(y: Matrix) -> Vector:
    observed = ~np.isnan(y)
    last = np.where(observed.any(axis=1), y.shape[1] - 1 - observed[:, ::-1].argmax(axis=1), 0)
    values = y[np.arange(len(y)), last]
    return np.asarray(np.nan_to_num(values, nan=0.0), dtype=np.float64)


def moving_average(y: Matrix, window: int) -> Vector:
    recent = y[:, -window:]
    counted = (~np.isnan(recent)).sum(axis=1)
    total = np.nansum(recent, axis=1)
    return ratio(total, counted.astype(float))


def seasonal_naive(y: Matrix, season: int, horizon: int) -> Matrix:
    """The value a whole number of seasons before each horizon (one season, or more when the
    horizon is longer); the last value where that is before the series started."""
    out = np.repeat(last_value(y)[:, None], horizon, axis=1)
    periods = y.shape[1]
    for h in range(1, horizon + 1):
        back = periods - 1 + h - season * -(-h // season)
        if back >= 0:
            values = y[:, back]
            out[:, h - 1] = np.where(np.isnan(values), out[:, h - 1], values)
    return out


def croston(y: Matrix, alpha: float = 0.1) -> Vector:
    """Croston-SBA: (1 - alpha/2) * smoothed size / smoothed interval."""
    size = np.full(len(y), np.nan)
    interval = np.full(len(y), np.nan)
    since = np.ones(len(y))
    for column in y.T:
        sold = column > 0
        first = sold & np.isnan(size)
        again = sold & ~first
        size = np.where(first, column, size)
        interval = np.where(first, since, interval)
        size = np.where(again, size + alpha * (column - size), size)
        interval = np.where(again, interval + alpha * (since - interval), interval)
        since = np.where(sold, 1.0, np.where(np.isnan(column), since, since + 1.0))
    rate = (1 - alpha / 2) * size / interval
    return np.asarray(np.nan_to_num(rate, nan=0.0), dtype=np.float64)


def tsb(y: Matrix, alpha_size: float = 0.2, alpha_probability: float = 0.2) -> Vector:
    """TSB as statsforecast starts it: size and probability from the first period."""
    size = np.full(len(y), np.nan)
    probability = np.full(len(y), np.nan)
    for column in y.T:
        observed = ~np.isnan(column)
        first = observed & np.isnan(probability)
        sold = (column > 0).astype(float)
        probability = np.where(first, sold, probability)
        size = np.where(first, column, size)
        later = observed & ~first
        probability = np.where(
            later, probability + alpha_probability * (sold - probability), probability
        )
        size = np.where(later & (column > 0), size + alpha_size * (column - size), size)
    return np.asarray(np.nan_to_num(probability * size, nan=0.0), dtype=np.float64)


def demand_classes(y: Matrix, window: int | None = None) -> NDArray[np.int64]:
    """Index into :data:`CLASSES` per series, from its (last ``window`` periods of) history."""
    recent = y if window is None else y[:, -window:]
    observed = (~np.isnan(recent)).sum(axis=1)
    sold = recent > 0
    demands = sold.sum(axis=1)
    adi = ratio(observed.astype(float), demands.astype(float), fill=np.inf)
    sizes = np.where(sold, recent, np.nan)
    mean, variance = mean_and_variance(sizes)
    cv2 = ratio(variance, mean**2)
    intermittent = adi > ADI_CUT
    variable = cv2 > CV2_CUT
    return np.asarray(intermittent * 2 + variable, dtype=np.int64)


def zero_share(y: Matrix, window: int) -> Vector:
    recent = y[:, -window:]
    observed = (~np.isnan(recent)).sum(axis=1)
    zeros = (recent == 0).sum(axis=1)
    return ratio(zeros.astype(float), observed.astype(float), fill=1.0)
