"""Retraining under the promotion policy, the same for every family.

A run trains a candidate on a window (default the last 90 days before the backtest window, or
the family's ``min_window_days`` where it needs more: the weekly forecaster learns seasons),
registers it, backtests it and the champion on the most recent window (default 30 days) with
the family's primary metric, and applies the policy:

The champion is judged on the days of that window it was not trained on (its run records
where its data ended): a champion fitted on every week, as the quickstart's forecaster is,
has seen the window, and would win on days it learned by heart. With under a week unseen, no
comparison is made yet and the candidate waits as challenger.

- no champion yet: the candidate becomes champion (held for review if its scope is
  sensitive);
- 5% better (``min_improvement``) on the primary metric: champion, unless the model's scope
  holds sensitive categories (health, finance, age-restricted), in which case it becomes the
  challenger and a ``promotion_pending`` alert asks a reviewer;
- otherwise: challenger, to be shadow-tested beside the champion.

A drift-triggered run (trigger ``drift``) trains on a shorter window (default 30 days), is
never promoted automatically and raises a critical alert asking for review. Every run is a
row of the retraining log (trigger, window, status, version produced, metrics, start and
end); both backtests are ``backtest_results`` rows. A run that fails midway is logged
``failed`` with its error and promotes nothing.

An experiment's run (trigger ``experiment``, with the approved experiment's id) moves the
experiment to in_progress, registers an experimental version tagged with the experiment,
judged beside the champion and never promoted by the policy, and moves the experiment on to
shadow_testing, where the service scores the version beside the champion: the experiment's
completion decides.

A family takes part through :class:`~shelfwise.lifecycle.contract.Family`: how to train on a
window and how to score a model on a window (:mod:`shelfwise.lifecycle.families` lists
them). A family that can be trained per segment (:class:`Segmented`, a department say) gives
each segment a model of its own (:meth:`Retrainer.run_segments`): its rival is the overall
champion judged on the segment's data, so a segment's model becomes the segment's champion
only where it beats the overall model by the policy's margin; serving routes a segment to
its champion where it has one and to the overall champion elsewhere.
"""

from __future__ import annotations

import traceback
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.contract import TRAINED_UNTIL, Family, Policy, Segmented
from shelfwise.lifecycle.experiments import EXPERIMENT_TAG, Experiments
from shelfwise.lifecycle.registry import ModelRegistry
from shelfwise.models.base import Evaluation
from shelfwise.ops import BacktestResult, RetrainingRun
from shelfwise.ops._models import ALL_SEGMENTS
from shelfwise.ops._schema import utc_now
from shelfwise.ops.states import (
    AlertType,
    ExperimentStatus,
    RegistryState,
    RetrainingStatus,
    RetrainingTrigger,
)

if TYPE_CHECKING:
    pass

CHAMPION = RegistryState.CHAMPION.value
MIN_JUDGED = pd.Timedelta(days=7)  # the fewest unseen days a champion is judged on


