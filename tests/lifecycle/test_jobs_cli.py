"""`shelfwise jobs ...`: the schedules and runs listed, clear refusals (no workspace, unknown
model, busy model), a drift check with nothing to watch, and the forecaster retrained from the
command line on the simulated shop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shelfwise.cli import app
from shelfwise.forecast.family import ForecasterFamily
from shelfwise.forecast.model import ForecasterSettings
from shelfwise.lifecycle.families import FAMILIES
from shelfwise.lifecycle.locks import ModelLock
from shelfwise.ops import JobRun
from shelfwise.settings import Settings
from shelfwise.simulate.shop import SimulatedShop, load_shop
from shelfwise.workspace import Workspace

runner = CliRunner()


def last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def said(result: Any) -> str:
    """What the command told the user on stderr, as one line (rich wraps at the width)."""
    return " ".join(result.stderr.split())


def jobs(folder: Path | str, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["jobs", *args, "-w", str(folder)], env=env)


@pytest.fixture
def folder(tmp_path: Path, make_tracker: Any) -> Path:
    """A fresh workspace: migrated operational tables and an empty MLflow store."""
    settings = Settings(workspace=tmp_path / "workspace")
    make_tracker(settings)
    workspace = Workspace(settings)
    workspace.operational.upgrade()
    workspace.close()
    return settings.workspace


def test_list_shows_the_schedules_from_the_settings(folder: Path) -> None:
    result = jobs(folder, "list", env={"SHELFWISE_RETRAIN_CRON": "30 2 * * 0"})
    assert result.exit_code == 0, result.output
    listed = last_json(result.stdout)
    assert [(j["job"], j["schedule"]) for j in listed["jobs"]] == [
        ("retrain", "30 2 * * 0"),
        ("drift-check", "0 4 * * *"),
        ("backtest-check", "15 4 * * *"),
        ("shadow-check", "30 4 * * *"),
    ]
    assert listed["jobs"][0]["next_due"].endswith("02:30:00+00:00")
    assert listed["runs"] == []
    assert "no job has run yet" in said(result)


def test_refusals_say_what_is_wrong(folder: Path, tmp_path: Path) -> None:
    unknown = jobs(folder, "run", "retrain", "--model", "nosuch")
    assert unknown.exit_code == 1
    assert "no model family is called 'nosuch'" in said(unknown)
    assert last_json(unknown.stdout)["status"] == "refused"
    nameless = jobs(folder, "run", "retrain")
    assert nameless.exit_code == 2
    assert "retrain needs --model NAME" in said(nameless)
    assert jobs(folder, "run", "retrian", "-m", "forecaster").exit_code == 2
    missing = jobs(tmp_path / "nowhere", "list")
    assert missing.exit_code == 1
    assert "shelfwise init" in said(missing)


def test_a_busy_model_is_refused_with_who_holds_it(folder: Path) -> None:
    workspace = Workspace(Settings(workspace=folder))
    lock = ModelLock(workspace.operational, "default", "forecaster")
    assert lock.acquire()
    try:
        with workspace.operational.session() as session:
            session.add(
                JobRun(job_name="retrain", model_name="forecaster", details={"actor": "bo"})
            )
        busy = jobs(folder, "run", "retrain", "--model", "forecaster")
    finally:
        lock.release()
        workspace.close()
    assert busy.exit_code == 1
    assert "forecaster is busy: retrain (job run 1, ? by bo) has held it since" in said(busy)


def test_a_drift_check_without_a_champion_has_nothing_to_watch(folder: Path) -> None:
    swept = jobs(folder, "run", "drift-check")  # no champion anywhere: nothing to check
    assert swept.exit_code == 0, swept.output
    assert last_json(swept.stdout) == {"job": "drift-check", "runs": []}
    one = jobs(folder, "run", "drift-check", "--model", "forecaster", "--actor", "ann")
    assert one.exit_code == 0, one.output
    result = last_json(one.stdout)["result"]
    assert result == {"model": "forecaster", "skipped": "no champion to watch"}


@pytest.fixture(scope="module")
def shop_folder(shop: SimulatedShop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace folder holding the shop, closed so that each command opens it afresh."""
    path = tmp_path_factory.mktemp("shop-jobs") / "workspace"
    workspace = Workspace(Settings(workspace=path))
    load_shop(workspace, shop)
    workspace.close()
    return path


