"""Jobs (SQLite, PostgreSQL): logged runs, one job at a time per model across processes, a job
killed midway failed by the next one and its half-made promotion undone, and the scheduler
driven by a given clock. Stub families stand in for the real ones (the forecaster runs as a
job in test_jobs_cli.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from shelfwise.lifecycle.families import FAMILIES
from shelfwise.lifecycle.jobs import INTERRUPTED, JOBS, Job, JobBusy, JobRunner
from shelfwise.lifecycle.locks import ModelLock
from shelfwise.lifecycle.scheduler import Schedule, Scheduler
from shelfwise.models.base import Estimator, Evaluation
from shelfwise.ops import AuditEntry, JobRun, OperationalDatabase, RetrainingRun
from shelfwise.ops.states import RetrainingTrigger
from shelfwise.recommend.popularity import PopularityRecommender
from shelfwise.settings import Settings
from shelfwise.tracking import Tracker
from shelfwise.workspace import Workspace

HERE = Path(__file__).resolve().parent


class Stub:
    """A family whose candidate and champion score what the test says (MAE: lower wins)."""

    model_name = "stub"
    experiment = "stub"

    def __init__(self, scores: list[float]) -> None:
        self.scores = list(scores)

    def latest(self) -> pd.Timestamp:
        return pd.Timestamp("2024-06-30")

    def sensitive_scope(self) -> list[str]:
        return []

    def train(self, start: pd.Timestamp, end: pd.Timestamp) -> Estimator[Any]:
        if not self.scores:
            raise RuntimeError("the warehouse is down")
        log = pd.DataFrame({"person_id": ["a"], "sku": ["x"], "occurred_at": [start]})
        return PopularityRecommender().fit(log)

    def score(self, model: Estimator[Any], start: pd.Timestamp, end: pd.Timestamp) -> Evaluation:
        return Evaluation({"mae": self.scores.pop(0)}, "mae", False)


def stub_scoring(*scores: float) -> Any:
    """A FAMILIES entry: the stub family, scoring ``scores`` in turn."""
    return lambda workspace, **options: Stub(list(scores))


def workspace_at(folder: str | Path, url: str) -> Workspace:
    return Workspace(Settings(workspace=Path(folder), operational_url=url))


@pytest.fixture
def workspace(
    tmp_path: Path, migrated: OperationalDatabase, make_tracker: Any
) -> Iterator[Workspace]:
    """A workspace on the test's database with a fresh MLflow store; ``stub`` is a family."""
    settings = Settings(workspace=tmp_path / "workspace", operational_url=migrated.url)
    make_tracker(settings)
    opened = Workspace(settings)
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def families(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FAMILIES, "stub", stub_scoring(10.0))
    monkeypatch.setitem(FAMILIES, "other", stub_scoring(10.0))


def job_runs(workspace: Workspace) -> list[JobRun]:
    with workspace.operational.session() as session:
        return list(session.scalars(sa.select(JobRun).order_by(JobRun.id)))


def retraining_runs(workspace: Workspace) -> list[RetrainingRun]:
    with workspace.operational.session() as session:
        return list(session.scalars(sa.select(RetrainingRun).order_by(RetrainingRun.id)))


