"""The lifecycle's eight scenarios, end to end, for the recommender and for the forecaster, on
PostgreSQL: each leaves the retraining-log rows, alerts, registry states and audit entries it
should. Real models are trained on the simulated shop (small settings keep each to seconds).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scenario_support import (
    EXPERIMENT_SETTINGS,
    POLICY,
    SETTINGS,
    WEAK_SETTINGS,
    Governed,
    changed_weeks,
    governed_of,
    shop_without_sensitive,
)

from shelfwise.lifecycle.experiments import Experiments
from shelfwise.lifecycle.families import family_of
from shelfwise.lifecycle.jobs import JobRunner
from shelfwise.lifecycle.review import review_evidence
from shelfwise.lifecycle.scheduler import Schedule, Scheduler
from shelfwise.lifecycle.segments import segment_champions, segment_key, segment_model
from shelfwise.ops.states import (
    AlertAction,
    AlertStatus,
    ExperimentDecision,
    ExperimentStatus,
    RetrainingTrigger,
    ShadowRole,
)
from shelfwise.recommend.stage import purchase_log
from shelfwise.serve.app import create_app
from shelfwise.serve.shadow_models import ShadowVersions
from shelfwise.serve.workspace import ChampionWatcher, keyring_of, tenant_from_workspace
from shelfwise.settings import Settings
from shelfwise.simulate.shop import SimulatedShop, load_shop, simulate_shop
from shelfwise.workspace import Workspace

pytestmark = pytest.mark.service
FAMILIES = ("forecaster", "recommender")


@pytest.fixture(scope="module")
def plain_shop() -> SimulatedShop:
    return shop_without_sensitive(simulate_shop(seed=0))


@pytest.fixture(scope="module")
def loaded(plain_shop: SimulatedShop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop's analytic store, loaded once; each scenario copies it."""
    folder = tmp_path_factory.mktemp("scenario-shop")
    workspace = Workspace(Settings(workspace=folder / "workspace"))
    load_shop(workspace, plain_shop)
    workspace.close()
    return folder / "workspace" / "analytic.duckdb"


@pytest.fixture(params=FAMILIES)
def governed(
    request: pytest.FixtureRequest,
    loaded: Path,
    postgres_url: str,
    tmp_path: Path,
    make_tracker: object,
) -> Iterator[Governed]:
    """A family on its own copy of the shop, operational tables in PostgreSQL, and a first
    champion trained by a scheduled run."""
    settings = Settings(
        workspace=tmp_path / "workspace", operational_url=postgres_url, shadow_min_samples=10
    )
    make_tracker(settings)  # type: ignore[operator]
    shutil.copyfile(loaded, settings.workspace / "analytic.duckdb")
    workspace = Workspace(settings)
    workspace.operational.upgrade()
    governed = governed_of(workspace, request.param)
    yield governed
    workspace.close()


def _first_champion(governed: Governed, weak: bool = False) -> str:
    options = WEAK_SETTINGS[governed.name] if weak else SETTINGS[governed.name]
    family = family_of(governed.workspace, governed.name, **options)
    first = governed.retrainer.run(family)
    assert first["decision"] == "champion"  # no champion yet, nothing sensitive
    return str(first["version"])


