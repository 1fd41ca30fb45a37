"""The served decisions, and an alert type for a serving layer that degrades.

Revision ID: 0002
Revises: 0001
Created: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALERT_TYPES = (
    "drift_detected",
    "promotion_pending",
    "backtest_degradation",
    "experiment_complete",
    "new_data_source_ready",
    "shadow_test_complete",
)


def _ml_alerts(*types: str) -> sa.Table:
    """ml_alerts as revision 0001 made it, with ``types`` allowed: SQLite rebuilds the table
    from this (and an offline SQL script cannot reflect it)."""

    def text(name: str, length: int | None = None, nullable: bool = False) -> sa.Column[str]:
        return sa.Column(
            name, sa.Text() if length is None else sa.String(length), nullable=nullable
        )

    def moment(name: str, nullable: bool = False) -> sa.Column[object]:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)

    def one_of(column: str, *states: str) -> sa.CheckConstraint:
        allowed = ", ".join(f"'{state}'" for state in states)
        return sa.CheckConstraint(f"{column} IN ({allowed})", name=f"ck_ml_alerts_{column}")

    return sa.Table(
        "ml_alerts",
        sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("tenant", sa.String(64), server_default="default", nullable=False),
        text("alert_type", 32),
        text("severity", 32),
        text("status", 32),
        text("model_name", 255, nullable=True),
        text("version", 64, nullable=True),
        text("title", 255),
        text("message"),
        text("link", 1024, nullable=True),
        text("action", 32, nullable=True),
        text("action_notes", nullable=True),
        text("actor", 255, nullable=True),
        moment("created_at"),
        moment("read_at", nullable=True),
        moment("actioned_at", nullable=True),
        one_of("alert_type", *types),
        one_of("severity", "critical", "warning", "info"),
        one_of("status", "unread", "read", "actioned"),
        one_of("action", "approve", "dismiss"),
        sa.Index("ix_ml_alerts_inbox", "tenant", "status", "created_at"),
        sa.Index("ix_ml_alerts_model", "tenant", "model_name"),
    )


def _alert_types(before: tuple[str, ...], after: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{t}'" for t in after)
    with op.batch_alter_table("ml_alerts", copy_from=_ml_alerts(*before)) as batch:
        batch.drop_constraint(op.f("ck_ml_alerts_alert_type"), type_="check")
        batch.create_check_constraint(op.f("ck_ml_alerts_alert_type"), f"alert_type IN ({allowed})")


def upgrade() -> None:
    op.create_table(
        "decision_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant", sa.String(length=64), server_default="default", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=255), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("fallback", sa.String(length=32), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_log")),
    )
    op.create_index("ix_decision_log_at", "decision_log", ["tenant", "at"])
    op.create_index("ix_decision_log_request", "decision_log", ["tenant", "request_id"])
    op.create_index("ix_decision_log_person", "decision_log", ["tenant", "person_id", "at"])
    _alert_types(ALERT_TYPES, (*ALERT_TYPES, "serving_degraded"))


def downgrade() -> None:
    op.execute("DELETE FROM ml_alerts WHERE alert_type = 'serving_degraded'")
    _alert_types((*ALERT_TYPES, "serving_degraded"), ALERT_TYPES)
    op.drop_table("decision_log")
