"""Watching champions on live data: drift, backtest degradation and new data sources.

- :func:`check_drift` (the daily ``drift-check`` job) judges a model's champion on the latest
  week against its four weeks before (both as 7-day windows, so the errors compare: the "7-day
  error against the 30-day baseline"), per segment where the family's evaluation has
  segments, and compares the inputs of the latest week with those four weeks (PSI, KS,
  chi-square per feature, per segment). Drift starts an emergency retrain on the shorter
  window; its challenger is never promoted automatically and its critical ``drift_detected``
  alert carries what drifted. A retrain that fails still leaves the alert, without a version.
- :func:`check_backtest` judges the champion on the most recent backtest window against its
  own last backtest: more than ``max_degradation`` worse retrains under the ordinary policy
  (trigger ``backtest_degradation``) and raises ``backtest_degradation`` (a warning) linking
  to what the retrain left to do: the new challenger's review, or the new champion's card.
- :func:`announce_new_data` raises ``new_data_source_ready`` for every governed model when a
  contract table first receives data or a new source system appears; retraining with trigger
  ``new_data`` takes it in.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.contract import Family, Policy
from shelfwise.lifecycle.drift import DriftMonitor, Statistic, performance_drift
from shelfwise.lifecycle.families import FAMILIES, family_of
from shelfwise.lifecycle.retrain import Retrainer
from shelfwise.lifecycle.segments import segment_key
from shelfwise.ops import BacktestResult
from shelfwise.ops._models import ALL_SEGMENTS
from shelfwise.ops.states import AlertType, RegistryState, RetrainingTrigger

if TYPE_CHECKING:
    from shelfwise.models.base import Estimator, Evaluation
    from shelfwise.workspace import Workspace

WEEK = pd.Timedelta(days=7)
BASELINE_WEEKS = 4
MIN_SEGMENT_ROWS = 30
CHAMPION = RegistryState.CHAMPION.value


def check_drift(
    workspace: Workspace,
    model_name: str,
    *,
    actor: str = "scheduler",
    family: Family | None = None,
    family_options: dict[str, Any] | None = None,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """Drift of ``model_name``'s champion; on drift, the emergency retrain. ``family``: the
    family to judge it with (else one made with ``family_options``, once a champion is
    found)."""
    name = family.model_name if family is not None else model_name
    champion, version = _champion(workspace, name)
    if champion is None:
        return {"model": name, "skipped": "no champion to watch"}
    family = family or family_of(workspace, model_name, **(family_options or {}))
    end = family.latest()
    recent_start = end - WEEK
    recent = family.score(champion, recent_start, end)
    weekly = [
        family.score(champion, recent_start - WEEK * (k + 1), recent_start - WEEK * k)
        for k in range(BASELINE_WEEKS)
    ]
    reference = family.inputs(recent_start - WEEK * BASELINE_WEEKS, recent_start)
    current = family.inputs(recent_start, end)
    rows = current[family.segment_column].astype(str).map(segment_key).value_counts()
    performance = _performance(recent, weekly, {str(k): int(v) for k, v in rows.items()})
    alerts = AlertInbox(workspace.operational, workspace.registry)
    report = DriftMonitor(workspace.operational, alerts).check(
        family.model_name,
        version,
        reference,
        current,
        segment_column=family.segment_column,
        performance=performance,
        alert=False,
    )
    summary = report.summary()
    outcome: dict[str, Any] = {"model": family.model_name, "version": version, **summary}
    if not report.drifted:
        return outcome
    why = _why(summary)
    retrainer = Retrainer(
        workspace.registry, alerts, policy or Policy.from_settings(workspace.settings)
    )
    try:
        outcome["retrain"] = retrainer.run(
            family, RetrainingTrigger.DRIFT, actor, details={"summary": why, "drift": summary}
        )
    except Exception as error:  # the drift is still reported, without a version to review
        outcome["retrain"] = {"decision": "failed", "error": str(error)}
        alerts.raise_alert(
            AlertType.DRIFT_DETECTED,
            f"{family.model_name} v{version} has drifted; its emergency retrain failed",
            f"{why}. The retrain failed: {error}. Retrain by hand and review it.",
            model_name=family.model_name,
            link=_card(family.model_name, version),
        )
    return outcome


def check_backtest(
    workspace: Workspace,
    model_name: str,
    *,
    actor: str = "scheduler",
    family: Family | None = None,
    family_options: dict[str, Any] | None = None,
    policy: Policy | None = None,
    max_degradation: float = 0.10,
) -> dict[str, Any]:
    """The champion on the latest backtest window against its own previous backtest."""
    policy = policy or Policy.from_settings(workspace.settings)
    name = family.model_name if family is not None else model_name
    champion, version = _champion(workspace, name)
    if champion is None:
        return {"model": name, "skipped": "no champion to backtest"}
    family = family or family_of(workspace, model_name, **(family_options or {}))
    previous = _last_backtest(workspace, name, version)
    end = family.latest()
    start = end - pd.Timedelta(days=policy.backtest_days)
    scored = family.score(champion, start, end)
    alerts = AlertInbox(workspace.operational, workspace.registry)
    retrainer = Retrainer(workspace.registry, alerts, policy)
    retrainer.backtest(name, version, start, end, scored)
    outcome: dict[str, Any] = {"model": name, "version": version, "now": scored.primary_value}
    if previous is None:
        return {**outcome, "previous": None, "degraded": False}
    before = previous.primary_value
    worse = (
        (before - scored.primary_value)
        if scored.higher_is_better
        else (scored.primary_value - before)
    )
    degradation = worse / abs(before) if before else 0.0
    outcome.update(previous=before, degradation=degradation)
    outcome["degraded"] = degradation > max_degradation
    if not outcome["degraded"]:
        return outcome
    why = (
        f"{scored.primary_metric} {scored.primary_value:.4g} on {start.date()}..{end.date()}, "
        f"{degradation:.0%} worse than its last backtest ({before:.4g})"
    )
    try:
        retrained = retrainer.run(
            family, RetrainingTrigger.BACKTEST_DEGRADATION, actor, details={"summary": why}
        )
    except Exception as error:  # the degradation is still reported
        retrained = {"decision": "failed", "error": str(error)}
    outcome["retrain"] = retrained
    made, decision = retrained.get("version"), retrained["decision"]
    if decision == "failed":
        then, link = f"its retrain failed ({retrained['error']})", _card(name, version)
    elif decision == "champion":
        then, link = f"its retrain v{made} replaced it by policy", _card(name, str(made))
    else:
        then = f"its retrain v{made} is {decision}: review it"
        link = f"/api/v1/models/{made}/review?model={name}"
    outcome["alert"] = alerts.raise_alert(
        AlertType.BACKTEST_DEGRADATION,
        f"{name} v{version}'s backtest degraded",
        f"{why}; {then}.",
        model_name=name,
        version=version,
        link=link,
    )
    return outcome


def _card(name: str, version: str) -> str:
    return f"/api/v1/models/{version}/card?model={name}"


def announce_new_data(
    workspace: Workspace, table: str, source: str, rows: int, *, actor: str = "ingest"
) -> list[dict[str, Any]]:
    """A ``new_data_source_ready`` alert for each model with a champion (none: nothing to
    retrain, so no alert)."""
    alerts = AlertInbox(workspace.operational, workspace.registry)
    raised = []
    for name in sorted(FAMILIES):
        version = workspace.tracker.get_alias_version(name, CHAMPION)
        if version is None:
            continue
        raised.append(
            alerts.raise_alert(
                AlertType.NEW_DATA_SOURCE_READY,
                f"new data for {name}: {table} from {source}",
                f"{rows:,} rows of {table} from {source} passed the contract ({actor}). "
                f"Retrain {name} with trigger new_data to use them: shelfwise jobs run retrain "
                f"--model {name} --trigger new_data",
                model_name=name,
                link=_card(name, version),
            )
        )
    return raised


def _champion(workspace: Workspace, name: str) -> tuple[Estimator[Any] | None, str]:
    version = workspace.tracker.get_alias_version(name, CHAMPION)
    if version is None:
        return None, ""
    return workspace.tracker.load_estimator(f"models:/{name}/{version}"), version


def _performance(
    recent: Evaluation, weekly: list[Evaluation], rows: dict[str, int]
) -> list[Statistic]:
    """The recent week against the mean of the baseline weeks, overall and per segment (an
    evaluation's ``<column>/<level>/<primary>`` metrics). A segment with fewer than
    ``MIN_SEGMENT_ROWS`` rows in the recent week is recorded but cannot call drift: one week
    of a handful of series swings by more than 15% on its own."""
    primary = recent.primary_metric
    found = [
        performance_drift(
            recent.primary_value,
            sum(w.primary_value for w in weekly) / len(weekly),
            higher_is_better=recent.higher_is_better,
        )
    ]
    for key, value in recent.metrics.items():
        parts = key.split("/")
        if len(parts) != 3 or parts[2] != primary:
            continue
        base = [w.metrics[key] for w in weekly if key in w.metrics]
        if base:
            statistic = performance_drift(
                value,
                sum(base) / len(base),
                higher_is_better=recent.higher_is_better,
                segment=f"{parts[0]}={parts[1]}",
            )
            count = rows.get(parts[1], 0)
            found.append(
                replace(
                    statistic,
                    drifted=statistic.drifted and count >= MIN_SEGMENT_ROWS,
                    details={**statistic.details, "rows": count},
                )
            )
    return found


def _why(summary: dict[str, Any]) -> str:
    drifted = summary["drifted_features"]
    slipped = [p for p in summary["performance"] if p["drifted"]]
    parts = [f"{summary['drifted_share']:.0%} of input features drifted overall"]
    if drifted:
        parts[0] += f" ({', '.join(drifted[:8])})"
    if summary["drifted_in_segments"]:
        parts.append("within segments: " + ", ".join(summary["drifted_in_segments"][:6]))
    if slipped:
        parts.append(
            "error rose "
            + ", ".join(f"{(p['value'] - 1):.0%} ({p['segment']})" for p in slipped[:5])
        )
    return "; ".join(parts)


def _last_backtest(workspace: Workspace, name: str, version: str) -> BacktestResult | None:
    with workspace.operational.session() as session:
        row = session.scalars(
            sa.select(BacktestResult)
            .where(
                BacktestResult.tenant == workspace.registry.tenant,
                BacktestResult.model_name == name,
                BacktestResult.version == version,
                BacktestResult.segment == ALL_SEGMENTS,
            )
            .order_by(BacktestResult.created_at.desc(), BacktestResult.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            session.expunge(row)
        return row
