"""`shelfwise models ...`: the registry listed, a version's card, a rollback recorded with who
and why, and clear refusals (no workspace, an unknown model, nothing to roll back to)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from shelfwise.cli import app
from shelfwise.models.base import Evaluation
from shelfwise.ops.states import RegistryState
from shelfwise.recommend.popularity import PopularityRecommender
from shelfwise.settings import Settings
from shelfwise.workspace import Workspace

runner = CliRunner()


def models(folder: Path, *args: str) -> Any:
    return runner.invoke(app, ["models", *args, "-w", str(folder)])


def said(result: Any) -> str:
    return " ".join(result.stderr.split())


@pytest.fixture
def folder(tmp_path: Path, make_tracker: Any) -> Path:
    """A workspace whose forecaster has had two champions, v1 then v2."""
    settings = Settings(workspace=tmp_path / "workspace")
    make_tracker(settings)
    workspace = Workspace(settings)
    workspace.operational.upgrade()
    log = pd.DataFrame(
        {"person_id": ["a"], "sku": ["x"], "occurred_at": [pd.Timestamp("2024-01-01")]}
    )
    registry = workspace.registry
    for mae in (8.0, 7.0):
        record = registry.tracker.log_training(
            PopularityRecommender().fit(log),
            experiment="forecaster",
            metrics=Evaluation({"mae": mae}, "mae", False),
        )
        version = registry.register("forecaster", record, actor="trainer", reason="weekly")
        registry.transition(
            "forecaster", version, RegistryState.CHAMPION, actor="ana", reason=f"mae {mae}"
        )
    workspace.close()
    return settings.workspace


def test_list_card_and_rollback(folder: Path) -> None:
    listed = models(folder, "list")
    assert listed.exit_code == 0, listed.output
    (model,) = json.loads(listed.stdout.strip().splitlines()[-1])
    assert (model["champion"], model["rollback_to"]) == ("2", "1")
    assert "to v1" in said(listed)  # the table's rollback column
    assert [(v["version"], v["state"]) for v in model["versions"]] == [
        ("2", "champion"),
        ("1", "archived"),
    ]
    card = models(folder, "card", "forecaster", "1")
    assert card.exit_code == 0, card.output
    assert card.stdout.startswith("# forecaster v1 (popularity): archived")
    assert "- owner: trainer;" in card.stdout

    back = models(folder, "rollback", "forecaster", "--reason", "v2 overshoots", "--actor", "bo")
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout.strip().splitlines()[-1]) == {
        "model": "forecaster",
        "champion": "1",
        "archived": "2",
    }
    workspace = Workspace(Settings(workspace=folder))
    try:
        last = workspace.registry.history("forecaster")[-1]
    finally:
        workspace.close()
    assert (last["version"], last["to_state"], last["actor"]) == ("1", "champion", "bo")
    assert last["reason"] == "rollback: v2 overshoots"
    again = models(folder, "card", "forecaster", "1", "--json")
    assert json.loads(again.stdout)["state"] == "champion"


def test_refusals_say_what_is_wrong(folder: Path, tmp_path: Path) -> None:
    unknown = models(folder, "rollback", "nosuch", "--reason", "x")
    assert unknown.exit_code == 1
    assert "no model named 'nosuch'; registered: forecaster" in said(unknown)
    version = models(folder, "card", "forecaster", "9")
    assert version.exit_code == 1
    assert "forecaster has no version '9'; its versions: 1, 2" in said(version)
    assert models(folder, "rollback", "forecaster").exit_code == 2  # --reason is required
    missing = models(tmp_path / "nowhere", "list")
    assert missing.exit_code == 1
    assert "shelfwise init" in said(missing)
