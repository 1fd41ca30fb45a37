"""The closed sets of states that the operational tables accept.

Each set is enforced twice from the same values: here, for code that builds rows, and by a
CHECK constraint in the database (see :func:`shelfwise.ops._schema.one_of`), so that a row
written by another process or by hand cannot carry a state the lifecycle does not know.
Adding a state means adding it here and shipping a migration that widens the constraint.
"""

from __future__ import annotations

from enum import StrEnum


class RegistryState(StrEnum):
    """Where a model version stands: MLflow aliases (champion, challenger) or a status tag."""

    CANDIDATE = "candidate"
    CHALLENGER = "challenger"
    CHAMPION = "champion"
    EXPERIMENTAL = "experimental"
    ARCHIVED = "archived"


class RetrainingTrigger(StrEnum):
    """Why a model was retrained."""

    SCHEDULED = "scheduled"
    DRIFT = "drift"
    MANUAL = "manual"
    EXPERIMENT = "experiment"
    NEW_DATA = "new_data"
    BACKTEST_DEGRADATION = "backtest_degradation"


class RetrainingStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DriftKind(StrEnum):
    """Performance drift compares errors on labelled outcomes; data drift compares inputs."""

    PERFORMANCE = "performance"
    DATA = "data"


class DriftStatistic(StrEnum):
    PSI = "psi"
    KS = "ks"
    CHI2 = "chi2"
    ERROR_RATIO = "error_ratio"


class ShadowRole(StrEnum):
    """The role of the model version that scored a shadowed request."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    EXPERIMENTAL = "experimental"


class ExperimentStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    SHADOW_TESTING = "shadow_testing"
    COMPLETED = "completed"
    REJECTED = "rejected"


class ExperimentDecision(StrEnum):
    ADOPT = "adopt"
    PARTIAL_ADOPT = "partial_adopt"
    REJECT = "reject"


class AlertType(StrEnum):
    DRIFT_DETECTED = "drift_detected"
    PROMOTION_PENDING = "promotion_pending"
    BACKTEST_DEGRADATION = "backtest_degradation"
    EXPERIMENT_COMPLETE = "experiment_complete"
    NEW_DATA_SOURCE_READY = "new_data_source_ready"
    SHADOW_TEST_COMPLETE = "shadow_test_complete"
    SERVING_DEGRADED = "serving_degraded"


class AlertSeverity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertStatus(StrEnum):
    UNREAD = "unread"
    READ = "read"
    ACTIONED = "actioned"


class AlertAction(StrEnum):
    APPROVE = "approve"
    DISMISS = "dismiss"


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
