"""MovieLens, Hillstrom, Open Bandit, CDNOW and Stallion as their SOURCE.md describe them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from shelfwise.datasets.bandits import load_open_bandit, open_bandit_to_bandit_logs
from shelfwise.datasets.causal import (
    HILLSTROM_ARMS,
    hillstrom_to_campaigns,
    hillstrom_to_treatment_assignments,
    load_hillstrom,
)
from shelfwise.datasets.forecasting import load_stallion
from shelfwise.datasets.interactions import (
    load_movielens_100k,
    movielens_to_events,
    movielens_to_products,
)
from shelfwise.datasets.survival import cdnow_to_orders, load_cdnow

pytestmark = pytest.mark.data
ContractCheck = Callable[[pd.DataFrame, str], None]
LOG_HEAD = ["timestamp", "item_id", "position", "click", "propensity_score"]


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {str(name): str(dtype) for name, dtype in frame.dtypes.items()}


def test_movielens_100k(datasets_dir: Path, contract_check: ContractCheck) -> None:
    ml = load_movielens_100k(datasets_dir)
    assert _dtypes(ml.interactions) == dict.fromkeys(
        ["user_id", "item_id", "rating", "timestamp"], "int64"
    )
    assert len(ml.interactions) == 100_000
    assert ml.interactions["user_id"].nunique() == len(ml.users) == 943
    assert ml.interactions["item_id"].nunique() == len(ml.items) == 1_682
    assert ml.interactions["user_id"].value_counts().min() >= 20
    assert set(ml.interactions["rating"]) == {1, 2, 3, 4, 5}
    assert list(ml.items.columns) == ["item_id", "movie_title", "release_year", "class"]
    assert list(ml.users.columns) == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert isinstance(ml.users["zip_code"].dtype, pd.StringDtype)

    events = movielens_to_events(ml.interactions)
    products = movielens_to_products(ml.items)
    contract_check(events, "events")
    contract_check(products, "products")
    assert len(events) == 100_000
    assert len(products) == 1_682
    assert set(events["sku"]) <= set(products["sku"])
    assert (events["event_type"] == "view").all()
    assert events["occurred_at"].min() >= pd.Timestamp("1997-09-01")
    assert events["occurred_at"].max() < pd.Timestamp("1998-05-01")
    ratings = events["context"].str.extract(r'"rating":(\d)', expand=False).astype("int64")
    assert ratings.tolist() == ml.interactions["rating"].tolist()
    assert products.loc[0, "category"] == "Animation|Children's|Comedy"


def test_hillstrom(datasets_dir: Path, contract_check: ContractCheck) -> None:
    customers = load_hillstrom(datasets_dir)
    assert customers.shape == (64_000, 12)
    assert _dtypes(customers)["history"] == "float64"
    assert _dtypes(customers)["zip_code"] == "string"
    assert customers["segment"].value_counts().to_dict() == {
        "Womens E-Mail": 21_387,
        "Mens E-Mail": 21_307,
        "No E-Mail": 21_306,
    }
    campaigns = hillstrom_to_campaigns()
    assignments = hillstrom_to_treatment_assignments(customers)
    contract_check(campaigns, "campaigns")
    contract_check(assignments, "treatment_assignments")
    assert len(assignments) == 64_000
    assert set(assignments["campaign_id"]) == set(campaigns["campaign_id"])
    assert set(assignments["arm"]) == set(HILLSTROM_ARMS)
    assert json.loads(str(campaigns.loc[0, "attributes"]))["arms"] == list(HILLSTROM_ARMS)
    assert int(assignments["converted"].sum()) == int(customers["conversion"].sum())
    assert assignments["revenue"].sum() == pytest.approx(customers["spend"].sum())
    first = json.loads(str(assignments.loc[0, "covariates"]))
    assert first["zip_code"] == customers.loc[0, "zip_code"]
    assert len(first) == 8


@pytest.mark.parametrize("policy", ["random", "bts"])
def test_open_bandit(policy: str, datasets_dir: Path, contract_check: ContractCheck) -> None:
    log, items = load_open_bandit(policy, "all", datasets_dir)  # type: ignore[arg-type]
    assert log.shape == (10_000, 89)
    assert items.shape == (80, 5)
    assert list(log.columns[:5]) == LOG_HEAD
    assert log.columns[-1] == "user-item_affinity_79"
    assert (log.dtypes.iloc[9:] == "float64").all()
    assert set(log["position"]) == {1, 2, 3}
    if policy == "random":
        assert (log["propensity_score"] == 0.0125).all()
    bandit_logs = open_bandit_to_bandit_logs(log, policy)
    contract_check(bandit_logs, "bandit_logs")
    assert len(bandit_logs) == 10_000
    assert bandit_logs.loc[0, "log_id"] == f"{policy}-all-1"
    assert bandit_logs["reward"].sum() == log["click"].sum()
    assert len(json.loads(str(bandit_logs.loc[0, "context"]))) == 4 + 80


def test_cdnow(datasets_dir: Path, contract_check: ContractCheck) -> None:
    master = load_cdnow("master", datasets_dir)
    assert master.shape == (69_659, 4)
    assert _dtypes(master) == {
        "customer_id": "int64",
        "date": "string",
        "quantity": "int64",
        "amount": "float64",
    }
    assert master["customer_id"].nunique() == 23_570
    sample = load_cdnow("sample", datasets_dir)
    assert sample.shape == (6_919, 5)
    assert sample["customer_id"].nunique() == 2_357
    assert load_cdnow("summary", datasets_dir).shape == (2_357, 4)
    assert load_cdnow("summary_with_transactions", datasets_dir).shape == (2_357, 5)

    tables = cdnow_to_orders(master)
    contract_check(tables.orders, "orders")
    contract_check(tables.order_lines, "order_lines")
    assert len(tables.orders) == len(tables.order_lines) == len(master)
    assert tables.orders["customer_ref"].nunique() == 23_570
    assert tables.orders["ordered_at"].min() == pd.Timestamp("1997-01-01")
    assert tables.orders["ordered_at"].max() == pd.Timestamp("1998-06-30")
    assert tables.order_lines["sales_value"].sum() == pytest.approx(master["amount"].sum())
    assert set(tables.order_lines["sku"]) == set(tables.products["sku"]) == {"CD"}


def test_stallion(datasets_dir: Path) -> None:
    panel = load_stallion(datasets_dir)
    assert panel.shape == (21_000, 26)
    assert isinstance(panel["agency"].dtype, pd.CategoricalDtype)
    assert panel.groupby(["agency", "sku"], observed=True).ngroups == 350
    assert panel["agency"].nunique() == 58
    assert panel["sku"].nunique() == 25
    assert panel["date"].nunique() == 60
    assert panel["date"].min() == pd.Timestamp("2013-01-01")
    assert panel["date"].max() == pd.Timestamp("2017-12-01")
    assert panel["timeseries"].nunique() == 350
