"""The decision audit: every decision written to ``decision_log`` without slowing its request.

A request only puts its record on a bounded queue (no I/O); a writer thread takes what has
gathered, up to ``batch`` records or every ``interval_seconds``, and inserts them in one
statement. When the queue is full the record is dropped, counted in ``dropped`` and, once per
``alert_every_seconds``, raised as a ``serving_degraded`` ML alert and logged as an error, so
a database that cannot keep up is never silent. A failed write is counted in ``failed``,
logged and alerted the same way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from shelfwise.ops import DecisionRecord, MLAlert, OperationalDatabase
from shelfwise.ops.states import AlertSeverity, AlertType

log = logging.getLogger("shelfwise.serve")


class DecisionAudit:
    """A bounded queue of decision records and the thread that writes them in batches."""

    def __init__(
        self,
        database: OperationalDatabase,
        tenant: str,
        *,
        capacity: int = 10_000,
        batch: int = 500,
        interval_seconds: float = 0.2,
        alert_every_seconds: float = 60.0,
    ) -> None:
        self.database = database
        self.tenant = tenant
        self.batch = batch
        self.interval = interval_seconds
        self.alert_every = alert_every_seconds
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=capacity)
        self._stop = threading.Event()
        self._last_alert = -float("inf")
        self._thread = threading.Thread(target=self._run, name=f"audit-{tenant}", daemon=True)
        self._thread.start()

    def submit(self, body: dict[str, Any], removed: list[dict[str, Any]]) -> bool:
        """Queue one decision (the response ``body`` and the rules' removals); False when the
        queue was full and the record was dropped (counted and alerted)."""
        record = {
            "tenant": self.tenant,
            "at": datetime.now(UTC),
            "request_id": body["request_id"],
            "person_id": body["person_id"],
            "variant": body["variant"],
            "model_version": body["model_version"],
            "fallback": body["fallback"],
            "cached": body["cached"],
            "details": {
                "items": [
                    {k: item[k] for k in ("sku", "rank", "score", "source")}
                    for item in body["items"]
                ],
                "removed": removed,
            },
        }
        try:
            self._queue.put_nowait(record)
            return True
        except queue.Full:
            self.dropped += 1
            self._alert(f"the decision audit queue is full: {self.dropped:,} decisions dropped")
            return False

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued record is written (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.flush()
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            records = self._gather()
            if records:
                self._write(records)

    def _gather(self) -> list[dict[str, Any]]:
        try:
            records = [self._queue.get(timeout=self.interval)]
        except queue.Empty:
            return []
        while len(records) < self.batch:
            try:
                records.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return records

    def _write(self, records: list[dict[str, Any]]) -> None:
        try:
            with self.database.session() as session:
                session.execute(sa.insert(DecisionRecord), records)
            self.written += len(records)
        except Exception as error:
            self.failed += len(records)
            log.exception("decision audit: %d records could not be written", len(records))
            self._alert(f"the decision audit could not write {len(records)} records: {error}")
        finally:
            for _ in records:
                self._queue.task_done()

    def _alert(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_alert < self.alert_every:
            return
        self._last_alert = now
        log.error("tenant %s: %s", self.tenant, message)
        try:
            with self.database.session() as session:
                session.add(
                    MLAlert(
                        tenant=self.tenant,
                        alert_type=AlertType.SERVING_DEGRADED.value,
                        severity=AlertSeverity.CRITICAL.value,
                        title="Decisions are not being audited",
                        message=message,
                    )
                )
        except Exception:
            log.exception("decision audit: the alert itself could not be written")