def test_every_run_is_logged_with_its_result_trigger_and_actor(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = JobRunner(workspace)
    outcome = runner.run("retrain", "stub", actor="ann")
    assert (outcome["status"], outcome["result"]["decision"]) == ("succeeded", "champion")
    monkeypatch.setitem(FAMILIES, "stub", stub_scoring())  # nothing to score: train fails
    with pytest.raises(RuntimeError, match="warehouse"):
        runner.run("retrain", "stub", trigger=RetrainingTrigger.SCHEDULED, actor="scheduler")
    done, failed = job_runs(workspace)
    assert (done.job_name, done.model_name, done.status) == ("retrain", "stub", "succeeded")
    assert done.details["result"]["version"] == outcome["result"]["version"] == "1"
    assert (done.details["trigger"], done.details["actor"]) == ("manual", "ann")
    assert (failed.status, failed.details["trigger"]) == ("failed", "scheduled")
    assert "RuntimeError: the warehouse is down" in (failed.error or "")
    assert failed.ended_at is not None
    assert [r.status for r in retraining_runs(workspace)] == ["succeeded", "failed"]
    assert [r["status"] for r in runner.history()] == ["failed", "succeeded"]  # newest first


def test_one_job_at_a_time_per_model(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()

    def hold(
        runner: JobRunner, model: str, trigger: Any, actor: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        if model == "stub":
            entered.set()
            assert release.wait(30)
        return {"held": model}

    monkeypatch.setitem(
        JOBS, "hold", Job("hold", "waits", "retrain_cron", hold, lambda _: [], True)
    )
    url, folder = workspace.operational.url, workspace.settings.workspace
    start, outcomes = threading.Barrier(2), []

    def contend() -> None:
        runner = JobRunner(workspace_at(folder, url))  # its own engine and connections
        start.wait()
        try:
            outcomes.append(runner.run("hold", "stub", actor=threading.current_thread().name))
        except JobBusy as busy:
            outcomes.append(busy)

    threads = [threading.Thread(target=contend, name=f"t{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    assert entered.wait(30)
    deadline = time.monotonic() + 30
    while not outcomes and time.monotonic() < deadline:  # the loser's refusal, at once
        time.sleep(0.01)
    (busy,) = outcomes
    assert isinstance(busy, JobBusy)
    assert "stub is busy" in str(busy)
    # now that the holder has written its row, the refusal says who holds it and since when
    with pytest.raises(JobBusy, match=r"hold \(job run \d+, manual by t[01]\) has held it since"):
        JobRunner(workspace).run("hold", "stub")
    # another model's job runs meanwhile
    assert JobRunner(workspace).run("hold", "other")["result"] == {"held": "other"}
    assert not release.is_set()
    release.set()
    for thread in threads:
        thread.join(30)
    assert outcomes[1]["result"] == {"held": "stub"}
    assert sorted(r.model_name or "" for r in job_runs(workspace)) == ["other", "stub"]
    assert JobRunner(workspace).run("hold", "stub")["status"] == "succeeded"  # free again


def hang_in_the_promotion(folder: str, url: str, marker: str) -> None:
    """In a child process: retrain ``stub`` to a better candidate and stop for good just
    after MLflow moved the champion alias, before the move is committed."""
    original = Tracker.set_alias

    def set_alias_then_hang(self: Tracker, name: str, alias: str, version: str) -> None:
        original(self, name, alias, version)
        Path(marker).write_text(version)
        time.sleep(600)

    Tracker.set_alias = set_alias_then_hang  # type: ignore[method-assign]
    FAMILIES["stub"] = stub_scoring(5.0, 10.0)  # 50% better than the champion
    JobRunner(workspace_at(folder, url)).run("retrain", "stub", actor="child")


def test_a_job_killed_midway_is_failed_and_its_promotion_undone(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker, runner = workspace.tracker, JobRunner(workspace)
    assert runner.run("retrain", "stub")["result"]["version"] == "1"  # the champion
    marker = tmp_path / "hanging"
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_jobs; "
    code += "test_jobs.hang_in_the_promotion(*sys.argv[1:])"
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(workspace.settings.workspace), workspace.operational.url,
         str(marker)],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the child never reached the promotion (exit {child.poll()})"
        assert tracker.get_alias_version("stub", "champion") == "2"  # half promoted
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    # the server lets the dead connection's lock go as soon as it sees the socket close
    lock = ModelLock(workspace.operational, "default", "stub")
    deadline = time.monotonic() + 30
    while not lock.acquire() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.held
    lock.release()
    assert [r.status for r in job_runs(workspace)] == ["succeeded", "running"]

    monkeypatch.setitem(FAMILIES, "stub", stub_scoring(11.0, 10.0))  # worse: a challenger
    after = runner.run("retrain", "stub", actor="after")
    assert tracker.get_alias_version("stub", "champion") == "1"
    assert tracker.get_alias_version("stub", "challenger") == after["result"]["version"] == "3"
    _, killed, last = job_runs(workspace)
    assert (killed.status, killed.error, killed.details["actor"]) == (
        "failed",
        INTERRUPTED,
        "child",
    )
    assert killed.ended_at is not None
    assert [(r.status, r.error) for r in retraining_runs(workspace)] == [
        ("succeeded", None),
        ("failed", INTERRUPTED),
        ("succeeded", None),
    ]
    recovered = last.details["recovered"]
    assert recovered["job_runs"] == [killed.id]
    assert recovered["registry"] == {"stub": ["champion: v2 back to v1"]}
    moves = [(m["version"], m["to_state"]) for m in workspace.registry.history("stub")]
    assert moves == [("1", "candidate"), ("1", "champion"), ("2", "candidate"),
                     ("3", "candidate"), ("3", "challenger")]  # fmt: skip
    with workspace.operational.session() as session:
        audit = session.scalars(sa.select(AuditEntry.action)).all()
    assert "registry.reconcile" in audit


def test_a_sweep_reports_each_model_and_a_segment_run_is_recovered(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def check(
        runner: JobRunner, model: str, trigger: Any, actor: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        if model == "other":
            raise ValueError("no champion data")
        return {"drifted": False, "psi": float("nan")}

    covers = lambda workspace: ["stub", "other"]  # noqa: E731
    monkeypatch.setitem(
        JOBS, "check", Job("check", "checks", "drift_check_cron", check, covers, False)
    )
    with workspace.operational.session() as session:  # left behind by a dead process
        session.add(JobRun(job_name="retrain", model_name="stub"))
        session.add(RetrainingRun(model_name="stub.department.MEAT", trigger="scheduled"))
    outcomes = JobRunner(workspace).sweep("check")
    assert [(o["model"], o["status"]) for o in outcomes] == [
        ("stub", "succeeded"),
        ("other", "failed"),
    ]
    assert outcomes[0]["result"] == {"drifted": False, "psi": None}  # JSON, so no NaN
    assert "ValueError: no champion data" in outcomes[1]["error"]
    assert [r.status for r in job_runs(workspace)] == ["failed", "succeeded", "failed"]
    (segment,) = retraining_runs(workspace)
    assert (segment.status, segment.error) == ("failed", INTERRUPTED)


# --- the scheduler, on SQLite alone: the locks are the jobs' business ----------------------
@pytest.fixture
def local(tmp_path: Path, make_tracker: Any) -> Iterator[Workspace]:
    settings = Settings(workspace=tmp_path / "workspace")
    make_tracker(settings)
    opened = Workspace(settings)
    opened.operational.upgrade()
    yield opened
    opened.close()


def recording(calls: list[tuple[str, str, str]], name: str, models: list[str]) -> Job:
    def run(
        runner: JobRunner, model: str, trigger: Any, actor: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        calls.append((name, model, trigger.value))
        if model == "other":
            raise RuntimeError(f"{name} broke on {model}")
        return {}

    return Job(name, name, f"{name.replace('-', '_')}_cron", run, lambda _: models, False)


def test_the_scheduler_runs_what_is_due_once(
    local: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str, str]] = []
    monkeypatch.setitem(JOBS, "retrain", recording(calls, "retrain", ["stub"]))
    monkeypatch.setitem(JOBS, "drift-check", recording(calls, "drift-check", ["other", "stub"]))
    for idle in ("backtest-check", "shadow-check"):  # due daily too, on no model here
        monkeypatch.setitem(JOBS, idle, recording(calls, idle, []))
    monday = datetime(2024, 1, 1, tzinfo=UTC)
    scheduler = Scheduler(local, start=monday)  # the settings' schedules
    assert [(s.job, due.isoformat()) for s, due in scheduler.next_due()] == [
        ("retrain", "2024-01-01T03:00:00+00:00"),
        ("drift-check", "2024-01-01T04:00:00+00:00"),
        ("backtest-check", "2024-01-01T04:15:00+00:00"),
        ("shadow-check", "2024-01-01T04:30:00+00:00"),
    ]
    assert scheduler.run_due(monday + timedelta(hours=2, minutes=59)) == []
    assert [o["status"] for o in scheduler.run_due(monday + timedelta(hours=3, minutes=30))] == [
        "succeeded"
    ]
    assert scheduler.run_due(monday + timedelta(hours=3, minutes=59)) == []
    assert calls == [("retrain", "stub", "scheduled")]
    # two days later: the drift check runs once, not three times; one model's failure is
    # recorded and the other model is still checked
    outcomes = scheduler.run_due(monday + timedelta(days=2, hours=12))
    assert [(o["model"], o["status"]) for o in outcomes] == [
        ("other", "failed"),
        ("stub", "succeeded"),
    ]
    assert calls[1:] == [
        ("drift-check", "other", "scheduled"),
        ("drift-check", "stub", "scheduled"),
    ]
    assert [due.isoformat() for _, due in scheduler.next_due()] == [
        "2024-01-08T03:00:00+00:00",
        "2024-01-04T04:00:00+00:00",
        "2024-01-04T04:15:00+00:00",
        "2024-01-04T04:30:00+00:00",
    ]
    runs = [(r.job_name, r.model_name, r.status, r.details["actor"]) for r in job_runs(local)]
    assert runs == [
        ("retrain", "stub", "succeeded", "scheduler"),
        ("drift-check", "other", "failed", "scheduler"),
        ("drift-check", "stub", "succeeded", "scheduler"),
    ]


def test_the_scheduler_thread_runs_a_due_job_and_stops(
    local: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = threading.Event()

    def run(
        runner: JobRunner, model: str, trigger: Any, actor: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        ran.set()
        return {}

    monkeypatch.setitem(
        JOBS, "retrain", Job("retrain", "", "retrain_cron", run, lambda _: [], True)
    )
    every_minute = Schedule("retrain", "* * * * *", model="stub")
    started = datetime.now(UTC) - timedelta(minutes=2)
    scheduler = Scheduler(local, [every_minute], start=started).start()
    try:
        assert ran.wait(30)
    finally:
        scheduler.stop(timeout=30)
    assert scheduler.next_due()[0][1] > datetime.now(UTC)


def test_schedules_are_checked_when_they_are_read() -> None:
    with pytest.raises(ValidationError, match="retrain_cron='every monday' is not a cron"):
        Settings(retrain_cron="every monday")
    with pytest.raises(ValidationError, match="drift_check_cron"):
        Settings(drift_check_cron="0 25 * * *")
    assert Settings(retrain_cron="30 2 * * 0").retrain_cron == "30 2 * * 0"
    with pytest.raises(KeyError, match="no job is called 'retrian'"):
        Schedule("retrian", "0 3 * * 1")
