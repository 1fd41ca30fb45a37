"""Small known answers: the simple forecasts, demand classes, the blend and the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.forecast import baselines
from shelfwise.forecast.blend import (
    UNSCALED,
    conformal_bounds,
    fit_intervals,
    fit_weights,
    simplex,
)
from shelfwise.forecast.metrics import forecast_metrics, metrics_by_level, naive_scale

NAN = np.nan


def test_moving_average_and_last_value_ignore_the_periods_before_a_series_starts() -> None:
    y = np.array([[NAN, NAN, 2.0, 4.0], [1.0, 2.0, 3.0, 6.0], [NAN, NAN, NAN, NAN]])
    assert baselines.moving_average(y, 4).tolist() == [3.0, 3.0, 0.0]
    assert baselines.last_value(y).tolist() == [4.0, 6.0, 0.0]


def test_tsb_smooths_size_and_probability_from_the_first_period() -> None:
    y = np.array([[4.0, 0.0, 2.0]])
    probability, size = 1.0, 4.0
    probability += 0.2 * (0 - probability)  # a period with no sale: probability decays
    probability += 0.2 * (1 - probability)
    size += 0.2 * (2 - size)
    assert baselines.tsb(y)[0] == pytest.approx(probability * size)


def test_croston_sba_is_size_over_interval_with_the_bias_correction() -> None:
    y = np.array([[0.0, 3.0, 0.0, 0.0, 3.0]])  # size 3, then again after 3 periods
    size, interval = 3.0, 2.0  # first sale after 2 periods
    interval += 0.1 * (3 - interval)
    assert baselines.croston(y)[0] == pytest.approx(0.95 * size / interval)


def test_seasonal_naive_reads_one_season_back_and_the_last_value_where_it_cannot() -> None:
    y = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    assert baselines.seasonal_naive(y, 4, 2).tolist() == [[2.0, 3.0]]
    assert baselines.seasonal_naive(y, 12, 2).tolist() == [[5.0, 5.0]]


def test_demand_classes_follow_syntetos_boylan() -> None:
    smooth = [5, 5, 6, 5, 5, 6, 5, 5]
    erratic = [1, 20, 2, 30, 1, 25, 2, 1]
    intermittent = [0, 0, 5, 0, 0, 5, 0, 5]
    lumpy = [0, 0, 1, 0, 0, 30, 0, 2]
    y = np.array([smooth, erratic, intermittent, lumpy], dtype=float)
    names = [baselines.CLASSES[i] for i in baselines.demand_classes(y)]
    assert names == ["smooth", "erratic", "intermittent", "lumpy"]


def test_the_blend_picks_the_member_that_is_right_per_class() -> None:
    assert np.allclose(simplex(3).sum(axis=1), 1.0)
    actual = np.array([10.0, 10.0, 0.0, 0.0])
    members = np.array([[10.0, 0.0], [10.0, 0.0], [5.0, 0.0], [5.0, 0.0]])
    classes = np.array([0, 0, 2, 2])
    weights = fit_weights(members, actual, classes)
    assert weights[0].tolist() == [1.0, 0.0]
    assert weights[2].tolist() == [0.0, 1.0]
    assert weights[1].tolist() == [1.0, 0.0]  # no row: the model alone


def test_conformal_quantiles_per_horizon() -> None:
    error = np.linspace(-1, 1, 1001)
    horizon = np.ones(1001, dtype=np.int64)
    classes = np.zeros(1001, dtype=np.int64)
    q = fit_intervals(error, horizon, classes, 1, 0.8)
    # The 100th and 902nd of 1001 (floor and ceil of 1002 x 0.1 and 0.9), not -0.8 and 0.8.
    assert q[0, 0].tolist() == pytest.approx([-0.802, 0.802])
    assert q[0, 3].tolist() == pytest.approx([-0.802, 0.802])  # too few rows: the horizon's
    assert q[0, UNSCALED].tolist() == [0.0, 0.0]  # no row without a scale


def test_conformal_bounds_have_the_finite_sample_correction_per_side() -> None:
    errors = np.arange(19.0, 0.0, -1.0)  # 1..19, in any order
    # 80%: a new error exchangeable with 19 falls below the 2nd or above the 18th smallest
    # with probability 2/20 each: exactly 10% a side (np.quantile's 2.8 and 17.2 miss more).
    assert conformal_bounds(errors, 0.8).tolist() == [2.0, 18.0]
    assert conformal_bounds(errors, 0.9).tolist() == [1.0, 19.0]  # 20 x 0.05 = 1
    skewed = np.array([-1.0, 0.0, 0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0])
    assert conformal_bounds(skewed, 0.6).tolist() == [0.0, 8.0]  # floor(2) and ceil(8)
    assert conformal_bounds(np.array([1.0, 2.0, 3.0]), 0.8).tolist() == [1.0, 3.0]  # too few
    assert conformal_bounds(np.zeros(0), 0.8).tolist() == [0.0, 0.0]


def test_rows_without_a_scale_are_their_own_group_in_units() -> None:
    # 400 scaled rows per horizon (class 0, errors -1..1) and 30 unscaled ones (errors in units,
    # 0..290) spread over 2 horizons: too few per horizon, so pooled over the horizons, and kept
    # out of the scaled classes' bounds.
    scaled = np.tile(np.linspace(-1, 1, 399), 2)
    units = np.arange(30) * 10.0
    error = np.concatenate([scaled, units])
    horizon = np.concatenate([np.repeat([1, 2], 399), np.tile([1, 2], 15)]).astype(np.int64)
    groups = np.concatenate([np.zeros(798), np.full(30, UNSCALED)]).astype(np.int64)
    q = fit_intervals(error, horizon, groups, 2, 0.8)
    expected = conformal_bounds(np.linspace(-1, 1, 399), 0.8).tolist()
    assert q[0, 0].tolist() == q[1, 0].tolist() == expected  # untouched by the unscaled rows
    assert q[0, 1].tolist() == expected  # a class with no row: the horizon's scaled rows
    # 30 errors: the floor(3.1) = 3rd and the ceil(27.9) = 28th smallest, at each horizon.
    assert q[0, UNSCALED].tolist() == q[1, UNSCALED].tolist() == [20.0, 270.0]


def test_metrics_known_answers() -> None:
    actual = np.array([2.0, 0.0, 4.0, 2.0])
    forecast = np.array([1.0, 1.0, -3.0, 2.0])  # clipped at 0
    out = forecast_metrics(
        actual,
        forecast,
        lower=np.zeros(4),
        upper=np.full(4, 3.0),
        series=np.array(["a", "a", "b", "b"], dtype=object),
        scale=np.array([1.0, 1.0, 4.0, 4.0]),
    )
    assert out["mae"] == pytest.approx(6 / 4)
    assert out["wape"] == pytest.approx(6 / 8)
    assert out["bias"] == pytest.approx(-4 / 8)
    assert out["coverage"] == pytest.approx(0.75)
    assert out["rmsse"] == pytest.approx((1.0 + np.sqrt(8 / 4)) / 2)
    assert naive_scale(np.array([[NAN, 1.0, 3.0, 2.0]])).tolist() == [2.5]
    with pytest.raises(ValueError, match="no forecast rows"):
        forecast_metrics(np.array([]), np.array([]))


def test_metrics_by_level_name_each_level_as_segments_are() -> None:
    levels = np.array(["DRUG GM", "DRUG GM", "MEAT", "KIOSK"], dtype=object)
    out = metrics_by_level(
        "department",
        levels,
        np.array([2.0, 2.0, 4.0, 0.0]),
        np.array([1.0, 3.0, 5.0, 1.0]),
        lower=np.zeros(4),
        upper=np.full(4, 4.5),
    )
    assert out["department/DRUG_GM/mae"] == pytest.approx(1.0)
    assert out["department/DRUG_GM/wape"] == pytest.approx(0.5)
    assert out["department/DRUG_GM/bias"] == pytest.approx(0.0)
    assert out["department/MEAT/coverage"] == pytest.approx(1.0)
    # nothing sold: its MAE, and no WAPE or bias to divide by zero
    assert out["department/KIOSK/mae"] == pytest.approx(1.0)
    assert "department/KIOSK/wape" not in out
    assert not [name for name in out if " " in name]
