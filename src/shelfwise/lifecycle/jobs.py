"""The lifecycle's jobs (retraining, drift, backtest and shadow checks), run on a schedule or
by hand, one at a time per model.

Every run of a job on a model is a ``job_runs`` row: ``running`` when it starts, then
``succeeded`` with the job's result or ``failed`` with its error, both with the trigger and the
actor. The run holds the model's lock (:class:`~shelfwise.lifecycle.locks.ModelLock`) from
before its row is written until after it is closed, so a second job on the same model is
refused with :class:`JobBusy`, which names the job that holds it and since when, rather than
queued behind it or run beside it. Jobs on different models run side by side.

Restart safety follows from the lock dying with its process. Whoever takes a model's lock and
finds runs of that model still ``running`` (job runs, retraining runs) knows that their process
stopped midway: they are marked failed, and the model's aliases are put back where its committed
registry history says they are (:meth:`~shelfwise.lifecycle.registry.ModelRegistry.reconcile`),
so a retraining killed between moving the champion alias and recording the move promotes
nothing. Retraining is expected to run as a job: a :class:`Retrainer` used directly takes no
lock, and its run would be taken for an orphan by the next job on its model.
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shelfwise.lifecycle.families import FAMILIES, UnknownModel, family_of
from shelfwise.lifecycle.locks import ModelLock
from shelfwise.lifecycle.segments import segment_model
from shelfwise.ops import JobRun, RegistryTransition, RetrainingRun
from shelfwise.ops._schema import utc_now
from shelfwise.ops.states import JobStatus, RegistryState, RetrainingTrigger

if TYPE_CHECKING:
    from shelfwise.lifecycle.alerts import AlertInbox
    from shelfwise.lifecycle.contract import Family, Policy
    from shelfwise.workspace import Workspace

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted: the process running it stopped before it finished"


class JobBusy(RuntimeError):
    """The model's lock is held by another job (the message says which and since when)."""


@dataclass(frozen=True)
class Job:
    """A job by name: what it does for one model, which models a sweep covers, and the
    setting that holds its schedule."""

    name: str
    description: str
    schedule_setting: str
    run: Callable[[JobRunner, str, RetrainingTrigger, str, dict[str, Any]], dict[str, Any]]
    covers: Callable[[Workspace], list[str]]
    # A run by hand names its model; the schedule covers every model.
    needs_model: bool


def _retrain(
    runner: JobRunner, model: str, trigger: RetrainingTrigger, actor: str, options: dict[str, Any]
) -> dict[str, Any]:
    """The model, then its segments: every one with ``segments`` set, else those that have a
    model already (a scheduled run keeps each adopted segment fresh). ``experiment``: the
    approved experiment the version is trained for."""
    from shelfwise.lifecycle.retrain import Retrainer

    workspace = runner.workspace
    retrainer = Retrainer(workspace.registry, _alerts(workspace), runner.policy)
    family = runner.family(model)
    experiment = options.get("experiment")
    if experiment is not None:
        trigger = RetrainingTrigger.EXPERIMENT
        return retrainer.run(family, trigger, actor, experiment=int(experiment))
    outcome = retrainer.run(family, trigger=trigger, actor=actor)
    segments = getattr(family, "segments", None)
    if segments is None:
        return outcome
    levels = segments()
    if not options.get("segments"):
        column = family.segment_column
        known = set(_registered(workspace, f"{model}.{column}."))
        levels = [lv for lv in levels if segment_model(model, column, lv) in known]
    if levels:
        segment_runs = retrainer.run_segments(family, levels, trigger, actor)  # type: ignore[arg-type]
        outcome = {**outcome, "segments": segment_runs}
    return outcome


