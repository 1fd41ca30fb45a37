"""The ML alert inbox on SQLite and PostgreSQL: raised, read, acted on once, audited; an
approved pending promotion promotes its version."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from shelfwise.lifecycle import ModelRegistry, TransitionRefused
from shelfwise.lifecycle.alerts import AlertInbox, AlertNotFound
from shelfwise.ops import AuditEntry, OperationalDatabase
from shelfwise.ops.states import AlertAction, AlertStatus, AlertType, RegistryState
from shelfwise.recommend.popularity import PopularityRecommender
from shelfwise.tracking import Tracker

NAME = "demo"


@pytest.fixture
def registry(tracker: Tracker, migrated: OperationalDatabase) -> ModelRegistry:
    return ModelRegistry(tracker, migrated)


def _version(registry: ModelRegistry) -> str:
    log = pd.DataFrame(
        {"person_id": ["a"], "sku": ["x"], "occurred_at": pd.to_datetime(["2024-01-01"])}
    )
    record = registry.tracker.log_training(PopularityRecommender().fit(log), experiment=NAME)
    return registry.register(NAME, record, actor="trainer", reason="scheduled")


def test_a_pending_promotion_is_read_then_approved_once(registry: ModelRegistry) -> None:
    first, second = _version(registry), _version(registry)
    registry.transition(NAME, first, RegistryState.CHAMPION, actor="ana", reason="first")
    inbox = AlertInbox(registry.operational, registry)
    alert = inbox.raise_alert(
        AlertType.PROMOTION_PENDING,
        f"{NAME} v{second} waits for review",
        "it scores health products",
        model_name=NAME,
        version=second,
    )
    assert alert["severity"] == "warning"
    assert alert["link"] == f"/api/v1/models/{second}/review?model={NAME}"
    assert [a["id"] for a in inbox.list(AlertStatus.UNREAD)] == [alert["id"]]
    assert inbox.read(alert["id"], "bo")["status"] == "read"
    assert inbox.list(AlertStatus.UNREAD) == []
    done = inbox.act(alert["id"], AlertAction.APPROVE, "bo", "checked the health lists")
    assert (done["status"], done["action"], done["actor"]) == ("actioned", "approve", "bo")
    assert registry.tracker.get_alias_version(NAME, "champion") == second
    assert registry.history(NAME)[-1]["actor"] == "bo"
    with pytest.raises(TransitionRefused, match="already approve by bo"):
        inbox.act(alert["id"], AlertAction.DISMISS, "cy", "too late")
    with registry.operational.session() as session:
        actions = session.scalars(
            sa.select(AuditEntry.action).where(AuditEntry.entity_type == "ml_alert")
        ).all()
    assert actions == ["alert.read", "alert.approve"]


def test_dismissing_changes_no_model_and_tenants_keep_their_own(registry: ModelRegistry) -> None:
    inbox = AlertInbox(registry.operational, registry)
    drift = inbox.raise_alert(AlertType.DRIFT_DETECTED, "recommender drifted", "PSI 0.31")
    assert drift["severity"] == "critical"
    assert inbox.act(drift["id"], AlertAction.DISMISS, "ana", "holiday week")["action"] == (
        "dismiss"
    )
    other = AlertInbox(registry.operational, registry, tenant="b")
    assert other.list() == []
    with pytest.raises(AlertNotFound, match=f"no ML alert {drift['id']} in tenant 'b'"):
        other.read(drift["id"], "eve")
