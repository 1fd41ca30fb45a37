"""Customers who churn at known hazards: a Weibull proportional-hazards world.

A customer with covariates ``x`` churns at time ``T`` (weeks after signing up) with

    S(t | x) = exp(-(t / baseline_scale) ** shape * exp(beta . x))

so ``exp(beta_j)`` is the hazard ratio of one unit of covariate ``j``. Customers sign up over
the first weeks of the window and buy (a Poisson process of their own rate) until they churn
or the window ends, whichever is first: a churn after the window is censored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shelfwise.simulate._frames import (
    SECONDS_PER_DAY,
    contract_frame,
    json_records,
    numbered,
    seconds,
    to_ns,
)

COVARIATES = ("loyalty_member", "online", "age_z", "distance_z")
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY


@dataclass(frozen=True)
class ChurnConfig:
    """The true hazard (``coefficients`` are log hazard ratios per unit of each covariate) and
    how customers sign up and buy."""

    shape: float = 1.3
    baseline_scale_weeks: float = 40.0
    coefficients: tuple[tuple[str, float], ...] = (
        ("loyalty_member", -0.6),
        ("online", 0.4),
        ("age_z", -0.25),
        ("distance_z", 0.3),
    )
    loyalty_share: float = 0.5
    online_share: float = 0.3
    signup_weeks: float = 26.0
    purchases_per_week: float = 0.8
    lines_per_order: float = 3.0
    online_orders: float = 0.7

    def __post_init__(self) -> None:
        unknown = sorted({name for name, _ in self.coefficients} - set(COVARIATES))
        if unknown:
            raise ValueError(f"ChurnConfig.coefficients: unknown covariates {unknown}")
        if self.shape <= 0 or self.baseline_scale_weeks <= 0:
            raise ValueError("ChurnConfig: shape and baseline_scale_weeks must be positive")

    def survival(self, weeks: np.ndarray, covariates: pd.DataFrame) -> np.ndarray:
        """True S(t | x): one row per customer of ``covariates``, one column per time."""
        risk = np.exp(self.linear_predictor(covariates))
        scaled = (np.asarray(weeks, dtype=float) / self.baseline_scale_weeks) ** self.shape
        survival: np.ndarray = np.exp(-np.outer(risk, scaled))
        return survival

    def linear_predictor(self, covariates: pd.DataFrame) -> np.ndarray:
        beta = dict(self.coefficients)
        total = np.zeros(len(covariates))
        for name, value in beta.items():
            total += value * covariates[name].to_numpy(dtype=float)
        return total


@dataclass(frozen=True)
class SimulatedChurn:
    """``customers`` (a ``customer_records`` frame, covariates in attributes), ``covariates``
    (customer_ref and one column per covariate), ``orders`` and ``order_lines``, ``truth``
    (customer_ref, signup_at, churn_at, churn_weeks, observed_weeks, censored,
    linear_predictor) and ``coefficients`` (covariate, log_hazard_ratio)."""

    customers: pd.DataFrame
    covariates: pd.DataFrame
    orders: pd.DataFrame
    order_lines: pd.DataFrame
    truth: pd.DataFrame
    coefficients: pd.DataFrame


def simulate_churn(
    seed: int,
    n_customers: int = 2_000,
    start: str | pd.Timestamp = "2017-01-02",
    weeks: int = 52,
    *,
    skus: Sequence[str] | None = None,
    prices: Mapping[str, float] | None = None,
    config: ChurnConfig | None = None,
) -> SimulatedChurn:
    """``n_customers`` who sign up from ``start`` on and are watched for ``weeks`` weeks.

    Orders draw ``skus`` (default ``SKU-00001`` .. ``SKU-00100``) at ``prices`` (default: a
    price per sku drawn once).
    """
    config = config or ChurnConfig()
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp(start)
    n = n_customers
    refs = numbered("C", np.arange(1, n + 1), 6)
    covariates = pd.DataFrame(
        {
            "customer_ref": pd.Series(refs, dtype="string"),
            "loyalty_member": (rng.random(n) < config.loyalty_share).astype(float),
            "online": (rng.random(n) < config.online_share).astype(float),
            "age_z": rng.standard_normal(n),
            "distance_z": rng.standard_normal(n),
        }
    )
    eta = config.linear_predictor(covariates)
    churn = config.baseline_scale_weeks * (rng.exponential(size=n) / np.exp(eta)) ** (
        1 / config.shape
    )
    signup = rng.uniform(0, min(config.signup_weeks, weeks), n)
    follow_up = weeks - signup
    observed = np.minimum(churn, follow_up)
    signup_at = seconds(origin) + (signup * SECONDS_PER_WEEK).astype("timedelta64[s]")
    truth = pd.DataFrame(
        {
            "customer_ref": pd.Series(refs, dtype="string"),
            "signup_at": to_ns(signup_at),
            "churn_at": to_ns(signup_at + (churn * SECONDS_PER_WEEK).astype("timedelta64[s]")),
            "churn_weeks": churn,
            "observed_weeks": observed,
            "censored": churn > follow_up,
            "linear_predictor": eta,
        }
    )
    catalogue = list(skus) if skus is not None else [f"SKU-{i:05d}" for i in range(1, 101)]
    price_of = dict(prices) if prices is not None else _prices(rng, catalogue)
    orders, lines = _purchases(rng, truth, covariates, catalogue, price_of, config)
    customers = contract_frame(
        "customer_records",
        {
            "source_system": "loyalty_card",
            "source_id": refs,
            "loyalty_id": refs,
            "created_at": truth["signup_at"],
            "updated_at": truth["signup_at"],
            "attributes": json_records(covariates.drop(columns="customer_ref")),
        },
        n,
    )
    coefficients = pd.DataFrame(
        {
            "covariate": [name for name, _ in config.coefficients],
            "log_hazard_ratio": [value for _, value in config.coefficients],
        }
    )
    return SimulatedChurn(customers, covariates, orders, lines, truth, coefficients)


def _prices(rng: np.random.Generator, skus: list[str]) -> dict[str, float]:
    drawn = np.exp(rng.uniform(np.log(0.8), np.log(15.0), len(skus))).round(2)
    return dict(zip(skus, drawn.tolist(), strict=True))


def _purchases(
    rng: np.random.Generator,
    truth: pd.DataFrame,
    covariates: pd.DataFrame,
    skus: list[str],
    prices: dict[str, float],
    config: ChurnConfig,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A first order at signup, then a Poisson process of each customer's rate until churn or
    the end of the window."""
    n = len(truth)
    observed = truth["observed_weeks"].to_numpy()
    rate = rng.gamma(2.0, config.purchases_per_week / 2.0, n)
    later = rng.poisson(rate * observed)
    customer = np.repeat(np.arange(n), 1 + later)
    first = np.cumsum(1 + later) - (1 + later)
    after = rng.random(customer.size) * observed[customer]
    after[first] = 0.0
    offset = (after * SECONDS_PER_WEEK).astype(np.int64).astype("timedelta64[s]")
    ordered_at = truth["signup_at"].to_numpy().astype("datetime64[s]")[customer] + offset
    order = np.lexsort((customer, ordered_at))
    customer, ordered_at = customer[order], ordered_at[order]
    m = customer.size
    order_ids = numbered("CO-", np.arange(1, m + 1), 8)
    online = covariates["online"].to_numpy()[customer] > 0
    web = online & (rng.random(m) < config.online_orders)
    refs = truth["customer_ref"].to_numpy(dtype=object)
    orders = contract_frame(
        "orders",
        {
            "order_id": order_ids,
            "ordered_at": to_ns(ordered_at),
            "source_system": "loyalty_card",
            "customer_ref": refs[customer],
            "channel": np.where(web, "web", "store").astype(object),
        },
        m,
    )
    per_order = np.minimum(1 + rng.poisson(config.lines_per_order - 1, m), len(skus))
    line_order = np.repeat(np.arange(m), per_order)
    line_start = np.cumsum(per_order) - per_order
    line_number = np.arange(line_order.size) - line_start[line_order]
    # Distinct skus within an order: a random offset walk through the catalogue.
    base = rng.integers(len(skus), size=m)
    step = 1 + rng.integers(max(len(skus) - 1, 1), size=m)
    pick = (base[line_order] + line_number * step[line_order]) % len(skus)
    pick = _distinct_per_order(pick, line_order, len(skus))
    sku = np.array(skus, dtype=object)[pick]
    quantity = 1.0 + rng.poisson(0.3, line_order.size)
    price = np.array([prices[s] for s in sku], dtype=float)
    lines = contract_frame(
        "order_lines",
        {
            "order_id": order_ids[line_order],
            "line_id": (line_number + 1).astype(str).astype(object),
            "sku": sku,
            "quantity": quantity,
            "sales_value": (quantity * price).round(2),
            "discount_value": 0.0,
            "coupon_value": 0.0,
        },
        line_order.size,
    )
    return orders, lines


def _distinct_per_order(pick: np.ndarray, line_order: np.ndarray, size: int) -> np.ndarray:
    """Move a repeated sku within an order to the next free one (a step may revisit a sku)."""
    seen: set[tuple[int, int]] = set()
    out = pick.copy()
    for i, (o, p) in enumerate(zip(line_order.tolist(), pick.tolist(), strict=True)):
        while (o, p) in seen:
            p = (p + 1) % size
        seen.add((o, p))
        out[i] = p
    return out