def test_weekly_scheduled_retrain(governed: Governed) -> None:
    weak = _first_champion(governed, weak=True)
    sunday = datetime(2024, 4, 28, tzinfo=UTC)
    weekly = Scheduler(
        governed.workspace, [Schedule("retrain", "0 3 * * 1")], runner=governed.jobs, start=sunday
    )
    assert weekly.run_due(sunday + pd.Timedelta(hours=26)) == []  # Monday 02:00: not yet
    (ran,) = weekly.run_due(sunday + pd.Timedelta(hours=27, minutes=30))
    assert (ran["job"], ran["model"], ran["status"]) == ("retrain", governed.name, "succeeded")
    outcome = ran["result"]
    assert governed.job_runs() == [("retrain", "scheduled", "succeeded")]
    promoted = outcome["metrics"]["gain"] >= POLICY.min_improvement
    if governed.name == "recommender":  # a one-tree ranker without buy-again loses by far
        assert promoted
    run = governed.runs()[-1]
    assert (run.trigger, run.status, run.version_produced) == ("scheduled", "succeeded", "2")
    days = max(91, getattr(governed.family(), "min_window_days", 0))  # seasons: 2 years
    assert run.window_end - run.window_start == pd.Timedelta(days=days)
    assert run.metrics["gain"] == pytest.approx(outcome["metrics"]["gain"])
    assert [b.version for b in governed.backtests()[-2:]] == ["2", weak]  # the same window
    assert governed.alerts.list() == []  # the policy decides: nobody needs asking
    if promoted:
        assert outcome["decision"] == "champion"
        assert governed.champion() == "2"
        assert governed.moves("2") == [(None, "candidate"), ("candidate", "champion")]
        assert governed.moves(weak)[-1] == ("champion", "archived")
        assert len(governed.audit("registry.transition")) == 2 + 3
    else:  # kept beside the champion, to be shadow-tested
        assert outcome["decision"] == "challenger"
        assert governed.champion() == weak
        assert governed.moves("2") == [(None, "candidate"), ("candidate", "challenger")]
        assert len(governed.audit("registry.transition")) == 2 + 2


def test_drift_triggered_retrain(governed: Governed, plain_shop: SimulatedShop) -> None:
    champion = _first_champion(governed)
    for table, frame in changed_weeks(plain_shop).items():
        governed.workspace.ingest(table, frame)
    report = governed.job("drift-check", actor="scheduler")
    assert report["drifted"]
    assert report["drifted_features"]
    retrain = report["retrain"]
    assert retrain["decision"] == "pending_review"  # never promoted by itself
    run = governed.runs()[-1]
    assert (run.trigger, run.status) == ("drift", "succeeded")
    assert run.window_end - run.window_start == pd.Timedelta(days=POLICY.drift_window_days)
    assert run.run_metadata["drift"]["drifted"] is True
    assert governed.champion() == champion
    assert governed.state(retrain["version"]) == "challenger"
    (alert,) = governed.alerts.list(AlertStatus.UNREAD)
    assert (alert["type"], alert["severity"], alert["version"]) == (
        "drift_detected",
        "critical",
        retrain["version"],
    )
    assert "input features drifted" in alert["message"]
    # a reviewer approves it from the alert: it becomes the champion, recorded
    governed.alerts.act(alert["id"], AlertAction.APPROVE, "rae", "the shop changed; adopt it")
    assert governed.champion() == retrain["version"]
    assert [a.actor for a in governed.audit("alert.approve")] == ["rae"]


def test_a_new_data_source(governed: Governed, plain_shop: SimulatedShop) -> None:
    champion = _first_champion(governed)
    web = plain_shop.tables["orders"].tail(200).copy()
    web["order_id"] = "web-" + web["order_id"]
    web["source_system"] = "web_shop"
    lines = plain_shop.tables["order_lines"]
    web_lines = lines[lines["order_id"].isin(plain_shop.tables["orders"].tail(200)["order_id"])]
    web_lines = web_lines.assign(order_id="web-" + web_lines["order_id"])
    governed.workspace.ingest("orders", web)
    governed.workspace.ingest("order_lines", web_lines)  # no new source: no second alert
    (alert,) = governed.alerts.list(AlertStatus.UNREAD)
    assert (alert["type"], alert["severity"], alert["model_name"]) == (
        "new_data_source_ready",
        "info",
        governed.name,
    )
    assert "orders from web_shop" in alert["title"]
    assert "--trigger new_data" in alert["message"]
    outcome = governed.job("retrain", trigger=RetrainingTrigger.NEW_DATA, actor="ops")
    governed.alerts.act(
        alert["id"], AlertAction.APPROVE, "ops", f"retrained: v{outcome['version']}"
    )
    run = governed.runs()[-1]
    assert (run.trigger, run.status, run.run_metadata["actor"]) == ("new_data", "succeeded", "ops")
    expected = "champion" if outcome["metrics"]["gain"] >= POLICY.min_improvement else "challenger"
    assert outcome["decision"] == expected == governed.state(outcome["version"])
    assert governed.champion() == (outcome["version"] if expected == "champion" else champion)
    assert governed.alerts.list(AlertStatus.UNREAD) == []


