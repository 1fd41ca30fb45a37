"""`shelfwise jobs ...`: the schedules and runs listed, clear refusals (no workspace, unknown
model, busy model), a drift check with nothing to watch, and the forecaster retrained from the
command line on the simulated shop."""

from __future__ import annotations

import json
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
