"""`shelfwise identity ...` as a user meets it: resolve, review, explain, decide, roll back."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shelfwise.cli import app
from shelfwise.simulate import FragmentedCustomers

runner = CliRunner()


def last_json(output: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_identity_commands_end_to_end(tmp_path: Path, world: FragmentedCustomers) -> None:
    ws = str(tmp_path / "ws")
    records = tmp_path / "customers.parquet"
    world.records.head(1_500).to_parquet(records)
    assert runner.invoke(app, ["ingest", "customer_records", str(records), "-w", ws]).exit_code == 0

    resolved = runner.invoke(app, ["identity", "resolve", "-w", ws])
    assert resolved.exit_code == 0, resolved.output
    report = last_json(resolved.stdout)
    assert report["kind"] == "full"
    assert report["records"] == 1_500

    again = last_json(runner.invoke(app, ["identity", "resolve", "-w", ws]).stdout)
    assert (again["kind"], again["new_records"]) == ("incremental", 0)

    queue = last_json(runner.invoke(app, ["identity", "review", "-w", ws]).stdout)
    assert queue["open"] >= len(queue["pairs"])  # type: ignore[arg-type,operator]

    left, right = "crm:nobody", "crm:noone"
    refused = runner.invoke(
        app, ["identity", "decide", left, right, "split", "--reviewer", "x", "-w", ws]
    )
    assert refused.exit_code == 2
    assert "unknown record" in refused.output

    explained = last_json(runner.invoke(app, ["identity", "explain", left, right, "-w", ws]).stdout)
    assert "never scored" in str(explained["because"])

    runs = last_json(runner.invoke(app, ["identity", "runs", "-w", ws]).stdout)
    assert len(runs["runs"]) == 2  # type: ignore[arg-type]
    rolled = runner.invoke(app, ["identity", "rollback", "-w", ws])
    assert rolled.exit_code == 0, rolled.output
    assert last_json(rolled.stdout)["current"] == runs["runs"][0]["run_id"]  # type: ignore[index]
