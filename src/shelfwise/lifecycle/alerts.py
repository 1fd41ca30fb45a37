"""ML alerts: what a person should look at, in an inbox they read and act on.

Each alert type has its severity (drift and degraded serving are critical; a promotion
waiting for review and a degraded backtest are warnings; a completed experiment or shadow
test, or a new data source, are information). An alert about a model version links to what
needs doing; acting on it is ``approve`` or ``dismiss`` with notes, once. Approving a
``promotion_pending`` or ``drift_detected`` alert about a version promotes that version
through the registry (recorded as the reviewer's move); every read and action is audited.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shelfwise.lifecycle.registry import ModelRegistry, TransitionRefused
from shelfwise.ops import MLAlert, OperationalDatabase, record_audit
from shelfwise.ops._schema import DEFAULT_TENANT, utc_now
from shelfwise.ops.states import AlertAction, AlertSeverity, AlertStatus, AlertType, RegistryState

SEVERITY = {
    AlertType.DRIFT_DETECTED: AlertSeverity.CRITICAL,
    AlertType.SERVING_DEGRADED: AlertSeverity.CRITICAL,
    AlertType.PROMOTION_PENDING: AlertSeverity.WARNING,
    AlertType.BACKTEST_DEGRADATION: AlertSeverity.WARNING,
    AlertType.EXPERIMENT_COMPLETE: AlertSeverity.INFO,
    AlertType.NEW_DATA_SOURCE_READY: AlertSeverity.INFO,
    AlertType.SHADOW_TEST_COMPLETE: AlertSeverity.INFO,
}
PROMOTING = (AlertType.PROMOTION_PENDING, AlertType.DRIFT_DETECTED)


class AlertNotFound(LookupError):
    """No alert with that id in this tenant."""


class AlertInbox:
    """One tenant's ML alerts."""

    def __init__(
        self,
        operational: OperationalDatabase,
        registry: ModelRegistry | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> None:
        self.operational, self.registry, self.tenant = operational, registry, tenant

    def raise_alert(
        self,
        alert_type: AlertType,
        title: str,
        message: str,
        *,
        model_name: str | None = None,
        version: str | None = None,
        link: str | None = None,
        session: Session | None = None,
    ) -> dict[str, Any]:
        """A new unread alert; ``session``: the caller's transaction (so that the alert is
        written with what it announces, or not at all), else one of its own."""
        if link is None and model_name is not None and version is not None:
            link = f"/api/v1/models/{version}/review?model={model_name}"
        alert = MLAlert(
            tenant=self.tenant,
            alert_type=alert_type.value,
            severity=SEVERITY[alert_type].value,
            model_name=model_name,
            version=version,
            title=title,
            message=message,
            link=link,
        )
        if session is not None:
            session.add(alert)
            session.flush()
            return _view(alert)
        with self.operational.session() as own:
            own.add(alert)
            own.flush()
            return _view(alert)

    def list(self, status: AlertStatus | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; ``status`` filters (unread, read, actioned)."""
        query = sa.select(MLAlert).where(MLAlert.tenant == self.tenant)
        if status is not None:
            query = query.where(MLAlert.status == status.value)
        with self.operational.session() as session:
            rows = session.scalars(
                query.order_by(MLAlert.created_at.desc(), MLAlert.id.desc()).limit(limit)
            ).all()
            return [_view(row) for row in rows]

    def read(self, alert_id: int, actor: str) -> dict[str, Any]:
        with self.operational.session() as session:
            alert = self._get(session, alert_id)
            if alert.status == AlertStatus.UNREAD.value:
                alert.status, alert.read_at = AlertStatus.READ.value, utc_now()
                record_audit(
                    session,
                    actor=actor,
                    action="alert.read",
                    entity_type="ml_alert",
                    entity_id=str(alert_id),
                    details={},
                    tenant=self.tenant,
                )
            return _view(alert)

    def act(self, alert_id: int, action: AlertAction, actor: str, notes: str) -> dict[str, Any]:
        """Approve or dismiss, once; approving a pending promotion promotes its version."""
        with self.operational.session() as session:
            alert = self._get(session, alert_id)
            if alert.status == AlertStatus.ACTIONED.value:
                raise TransitionRefused(
                    f"alert {alert_id} was already {alert.action} by {alert.actor}"
                )
            name, version = alert.model_name, alert.version
            promote = False
            if (
                action == AlertAction.APPROVE
                and AlertType(alert.alert_type) in PROMOTING
                and name is not None
                and version is not None
            ):
                if self.registry is None:
                    raise TransitionRefused("this service has no model registry to promote with")
                self.registry.transition(
                    name,
                    version,
                    RegistryState.CHAMPION,
                    actor=actor,
                    reason=f"approved from alert {alert_id}: {notes or alert.title}",
                    session=session,
                )
                promote = True
            now = utc_now()
            alert.status, alert.action, alert.action_notes = (
                AlertStatus.ACTIONED.value,
                action.value,
                notes,
            )
            alert.actor, alert.actioned_at, alert.read_at = actor, now, alert.read_at or now
            record_audit(
                session,
                actor=actor,
                action=f"alert.{action.value}",
                entity_type="ml_alert",
                entity_id=str(alert_id),
                tenant=self.tenant,
                details={"notes": notes, "promoted": promote, "version": alert.version},
            )
            return _view(alert)

    def _get(self, session: Session, alert_id: int) -> MLAlert:
        alert = session.get(MLAlert, alert_id)
        if alert is None or alert.tenant != self.tenant:
            raise AlertNotFound(f"no ML alert {alert_id} in tenant {self.tenant!r}")
        return alert


def _view(alert: MLAlert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "type": alert.alert_type,
        "severity": alert.severity,
        "status": alert.status,
        "model_name": alert.model_name,
        "version": alert.version,
        "title": alert.title,
        "message": alert.message,
        "link": alert.link,
        "action": alert.action,
        "action_notes": alert.action_notes,
        "actor": alert.actor,
        "created_at": alert.created_at,
        "read_at": alert.read_at,
        "actioned_at": alert.actioned_at,
    }
