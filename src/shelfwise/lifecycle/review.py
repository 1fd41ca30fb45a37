"""What a reviewer sees before approving or rejecting a model version.

- the version's metrics beside the champion's (as logged with their trainings);
- the backtest comparison: the two versions' latest ``backtest_results`` on the same window
  (a retrain judges the champion on the candidate's window, so such a pair exists for every
  retrained version), with the relative gain on the primary metric;
- the feature-importance deltas: each feature's share of the model's importance (LightGBM
  gain) in this version and in the champion, largest moves first, so a challenger that leans
  on a new or a leaking feature shows it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shelfwise.lifecycle.registry import ModelRegistry
from shelfwise.ops import BacktestResult
from shelfwise.ops._models import ALL_SEGMENTS
from shelfwise.ops.states import RegistryState

TOP_DELTAS = 15


def review_evidence(registry: ModelRegistry, name: str, version: str) -> dict[str, Any]:
    tracker = registry.tracker
    run_id = _run_of(registry, name, version)
    champion = tracker.get_alias_version(name, RegistryState.CHAMPION.value)
    ours = tracker.evaluation(run_id) if run_id else None
    theirs, champion_run = None, None
    if champion is not None and champion != version:
        champion_run = _run_of(registry, name, champion)
        theirs = tracker.evaluation(champion_run) if champion_run else None
    state = registry.state(name, version)
    return {
        "model": name,
        "version": version,
        "state": state.value if state else None,
        "champion": champion,
        "primary_metric": ours.primary_metric if ours else None,
        "metrics": ours.metrics if ours else {},
        "champion_metrics": theirs.metrics if theirs else {},
        "backtest": _backtests(
            registry, name, version, champion, ours.higher_is_better if ours else True
        ),
        "importance_deltas": _deltas(
            tracker.feature_importance(run_id) if run_id else {},
            tracker.feature_importance(champion_run) if champion_run else {},
        ),
    }


def _run_of(registry: ModelRegistry, name: str, version: str) -> str | None:
    return registry.version(name, version).run_id or None


def _backtests(
    registry: ModelRegistry, name: str, version: str, champion: str | None, higher: bool
) -> dict[str, Any] | None:
    """The version's latest backtest and the champion's on the same window."""
    with registry.operational.session() as session:
        rows = session.scalars(
            sa.select(BacktestResult)
            .where(
                BacktestResult.tenant == registry.tenant,
                BacktestResult.model_name == name,
                BacktestResult.segment == ALL_SEGMENTS,
                BacktestResult.version.in_([version, champion or version]),
            )
            .order_by(BacktestResult.created_at.desc(), BacktestResult.id.desc())
        ).all()
        mine = next((r for r in rows if r.version == version), None)
        if mine is None:
            return None
        rival = next(
            (
                r
                for r in rows
                if r.version == champion
                and champion != version
                and (r.window_start, r.window_end) == (mine.window_start, mine.window_end)
            ),
            None,
        )
        answer: dict[str, Any] = {
            "window_start": mine.window_start,
            "window_end": mine.window_end,
            "primary_metric": mine.primary_metric,
            "version": mine.primary_value,
            "champion": rival.primary_value if rival else None,
            "gain": None,
        }
    if rival is not None and rival.primary_value:
        change = (mine.primary_value - rival.primary_value) / abs(rival.primary_value)
        answer["gain"] = change if higher else -change
    return answer


def _deltas(ours: dict[str, float], theirs: dict[str, float]) -> list[dict[str, Any]]:
    features = set(ours) | set(theirs)
    moved = sorted(features, key=lambda f: (-abs(ours.get(f, 0.0) - theirs.get(f, 0.0)), f))
    return [
        {
            "feature": f,
            "version": ours.get(f, 0.0),
            "champion": theirs.get(f, 0.0),
            "delta": ours.get(f, 0.0) - theirs.get(f, 0.0),
        }
        for f in moved[:TOP_DELTAS]
    ]