def test_the_forecaster_retrains_from_the_command_line(
    shop_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = ForecasterSettings(rounds=30, min_leaf=10)
    monkeypatch.setitem(
        FAMILIES, "forecaster", lambda workspace, **o: ForecasterFamily(workspace, small, top=30)
    )
    result = jobs(shop_folder, "run", "retrain", "--model", "forecaster")
    assert result.exit_code == 0, result.output
    outcome = last_json(result.stdout)
    assert (outcome["job"], outcome["model"], outcome["status"]) == (
        "retrain",
        "forecaster",
        "succeeded",
    )
    assert outcome["result"]["decision"] == "pending_review"  # the shop's scope holds health
    assert outcome["result"]["metrics"]["candidate"] > 0
    listed = last_json(jobs(shop_folder, "list").stdout)
    (run,) = listed["runs"]
    assert (run["id"], run["job"], run["status"], run["trigger"], run["actor"]) == (
        outcome["run"],
        "retrain",
        "succeeded",
        "manual",
        "cli",
    )


def test_the_serving_process_runs_each_job_in_a_child_process(shop_folder: Path) -> None:
    """`shelfwise serve` reads the analytic store read-only and runs its scheduled jobs in
    child processes (a job on its thread held up every answer): the child gets the settings
    and opens the store read-only beside the parent's reader; its outcome comes back."""
    from shelfwise.lifecycle.jobs import JobBusy
    from shelfwise.lifecycle.scheduler import ProcessRunner
    from shelfwise.ops.states import RetrainingTrigger

    settings = Settings(workspace=shop_folder, analytic_read_only=True, drift_window_days=21)
    service = Workspace(settings)  # the service's own reader, open while the child runs
    try:
        orders = service.analytic.count("orders")
        assert orders > 0
        child = ProcessRunner(settings)
        assert child.environment["SHELFWISE_DRIFT_WINDOW_DAYS"] == "21"  # its settings, ours
        read = subprocess.run(
            [sys.executable, "-c", "from shelfwise.workspace import Workspace; "
             "from shelfwise.settings import Settings; "
             "print(Workspace(Settings()).analytic.count('orders'))"],
            env=child.environment, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert int(read.stdout) == orders  # a second process reads beside the first
        outcome = child.run(
            "drift-check", "forecaster", trigger=RetrainingTrigger.SCHEDULED, actor="scheduler"
        )
        assert outcome["status"] == "succeeded", outcome
        assert outcome["result"] == {"model": "forecaster", "skipped": "no champion to watch"}
        assert child.sweep("drift-check", trigger=RetrainingTrigger.SCHEDULED, actor="s") == []
        with pytest.raises(JobBusy, match="no model family is called 'nosuch'"):
            child.run("retrain", "nosuch", trigger=RetrainingTrigger.SCHEDULED, actor="s")
        child.stop()  # nothing running: nothing to do
        listed = last_json(jobs(shop_folder, "list", env=child.environment).stdout)
        assert [(r["job"], r["trigger"], r["actor"]) for r in listed["runs"]][:1] == [
            ("drift-check", "scheduled", "scheduler")
        ]
    finally:
        service.close()
    # A writer is turned away while a reader holds the file, and told what to do.
    reader = subprocess.Popen(
        [sys.executable, "-c", "import time; from shelfwise.workspace import Workspace; "
         "from shelfwise.settings import Settings; w = Workspace(Settings()); "
         "w.analytic.count('orders'); print('open', flush=True); time.sleep(30)"],
        env=child.environment, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    writer = Workspace(Settings(workspace=shop_folder))
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "open"
        with pytest.raises(RuntimeError, match="SHELFWISE_ANALYTIC_READ_ONLY=true"):
            writer.analytic.count("orders")
    finally:
        reader.kill()
        reader.wait()
        writer.close()
