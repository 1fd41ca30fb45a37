"""The command line as a user meets it: JSON last lines, truthful doctor, clear refusals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from shelfwise.cli import app

runner = CliRunner()


def last_json(output: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_init_then_ingest_prints_counts_as_the_last_line(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    assert runner.invoke(app, ["init", "-w", str(workspace)]).exit_code == 0
    products = tmp_path / "products.csv"
    products.write_text("sku,title,price\nA,milk,1.0\nB,bread,-1\nA,milk again,2\n")
    result = runner.invoke(app, ["ingest", "products", str(products), "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    summary = last_json(result.stdout)
    assert summary["table"] == "products"
    assert (summary["rows_in"], summary["accepted"], summary["quarantined"]) == (3, 1, 2)
    assert summary["reasons"] == {"price: negative": 1, "duplicate key in this source": 1}


def test_missing_required_column_is_refused_by_name(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,customer_ref\n1,c1\n")
    result = runner.invoke(app, ["ingest", "orders", str(orders), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 1
    assert "lacks required column(s) ordered_at" in last_json(result.stdout)["error"]


def test_ingest_reads_a_sql_query(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE catalogue (code TEXT, name TEXT)")
        connection.executemany("INSERT INTO catalogue VALUES (?, ?)", [("X", "tea"), ("Y", None)])
    result = runner.invoke(
        app,
        ["ingest", "products", "--sql", "SELECT code AS sku, name AS title FROM catalogue",
         "--url", f"sqlite:///{database}", "-w", str(tmp_path / "ws")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["accepted"] == 2


def test_doctor_tells_the_truth_about_an_unreachable_redis(tmp_path: Path) -> None:
    env = {"SHELFWISE_ONLINE_STORE_URL": "redis://127.0.0.1:1/0"}
    result = runner.invoke(app, ["doctor", "-w", str(tmp_path / "ws")], env=env)
    assert result.exit_code == 1
    checks = {c["name"]: c for c in last_json(result.stdout)["checks"]}  # type: ignore[attr-defined]
    assert checks["online store"]["ok"] is False
    assert "not reachable" in checks["online store"]["detail"]
    assert checks["cache"]["ok"] is True


def test_doctor_prints_an_extras_install_command_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console reads "[...]" as markup: "pip install 'shelfwise[spark]'" lost its
    brackets in the table and told the user to install shelfwise itself."""
    import importlib.util

    from shelfwise.workspace import OPTIONAL_EXTRAS

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name in OPTIONAL_EXTRAS.values() else real(name, *args),
    )
    result = runner.invoke(app, ["doctor", "-w", str(tmp_path / "ws")])
    table = result.stderr  # the console's; the JSON goes to stdout
    assert "extra: spark" in table
    for extra in OPTIONAL_EXTRAS:
        assert f"'shelfwise[{extra}]')" in table, table


