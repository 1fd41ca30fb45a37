"""The operational database: what the model lifecycle keeps beside MLflow.

MLflow is the system of record for runs and model versions. These tables hold the rest:
promotion policies and registry history, the retraining log, drift checks, shadow
predictions, backtest results, experiments, ML alerts, job runs, an append-only audit log
and the served decisions; :class:`BatchWriter` writes the rows serving records (decisions,
shadow predictions) in batches off the request path.
SQLite by default, PostgreSQL by URL; the schema ships as Alembic migrations inside the
package and is applied with :meth:`OperationalDatabase.upgrade`.

The closed sets of states (registry states, alert types, ...) live in
:mod:`shelfwise.ops.states`.
"""

from __future__ import annotations

from shelfwise.ops._audit import record_audit
from shelfwise.ops._batches import BatchWriter
from shelfwise.ops._database import OperationalDatabase
from shelfwise.ops._models import (
    AuditEntry,
    BacktestResult,
    DecisionRecord,
    DriftCheck,
    Experiment,
    JobRun,
    MLAlert,
    PromotionPolicy,
    RegistryTransition,
    RetrainingRun,
    ShadowPrediction,
)
from shelfwise.ops._schema import Base

__all__ = [
    "AuditEntry",
    "BacktestResult",
    "Base",
    "BatchWriter",
    "DecisionRecord",
    "DriftCheck",
    "Experiment",
    "JobRun",
    "MLAlert",
    "OperationalDatabase",
    "PromotionPolicy",
    "RegistryTransition",
    "RetrainingRun",
    "ShadowPrediction",
    "record_audit",
]
