"""Experiments: a proposed change to a model, from hypothesis through approval to a decision.

Status runs proposed -> approved -> in_progress -> shadow_testing -> completed; only those
steps, in that order (``completed`` may follow any approved step: an experiment can be
stopped). A proposer cannot approve their own experiment. Its versions are the model's
versions registered with the experiment's id (tag ``shelfwise.experiment``), and its results
are their metrics beside the champion's, and the comparison of each completed shadow test of
them (:mod:`shelfwise.lifecycle.shadow`). Completing it records the decision (adopt,
partial_adopt or reject) with its rationale, acts on it (adopt promotes the experiment's latest
version to champion, reject archives its versions) and raises an ``experiment_complete`` alert;
every step is audited.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.registry import ModelRegistry, TransitionRefused
from shelfwise.ops import Experiment, record_audit
from shelfwise.ops._schema import utc_now
from shelfwise.ops.states import AlertType, ExperimentDecision, ExperimentStatus, RegistryState

EXPERIMENT_TAG = "shelfwise.experiment"
NEXT = {
    ExperimentStatus.APPROVED: (ExperimentStatus.PROPOSED,),
    ExperimentStatus.IN_PROGRESS: (ExperimentStatus.APPROVED,),
    ExperimentStatus.SHADOW_TESTING: (ExperimentStatus.IN_PROGRESS,),
    ExperimentStatus.COMPLETED: (
        ExperimentStatus.APPROVED,
        ExperimentStatus.IN_PROGRESS,
        ExperimentStatus.SHADOW_TESTING,
    ),
}


class ExperimentNotFound(LookupError):
    """No experiment with that id in this tenant."""


class Experiments:
    """One tenant's experiments."""

    def __init__(self, registry: ModelRegistry, alerts: AlertInbox) -> None:
        self.registry, self.alerts = registry, alerts
        self.operational, self.tenant = registry.operational, registry.tenant

    def propose(
        self, name: str, hypothesis: str, experiment_type: str, model_name: str, proposer: str
    ) -> dict[str, Any]:
        with self.operational.session() as session:
            taken = session.scalars(
                sa.select(Experiment.id).where(
                    Experiment.tenant == self.tenant, Experiment.name == name
                )
            ).first()
            if taken is not None:
                raise TransitionRefused(f"an experiment named {name!r} exists already ({taken})")
            experiment = Experiment(
                tenant=self.tenant,
                name=name,
                hypothesis=hypothesis,
                experiment_type=experiment_type,
                model_name=model_name,
                proposer=proposer,
            )
            session.add(experiment)
            session.flush()
            self._audit(session, experiment, proposer, "experiment.propose", {"name": name})
            return _view(experiment)

    def approve(self, experiment_id: int, approver: str, rationale: str) -> dict[str, Any]:
        with self.operational.session() as session:
            experiment = self._step(session, experiment_id, ExperimentStatus.APPROVED)
            if approver == experiment.proposer:
                raise TransitionRefused(
                    f"{approver} proposed experiment {experiment_id}: another person approves it"
                )
            experiment.approver, experiment.approval_rationale = approver, rationale
            experiment.approved_at = utc_now()
            self._audit(
                session, experiment, approver, "experiment.approve", {"rationale": rationale}
            )
            return _view(experiment)

    def advance(self, experiment_id: int, to: ExperimentStatus, actor: str) -> dict[str, Any]:
        """In progress (its version is being trained) or shadow testing (it is scored live)."""
        if to not in (ExperimentStatus.IN_PROGRESS, ExperimentStatus.SHADOW_TESTING):
            raise TransitionRefused(f"use approve or complete to move an experiment to {to}")
        with self.operational.session() as session:
            experiment = self._step(session, experiment_id, to)
            self._audit(session, experiment, actor, f"experiment.{to.value}", {})
            return _view(experiment)

    def complete(
        self, experiment_id: int, decision: ExperimentDecision, actor: str, rationale: str
    ) -> dict[str, Any]:
        found = self.results(experiment_id)
        results = found["versions"]
        with self.operational.session() as session:
            experiment = self._step(session, experiment_id, ExperimentStatus.COMPLETED)
            experiment.decision, experiment.decision_rationale = decision.value, rationale
            experiment.completed_at = utc_now()
            experiment.results = {**experiment.results, "versions": results}
            self._audit(
                session,
                experiment,
                actor,
                "experiment.complete",
                {"decision": decision.value, "rationale": rationale},
            )
            self._apply(session, found["model_name"], decision, results, actor, experiment_id)
            view = _view(experiment)
        self.alerts.raise_alert(
            AlertType.EXPERIMENT_COMPLETE,
            f"experiment {view['name']} completed: {decision.value}",
            rationale,
            model_name=view["model_name"],
            link=f"/api/v1/experiments/{experiment_id}/results",
        )
        return view

    def _apply(
        self,
        session: Session,
        name: str,
        decision: ExperimentDecision,
        versions: list[dict[str, Any]],
        actor: str,
        experiment_id: int,
    ) -> None:
        """Adopt: the experiment's latest version becomes the champion. Reject: its versions
        are archived. Partial adoption moves nothing (the reviewer promotes per segment)."""
        if decision == ExperimentDecision.ADOPT and versions:
            latest = versions[-1]["version"]
            if versions[-1]["state"] != RegistryState.CHAMPION:
                self.registry.transition(
                    name,
                    latest,
                    RegistryState.CHAMPION,
                    actor=actor,
                    reason=f"experiment {experiment_id} adopted",
                    session=session,
                )
        elif decision == ExperimentDecision.REJECT:
            for version in versions:
                if version["state"] not in (RegistryState.ARCHIVED, RegistryState.CHAMPION):
                    self.registry.transition(
                        name,
                        version["version"],
                        RegistryState.ARCHIVED,
                        actor=actor,
                        reason=f"experiment {experiment_id} rejected",
                        session=session,
                    )

    def record_shadow(
        self,
        experiment_id: int,
        version: str,
        comparison: dict[str, Any],
        actor: str,
        *,
        session: Session | None = None,
    ) -> None:
        """Keep a completed shadow test of ``version`` on the experiment's results (under
        ``shadow``, by version), audited; the experiment stays in shadow_testing until a
        person records its decision. ``session``: the caller's transaction."""
        if session is None:
            with self.operational.session() as own:
                self.record_shadow(experiment_id, version, comparison, actor, session=own)
            return
        experiment = self._get(session, experiment_id)
        if experiment.status != ExperimentStatus.SHADOW_TESTING.value:
            raise TransitionRefused(
                f"experiment {experiment_id} is {experiment.status}, not shadow_testing"
            )
        shadow = {**experiment.results.get("shadow", {}), version: comparison}
        experiment.results = {**experiment.results, "shadow": shadow}
        self._audit(session, experiment, actor, "experiment.shadow_test", {"version": version})

    def list(self, status: ExperimentStatus | None = None) -> list[dict[str, Any]]:
        """The tenant's experiments, newest first (``status``: only those in it)."""
        query = sa.select(Experiment).where(Experiment.tenant == self.tenant)
        if status is not None:
            query = query.where(Experiment.status == status.value)
        with self.operational.session() as session:
            rows = session.scalars(query.order_by(Experiment.id.desc())).all()
            return [_view(row) for row in rows]

    def get(self, experiment_id: int) -> dict[str, Any]:
        with self.operational.session() as session:
            return _view(self._get(session, experiment_id))

    def results(self, experiment_id: int) -> dict[str, Any]:
        """The experiment, its versions' metrics and the champion's, and the comparisons of
        its completed shadow tests (``shadow``, by version)."""
        with self.operational.session() as session:
            row = self._get(session, experiment_id)
            experiment, shadow = _view(row), dict(row.results.get("shadow", {}))
        tracker = self.registry.tracker
        name = experiment["model_name"]
        versions = []
        found = tracker.client.search_model_versions(
            f"name = '{name}' and tags.`{EXPERIMENT_TAG}` = '{experiment_id}'"
        )
        for version in sorted(found, key=lambda v: int(v.version)):
            evaluation = tracker.evaluation(version.run_id) if version.run_id else None
            versions.append(
                {
                    "version": str(version.version),
                    "state": self.registry.state(name, str(version.version)),
                    "metrics": evaluation.metrics if evaluation else {},
                }
            )
        champion = tracker.get_alias_version(name, RegistryState.CHAMPION.value)
        champion_metrics: dict[str, float] = {}
        if champion is not None:
            run_id = tracker.client.get_model_version(name, champion).run_id
            evaluation = tracker.evaluation(run_id) if run_id else None
            champion_metrics = evaluation.metrics if evaluation else {}
        return {
            **experiment,
            "versions": versions,
            "champion": {"version": champion, "metrics": champion_metrics},
            "shadow": shadow,
        }

    def tag_version(self, experiment_id: int, version: str) -> None:
        """Mark ``version`` of the experiment's model as trained for it (trigger experiment)."""
        experiment = self.get(experiment_id)
        self.registry.tracker.client.set_model_version_tag(
            experiment["model_name"], version, EXPERIMENT_TAG, str(experiment_id)
        )

    def _step(self, session: Session, experiment_id: int, to: ExperimentStatus) -> Experiment:
        experiment = self._get(session, experiment_id)
        allowed = NEXT[to]
        if ExperimentStatus(experiment.status) not in allowed:
            raise TransitionRefused(
                f"experiment {experiment_id} is {experiment.status}: it moves to {to.value} "
                f"only from {', '.join(a.value for a in allowed)}"
            )
        experiment.status = to.value
        return experiment

    def _get(self, session: Session, experiment_id: int) -> Experiment:
        experiment = session.get(Experiment, experiment_id)
        if experiment is None or experiment.tenant != self.tenant:
            raise ExperimentNotFound(f"no experiment {experiment_id} in tenant {self.tenant!r}")
        return experiment

    def _audit(
        self,
        session: Session,
        experiment: Experiment,
        actor: str,
        action: str,
        details: dict[str, Any],
    ) -> None:
        record_audit(
            session,
            actor=actor,
            action=action,
            entity_type="experiment",
            entity_id=str(experiment.id),
            details=details,
            tenant=self.tenant,
        )


def _view(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.id,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "type": experiment.experiment_type,
        "model_name": experiment.model_name,
        "proposer": experiment.proposer,
        "status": experiment.status,
        "approver": experiment.approver,
        "approval_rationale": experiment.approval_rationale,
        "decision": experiment.decision,
        "decision_rationale": experiment.decision_rationale,
        "created_at": experiment.created_at,
        "approved_at": experiment.approved_at,
        "completed_at": experiment.completed_at,
    }