@pytest.mark.service
def test_doctor_reaches_real_postgresql_and_redis(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    env = {
        "SHELFWISE_OPERATIONAL_URL": postgres_url,
        "SHELFWISE_ONLINE_STORE_URL": redis_url,
        "SHELFWISE_CACHE_URL": redis_url,
    }
    workspace = ["-w", str(tmp_path / "ws")]
    assert runner.invoke(app, ["init", *workspace], env=env).exit_code == 0
    result = runner.invoke(app, ["doctor", *workspace], env=env)
    checks = {c["name"]: c for c in last_json(result.stdout)["checks"]}  # type: ignore[attr-defined]
    for name in ("operational database", "online store", "cache", "analytic store"):
        assert checks[name]["ok"], checks[name]
    assert "Redis" in checks["online store"]["detail"]


def test_serve_says_when_there_is_nothing_to_serve(tmp_path: Path) -> None:
    """No workspace, or one with no data yet: a clear refusal and what to run, no traceback
    (and no workspace made where none was)."""
    missing = runner.invoke(app, ["serve", "--workspace", str(tmp_path / "typo")])
    said = " ".join(missing.output.split())  # as one line: the console wraps it
    assert missing.exit_code == 2
    assert "nothing to serve in" in said
    assert "there is no workspace there" in said
    assert "shelfwise quickstart --workspace" in said
    assert not (tmp_path / "typo").exists()
    assert runner.invoke(app, ["init", "--workspace", str(tmp_path / "ws")]).exit_code == 0
    empty = runner.invoke(app, ["serve", "--workspace", str(tmp_path / "ws")])
    assert empty.exit_code == 2
    assert "holds no orders or events to materialise" in " ".join(empty.output.split())
    assert isinstance(empty.exception, SystemExit)
    (tmp_path / "ws" / "merchandising.json").write_text('{"policy": {"max_per_category": 0}}')
    broken = runner.invoke(app, ["serve", "--workspace", str(tmp_path / "ws")])
    assert broken.exit_code == 2
    said = " ".join(broken.output.split())
    assert "RulePolicy.max_per_category=0: expected None or an integer" in said
    assert isinstance(broken.exception, SystemExit)  # said, not a traceback


@pytest.mark.parametrize(
    "command",
    [
        ["quarantine"],
        ["features", "show", "--person", "P1"],
        ["features", "freshness"],
        ["features", "materialise"],
        ["identity", "runs"],
        ["identity", "review"],
        ["identity", "resolve"],
    ],
)
def test_a_command_that_reads_a_workspace_refuses_a_mistyped_path(
    tmp_path: Path, command: list[str]
) -> None:
    """It says there is no workspace there, instead of making an empty one and reporting it
    as empty."""
    typo = tmp_path / "typo"
    result = runner.invoke(app, [*command, "--workspace", str(typo)])
    assert result.exit_code == 2, result.output
    assert f"no workspace at {typo}" in " ".join(result.output.split())
    assert not typo.exists()
    listed = runner.invoke(app, ["features", "list", "--workspace", str(typo)])
    assert listed.exit_code == 0  # the definitions need no workspace
    assert not typo.exists()


@pytest.mark.data
def test_quickstart_builds_the_complete_journey_workspace(tmp_path: Path) -> None:
    """The README's main command, as a subprocess, on a fresh workspace."""
    env = {**os.environ, "SHELFWISE_WORKSPACE": str(tmp_path / "ws")}
    command = [sys.executable, "-m", "shelfwise", "quickstart", "--no-serve"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = last_json(done.stdout)
    assert summary["ok"] is True
    tables = summary["tables"]
    assert isinstance(tables, dict)
    # The 2,469 households, and the records the simulator wrote them into elsewhere.
    assert tables["customer_records"] == 8_731
    assert tables["products"] == 92_331
    assert tables["order_lines"] + 4_836 == 1_469_307
    assert summary["quarantined"]["order_lines"] == {"sku: unknown (not in products)": 4_836}
    identity = summary["identity"]
    assert isinstance(identity, dict)
    assert identity["persons_true"] == 2_469
    assert identity["run"] == "full"
    assert identity["clusters"]["precision"] >= 0.97
    assert identity["clusters"]["recall"] >= 0.75
    assert identity["sessions"]["attributed_to_right_person"] >= 0.95
    assert identity["profiles"] == identity["persons_found"]
    # The two-stage recommender, on feature-store features, backtested and registered.
    recommender = summary["recommender"]
    assert isinstance(recommender, dict)
    assert recommender["run"] == "trained"
    assert recommender["version"] == "1"
    assert recommender["ranker_features"] >= 80
    backtest = recommender["backtest"]
    assert backtest["ndcg@10"] > max(backtest["retrieval_ndcg@10"], backtest["popularity_ndcg@10"])
    # The service's merchandising file, written for this data: fuel and coupons not shown.
    merchandising = summary["merchandising"]
    assert merchandising["written"] is True
    assert {"FUEL", "COUPON/MISC ITEMS"} <= set(merchandising["excluded_categories"])
    written = json.loads(Path(merchandising["file"]).read_text())
    assert written["policy"]["excluded_categories"] == merchandising["excluded_categories"]
    again = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0
    second = last_json(again.stdout)
    assert len(second["skipped"]) == 9  # type: ignore[arg-type]
    assert second["merchandising"]["written"] is False  # type: ignore[index]  # kept
    # Nothing new to link: the same persons, from an incremental run of the same model.
    assert second["identity"]["run"] == "incremental"  # type: ignore[index]
    assert second["identity"]["new_records"] == 0  # type: ignore[index]
    assert second["identity"]["persons_found"] == identity["persons_found"]  # type: ignore[index]
    # The same purchases: the champion is kept, not retrained.
    assert second["recommender"]["run"] == "unchanged"  # type: ignore[index]
    _serves_and_stops_on_a_double_ctrl_c(env)


def _serves_and_stops_on_a_double_ctrl_c(env: dict[str, str]) -> None:
    """`shelfwise serve` on the workspace answers, and an impatient second Ctrl-C during
    its shutdown ends it cleanly: it used to cancel the ASGI lifespan task mid-wait, which
    printed three tracebacks."""
    with socket.socket() as probe:  # a free port, not one another run may hold
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "shelfwise", "serve", "--port", str(port)]
    server = subprocess.Popen(
        command,
        env={**env, "SHELFWISE_SCHEDULER": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200
        server.send_signal(signal.SIGINT)
        time.sleep(0.05)
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
