"""Retraining under the policy (SQLite, PostgreSQL), with a stub family whose scores are set,
and once end to end with the demand forecaster on the simulated shop."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from shelfwise.forecast.family import ForecasterFamily
from shelfwise.forecast.model import ForecasterSettings
from shelfwise.lifecycle import ModelRegistry
from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.contract import Policy
from shelfwise.lifecycle.retrain import Retrainer
from shelfwise.models.base import Estimator, Evaluation
from shelfwise.ops import BacktestResult, OperationalDatabase, RetrainingRun
from shelfwise.ops.states import AlertAction, AlertStatus, RetrainingTrigger
from shelfwise.recommend.popularity import PopularityRecommender
from shelfwise.tracking import Tracker
from shelfwise.workspace import Workspace


class Stub:
    """A family whose candidate and champion score what the test says (MAE: lower wins)."""

    model_name = "stub"
    experiment = "stub"

    def __init__(self, scores: list[float], sensitive: list[str] | None = None) -> None:
        self.scores, self.sensitive = list(scores), sensitive or []

    def latest(self) -> pd.Timestamp:
        return pd.Timestamp("2024-06-30")

    def sensitive_scope(self) -> list[str]:
        return self.sensitive

    def train(self, start: pd.Timestamp, end: pd.Timestamp) -> Estimator[Any]:
        log = pd.DataFrame({"person_id": ["a"], "sku": ["x"], "occurred_at": [start]})
        return PopularityRecommender().fit(log)

    def score(self, model: Estimator[Any], start: pd.Timestamp, end: pd.Timestamp) -> Evaluation:
        return Evaluation({"mae": self.scores.pop(0)}, "mae", False)


@pytest.fixture
def retrainer(tracker: Tracker, migrated: OperationalDatabase) -> Retrainer:
    registry = ModelRegistry(tracker, migrated)
    return Retrainer(registry, AlertInbox(migrated, registry))


def test_the_policy_promotes_shadows_or_asks_a_reviewer(retrainer: Retrainer) -> None:
    first = retrainer.run(Stub([10.0]))  # no champion yet
    assert first["decision"] == "champion"
    shadowed = retrainer.run(Stub([9.8, 10.0]))  # 2% better: below the 5% asked
    assert shadowed["decision"] == "challenger"
    promoted = retrainer.run(Stub([9.0, 10.0]))  # 10% better
    assert promoted["decision"] == "champion"
    tracker = retrainer.registry.tracker
    assert tracker.get_alias_version("stub", "champion") == promoted["version"]
    held = retrainer.run(Stub([5.0, 9.0], sensitive=["health"]))  # better, but sensitive
    assert held["decision"] == "pending_review"
    assert tracker.get_alias_version("stub", "champion") == promoted["version"]
    assert tracker.get_alias_version("stub", "challenger") == held["version"]
    drifted = retrainer.run(Stub([4.0, 9.0]), trigger=RetrainingTrigger.DRIFT)
    assert drifted["decision"] == "pending_review"  # never promoted automatically
    alerts = retrainer.alerts.list(AlertStatus.UNREAD)
    assert [(a["type"], a["version"]) for a in alerts] == [
        ("drift_detected", drifted["version"]),
        ("promotion_pending", held["version"]),
    ]
    with retrainer.operational.session() as session:
        runs = session.scalars(sa.select(RetrainingRun).order_by(RetrainingRun.id)).all()
        assert [r.status for r in runs] == ["succeeded"] * 5
        assert [r.trigger for r in runs][-1] == "drift"
        assert runs[-1].window_end - runs[-1].window_start == pd.Timedelta(days=30)
        assert runs[0].window_end - runs[0].window_start == pd.Timedelta(days=90)
        assert runs[2].metrics["gain"] == pytest.approx(0.1)
        backtests = session.scalars(sa.select(BacktestResult)).all()
        assert len(backtests) == 1 + 2 * 4  # the first run had no champion to judge


def test_a_sensitive_scope_never_gets_a_champion_by_itself(retrainer: Retrainer) -> None:
    first = retrainer.run(Stub([10.0], sensitive=["age_restricted"]))
    assert first["decision"] == "pending_review"
    assert retrainer.registry.tracker.get_alias_version("stub", "champion") is None
    (alert,) = retrainer.alerts.list()
    assert alert["type"] == "promotion_pending"
    assert "covers age_restricted" in alert["title"]


def test_a_run_that_fails_is_logged_and_promotes_nothing(retrainer: Retrainer) -> None:
    class Broken(Stub):
        def train(self, start: pd.Timestamp, end: pd.Timestamp) -> Estimator[Any]:
            raise RuntimeError("the warehouse is down")

    with pytest.raises(RuntimeError, match="warehouse"):
        retrainer.run(Broken([]))
    with retrainer.operational.session() as session:
        run = session.scalars(sa.select(RetrainingRun)).one()
        assert (run.status, run.version_produced) == ("failed", None)
        assert "the warehouse is down" in (run.error or "")
    assert retrainer.registry.tracker.get_alias_version("stub", "champion") is None


def test_the_forecaster_retrains_under_the_same_policy(shop_workspace: Workspace) -> None:
    family = ForecasterFamily(shop_workspace, ForecasterSettings(rounds=30, min_leaf=10), top=30)
    registry = shop_workspace.registry
    retrainer = Retrainer(
        registry, AlertInbox(shop_workspace.operational, registry), Policy(window_days=91)
    )
    assert shop_workspace.tracker.get_alias_version("forecaster", "champion") is None
    assert family.sensitive_scope() == ["health"]  # a tenth of the shop's products
    outcome = retrainer.run(family, actor="test")
    assert outcome["metrics"]["candidate"] > 0  # the backtest's MAE
    run = registry.tracker.client.get_model_version("forecaster", outcome["version"]).run_id
    logged = registry.tracker.client.get_run(run).data.metrics
    departments = {n.split("/")[1] for n in logged if n.startswith("department/")}
    assert departments  # with the names and figures the quickstart's version logs
    assert {f"department/{d}/{m}" for d in departments for m in ("mae", "wape", "coverage")} <= set(
        logged
    )
    assert outcome["decision"] == "pending_review"  # the first champion of a health scope
    (alert,) = retrainer.alerts.list(AlertStatus.UNREAD)
    assert alert["version"] == outcome["version"]
    # a reviewer approves it; the next run is judged against it on the same weeks
    retrainer.alerts.act(alert["id"], AlertAction.APPROVE, "bo", "forecasts, not offers")
    again = retrainer.run(family, actor="test")
    assert again["metrics"]["champion"] > 0
    assert again["metrics"]["gain"] == pytest.approx(0.0, abs=1e-9)  # same data, same model
    assert again["decision"] == "challenger"
    assert registry.history("forecaster")[-1]["actor"] == "test"


def _champion_trained_until(retrainer: Retrainer, until: pd.Timestamp) -> str:
    """A champion of ``stub`` whose run says its data ran to ``until``."""
    log = pd.DataFrame({"person_id": ["a"], "sku": ["x"], "occurred_at": [until]})
    record = retrainer.registry.tracker.log_training(
        PopularityRecommender().fit(log),
        experiment="stub",
        metrics=Evaluation({"mae": 1.0}, "mae", False),
        dataset={"trained_until": until.isoformat()},
    )
    return retrainer.registry.register_first_champion("stub", record, actor="t", reason="set")


def test_a_champion_is_judged_only_on_days_it_was_not_trained_on(retrainer: Retrainer) -> None:
    latest = Stub([]).latest()
    champion = _champion_trained_until(retrainer, latest - pd.Timedelta(days=14))
    # the candidate on its whole window, then both on the 14 days the champion never saw
    outcome = retrainer.run(Stub([10.0, 9.0, 8.0]))
    assert outcome["metrics"]["judged_from"] == (latest - pd.Timedelta(days=14)).isoformat()
    assert outcome["metrics"]["gain"] == pytest.approx(1 / 9)  # 8 against 9, not 10
    assert outcome["decision"] == "champion"
    with retrainer.operational.session() as session:
        rows = session.scalars(sa.select(BacktestResult).order_by(BacktestResult.id)).all()
        windows = [(r.version, (r.window_end - r.window_start).days) for r in rows]
    assert windows == [(outcome["version"], 30), (champion, 14), (outcome["version"], 14)]


def test_a_champion_trained_on_the_whole_window_is_not_judged_on_it(retrainer: Retrainer) -> None:
    champion = _champion_trained_until(retrainer, Stub([]).latest())  # fitted on every day
    outcome = retrainer.run(Stub([10.0]))  # the champion is not scored at all
    assert outcome["decision"] == "challenger"
    assert outcome["metrics"]["champion"] is None
    assert retrainer.registry.tracker.get_alias_version("stub", "champion") == champion
    reason = retrainer.registry.history("stub")[-1]["reason"]
    assert "was trained on the backtest window" in reason