def test_a_human_experiment_that_adds_a_feature(governed: Governed) -> None:
    champion = _first_champion(governed)
    book = Experiments(governed.workspace.registry, governed.alerts)
    proposed = book.propose(
        f"{governed.name}-feature", "one more input helps", "new_feature", governed.name, "ida"
    )
    book.approve(proposed["id"], "bo", "cheap to try")
    # shelfwise jobs run retrain --model NAME --experiment ID, with the feature switched on
    with_feature = JobRunner(governed.workspace, POLICY, EXPERIMENT_SETTINGS)
    ran = with_feature.run(
        "retrain", governed.name, actor="ida", options={"experiment": proposed["id"]}
    )
    trained = ran["result"]
    assert governed.job_runs() == [("retrain", "manual", "succeeded")]
    version = trained["version"]
    assert trained["decision"] == "experimental" == governed.state(version)
    assert governed.champion() == champion  # the policy never promotes an experiment
    run = governed.runs()[-1]
    assert (run.trigger, run.run_metadata["experiment"]) == ("experiment", proposed["id"])
    evidence = review_evidence(governed.workspace.registry, governed.name, version)
    added = [d for d in evidence["importance_deltas"] if d["champion"] == 0 < d["version"]]
    assert added, evidence["importance_deltas"]  # the new feature carries weight
    results = book.results(proposed["id"])
    assert results["status"] == ExperimentStatus.SHADOW_TESTING
    shadowed = ShadowVersions()  # what the service's shadow watch loads now
    assert shadowed.refresh(governed.workspace, None) == (True, 0)
    assert [(m.version, m.role) for m in shadowed[governed.name]] == [
        (version, ShadowRole.EXPERIMENTAL)
    ]
    assert [v["version"] for v in results["versions"]] == [version]
    assert results["champion"]["version"] == champion
    done = book.complete(proposed["id"], ExperimentDecision.ADOPT, "bo", "it helps")
    assert done["status"] == "completed"
    assert done["decision"] == "adopt"
    assert governed.champion() == version
    assert governed.state(champion) == "archived"
    (alert,) = governed.alerts.list(AlertStatus.UNREAD)
    assert alert["type"] == "experiment_complete"
    steps = [a.action for a in governed.audit("experiment.complete")]
    assert steps == ["experiment.complete"]


def test_department_segmentation(governed: Governed) -> None:
    champion = _first_champion(governed)
    family = governed.family()
    levels = family.segments()  # type: ignore[attr-defined]
    assert len(levels) >= 2
    ran = governed.job("retrain", options={"segments": True})  # jobs run retrain --segments
    outcomes = ran["segments"]
    assert sorted(outcomes) == levels
    assert ran["decision"] == "challenger"  # the overall model: its own run, the same data
    column = family.segment_column  # type: ignore[attr-defined]
    runs = {r.run_metadata["segment"]: r for r in governed.runs()[2:]}
    assert sorted(runs) == [f"{column}={level}" for level in levels]
    tracker = governed.workspace.tracker
    for level, outcome in outcomes.items():
        name = segment_model(governed.name, column, level)
        assert runs[f"{column}={level}"].model_name == name
        # its rival was the overall champion, judged on the segment's data
        gain = outcome["metrics"]["gain"]
        adopted = gain >= POLICY.min_improvement
        assert outcome["decision"] == ("champion" if adopted else "challenger")
        assert tracker.get_alias_version(name, "champion") == (
            outcome["version"] if adopted else None
        )
    adopted = {
        segment_key(level): outcome["version"]
        for level, outcome in outcomes.items()
        if outcome["decision"] == "champion"
    }
    assert segment_champions(tracker, governed.name, column) == adopted  # what serving routes
    rivals = [b for b in governed.backtests() if b.segment != "all"]
    assert {b.model_name for b in rivals} == {governed.name}
    assert {b.version for b in rivals} == {champion}
    assert governed.champion() == champion  # the overall model is untouched
    _route_a_segment(governed, family, outcomes, champion)


