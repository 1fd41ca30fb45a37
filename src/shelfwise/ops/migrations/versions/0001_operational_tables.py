"""The operational tables of the model lifecycle, and the append-only audit log.

Revision ID: 0001
Revises:
Created: 2026-11-22

Closed sets of states are spelled out here rather than imported from shelfwise.ops.states:
a migration records the schema as it was, and widening a set later takes a new revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REGISTRY_STATES = ("candidate", "challenger", "champion", "experimental", "archived")
APPEND_ONLY_MESSAGE = "audit_log is append-only"


def _record(table: str, *columns: sa.Column[object] | sa.Constraint) -> None:
    """Create ``table`` with the key and tenant columns that every operational table has."""
    op.create_table(
        table,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant", sa.String(length=64), server_default="default", nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )


def _one_of(table: str, column: str, *states: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{state}'" for state in states)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def _window_order(table: str) -> sa.CheckConstraint:
    return sa.CheckConstraint("window_end >= window_start", name=op.f(f"ck_{table}_window_order"))


def _utc(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int | None = None, *, nullable: bool = False) -> sa.Column[object]:
    kind = sa.Text() if length is None else sa.String(length=length)
    return sa.Column(name, kind, nullable=nullable)


def _json(name: str, *, nullable: bool = False, none_as_null: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(none_as_null=none_as_null), nullable=nullable)


def _number(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Double(), nullable=False)


def upgrade() -> None:
    _record(
        "promotion_policies",
        _text("model_name", 255),
        _text("primary_metric", 128),
        sa.Column("higher_is_better", sa.Boolean(), nullable=False),
        _number("min_improvement"),
        sa.Column("requires_review", sa.Boolean(), nullable=False),
        _json("sensitive_scopes"),
        _utc("created_at"),
        _utc("updated_at"),
        sa.CheckConstraint(
            "min_improvement >= 0", name=op.f("ck_promotion_policies_min_improvement")
        ),
        sa.UniqueConstraint(
            "tenant", "model_name", name=op.f("uq_promotion_policies_tenant_model_name")
        ),
    )

    _record(
        "registry_transitions",
        _text("model_name", 255),
        _text("version", 64),
        _text("from_state", 32, nullable=True),
        _text("to_state", 32),
        _text("actor", 255),
        _text("reason"),
        _json("metrics"),
        _utc("at"),
        _one_of("registry_transitions", "from_state", *REGISTRY_STATES),
        _one_of("registry_transitions", "to_state", *REGISTRY_STATES),
    )
    op.create_index(
        "ix_registry_transitions_model", "registry_transitions", ["tenant", "model_name", "version"]
    )
    op.create_index("ix_registry_transitions_at", "registry_transitions", ["tenant", "at"])

    _record(
        "retraining_runs",
        _text("model_name", 255),
        _text("trigger", 32),
        _text("status", 32),
        _text("version_produced", 64, nullable=True),
        _utc("window_start", nullable=True),
        _utc("window_end", nullable=True),
        _utc("started_at"),
        _utc("ended_at", nullable=True),
        _json("metrics"),
        _json("metadata"),
        _text("error", nullable=True),
        _one_of(
            "retraining_runs",
            "trigger",
            *("scheduled", "drift", "manual", "experiment", "new_data", "backtest_degradation"),
        ),
        _one_of("retraining_runs", "status", "running", "succeeded", "failed", "cancelled"),
        _window_order("retraining_runs"),
    )
    op.create_index(
        "ix_retraining_runs_model", "retraining_runs", ["tenant", "model_name", "started_at"]
    )
    op.create_index("ix_retraining_runs_status", "retraining_runs", ["tenant", "status"])

    _record(
        "drift_checks",
        _text("model_name", 255),
        _text("version", 64),
        _text("segment", 255),
        _text("kind", 32),
        _text("feature", 255, nullable=True),
        _text("statistic", 32),
        _number("value"),
        _number("threshold"),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        _json("details"),
        _utc("checked_at"),
        _one_of("drift_checks", "kind", "performance", "data"),
        _one_of("drift_checks", "statistic", "psi", "ks", "chi2", "error_ratio"),
    )
    op.create_index("ix_drift_checks_model", "drift_checks", ["tenant", "model_name", "checked_at"])

    _record(
        "shadow_predictions",
        _text("model_name", 255),
        _text("version", 64),
        _text("role", 32),
        _text("request_id", 128),
        _text("entity_key", 255),
        _text("segment", 255),
        _json("prediction", none_as_null=True),
        _json("actual", nullable=True, none_as_null=True),
        _utc("predicted_at"),
        _utc("actual_at", nullable=True),
        _one_of("shadow_predictions", "role", "champion", "challenger", "experimental"),
    )
    op.create_index("ix_shadow_predictions_request", "shadow_predictions", ["tenant", "request_id"])
    op.create_index(
        "ix_shadow_predictions_model",
        "shadow_predictions",
        ["tenant", "model_name", "version", "predicted_at"],
    )

    _record(
        "backtest_results",
        _text("model_name", 255),
        _text("version", 64),
        _text("segment", 255),
        _utc("window_start"),
        _utc("window_end"),
        _json("metrics"),
        _text("primary_metric", 128),
        _number("primary_value"),
        _utc("created_at"),
        _window_order("backtest_results"),
    )
    op.create_index(
        "ix_backtest_results_model", "backtest_results", ["tenant", "model_name", "version"]
    )

    _record(
        "experiments",
        _text("name", 255),
        _text("hypothesis"),
        _text("experiment_type", 64),
        _text("model_name", 255),
        _text("proposer", 255),
        _text("status", 32),
        _text("approver", 255, nullable=True),
        _text("approval_rationale", nullable=True),
        _text("decision", 32, nullable=True),
        _text("decision_rationale", nullable=True),
        _json("results"),
        _utc("created_at"),
        _utc("approved_at", nullable=True),
        _utc("completed_at", nullable=True),
        _one_of(
            "experiments",
            "status",
            *("proposed", "approved", "in_progress", "shadow_testing", "completed", "rejected"),
        ),
        _one_of("experiments", "decision", "adopt", "partial_adopt", "reject"),
        sa.UniqueConstraint("tenant", "name", name=op.f("uq_experiments_tenant_name")),
    )
    op.create_index("ix_experiments_status", "experiments", ["tenant", "status"])

    _record(
        "ml_alerts",
        _text("alert_type", 32),
        _text("severity", 32),
        _text("status", 32),
        _text("model_name", 255, nullable=True),
        _text("version", 64, nullable=True),
        _text("title", 255),
        _text("message"),
        _text("link", 1024, nullable=True),
        _text("action", 32, nullable=True),
        _text("action_notes", nullable=True),
        _text("actor", 255, nullable=True),
        _utc("created_at"),
        _utc("read_at", nullable=True),
        _utc("actioned_at", nullable=True),
        _one_of(
            "ml_alerts",
            "alert_type",
            *(
                "drift_detected",
                "promotion_pending",
                "backtest_degradation",
                "experiment_complete",
                "new_data_source_ready",
                "shadow_test_complete",
            ),
        ),
        _one_of("ml_alerts", "severity", "critical", "warning", "info"),
        _one_of("ml_alerts", "status", "unread", "read", "actioned"),
        _one_of("ml_alerts", "action", "approve", "dismiss"),
    )
    op.create_index("ix_ml_alerts_inbox", "ml_alerts", ["tenant", "status", "created_at"])
    op.create_index("ix_ml_alerts_model", "ml_alerts", ["tenant", "model_name"])

    _record(
        "audit_log",
        _utc("at"),
        _text("actor", 255),
        _text("action", 128),
        _text("entity_type", 64),
        _text("entity_id", 255),
        _json("details"),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["tenant", "entity_type", "entity_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["tenant", "at"])
    _forbid_audit_changes()

    _record(
        "job_runs",
        _text("job_name", 255),
        _text("model_name", 255, nullable=True),
        _text("status", 32),
        _utc("started_at"),
        _utc("ended_at", nullable=True),
        _text("error", nullable=True),
        _json("details"),
        _one_of("job_runs", "status", "running", "succeeded", "failed"),
    )
    op.create_index("ix_job_runs_job", "job_runs", ["tenant", "job_name", "model_name", "status"])
    op.create_index("ix_job_runs_started_at", "job_runs", ["tenant", "started_at"])


def _forbid_audit_changes() -> None:
    """Make the database itself refuse to rewrite or erase the audit log.

    The ORM has no say here: a trigger also stops raw SQL and other clients. Restrict
    violation (23001) on PostgreSQL, like SQLite's ABORT, reaches Python as an IntegrityError.
    """
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for statement in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_refuse_{statement.lower()} "
                f"BEFORE {statement} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: {statement} refused'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            # No % placeholder in the message: offline SQL output would double it.
            "CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION USING MESSAGE = '{APPEND_ONLY_MESSAGE}: ' || TG_OP "
            "|| ' refused', ERRCODE = 'restrict_violation'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_refuse_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_refuse_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
        )
    else:
        # An audit log that could be edited silently is worse than no database at all.
        raise NotImplementedError(f"no append-only trigger for the {dialect} dialect")


def downgrade() -> None:
    for table in (
        "job_runs",
        "audit_log",
        "ml_alerts",
        "experiments",
        "backtest_results",
        "shadow_predictions",
        "drift_checks",
        "retraining_runs",
        "registry_transitions",
        "promotion_policies",
    ):
        # Dropping a table drops its indexes and triggers with it.
        op.drop_table(table)
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_refuse_change()")
