"""Churn with known hazards: Kaplan-Meier on the simulated times matches the true survival."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from shelfwise.simulate import ChurnConfig, SimulatedChurn, simulate_churn

ContractCheck = Callable[[pd.DataFrame, str], None]
CONFIG = ChurnConfig()


@pytest.fixture(scope="module")
def churn() -> SimulatedChurn:
    return simulate_churn(seed=5, n_customers=4_000, weeks=52)


def kaplan_meier_median(duration: np.ndarray, event: np.ndarray) -> float:
    """The first time the Kaplan-Meier estimate falls to one half or below."""
    times = np.unique(duration[event])
    at_risk = (duration[None, :] >= times[:, None]).sum(axis=1)
    deaths = (event[None, :] & (duration[None, :] == times[:, None])).sum(axis=1)
    survival = np.cumprod(1 - deaths / at_risk)
    return float(times[np.argmax(survival <= 0.5)])


def true_median(covariates: pd.DataFrame) -> float:
    """Where the population's true survival, the mean of S(t | x), crosses one half."""
    low, high = 0.0, 1_000.0
    for _ in range(60):
        middle = (low + high) / 2
        if CONFIG.survival(np.array([middle]), covariates).mean() > 0.5:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def test_frames_are_contract_frames(churn: SimulatedChurn, assert_contract: ContractCheck) -> None:
    assert_contract(churn.customers, "customer_records")
    assert_contract(churn.orders, "orders")
    assert_contract(churn.order_lines, "order_lines")
    assert churn.order_lines["order_id"].isin(churn.orders["order_id"]).all()
    assert churn.orders["customer_ref"].isin(churn.truth["customer_ref"]).all()
    assert tuple(churn.coefficients.columns) == ("covariate", "log_hazard_ratio")


def test_kaplan_meier_median_matches_the_true_one(churn: SimulatedChurn) -> None:
    truth = churn.truth
    observed = truth["observed_weeks"].to_numpy()
    event = ~truth["censored"].to_numpy()
    estimate = kaplan_meier_median(observed, event)
    expected = true_median(churn.covariates)
    assert abs(estimate / expected - 1) < 0.06, (estimate, expected)


def test_hazard_ratios_show_in_each_groups_survival(churn: SimulatedChurn) -> None:
    truth = churn.truth.merge(churn.covariates, on="customer_ref")
    for value in (0.0, 1.0):
        group = truth[truth["loyalty_member"] == value]
        estimate = kaplan_meier_median(
            group["observed_weeks"].to_numpy(), ~group["censored"].to_numpy()
        )
        expected = true_median(churn.covariates[churn.covariates["loyalty_member"] == value])
        assert abs(estimate / expected - 1) < 0.08, (value, estimate, expected)
    members = truth["loyalty_member"] == 1
    assert truth.loc[members, "churn_weeks"].median() > truth.loc[~members, "churn_weeks"].median()


def test_censoring_is_the_end_of_the_window(churn: SimulatedChurn) -> None:
    truth = churn.truth
    end = pd.Timestamp("2017-01-02") + pd.Timedelta(weeks=52)
    censored = truth["churn_at"] > end
    assert (censored == truth["censored"]).sum() >= len(truth) - 2  # rounding to the second
    assert np.allclose(
        truth["observed_weeks"], np.minimum(truth["churn_weeks"], truth["observed_weeks"])
    )
    assert 0.2 < truth["censored"].mean() < 0.7
    assert np.allclose(
        truth["linear_predictor"], CONFIG.linear_predictor(churn.covariates), atol=1e-12
    )


def test_customers_buy_from_signup_until_churn(churn: SimulatedChurn) -> None:
    orders = churn.orders.merge(churn.truth, on="customer_ref")
    elapsed = orders["ordered_at"] - orders["signup_at"]
    weeks = elapsed.dt.total_seconds() / (7 * 86_400)
    assert (weeks >= 0).all()
    assert (weeks <= orders["observed_weeks"] + 1e-6).all()
    assert set(orders["customer_ref"]) == set(churn.truth["customer_ref"])
    first = orders.groupby("customer_ref")["ordered_at"].min()
    signup = churn.truth.set_index("customer_ref")["signup_at"]
    assert (first == signup.loc[first.index]).all()
    per_order = churn.order_lines.groupby("order_id")["sku"]
    assert (per_order.nunique() == per_order.size()).all()


def test_same_seed_same_customers_other_seed_other_customers() -> None:
    first = simulate_churn(seed=1, n_customers=200, weeks=20)
    again = simulate_churn(seed=1, n_customers=200, weeks=20)
    for name in ("customers", "covariates", "orders", "order_lines", "truth", "coefficients"):
        assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.truth.equals(simulate_churn(seed=2, n_customers=200, weeks=20).truth)


def test_unknown_covariates_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown covariates"):
        ChurnConfig(coefficients=(("shoe_size", 1.0),))