def _route_a_segment(
    governed: Governed, family: Any, outcomes: dict[str, Any], champion: str
) -> None:
    """Serving: a reviewer adopts the first segment's model where the policy did not; the
    service then answers that segment with it and everything else with the champion."""
    level = sorted(outcomes)[0]
    key, name = segment_key(level), segment_model(governed.name, family.segment_column, level)
    version = outcomes[level]["version"]
    runtime = tenant_from_workspace(governed.workspace)
    keys, admin = keyring_of(governed.workspace)
    headers = {"X-API-Key": str(admin)}
    try:
        with TestClient(create_app({runtime.name: runtime}, keys)) as client:
            if outcomes[level]["decision"] != "champion":
                approve = {"model": name, "decision": "approve", "notes": "adopt it here"}
                reviewed = client.post(
                    f"/api/v1/models/{version}/review", json=approve, headers=headers
                )
                assert reviewed.status_code == 200, reviewed.text
                assert ChampionWatcher(governed.workspace, runtime).check()
            if governed.name == "recommender":
                part = family.log[family.log["segment"] == level]
                person = str(sorted(part["person_id"].unique())[0])
                ask: dict[str, Any] = {"person_id": person, "k": 5}
                plain = client.post("/api/v1/recommendations", json=ask, headers=headers).json()
                ask["context"] = {"segment": level}
                routed = client.post("/api/v1/recommendations", json=ask, headers=headers).json()
                assert (routed["variant"], routed["model_version"]) == (f"segment:{key}", version)
                assert (plain["variant"], plain["model_version"]) == ("champion", champion)
            else:
                mine = sorted(family.for_segment(level).frame["series_id"].unique())[:2]
                others = sorted(
                    set(family.frame["series_id"])
                    - set(family.for_segment(level).frame["series_id"])
                )[:1]
                ask = {"series_ids": [*mine, *others], "horizon": 2}
                answer = client.post("/api/v1/forecasts", json=ask, headers=headers)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert body["segment_models"] == {key: version}
                assert body["model_version"] == champion
                made = {row["series_id"]: row["model"] for row in body["forecasts"]}
                assert [made[s].startswith(f"{name} v{version}: ") for s in ask["series_ids"]] == [
                    True,
                    True,
                    False,
                ]
                assert [row["series_id"] for row in body["forecasts"]] == [
                    s for s in ask["series_ids"] for _ in range(2)
                ]
    finally:
        runtime.close()


def test_a_manual_retrain(governed: Governed) -> None:
    champion = _first_champion(governed)
    outcome = governed.job("retrain", actor="ana")  # shelfwise jobs run retrain --model ...
    assert governed.job_runs() == [("retrain", "manual", "succeeded")]
    run = governed.runs()[-1]
    assert (run.trigger, run.status, run.run_metadata["actor"]) == ("manual", "succeeded", "ana")
    assert run.version_produced == outcome["version"]
    assert outcome["metrics"]["gain"] == pytest.approx(0.0, abs=1e-9)  # same data, same model
    assert outcome["decision"] == "challenger" == governed.state(outcome["version"])
    assert governed.champion() == champion
    moves = governed.moves(outcome["version"])
    assert moves == [(None, "candidate"), ("candidate", "challenger")]
    assert [e.actor for e in governed.audit("registry.transition")][-2:] == ["ana", "ana"]
    # what its reviewer sees: the same backtest window, the same reliance on each feature
    evidence = review_evidence(governed.workspace.registry, governed.name, outcome["version"])
    assert evidence["champion"] == champion
    assert evidence["backtest"]["gain"] == pytest.approx(0.0, abs=1e-9)
    deltas = evidence["importance_deltas"]
    assert deltas
    assert all(d["delta"] == pytest.approx(0.0, abs=1e-9) for d in deltas)


