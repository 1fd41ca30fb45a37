"""What the lifecycle scenarios share: a governed shop on PostgreSQL, its families, and the
rows to read back (retraining log, alerts, registry states, audit entries)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from shelfwise.forecast.model import ForecasterSettings
from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.contract import Family, Policy
from shelfwise.lifecycle.families import family_of
from shelfwise.lifecycle.jobs import JobRunner
from shelfwise.lifecycle.retrain import Retrainer
from shelfwise.ops import AuditEntry, BacktestResult, JobRun, RetrainingRun
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.simulate.shop import SimulatedShop
from shelfwise.workspace import Workspace

# Small models: every scenario trains several. The forecaster knows each product's department
# only (the human experiment adds its category); the recommender has no ALS candidates (its
# experiment adds them, and with them the ALS score among the ranker's features).
SETTINGS: dict[str, dict[str, Any]] = {
    "forecaster": {
        "settings": ForecasterSettings(
            rounds=30, min_leaf=10, static=("department",), tier_min_series=4
        ),
        "top": 30,
    },
    "recommender": {
        "settings": RecommenderSettings(label_windows=1, ranker_trees=30, als_quota=0),
        "persons": 60,
    },
}
EXPERIMENT_SETTINGS: dict[str, dict[str, Any]] = {
    "forecaster": {
        **SETTINGS["forecaster"],
        "settings": replace(SETTINGS["forecaster"]["settings"], static=("department", "category")),
    },
    "recommender": {
        **SETTINGS["recommender"],
        "settings": replace(SETTINGS["recommender"]["settings"], als_quota=40),
    },
}
# A champion the scheduled retrain must beat: far fewer trees, far slower learning.
WEAK_SETTINGS: dict[str, dict[str, Any]] = {
    "forecaster": {
        **SETTINGS["forecaster"],
        "settings": replace(SETTINGS["forecaster"]["settings"], rounds=1, learning_rate=0.01),
    },
    "recommender": {
        **SETTINGS["recommender"],
        "settings": replace(
            SETTINGS["recommender"]["settings"],
            ranker_trees=1,
            ranker_learning_rate=0.01,
            buy_again_quota=0,
            ease_quota=5,
        ),
    },
}
# The shop sells for 120 days; 91 training days before a 28-day backtest fit inside.
POLICY = Policy(window_days=91, backtest_days=28, drift_window_days=35)


@dataclass
class Governed:
    """One family on a shop whose operational tables live in PostgreSQL, and its jobs."""

    workspace: Workspace
    name: str
    retrainer: Retrainer
    jobs: JobRunner

    def job(self, job: str, **options: Any) -> dict[str, Any]:
        """Run ``job`` on the family's model as `shelfwise jobs run` does; its result."""
        outcome = self.jobs.run(job, self.name, **options)
        assert outcome["status"] == "succeeded"
        return dict(outcome["result"])

    def job_runs(self) -> list[tuple[str, str, str]]:
        """(job, trigger, status) of every job run, oldest first."""
        with self.workspace.operational.session() as session:
            rows = session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()
            return [(r.job_name, r.details["trigger"], r.status) for r in rows]

    def family(self, **options: Any) -> Family:
        return family_of(self.workspace, self.name, **{**SETTINGS[self.name], **options})

    @property
    def alerts(self) -> AlertInbox:
        return self.retrainer.alerts

    def state(self, version: str) -> str | None:
        found = self.workspace.registry.state(self.name, version)
        return found.value if found else None

    def champion(self) -> str | None:
        return self.workspace.tracker.get_alias_version(self.name, "champion")

    def runs(self) -> list[RetrainingRun]:
        with self.workspace.operational.session() as session:
            rows = session.scalars(sa.select(RetrainingRun).order_by(RetrainingRun.id)).all()
            session.expunge_all()
            return list(rows)

    def audit(self, action: str) -> list[AuditEntry]:
        with self.workspace.operational.session() as session:
            rows = session.scalars(
                sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            ).all()
            session.expunge_all()
            return list(rows)

    def moves(self, version: str) -> list[tuple[str | None, str]]:
        """(from, to) of every registry move of ``version``, oldest first."""
        return [
            (m["from_state"], m["to_state"])
            for m in self.workspace.registry.history(self.name)
            if m["version"] == version
        ]

    def backtests(self) -> list[BacktestResult]:
        with self.workspace.operational.session() as session:
            rows = session.scalars(sa.select(BacktestResult).order_by(BacktestResult.id)).all()
            session.expunge_all()
            return list(rows)


def governed_of(workspace: Workspace, name: str) -> Governed:
    registry = workspace.registry
    retrainer = Retrainer(registry, AlertInbox(workspace.operational, registry), POLICY)
    return Governed(workspace, name, retrainer, JobRunner(workspace, POLICY, SETTINGS))


def shop_without_sensitive(shop: SimulatedShop) -> SimulatedShop:
    """The shop with no sensitive category, so the policy may promote by itself (the
    sensitive path has its own tests)."""
    tables = dict(shop.tables)
    tables["products"] = tables["products"].assign(sensitive_category=None)
    return SimulatedShop(**{**shop.__dict__, "tables": tables})


def changed_weeks(shop: SimulatedShop, weeks: int = 1, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Weeks after the shop's last that look nothing like it: every customer orders every
    other day at 3 a.m., 20 products they never bought before a basket (when they have that
    many left), eight of each at three times the price. They run to a Monday, so the last
    week is whole."""
    rng = np.random.default_rng(seed)
    orders = shop.tables["orders"]
    lines = shop.tables["order_lines"]
    bought = lines.merge(orders[["order_id", "customer_ref"]], on="order_id")
    seen = bought.groupby("customer_ref")["sku"].agg(set)
    skus = np.sort(lines["sku"].unique())
    price = (lines["sales_value"] / lines["quantity"]).groupby(lines["sku"]).median()
    last = pd.Timestamp(orders["ordered_at"].max()).normalize()
    days = [last + pd.Timedelta(days=d, hours=3) for d in range(1, 7 * weeks + 1, 2)]
    days.append(last + pd.Timedelta(days=7 * weeks + 1, hours=3))
    customers = orders[["source_system", "customer_ref"]].drop_duplicates()
    new_orders, new_lines = [], []
    for day in days:
        for i, (system, ref) in enumerate(customers.itertuples(index=False)):
            order_id = f"changed-{day:%m%d}-{i}"
            new_orders.append((order_id, day, system, ref, "s1", "store"))
            fresh = [s for s in skus if s not in seen.get(ref, set())]
            pool = fresh if len(fresh) >= 20 else list(skus)
            for sku in rng.choice(pool, 20, replace=False):
                new_lines.append((order_id, sku, sku, 8.0, round(8 * 3 * price[sku], 2), 0.0))
    return {
        "orders": pd.DataFrame(
            new_orders,
            columns=[
                "order_id",
                "ordered_at",
                "source_system",
                "customer_ref",
                "store_id",
                "channel",
            ],
        ),
        "order_lines": pd.DataFrame(
            new_lines,
            columns=["order_id", "line_id", "sku", "quantity", "sales_value", "discount_value"],
        ),
    }
