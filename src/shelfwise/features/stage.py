"""The quickstart's feature stage: states built, parity proven on real data, store materialised.

On the Complete Journey: every feature set's states are built from the contract tables; the
streaming sets are materialised as of two weeks before the data ends and those two weeks are
replayed into an in-process online store, whose vectors must equal the offline frame's for a
sample of persons, products and sessions; then every set is materialised into the workspace's
configured online store as of the end of the data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from shelfwise.features.parity import check_parity
from shelfwise.features.store import FeatureStore
from shelfwise.workspace import Workspace

REPLAY_DAYS = 14


def build_features(
    workspace: Workspace,
    progress: Callable[[str], None],
    replica: FeatureStore | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, float]]:
    """Returns the feature summary, its checks and its stage seconds. ``replica``: the
    in-process store to build the states in (the next stage reuses them); one by default."""
    stages: dict[str, float] = {}
    replica = replica or FeatureStore(workspace, online_url="memory://")
    mark = time.perf_counter()
    progress("building feature states")
    for feature_set in replica.sets:
        replica.offline.states_table(feature_set)
    stages["states"] = time.perf_counter() - mark
    end = pd.Timestamp(replica._latest())
    start = end - pd.Timedelta(days=REPLAY_DAYS)
    mark = time.perf_counter()
    progress(f"replaying {REPLAY_DAYS} days of events into the online store (parity check)")
    parity = check_parity(replica, start, end, sample=500, seed=0)
    stages["parity"] = time.perf_counter() - mark
    mark = time.perf_counter()
    configured = replica.using(workspace.settings.online_store_url)
    progress(f"materialising the online store ({configured.online_url})")
    materialised = configured.materialise(as_of=end.to_pydatetime())
    stages["materialise"] = time.perf_counter() - mark
    freshness = configured.freshness()
    summary = {
        "sets": len(replica.sets),
        "features": sum(len(s.feature_names) for s in replica.sets),
        "versions": replica.versions(),
        "online_store": configured.online_url,
        "materialised_as_of": materialised["as_of"],
        "entities": {k: v["entities"] for k, v in materialised["sets"].items()},
        "parity": parity.to_dict(),
        "state_build_seconds": dict(replica.offline.build_seconds),
    }
    checks = {
        "features: online vectors after replay equal the offline frame": {
            "ok": parity.ok,
            "entities": parity.entities_compared,
            "features": parity.features_compared,
            "mismatched_features": len(parity.mismatched),
        },
        "features: every set materialised at its current version": {
            "ok": all(
                item.get("current_version") == item.get("version") for item in freshness.values()
            ),
            "sets": len(freshness),
        },
    }
    replica.close()
    return summary, checks, {k: round(v, 2) for k, v in stages.items()}
