"""The decision audit: every decision written to ``decision_log`` without slowing its request.

A request only puts its record on a bounded queue (no I/O); a writer process inserts what has
gathered in batches (:class:`~shelfwise.ops.BatchWriter`). When the queue is full the record
is dropped, counted in ``dropped`` and, once per ``alert_every_seconds``, raised as a
``serving_degraded`` ML alert and logged as an error, so a database that cannot keep up is
never silent. A failed write is counted in ``failed``, logged and alerted the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shelfwise.ops import BatchWriter, DecisionRecord, OperationalDatabase


class DecisionAudit(BatchWriter):
    """A bounded queue of decision records and the process that writes them in batches."""

    alert_title = "Decisions are not being audited"

    def __init__(self, database: OperationalDatabase, tenant: str, **options: Any) -> None:
        """``options``: the queue's capacity, batch, interval and alert spacing
        (:class:`BatchWriter`'s)."""
        super().__init__(database, DecisionRecord, "decision audit", tenant, **options)

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
        return self.put([record])
