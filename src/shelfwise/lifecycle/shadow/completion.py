"""One tenant's shadow tests: actuals in, comparisons out, and each test completed once.

A test completes when it has ``min_samples`` paired samples (or when a person asks): its
comparison is kept on the experiment's results where the version was trained for an
experiment now in shadow_testing, always in the audit log, and announced by one
``shadow_test_complete`` alert linking to the version's review, with both errors and sample
counts in its message. The alert is the test's record: a test with one does not complete
again, and two processes completing the same test at once are serialised (a PostgreSQL
advisory lock; SQLite's write lock), so the second finds the first's alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.experiments import EXPERIMENT_TAG, Experiments
from shelfwise.lifecycle.registry import ModelRegistry
from shelfwise.lifecycle.shadow.comparison import (
    CHAMPION,
    COMPARISON_WINDOW,
    MIN_SAMPLES,
    SCORING,
    compare,
)
from shelfwise.lifecycle.shadow.records import ATTRIBUTION_WINDOW, fill_demand, fill_purchases
from shelfwise.ops import MLAlert, ShadowPrediction, record_audit
from shelfwise.ops._schema import utc_now
from shelfwise.ops.states import AlertType, ExperimentStatus, RegistryState

ACTOR = "shadow_test"


class ShadowTests:
    """One tenant's shadow tests, over its registry and alert inbox."""

    def __init__(self, registry: ModelRegistry, alerts: AlertInbox) -> None:
        self.registry, self.alerts = registry, alerts
        self.operational, self.tenant = registry.operational, registry.tenant

    def record_purchases(
        self,
        person_id: str,
        skus: Sequence[str],
        at: datetime,
        *,
        window: timedelta = ATTRIBUTION_WINDOW,
    ) -> int:
        """The recommender's actuals: ``skus`` bought at ``at`` join those of the person's
        recommendations in the ``window`` before; the rows filled."""
        return fill_purchases(self.operational, self.tenant, person_id, skus, at, window)

    def record_demand(self, demand: pd.DataFrame) -> int:
        """The forecaster's actuals: every pending forecast whose week ``demand`` has seen end
        (:func:`~shelfwise.lifecycle.shadow.records.realised_demand`); the rows filled."""
        return fill_demand(self.operational, self.tenant, demand)

    def compare(
        self,
        model_name: str,
        version: str,
        *,
        window: timedelta = COMPARISON_WINDOW,
        min_samples: int = MIN_SAMPLES,
    ) -> dict[str, Any]:
        """The champion against ``version`` on their paired samples of the last ``window``
        (:func:`~shelfwise.lifecycle.shadow.comparison.compare`)."""
        champion = self.registry.tracker.get_alias_version(model_name, RegistryState.CHAMPION.value)
        return compare(
            self.operational,
            self.tenant,
            model_name,
            version,
            window=window,
            min_samples=min_samples,
            champion_now=champion,
        )

    def complete(
        self,
        model_name: str,
        version: str,
        *,
        min_samples: int = MIN_SAMPLES,
        window: timedelta = COMPARISON_WINDOW,
        force: bool = False,
        actor: str = ACTOR,
    ) -> dict[str, Any] | None:
        """Close the shadow test of ``version`` once it has ``min_samples`` paired samples
        (whatever it has, with ``force``): the comparison stored and the alert raised. None
        when it is not ready, or was completed before."""
        if self.completed(model_name, version):
            return None
        comparison = self.compare(model_name, version, window=window, min_samples=min_samples)
        if not (comparison["ready"] or force):
            return None
        experiment = self._experiment_of(model_name, version)
        title, message = _announcement(comparison)
        with self.operational.session() as session:
            _serialise(session, f"shadow:{self.tenant}:{model_name}:{version}")
            if _alerted(session, self.tenant, model_name, version):
                return None  # completed by another process meanwhile
            if experiment is not None:
                book = Experiments(self.registry, self.alerts)
                book.record_shadow(experiment, version, comparison, actor, session=session)
            record_audit(
                session,
                actor=actor,
                action="shadow_test.complete",
                entity_type="model_version",
                entity_id=f"{model_name}/{version}",
                details={"experiment": experiment, **comparison},
                tenant=self.tenant,
            )
            alert = self.alerts.raise_alert(
                AlertType.SHADOW_TEST_COMPLETE,
                title,
                message,
                model_name=model_name,
                version=version,
                link=f"/api/v1/models/{version}/review?model={model_name}",
                session=session,
            )
        return {"comparison": comparison, "alert": alert, "experiment": experiment}

    def completed(self, model_name: str, version: str) -> bool:
        """Whether the shadow test of ``version`` has completed (its alert was raised)."""
        with self.operational.session() as session:
            return _alerted(session, self.tenant, model_name, version)

    def sweep(
        self,
        *,
        min_samples: int = MIN_SAMPLES,
        window: timedelta = COMPARISON_WINDOW,
        model_name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Complete every shadow test of the last ``window`` (of ``model_name``, or of every
        model) that is ready, for a schedule to run (after :meth:`record_demand`, for the
        forecaster); the completions."""
        names = list(SCORING) if model_name is None else [model_name]
        with self.operational.session() as session:
            tested = session.execute(
                sa.select(ShadowPrediction.model_name, ShadowPrediction.version)
                .where(
                    ShadowPrediction.tenant == self.tenant,
                    ShadowPrediction.role != CHAMPION,
                    ShadowPrediction.predicted_at >= utc_now() - window,
                    ShadowPrediction.model_name.in_(names),
                )
                .distinct()
            ).all()
        done = [
            self.complete(name, version, min_samples=min_samples, window=window)
            for name, version in sorted(tested)
        ]
        return [completion for completion in done if completion is not None]

    def _experiment_of(self, model_name: str, version: str) -> int | None:
        """The experiment in shadow_testing that ``version`` was trained for, if any."""
        tags = self.registry.tracker.client.get_model_version(model_name, version).tags
        tagged = tags.get(EXPERIMENT_TAG)
        if tagged is None:
            return None
        found = Experiments(self.registry, self.alerts).get(int(tagged))
        testing = found["status"] == ExperimentStatus.SHADOW_TESTING.value
        return int(found["id"]) if testing else None


def _announcement(comparison: dict[str, Any]) -> tuple[str, str]:
    """The alert's title (the verdict) and message (both errors, both sample counts)."""
    ours, theirs = comparison["champion"], comparison["challenger"]
    metric = comparison["metric"]

    def shown(error: float | None) -> str:
        return "n/a" if error is None else f"{error:.4g}"

    verdict = "no samples"
    if comparison["difference"] is not None:
        verdict = "better" if comparison["difference"] < 0 else "not better"
    title = (
        f"shadow test of {comparison['model']} v{theirs['version']} complete: {verdict} than "
        "the champion"
    )
    message = (
        f"{theirs['role'] or 'shadow'} v{theirs['version']}: {metric} {shown(theirs['error'])} "
        f"over {theirs['samples']} samples; champion v{ours['version']}: {metric} "
        f"{shown(ours['error'])} over {ours['samples']} samples (paired: "
        f"{comparison['requests']} requests since {comparison['since'][:10]})."
    )
    return title, message


def _alerted(session: Session, tenant: str, model_name: str, version: str) -> bool:
    found = session.scalars(
        sa.select(MLAlert.id).where(
            MLAlert.tenant == tenant,
            MLAlert.alert_type == AlertType.SHADOW_TEST_COMPLETE.value,
            MLAlert.model_name == model_name,
            MLAlert.version == version,
        )
    ).first()
    return found is not None


def _serialise(session: Session, key: str) -> None:
    """Completions of one test one at a time, until the session's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(key.encode()).digest()
        lock = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
    else:  # SQLite: the database's write lock, taken before the alerts are read
        session.execute(sa.text("UPDATE ml_alerts SET id = id WHERE 0 = 1"))
