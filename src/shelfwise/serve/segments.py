"""Segment models in serving: a segment's own champion where the lifecycle adopted one, the
overall champion elsewhere.

The lifecycle trains a family per segment (:meth:`Retrainer.run_segments`) and registers each
segment's model as ``<model>.<column>.<key>``; a segment's model has a champion only where it
beat the overall champion on that segment's data. :class:`SegmentModels` holds those champions
in memory, loaded beside the overall ones and refreshed with them (the champion watcher):

- a recommendation whose context names a segment (``context.segment``: ``frequent``,
  ``occasional``) is answered by that segment's recommender, its variant ``segment:<key>``;
- a forecast's series are answered by the model of the department that knows them (segment
  models are trained on their department's series only), the rest by the overall champion;
  each forecast row names the model that made it.

A segment model that cannot be loaded is logged and counted, and its segment is served by
the overall champion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shelfwise.lifecycle.segments import segment_champions, segment_key
from shelfwise.serve.answers import Served

if TYPE_CHECKING:
    from shelfwise.features.store import FeatureStore
    from shelfwise.forecast.model import DemandForecaster
    from shelfwise.serve.schemas import ForecastRequest, RecommendationRequest
    from shelfwise.workspace import Workspace

log = logging.getLogger("shelfwise.serve")
RECOMMENDER, FORECASTER = "recommender", "forecaster"
COLUMNS = {RECOMMENDER: "segment", FORECASTER: "department"}


@dataclass
class SegmentModels:
    """Each family's adopted segment champions, by segment key."""

    recommender: dict[str, Served] = field(default_factory=dict)
    forecaster: dict[str, tuple[DemandForecaster, str]] = field(default_factory=dict)
    failures: int = 0

    def route(self, request: RecommendationRequest) -> Served | None:
        """The segment's recommender, when the request names a segment that has one."""
        segment = request.context.segment
        if segment is None or not self.recommender:
            return None
        try:
            return self.recommender.get(segment_key(segment))
        except ValueError:  # no letter or digit: no segment model can be named by it
            return None

    def refresh(self, workspace: Workspace, store: FeatureStore | None) -> bool:
        """Load what the registry's segment champions say now; True when anything changed."""
        changed = False
        for family in (RECOMMENDER, FORECASTER):
            held: dict[str, Any] = getattr(self, family)
            now = segment_champions(workspace.tracker, family, COLUMNS[family])
            fresh: dict[str, Any] = {}
            for key, version in now.items():
                current = held.get(key)
                if current is not None and _version(current) == version:
                    fresh[key] = current
                    continue
                loaded = self._load(workspace, store, family, key, version)
                if loaded is not None:
                    fresh[key] = loaded
            if set(fresh) != set(held) or any(fresh[k] is not held.get(k) for k in fresh):
                changed = True
                setattr(self, family, fresh)  # one assignment: a request sees old or new
        return changed

    def _load(
        self,
        workspace: Workspace,
        store: FeatureStore | None,
        family: str,
        key: str,
        version: str,
    ) -> Any:
        from shelfwise.forecast.model import DemandForecaster
        from shelfwise.recommend.store_features import store_features
        from shelfwise.recommend.two_stage import TwoStageRecommender

        name = f"{family}.{COLUMNS[family]}.{key}"
        try:
            model = workspace.tracker.load_estimator(f"models:/{name}/{version}")
            if family == FORECASTER:
                if not isinstance(model, DemandForecaster):
                    raise TypeError(f"{name} holds a {type(model).__name__}")
                return (model, version)
            if not isinstance(model, TwoStageRecommender):
                raise TypeError(f"{name} holds a {type(model).__name__}")
            if store is not None:
                model.features = store_features(store, online=True)
            return Served(model, version, f"segment:{key}")
        except Exception:
            self.failures += 1
            log.exception("%s v%s cannot be loaded; its segment is served overall", name, version)
            return None


def _version(held: Any) -> str:
    return str(held.version if isinstance(held, Served) else held[1])


def split_forecast(
    request: ForecastRequest, segments: Mapping[str, tuple[DemandForecaster, str]]
) -> tuple[ForecastRequest, dict[str, ForecastRequest]]:
    """The request for the overall champion, and one per segment model for the series it
    knows (each series goes to one model; planned rows follow their series)."""
    owner: dict[str, str] = {}
    for key, (model, _) in segments.items():
        for series in set(request.series_ids) & set(model.panel_.ids):
            owner.setdefault(series, key)

    def part(series: list[str]) -> ForecastRequest:
        chosen = set(series)
        known = [row for row in request.known if row.series_id in chosen]
        return request.model_copy(update={"series_ids": series, "known": known})

    overall = [s for s in request.series_ids if s not in owner]
    parts = {
        key: part([s for s in request.series_ids if owner.get(s) == key])
        for key in sorted(set(owner.values()))
    }
    return part(overall), parts
