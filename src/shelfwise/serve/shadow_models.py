"""Which versions score in shadow, per family, loaded from the registry beside the champion.

Each family's ``challenger`` alias, the versions trained for its experiments in shadow_testing,
and the experimental versions the settings list (``shadow_versions``, as ``NAME/VERSION``),
never the family's champion. :meth:`refresh` is
cheap when nothing moved (two alias look-ups a family) and loads only what is new; a version
that cannot be loaded is logged once and not tried again by this process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shelfwise.features.store import FeatureStore
from shelfwise.forecast.model import DemandForecaster
from shelfwise.forecast.stage import MODEL_NAME as FORECASTER
from shelfwise.lifecycle.experiments import EXPERIMENT_TAG
from shelfwise.ops import Experiment
from shelfwise.ops.states import ExperimentStatus, RegistryState, ShadowRole
from shelfwise.recommend.stage import MODEL_NAME as RECOMMENDER
from shelfwise.recommend.store_features import store_features
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.workspace import Workspace

log = logging.getLogger("shelfwise.serve")
FAMILIES: dict[str, type[Any]] = {RECOMMENDER: TwoStageRecommender, FORECASTER: DemandForecaster}


@dataclass(frozen=True)
class ShadowModel:
    """A version scoring in shadow, and why: it is the challenger, or listed as experimental."""

    model: Any  # a TwoStageRecommender or a DemandForecaster, by family
    version: str
    role: ShadowRole


class ShadowVersions:
    """Per family, the loaded versions that score in shadow (a tuple, swapped whole)."""

    def __init__(self, experimental: Iterable[str] = ()) -> None:
        self.experimental: dict[str, list[str]] = {}
        for entry in experimental:
            name, _, version = entry.partition("/")
            if name not in FAMILIES or not version:
                raise ValueError(
                    f"shadow version {entry!r}: give NAME/VERSION, NAME one of {sorted(FAMILIES)}"
                )
            self.experimental.setdefault(name, []).append(version)
        self.models: dict[str, tuple[ShadowModel, ...]] = dict.fromkeys(FAMILIES, ())
        self.unloadable: set[tuple[str, str]] = set()

    def __getitem__(self, name: str) -> tuple[ShadowModel, ...]:
        return self.models[name]

    def refresh(self, workspace: Workspace, store: FeatureStore | None) -> tuple[bool, int]:
        """Load the versions now wanted and drop the others: (anything changed, versions that
        could not be loaded)."""
        changed, failed = False, 0
        for name in FAMILIES:
            held = {(m.version, m.role): m for m in self.models[name]}
            wanted = [
                w for w in self._wanted(workspace, name) if (name, w[0]) not in self.unloadable
            ]
            if list(held) == wanted:
                continue
            fresh = []
            for version, role in wanted:
                shadow = held.get((version, role))
                if shadow is None:
                    model = load_version(workspace, store, name, version)
                    if model is None:
                        self.unloadable.add((name, version))
                        failed += 1
                        continue
                    shadow = ShadowModel(model, version, role)
                fresh.append(shadow)
            self.models[name] = tuple(fresh)
            changed = changed or [(m.version, m.role) for m in fresh] != list(held)
            shown = ", ".join(f"v{m.version} ({m.role.value})" for m in fresh) or "nothing"
            log.warning("%s is now shadowed by %s", name, shown)
        return changed, failed

    def _wanted(self, workspace: Workspace, name: str) -> list[tuple[str, ShadowRole]]:
        tracker = workspace.tracker
        champion = tracker.get_alias_version(name, RegistryState.CHAMPION.value)
        challenger = tracker.get_alias_version(name, RegistryState.CHALLENGER.value)
        wanted = [(challenger, ShadowRole.CHALLENGER)] if challenger else []
        listed = [*self.experimental.get(name, []), *_in_shadow_testing(workspace, name)]
        wanted += [(v, ShadowRole.EXPERIMENTAL) for v in dict.fromkeys(listed)]
        return [(version, role) for version, role in wanted if version != champion]


def _in_shadow_testing(workspace: Workspace, name: str) -> list[str]:
    """The versions of ``name`` trained for its experiments now in shadow_testing."""
    with workspace.operational.session() as session:
        testing = session.scalars(
            sa.select(Experiment.id).where(
                Experiment.tenant == workspace.registry.tenant,
                Experiment.model_name == name,
                Experiment.status == ExperimentStatus.SHADOW_TESTING.value,
            )
        ).all()
    versions = []
    for experiment in testing:
        found = workspace.tracker.client.search_model_versions(
            f"name = '{name}' and tags.`{EXPERIMENT_TAG}` = '{experiment}'"
        )
        versions += [str(v.version) for v in sorted(found, key=lambda v: int(v.version))]
    return versions


def load_version(
    workspace: Workspace, store: FeatureStore | None, name: str, version: str
) -> Any | None:
    """Version ``version`` of the family ``name``, reading ``store`` online where it was
    trained on the feature store; None when it cannot be loaded (logged)."""
    uri = f"models:/{name}/{version}"
    try:
        loaded = workspace.tracker.load_estimator(uri)
        if not isinstance(loaded, FAMILIES[name]):
            raise TypeError(f"{uri} is a {type(loaded).__name__}")
    except Exception:
        log.exception("%s v%s cannot be loaded to score in shadow", name, version)
        return None
    if isinstance(loaded, TwoStageRecommender) and store is not None and loaded.feature_versions:
        loaded.features = store_features(store, online=True)
    return loaded
