"""The append-only audit log: who did what to which model, alert or experiment, and when."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.orm import Session

from shelfwise.ops._models import AuditEntry
from shelfwise.ops._schema import DEFAULT_TENANT


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    details: dict[str, Any],
    tenant: str = DEFAULT_TENANT,
) -> AuditEntry:
    """Add one audit entry to ``session``; it is written with the session's transaction.

    Recording in the caller's session means the entry commits or rolls back together with
    the change it describes, so the log never claims an action that did not happen.
    """
    entry = AuditEntry(
        tenant=tenant,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        # A copy, so that the caller changing its dict before the flush cannot rewrite history.
        details=copy.deepcopy(details),
    )
    session.add(entry)
    return entry