def _monitor(check: str) -> Callable[..., dict[str, Any]]:
    """The job that runs :mod:`shelfwise.lifecycle.monitor`'s ``check`` on a model."""

    def run(
        runner: JobRunner,
        model: str,
        trigger: RetrainingTrigger,
        actor: str,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        from shelfwise.lifecycle import monitor

        found: dict[str, Any] = getattr(monitor, check)(
            runner.workspace,
            model,
            actor=actor,
            family_options=runner.family_options.get(model, {}),
            policy=runner.policy,
        )
        return found

    return run


def _shadow_check(
    runner: JobRunner, model: str, trigger: RetrainingTrigger, actor: str, options: dict[str, Any]
) -> dict[str, Any]:
    """The forecaster's actuals from the weeks sold since (the recommender's arrive with the
    purchase events), then every shadow test of the model that has enough paired samples is
    completed, with its alert."""
    from shelfwise.lifecycle.shadow import ShadowTests, realised_demand

    workspace = runner.workspace
    tests = ShadowTests(workspace.registry, _alerts(workspace))
    filled = tests.record_demand(realised_demand(workspace)) if model == "forecaster" else 0
    done = tests.sweep(min_samples=workspace.settings.shadow_min_samples, model_name=model)
    return {"actuals_filled": filled, "completed": [d["comparison"] for d in done]}


def _alerts(workspace: Workspace) -> AlertInbox:
    from shelfwise.lifecycle.alerts import AlertInbox

    return AlertInbox(workspace.operational, workspace.registry)


def _registered(workspace: Workspace, prefix: str) -> list[str]:
    found = workspace.tracker.client.search_registered_models(
        filter_string=f"name LIKE '{prefix}%'", max_results=1000
    )
    return [m.name for m in found if m.name.startswith(prefix)]


def _governed(workspace: Workspace) -> list[str]:
    """The models the registry has a history of."""
    with workspace.operational.session() as session:
        names = set(
            session.scalars(
                sa.select(RegistryTransition.model_name)
                .where(RegistryTransition.tenant == workspace.registry.tenant)
                .distinct()
            )
        )
    return [name for name in FAMILIES if name in names]


def _with_champion(workspace: Workspace) -> list[str]:
    champion = RegistryState.CHAMPION.value
    return [n for n in FAMILIES if workspace.tracker.get_alias_version(n, champion) is not None]


JOBS: dict[str, Job] = {
    "retrain": Job(
        "retrain",
        "train a candidate and judge it against the champion under the promotion policy",
        "retrain_cron",
        _retrain,
        _governed,
        needs_model=True,
    ),
    "drift-check": Job(
        "drift-check",
        "performance and data drift of the champion; an emergency retrain on drift",
        "drift_check_cron",
        _monitor("check_drift"),
        _with_champion,
        needs_model=False,
    ),
    "backtest-check": Job(
        "backtest-check",
        "the champion on the latest backtest window against its last; a retrain if it degraded",
        "backtest_check_cron",
        _monitor("check_backtest"),
        _with_champion,
        needs_model=False,
    ),
    "shadow-check": Job(
        "shadow-check",
        "fill the forecasts' actuals and complete the shadow tests with enough samples",
        "shadow_check_cron",
        _shadow_check,
        _with_champion,
        needs_model=False,
    ),
}


def job_named(name: str) -> Job:
    try:
        return JOBS[name]
    except KeyError:
        raise KeyError(f"no job is called {name!r}; the jobs are {', '.join(JOBS)}") from None


class JobRunner:
    """Runs jobs on a workspace's models, each under its model's lock and logged."""

    def __init__(
        self,
        workspace: Workspace,
        policy: Policy | None = None,
        family_options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """``policy``: the promotion policy (default: the one the settings configure);
        ``family_options``: per model, what its family is made with (settings, scope)."""
        from shelfwise.lifecycle.contract import Policy

        self.workspace = workspace
        self.policy = policy or Policy.from_settings(workspace.settings)
        self.family_options = family_options or {}
        self.tenant = workspace.registry.tenant

    def family(self, model: str) -> Family:
        return family_of(self.workspace, model, **self.family_options.get(model, {}))

    def stop(self) -> None:
        """Nothing to interrupt: a job runs on its caller's thread, which waits for it."""

    def run(
        self,
        job: str,
        model: str,
        *,
        trigger: RetrainingTrigger = RetrainingTrigger.MANUAL,
        actor: str = "cli",
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run ``job`` on ``model``; raises :class:`JobBusy` when the model is busy, and the
        job's own error (after logging the run failed) when it fails. ``options``: the
        job's own (retrain: ``segments``, ``experiment``)."""
        options = dict(options or {})
        spec = job_named(job)
        if model not in FAMILIES:
            raise UnknownModel(
                f"no model family is called {model!r}; the lifecycle governs "
                + ", ".join(sorted(FAMILIES))
            )
        lock = ModelLock(self.workspace.operational, self.tenant, model)
        if not lock.acquire():
            raise JobBusy(self._holder(model))
        try:
            recovered = self._recover(model)
            context = {"trigger": trigger.value, "actor": actor, **options, **recovered}
            with self.workspace.operational.session() as session:
                row = JobRun(tenant=self.tenant, job_name=spec.name, model_name=model)
                row.details = context
                session.add(row)
            try:
                result = _plain(spec.run(self, model, trigger, actor, options))
            except BaseException as error:  # Ctrl-C too: the row says so at once
                self._close(row.id, JobStatus.FAILED, context, error=_describe(error))
                raise
            self._close(row.id, JobStatus.SUCCEEDED, {**context, "result": result})
        finally:
            lock.release()
        return {
            "job": spec.name,
            "model": model,
            "run": row.id,
            "status": "succeeded",
            "result": result,
        }

    def sweep(
        self,
        job: str,
        *,
        trigger: RetrainingTrigger = RetrainingTrigger.SCHEDULED,
        actor: str = "scheduler",
    ) -> list[dict[str, Any]]:
        """Run ``job`` on every model it covers; a busy or failing model is reported in the
        list (and logged) and the others still run."""
        outcomes = []
        for model in job_named(job).covers(self.workspace):
            try:
                outcomes.append(self.run(job, model, trigger=trigger, actor=actor))
            except JobBusy as busy:
                log.warning("%s skipped %s: %s", job, model, busy)
                outcomes.append({"job": job, "model": model, "status": "busy", "error": str(busy)})
            except Exception as error:
                log.exception("%s failed on %s", job, model)
                failed = {"job": job, "model": model, "status": "failed"}
                outcomes.append({**failed, "error": _describe(error)})
        return outcomes

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest job runs, newest first."""
        with self.workspace.operational.session() as session:
            rows = session.scalars(
                sa.select(JobRun)
                .where(JobRun.tenant == self.tenant)
                .order_by(JobRun.started_at.desc(), JobRun.id.desc())
                .limit(limit)
            ).all()
            return [
                {
                    "id": r.id,
                    "job": r.job_name,
                    "model": r.model_name,
                    "status": r.status,
                    "started_at": r.started_at,
                    "ended_at": r.ended_at,
                    "error": r.error,
                    "trigger": r.details.get("trigger"),
                    "actor": r.details.get("actor"),
                }
                for r in rows
            ]

    def _recover(self, model: str) -> dict[str, Any]:
        """Fail the runs of ``model`` (and of its segments' models) whose process died: we hold
        its lock, so none is alive. The registry is put right first, so that a failure here
        leaves the runs running, to be found again by the next job."""
        with self.workspace.operational.session() as session:
            orphans: list[JobRun | RetrainingRun] = [
                *session.scalars(sa.select(JobRun).where(*self._orphaned(JobRun, model))),
                *session.scalars(
                    sa.select(RetrainingRun).where(*self._orphaned(RetrainingRun, model))
                ),
            ]
        if not orphans:
            return {}
        found: dict[str, Any] = {}
        for orphan in orphans:
            found.setdefault(orphan.__tablename__, []).append(orphan.id)
        registry = self.workspace.registry
        found["registry"] = {
            name: registry.reconcile(name, actor="jobs", reason=INTERRUPTED)
            for name in sorted({orphan.model_name or model for orphan in orphans})
        }
        with self.workspace.operational.session() as session:
            for table in (JobRun, RetrainingRun):
                session.execute(
                    sa.update(table)
                    .where(table.id.in_(found.get(table.__tablename__, [])))
                    .values(status=JobStatus.FAILED.value, ended_at=utc_now(), error=INTERRUPTED)
                )
        log.warning("%s: interrupted runs marked failed, the registry put right: %s", model, found)
        return {"recovered": found}

    def _orphaned(
        self, table: type[JobRun] | type[RetrainingRun], model: str
    ) -> list[sa.ColumnElement[bool]]:
        """Runs of ``model`` or of one of its segments' models (``<model>.<column>.<key>``)
        still marked running; retraining runs say "running" as job runs do."""
        return [
            table.tenant == self.tenant,
            (table.model_name == model) | table.model_name.startswith(f"{model}.", autoescape=True),
            table.status == JobStatus.RUNNING.value,
        ]

    def _close(
        self, run: int, status: JobStatus, details: dict[str, Any], error: str | None = None
    ) -> None:
        with self.workspace.operational.session() as session:
            row = session.get(JobRun, run)
            assert row is not None
            row.status, row.ended_at, row.error, row.details = (
                status.value,
                utc_now(),
                error,
                details,
            )

    def _holder(self, model: str) -> str:
        with self.workspace.operational.session() as session:
            row = session.scalars(
                sa.select(JobRun)
                .where(
                    JobRun.tenant == self.tenant,
                    JobRun.model_name == model,
                    JobRun.status == JobStatus.RUNNING.value,
                )
                .order_by(JobRun.started_at.desc())
                .limit(1)
            ).first()
        if row is None:  # it has the lock and has not written its row yet
            return f"{model} is busy: another job holds its lock; try again when it ends"
        by = f"{row.details.get('trigger', '?')} by {row.details.get('actor', '?')}"
        return (
            f"{model} is busy: {row.job_name} (job run {row.id}, {by}) has held it since "
            f"{row.started_at:%Y-%m-%d %H:%M:%S} UTC; try again when it ends"
        )


def _describe(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(error)).strip() or type(error).__name__


def _plain(value: Any) -> Any:
    """A job's result as JSON the database accepts: no NaN, numpy numbers as Python's."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):  # a numpy scalar
        return _plain(value.item())
    return json.loads(json.dumps(value, default=str))
