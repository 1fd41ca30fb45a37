"""The operational tables: what MLflow does not keep about a model's life.

MLflow is the system of record for runs and model versions; these tables hold the policies,
history, checks and decisions around them. Every row carries a ``tenant`` because the
serving layer answers for several retailers from one database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from shelfwise.ops._schema import OperationalRecord, one_of, utc_now
from shelfwise.ops.states import (
    AlertAction,
    AlertSeverity,
    AlertStatus,
    AlertType,
    DriftKind,
    DriftStatistic,
    ExperimentDecision,
    ExperimentStatus,
    JobStatus,
    RegistryState,
    RetrainingStatus,
    RetrainingTrigger,
    ShadowRole,
)

# A segment of "all" rather than NULL keeps group-bys and uniqueness free of NULL semantics.
ALL_SEGMENTS = "all"

_MODEL_NAME = sa.String(255)
_VERSION = sa.String(64)
_STATE = sa.String(32)
_ACTOR = sa.String(255)


def _ordered_window(start: str, end: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{end} >= {start}", name="window_order")


class PromotionPolicy(OperationalRecord):
    """How a challenger earns promotion for one model: the metric, the margin, the review."""

    __tablename__ = "promotion_policies"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "model_name"),
        sa.CheckConstraint("min_improvement >= 0", name="min_improvement"),
    )

    model_name: Mapped[str] = mapped_column(_MODEL_NAME)
    primary_metric: Mapped[str] = mapped_column(sa.String(128))
    higher_is_better: Mapped[bool] = mapped_column(default=True)
    # Relative margin over the champion on the primary metric: 0.05 is 5% better.
    min_improvement: Mapped[float] = mapped_column(sa.Double(), default=0.05)
    requires_review: Mapped[bool] = mapped_column(default=False)
    # Scopes (a category, a customer group) where a person must approve whatever the metrics.
    sensitive_scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class RegistryTransition(OperationalRecord):
    """One move of a model version between registry states, with who and why."""

    __tablename__ = "registry_transitions"
    __table_args__ = (
        one_of("from_state", RegistryState),
        one_of("to_state", RegistryState),
        sa.Index("ix_registry_transitions_model", "tenant", "model_name", "version"),
        sa.Index("ix_registry_transitions_at", "tenant", "at"),
    )

    model_name: Mapped[str] = mapped_column(_MODEL_NAME)
    version: Mapped[str] = mapped_column(_VERSION)
    # None when a version first enters the registry.
    from_state: Mapped[str | None] = mapped_column(_STATE)
    to_state: Mapped[str] = mapped_column(_STATE)
    actor: Mapped[str] = mapped_column(_ACTOR)
    reason: Mapped[str] = mapped_column(sa.Text())
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utc_now)


class RetrainingRun(OperationalRecord):
    """The retraining log: one attempt to train a new version, whatever set it off."""

    __tablename__ = "retraining_runs"
    __table_args__ = (
        one_of("trigger", RetrainingTrigger),
        one_of("status", RetrainingStatus),
        _ordered_window("window_start", "window_end"),
        sa.Index("ix_retraining_runs_model", "tenant", "model_name", "started_at"),
        sa.Index("ix_retraining_runs_status", "tenant", "status"),
    )

    model_name: Mapped[str] = mapped_column(_MODEL_NAME)
    trigger: Mapped[str] = mapped_column(_STATE)
    status: Mapped[str] = mapped_column(_STATE, default=RetrainingStatus.RUNNING.value)
    version_produced: Mapped[str | None] = mapped_column(_VERSION)
    # The slice of history the run trained on.
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    ended_at: Mapped[datetime | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # `metadata` is taken by the declarative base, so the attribute has another name.
    run_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text())


class DriftCheck(OperationalRecord):
    """One statistic comparing live behaviour with the reference, for one segment."""

    __tablename__ = "drift_checks"
    __table_args__ = (
        one_of("kind", DriftKind),
        one_of("statistic", DriftStatistic),
        sa.Index("ix_drift_checks_model", "tenant", "model_name", "checked_at"),
    )

    model_name: Mapped[str] = mapped_column(_MODEL_NAME)
    version: Mapped[str] = mapped_column(_VERSION)
    segment: Mapped[str] = mapped_column(sa.String(255), default=ALL_SEGMENTS)
    kind: Mapped[str] = mapped_column(_STATE)
    # The input feature a data-drift statistic was computed on; None for performance drift.
    feature: Mapped[str | None] = mapped_column(sa.String(255))
    statistic: Mapped[str] = mapped_column(_STATE)
    value: Mapped[float] = mapped_column(sa.Double())
    threshold: Mapped[float] = mapped_column(sa.Double())
    drifted: Mapped[bool]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checked_at: Mapped[datetime] = mapped_column(default=utc_now)


class ShadowPrediction(OperationalRecord):
    """What one model version answered to a live request, and later what actually happened."""

    __tablename__ = "shadow_predictions"
    __table_args__ = (
        one_of("role", ShadowRole),
        sa.Index("ix_shadow_predictions_request", "tenant", "request_id"),
        sa.Index("ix_shadow_predictions_model", "tenant", "model_name", "version", "predicted_at"),
    )

    model_name: Mapped[str] = mapped_column(_MODEL_NAME)
    version: Mapped[str] = mapped_column(_VERSION)
    role: Mapped[str] = mapped_column(_STATE)
    request_id: Mapped[str] = mapped_column(sa.String(128))
    # The household, sku or basket the prediction is about, as the serving layer keys it.
    entity_key: Mapped[str] = mapped_column(sa.String(255))
    segment: Mapped[str] = mapped_column(sa.String(255), default=ALL_SEGMENTS)
    # Any JSON value: a number, a ranked list of skus, a curve. SQL NULL stays NULL.
    prediction: Mapped[Any] = mapped_column(sa.JSON(none_as_null=True))
    actual: Mapped[Any] = mapped_column(sa.JSON(none_as_null=True), nullable=True)
    predicted_at: Mapped[datetime] = mapped_column(default=utc_now)
    actual_at: Mapped[datetime | None]


class BacktestResult(OperationalRecord):
    """How one version scored on one historical window and segment."""

    __tablename__ = "backtest_results"
    __table_args__ = (
        _ordered_window("window_start", "window_end"),
        sa.Index("ix_backtest_results_model", "tenant", "model_name", "version"),
    )

    model_name: Mapped[str] = mapped_column(_MODEL_NAME)
    version: Mapped[str] = mapped_column(_VERSION)
    segment: Mapped[str] = mapped_column(sa.String(255), default=ALL_SEGMENTS)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    primary_metric: Mapped[str] = mapped_column(sa.String(128))
    primary_value: Mapped[float] = mapped_column(sa.Double())
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Experiment(OperationalRecord):
    """A proposed change to a model, from hypothesis through approval to a decision."""

    __tablename__ = "experiments"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "name"),
        one_of("status", ExperimentStatus),
        one_of("decision", ExperimentDecision),
        sa.Index("ix_experiments_status", "tenant", "status"),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    hypothesis: Mapped[str] = mapped_column(sa.Text())
    # An open vocabulary (new feature, new algorithm, new data source...), hence not checked.
    experiment_type: Mapped[str] = mapped_column(sa.String(64))
    model_name: Mapped[str] = mapped_column(_MODEL_NAME)
    proposer: Mapped[str] = mapped_column(_ACTOR)
    status: Mapped[str] = mapped_column(_STATE, default=ExperimentStatus.PROPOSED.value)
    approver: Mapped[str | None] = mapped_column(_ACTOR)
    approval_rationale: Mapped[str | None] = mapped_column(sa.Text())
    decision: Mapped[str | None] = mapped_column(_STATE)
    decision_rationale: Mapped[str | None] = mapped_column(sa.Text())
    results: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    approved_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class MLAlert(OperationalRecord):
    """Something a person should look at, and what they did about it."""

    __tablename__ = "ml_alerts"
    __table_args__ = (
        one_of("alert_type", AlertType),
        one_of("severity", AlertSeverity),
        one_of("status", AlertStatus),
        one_of("action", AlertAction),
        sa.Index("ix_ml_alerts_inbox", "tenant", "status", "created_at"),
        sa.Index("ix_ml_alerts_model", "tenant", "model_name"),
    )

    alert_type: Mapped[str] = mapped_column(_STATE)
    severity: Mapped[str] = mapped_column(_STATE)
    status: Mapped[str] = mapped_column(_STATE, default=AlertStatus.UNREAD.value)
    # None for alerts about no one model, such as a new data source being ready.
    model_name: Mapped[str | None] = mapped_column(_MODEL_NAME)
    version: Mapped[str | None] = mapped_column(_VERSION)
    title: Mapped[str] = mapped_column(sa.String(255))
    message: Mapped[str] = mapped_column(sa.Text())
    # Where the reader goes to do what the alert asks (a dashboard review page, say).
    link: Mapped[str | None] = mapped_column(sa.String(1024))
    action: Mapped[str | None] = mapped_column(_STATE)
    action_notes: Mapped[str | None] = mapped_column(sa.Text())
    actor: Mapped[str | None] = mapped_column(_ACTOR)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    read_at: Mapped[datetime | None]
    actioned_at: Mapped[datetime | None]


class AuditEntry(OperationalRecord):
    """One line of the audit log. The database refuses UPDATE and DELETE on this table."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_entity", "tenant", "entity_type", "entity_id"),
        sa.Index("ix_audit_log_at", "tenant", "at"),
    )

    at: Mapped[datetime] = mapped_column(default=utc_now)
    actor: Mapped[str] = mapped_column(_ACTOR)
    action: Mapped[str] = mapped_column(sa.String(128))
    entity_type: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(255))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DecisionRecord(OperationalRecord):
    """One served decision: who, which variant and model version, what was shown with its
    scores and sources, and what the rules removed and why (``details``)."""

    __tablename__ = "decision_log"
    __table_args__ = (
        sa.Index("ix_decision_log_at", "tenant", "at"),
        sa.Index("ix_decision_log_request", "tenant", "request_id"),
        sa.Index("ix_decision_log_person", "tenant", "person_id", "at"),
    )

    at: Mapped[datetime] = mapped_column(default=utc_now)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    person_id: Mapped[str] = mapped_column(sa.String(255))
    variant: Mapped[str] = mapped_column(sa.String(64))
    model_version: Mapped[str | None] = mapped_column(_VERSION)
    fallback: Mapped[str | None] = mapped_column(sa.String(32))
    cached: Mapped[bool]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobRun(OperationalRecord):
    """One run of a scheduled job (a pipeline, a retraining, a drift sweep)."""

    __tablename__ = "job_runs"
    __table_args__ = (
        one_of("status", JobStatus),
        # Also the lookup a cross-process lock needs: is this job running for this model?
        sa.Index("ix_job_runs_job", "tenant", "job_name", "model_name", "status"),
        sa.Index("ix_job_runs_started_at", "tenant", "started_at"),
    )

    job_name: Mapped[str] = mapped_column(sa.String(255))
    model_name: Mapped[str | None] = mapped_column(_MODEL_NAME)
    status: Mapped[str] = mapped_column(_STATE, default=JobStatus.RUNNING.value)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    ended_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text())
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
