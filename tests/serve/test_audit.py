"""The decision audit: batched writes off the request path, on SQLite and PostgreSQL; a full
queue is counted and alerted; a database that fails is too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from shelfwise.ops import DecisionRecord, MLAlert, OperationalDatabase
from shelfwise.serve.app import create_app
from shelfwise.serve.audit import DecisionAudit
from shelfwise.serve.auth import KeyRing
from shelfwise.serve.tenant import TenantRuntime


def _body(n: int) -> dict[str, Any]:
    return {
        "request_id": f"r{n}",
        "person_id": "p00",
        "variant": "champion",
        "model_version": "1",
        "fallback": None,
        "cached": False,
        "items": [
            {"sku": "s00", "rank": 1, "score": 0.5, "source": "buy_again", "explanation": "x"}
        ],
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> OperationalDatabase:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'operational.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = OperationalDatabase(url)
    database.upgrade()
    return database


def test_every_request_is_audited_with_what_it_showed(
    runtimes: dict[str, TenantRuntime],
    keyring: KeyRing,
    as_: Callable[[str], dict[str, str]],
    database: OperationalDatabase,
) -> None:
    runtime = runtimes["a"]
    runtime.audit = DecisionAudit(database, "a", interval_seconds=0.01)
    with TestClient(create_app(runtimes, keyring)) as client:
        ask = {"person_id": "p00", "k": 4}
        bodies = [
            client.post("/api/v1/recommendations", json=ask, headers=as_("a_reader")).json()
            for _ in range(3)
        ]
        runtime.audit.flush()
        metrics = client.get("/metrics").text
    with database.session() as session:
        rows = session.scalars(sa.select(DecisionRecord).order_by(DecisionRecord.id)).all()
    assert [r.request_id for r in rows] == [b["request_id"] for b in bodies]
    assert [r.cached for r in rows] == [False, True, True]
    assert rows[0].details["items"] == [
        {k: item[k] for k in ("sku", "rank", "score", "source")} for item in bodies[0]["items"]
    ]
    assert rows[0].model_version == "1"
    assert rows[0].variant == "champion"
    assert rows[0].tenant == "a"
    assert 'shelfwise_audit_records_total{outcome="written",tenant="a"} 3.0' in metrics
    runtime.audit.close()


def test_a_full_queue_is_counted_and_alerted(tmp_path: Path) -> None:
    database = OperationalDatabase(f"sqlite:///{tmp_path / 'operational.db'}")
    database.upgrade()
    # Nothing is shipped to the writer for 60 s: the queue holds what was put since.
    audit = DecisionAudit(database, "a", capacity=2, interval_seconds=60)
    accepted = [audit.submit(_body(n), []) for n in range(6)]
    assert accepted == [True, True, False, False, False, False]
    assert audit.dropped == 4
    audit.close()  # ships and writes what was queued
    assert (audit.written, audit.failed) == (2, 0)
    with database.session() as session:
        alerts = session.scalars(sa.select(MLAlert)).all()
        written = session.scalars(sa.select(DecisionRecord.request_id)).all()
    assert written == ["r0", "r1"]
    assert len(alerts) == 1  # one alert per minute, not one per dropped record
    assert alerts[0].alert_type == "serving_degraded"
    assert "queue is full: 4 rows dropped" in alerts[0].message


def test_a_database_that_fails_is_counted_and_logged(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    database = OperationalDatabase(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    audit = DecisionAudit(database, "a", interval_seconds=0.01)
    assert audit.submit(_body(1), [])
    audit.close()
    assert audit.failed == 1
    assert audit.written == 0
    assert "could not be written" in capfd.readouterr().err  # the writer's log


def test_a_writer_that_died_is_said_and_its_rows_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = OperationalDatabase(f"sqlite:///{tmp_path / 'operational.db'}")
    database.upgrade()
    audit = DecisionAudit(database, "a", interval_seconds=0.01)
    audit._process.kill()
    audit._process.join(10)
    assert audit.submit(_body(1), []) or audit.dropped == 1  # before or after it is noticed
    audit._shipper.join(10)
    assert not audit.submit(_body(2), [])
    assert audit.dropped == 2
    assert "decision audit writer stopped" in caplog.text
    audit.close()


def test_the_writer_stops_when_the_service_is_gone(tmp_path: Path) -> None:
    database = OperationalDatabase(f"sqlite:///{tmp_path / 'operational.db'}")
    database.upgrade()
    script = (
        "import sys\n"
        "from shelfwise.ops import OperationalDatabase\n"
        "from shelfwise.serve.audit import DecisionAudit\n"
        "audit = DecisionAudit(OperationalDatabase(sys.argv[1]), 'a', interval_seconds=0.01)\n"
        "print(audit._process.pid, flush=True)\n"
        "import os; os._exit(0)  # gone without closing it\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, database.url], capture_output=True, text=True, timeout=60
    )
    writer = int(done.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _alive(writer) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(writer)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def test_a_ctrl_c_leaves_the_writer_to_the_service(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the writer too (the whole process group): it keeps taking
    rows until the service stops it, and ends cleanly, where it used to die with a traceback
    and be reported as a dead writer."""
    database = OperationalDatabase(f"sqlite:///{tmp_path / 'ops.db'}")
    database.upgrade()
    audit = DecisionAudit(database, "a", interval_seconds=0.01)
    assert audit.submit(_body(1), [])
    deadline = time.monotonic() + 60
    while audit.written < 1 and time.monotonic() < deadline:  # the writer is at work
        time.sleep(0.05)
    os.kill(audit._process.pid, signal.SIGINT)
    time.sleep(0.5)
    assert audit._process.is_alive()
    assert audit.submit(_body(2), [])
    audit.close()
    assert audit._process.exitcode == 0
    assert (audit.written, audit.failed) == (2, 0)
