"""Rows for one operational table written in batches by a thread, off the request path.

The serving layer records what it did (every decision; every shadow prediction) as it answers,
and an answer must not wait on a database. A request only puts its rows on a bounded queue
(no I/O); a writer thread takes what has gathered, up to ``batch`` rows or every
``interval_seconds``, and inserts them in one statement. When the queue is full the rows are
dropped and counted in ``dropped``; a failed insert is counted in ``failed``. Either is logged
as an error (and handed to :meth:`BatchWriter._alert`, which a subclass may raise as an ML
alert) at most once per ``alert_every_seconds``, so a database that cannot keep up is never
silent and never floods the log.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import sqlalchemy as sa

from shelfwise.ops._database import OperationalDatabase
from shelfwise.ops._schema import OperationalRecord

log = logging.getLogger("shelfwise.ops")
Row = dict[str, Any]


class BatchWriter:
    """A bounded queue of ``table`` rows and the thread that inserts them in batches.

    ``name`` says what the rows are in the log and the alerts ("decision audit"). Each
    :meth:`put` is one item of the queue, however many rows it holds (one request's), so
    ``capacity`` counts requests and ``batch`` rows.
    """

    def __init__(
        self,
        database: OperationalDatabase,
        table: type[OperationalRecord],
        name: str,
        tenant: str,
        *,
        capacity: int = 10_000,
        batch: int = 500,
        interval_seconds: float = 0.2,
        alert_every_seconds: float = 60.0,
    ) -> None:
        self.database, self.table, self.name, self.tenant = database, table, name, tenant
        self.batch = batch
        self.interval = interval_seconds
        self.alert_every = alert_every_seconds
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[list[Row]] = queue.Queue(maxsize=capacity)
        self._stop = threading.Event()
        self._last_alert = -float("inf")
        thread_name = f"{name.replace(' ', '-')}-{tenant}"
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def put(self, rows: list[Row]) -> bool:
        """Queue ``rows`` for one insert; False when the queue was full and they were dropped
        (counted, and reported at most once per ``alert_every_seconds``)."""
        try:
            self._queue.put_nowait(rows)
            return True
        except queue.Full:
            self.dropped += len(rows)
            self._report(f"the {self.name} queue is full: {self.dropped:,} rows dropped")
            return False

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued row is written (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.flush()
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            items = self._gather()
            if not items:
                continue
            try:
                self._write([row for rows in items for row in rows])
            finally:
                for _ in items:
                    self._queue.task_done()

    def _gather(self) -> list[list[Row]]:
        try:
            items = [self._queue.get(timeout=self.interval)]
        except queue.Empty:
            return []
        gathered = len(items[0])
        while gathered < self.batch:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
            gathered += len(items[-1])
        return items

    def _write(self, rows: list[Row]) -> None:
        try:
            with self.database.session() as session:
                session.execute(sa.insert(self.table), rows)
            self.written += len(rows)
        except Exception as error:
            self.failed += len(rows)
            log.exception("%s: %d rows could not be written", self.name, len(rows))
            self._report(f"the {self.name} could not write {len(rows)} rows: {error}")

    def _report(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_alert < self.alert_every:
            return
        self._last_alert = now
        log.error("tenant %s: %s", self.tenant, message)
        try:
            self._alert(message)
        except Exception:
            log.exception("%s: the alert itself could not be written", self.name)

    def _alert(self, message: str) -> None:
        """Raise ``message`` where a person will see it (nothing here; the log has it)."""