def test_a_backtest_degradation(governed: Governed, plain_shop: SimulatedShop) -> None:
    champion = _first_champion(governed)
    quiet = governed.job("backtest-check")
    assert quiet["degraded"] is False
    assert quiet["degradation"] == pytest.approx(0.0, abs=1e-9)
    for table, frame in changed_weeks(plain_shop, weeks=4).items():
        governed.workspace.ingest(table, frame)
    found = governed.job("backtest-check")
    assert found["degraded"] is True
    assert found["degradation"] > 0.10
    alerts = governed.alerts.list(AlertStatus.UNREAD)
    assert [(a["type"], a["severity"], a["version"]) for a in alerts][-1] == (
        "backtest_degradation",
        "warning",
        champion,
    )
    run = governed.runs()[-1]
    assert (run.trigger, run.status) == ("backtest_degradation", "succeeded")
    decision, made = found["retrain"]["decision"], found["retrain"]["version"]
    assert decision == governed.state(made)
    page = "review" if decision == "challenger" else "card"  # what is left to do
    assert alerts[-1]["link"] == f"/api/v1/models/{made}/{page}?model={governed.name}"
    assert governed.job_runs() == [("backtest-check", "manual", "succeeded")] * 2
    assert decision in ("champion", "challenger")


def test_a_shadow_test_completing(governed: Governed, plain_shop: SimulatedShop) -> None:
    """Through the service: the challenger scores live requests beside the champion, the
    actuals arrive (purchase events; the next week's sales), and the test completes once."""
    champion = _first_champion(governed)
    challenger = governed.job("retrain", actor="ana")
    assert challenger["decision"] == "challenger"
    version = challenger["version"]
    runtime = tenant_from_workspace(governed.workspace)
    keys, admin = keyring_of(governed.workspace)
    assert admin is not None
    headers = {"X-API-Key": admin}
    shadow = runtime.shadow
    assert shadow is not None
    try:
        with TestClient(create_app({runtime.name: runtime}, keys)) as client:
            if governed.name == "recommender":
                persons = sorted(purchase_log(governed.workspace)["person_id"].unique())[:15]
                for person in persons:
                    ask = {"person_id": person, "k": 10}
                    answer = client.post("/api/v1/recommendations", json=ask, headers=headers)
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["model_version"] == champion
                shadow.drain()
                rng = np.random.default_rng(3)
                skus = sorted(plain_shop.tables["products"]["sku"])
                now = datetime.now(UTC).isoformat()
                events = [
                    {"kind": "purchase", "person_id": p, "sku": str(s), "occurred_at": now}
                    for p in persons
                    for s in rng.choice(skus, 4, replace=False)
                ]
                posted = client.post("/api/v1/events", json=events, headers=headers)
                assert posted.status_code == 200, posted.text
                shadow.drain()
            else:
                series = sorted(governed.family().frame["series_id"].unique())[:12]  # type: ignore[attr-defined]
                ask = {"series_ids": series, "horizon": 1}
                answer = client.post("/api/v1/forecasts", json=ask, headers=headers)
                assert answer.status_code == 200, answer.text
                shadow.drain()
                for table, frame in changed_weeks(plain_shop).items():  # the week is sold
                    governed.workspace.ingest(table, frame)
            checked = governed.job("shadow-check")  # the daily job: actuals, completions
            again = governed.job("shadow-check")  # a test completes once
            filled = 2 * len(series) if governed.name == "forecaster" else 0
            assert checked["actuals_filled"] == filled
            assert again["completed"] == []
            found = client.get(
                f"/api/v1/models/{version}/shadow",
                params={"model": governed.name},
                headers=headers,
            ).json()
            alerts = client.get("/api/v1/ml-alerts", headers=headers).json()
    finally:
        runtime.close()
    assert found["completed"] is True
    assert found["samples"] == found["champion"]["samples"] == found["challenger"]["samples"]
    assert found["samples"] >= 10
    # the same data and seed made the challenger: it answers as the champion does
    assert found["challenger"]["error"] == pytest.approx(found["champion"]["error"])
    assert [(a["type"], a["severity"], a["version"]) for a in alerts] == [
        ("shadow_test_complete", "info", version)
    ]
    assert alerts[0]["link"] == f"/api/v1/models/{version}/review?model={governed.name}"
    (entry,) = governed.audit("shadow_test.complete")
    assert entry.entity_id == f"{governed.name}/{version}"