class Retrainer:
    """Runs retraining for any family, logged and governed by the policy."""

    def __init__(
        self, registry: ModelRegistry, alerts: AlertInbox, policy: Policy | None = None
    ) -> None:
        self.registry, self.alerts, self.policy = registry, alerts, policy or Policy()
        self.operational, self.tenant = registry.operational, registry.tenant

    def run(
        self,
        family: Family,
        trigger: RetrainingTrigger = RetrainingTrigger.SCHEDULED,
        actor: str = "scheduler",
        *,
        details: dict[str, Any] | None = None,
        experiment: int | None = None,
    ) -> dict[str, Any]:
        """One retraining of ``family``: logged, registered and judged. ``details``: why it
        ran (the drift found, the new source), kept in the log and in any alert it raises.
        ``experiment``: an approved experiment's id; the version is trained for it (trigger
        ``experiment``), registered as experimental and never promoted by the policy."""
        if (experiment is None) != (trigger != RetrainingTrigger.EXPERIMENT):
            raise ValueError("an experiment's id goes with trigger experiment, and only with it")
        policy = self.policy
        end = family.latest()
        cut = end - pd.Timedelta(days=policy.backtest_days)
        if trigger == RetrainingTrigger.DRIFT:
            days = policy.drift_window_days
        else:  # a family that learns seasons asks for more than the policy's window
            days = max(policy.window_days, getattr(family, "min_window_days", 0))
        start = cut - pd.Timedelta(days=days)
        if experiment is not None:
            self._experiments().advance(experiment, ExperimentStatus.IN_PROGRESS, actor)
        with self.operational.session() as session:
            log = RetrainingRun(
                tenant=self.tenant,
                model_name=family.model_name,
                trigger=trigger.value,
                window_start=_utc(start),
                window_end=_utc(cut),
                run_metadata={
                    "actor": actor,
                    "backtest_end": end.isoformat(),
                    **({"experiment": experiment} if experiment is not None else {}),
                    **(details or {}),
                },
            )
            session.add(log)
            session.flush()
            run_id = log.id
        try:
            outcome = self._retrain(family, trigger, actor, (start, cut, end), details, experiment)
        except Exception as error:
            with self.operational.session() as session:
                failed = session.get(RetrainingRun, run_id)
                assert failed is not None
                failed.status, failed.ended_at = RetrainingStatus.FAILED.value, utc_now()
                failed.error = "".join(traceback.format_exception_only(error)).strip()
            raise
        with self.operational.session() as session:
            done = session.get(RetrainingRun, run_id)
            assert done is not None
            done.status, done.ended_at = RetrainingStatus.SUCCEEDED.value, utc_now()
            done.version_produced = outcome["version"]
            done.metrics = outcome["metrics"]
            done.run_metadata = {**done.run_metadata, "decision": outcome["decision"]}
        return {"run": run_id, **outcome}

    def run_segments(
        self,
        family: Segmented,
        levels: list[str] | None = None,
        trigger: RetrainingTrigger = RetrainingTrigger.SCHEDULED,
        actor: str = "scheduler",
    ) -> dict[str, dict[str, Any]]:
        """One run per segment (every one the family offers unless ``levels``); a segment
        that fails is logged failed and the others go on (its outcome holds the error)."""
        outcomes: dict[str, dict[str, Any]] = {}
        for level in family.segments() if levels is None else levels:
            details = {"segment": f"{family.segment_column}={level}"}
            try:
                part = family.for_segment(level)
                outcomes[level] = self.run(part, trigger, actor, details=details)
            except Exception as error:
                outcomes[level] = {"decision": "failed", "error": str(error)}
        return outcomes

    def _retrain(
        self,
        family: Family,
        trigger: RetrainingTrigger,
        actor: str,
        window: tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp],
        details: dict[str, Any] | None,
        experiment: int | None,
    ) -> dict[str, Any]:
        start, cut, end = window
        name, tracker = family.model_name, self.registry.tracker
        candidate = family.train(start, cut)
        ours = family.score(candidate, cut, end)
        tags = {"shelfwise.trigger": trigger.value}
        if experiment is not None:
            tags[EXPERIMENT_TAG] = str(experiment)
        record = tracker.log_training(
            candidate,
            experiment=family.experiment,
            metrics=ours,
            dataset={
                "window_start": start.isoformat(),
                "window_end": cut.isoformat(),
                TRAINED_UNTIL: cut.isoformat(),
            },
            tags=tags,
        )
        version = self.registry.register(
            name,
            record,
            actor=actor,
            reason=f"{trigger.value} retrain on {start.date()}..{cut.date()}",
        )
        self.backtest(name, version, cut, end, ours)
        rival, champion_version = name, tracker.get_alias_version(name, CHAMPION)
        overall = getattr(family, "overall_model", None)  # a segment's model: its rival
        if champion_version is None and overall is not None:  # is the overall champion
            rival, champion_version = overall, tracker.get_alias_version(overall, CHAMPION)
        theirs, unseen = None, cut
        if champion_version is not None:
            # judged on the same days as the candidate, those neither was trained on
            unseen = max(cut, self._trained_until(rival, champion_version) or cut)
            if end - unseen >= MIN_JUDGED:
                champion = tracker.load_estimator(f"models:/{rival}/{champion_version}")
                theirs = family.score(champion, unseen, end)
                self.backtest(rival, champion_version, unseen, end, theirs, segment=name)
                if unseen > cut:
                    ours = family.score(candidate, unseen, end)
                    self.backtest(name, version, unseen, end, ours)
            champion_version = (
                f"{champion_version} of {rival}" if rival != name else champion_version
            )
        gain = _gain(ours, theirs)
        metrics = {
            "candidate": ours.primary_value,
            "champion": theirs.primary_value if theirs else None,
            "gain": gain,
            "judged_from": unseen.isoformat(),
        }
        if experiment is not None:
            self.registry.transition(
                name,
                version,
                RegistryState.EXPERIMENTAL,
                actor=actor,
                metrics=ours.metrics,
                reason=f"trained for experiment {experiment}",
            )
            book = self._experiments()
            book.tag_version(experiment, version)
            # scored live beside the champion from now on (the service's shadow watch)
            book.advance(experiment, ExperimentStatus.SHADOW_TESTING, actor)
            return {"version": version, "decision": "experimental", "metrics": metrics}
        sensitive = family.sensitive_scope()
        if trigger == RetrainingTrigger.DRIFT:
            decision = self._hold(
                name,
                version,
                actor,
                AlertType.DRIFT_DETECTED,
                f"drift-triggered retrain of {name}: v{version} waits for review",
                details,
            )
        else:
            to, reason = self._decide(ours, theirs, gain, champion_version, unseen)
            if to == RegistryState.CHAMPION and sensitive:
                better = (
                    f"{name} v{version} is {gain:.1%} better" if theirs else f"{name} v{version}"
                )
                title = f"{better} but covers {', '.join(sensitive)}"
                decision = self._hold(name, version, actor, AlertType.PROMOTION_PENDING, title)
            else:
                self.registry.transition(
                    name, version, to, actor=actor, metrics=ours.metrics, reason=reason
                )
                decision = to.value
        return {"version": version, "decision": decision, "metrics": metrics}

    def _decide(
        self,
        ours: Evaluation,
        theirs: Evaluation | None,
        gain: float,
        champion: str | None,
        unseen: pd.Timestamp,
    ) -> tuple[RegistryState, str]:
        """The policy's verdict on a candidate (before the sensitive-scope check)."""
        if theirs is None and champion is not None:
            return RegistryState.CHALLENGER, (
                f"v{champion} was trained on the backtest window (until {unseen.date()}): "
                "judged against it once a week it has not seen is in"
            )
        if theirs is None:
            return RegistryState.CHAMPION, "no champion yet"
        if ours.better_than(theirs, self.policy.min_improvement):
            return RegistryState.CHAMPION, (
                f"{gain:.1%} better than v{champion} on {ours.primary_metric}"
            )
        return RegistryState.CHALLENGER, (
            f"{gain:.1%} against v{champion}: below the policy's "
            f"{self.policy.min_improvement:.0%}, shadowed as challenger"
        )

    def _hold(
        self,
        name: str,
        version: str,
        actor: str,
        alert: AlertType,
        title: str,
        details: dict[str, Any] | None = None,
    ) -> str:
        self.registry.transition(name, version, RegistryState.CHALLENGER, actor=actor, reason=title)
        why = f"{details['summary']}. " if details and "summary" in details else ""
        self.alerts.raise_alert(
            alert,
            title,
            why + "Approve to promote it, dismiss to keep the champion.",
            model_name=name,
            version=version,
        )
        return "pending_review"

    def _trained_until(self, name: str, version: str) -> pd.Timestamp | None:
        """The end of the data the version was trained on, as its run recorded it."""
        run_id = self.registry.tracker.client.get_model_version(name, version).run_id
        until = self.registry.tracker.training_data(run_id).get(TRAINED_UNTIL) if run_id else None
        return None if until is None else _naive(pd.Timestamp(until))

    def _experiments(self) -> Experiments:
        return Experiments(self.registry, self.alerts)

    def backtest(
        self,
        name: str,
        version: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        scored: Evaluation,
        segment: str = ALL_SEGMENTS,
    ) -> None:
        """A backtest_results row; ``segment``: the segment model whose window it was."""
        segment = ALL_SEGMENTS if segment == name else segment
        with self.operational.session() as session:
            session.add(
                BacktestResult(
                    tenant=self.tenant,
                    model_name=name,
                    version=version,
                    segment=segment,
                    window_start=_utc(start),
                    window_end=_utc(end),
                    metrics={k: float(v) for k, v in scored.metrics.items() if np.isfinite(v)},
                    primary_metric=scored.primary_metric,
                    primary_value=scored.primary_value,
                )
            )


def _naive(moment: pd.Timestamp) -> pd.Timestamp:
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo is not None else moment


def _gain(ours: Evaluation, theirs: Evaluation | None) -> float:
    """Relative improvement of ours over theirs on the primary metric (positive: better)."""
    if theirs is None or theirs.primary_value == 0:
        return 0.0
    gain = (ours.primary_value - theirs.primary_value) / abs(theirs.primary_value)
    return float(gain if ours.higher_is_better else -gain)


def _utc(moment: pd.Timestamp) -> datetime:
    """The operational tables keep aware UTC times; a naive one is read as UTC."""
    stamp = pd.Timestamp(moment)
    return (
        stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    ).to_pydatetime()
