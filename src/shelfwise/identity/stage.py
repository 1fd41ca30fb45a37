"""The quickstart's identity stage: fragment, resolve, stitch, profile, and measure against truth.

On the Complete Journey the truth is known (the simulator wrote each household into the other
systems), so the stage reports how many persons it found against how many there are, the
pairwise and cluster precision and recall, and how many anonymous events it stitched to the
right person. A second quickstart links only what is new (nothing, usually) and keeps every id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shelfwise.identity.profiles import build_profiles
from shelfwise.identity.resolver import IdentityResolver
from shelfwise.identity.sessions import evaluate_stitching, stitch_sessions
from shelfwise.identity.world import fragment_complete_journey
from shelfwise.workspace import Workspace


def resolve_complete_journey(
    workspace: Workspace, progress: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, float]]:
    """Returns the identity summary, its checks and its stage seconds."""
    stages: dict[str, float] = {}
    mark = time.perf_counter()
    progress("scattering households over the retailer's systems (simulated)")
    world = fragment_complete_journey(workspace)
    stages["fragment"] = time.perf_counter() - mark
    mark = time.perf_counter()
    resolver = IdentityResolver(workspace)
    report = resolver.resolve(truth=world.record_truth, progress=progress)
    stages["resolve"] = time.perf_counter() - mark
    mark = time.perf_counter()
    progress("stitching anonymous sessions")
    stitched = stitch_sessions(workspace.analytic)
    stitching = evaluate_stitching(workspace.analytic, world.event_truth, world.record_truth)
    progress("building 360-degree profiles")
    profiles = build_profiles(workspace.analytic)
    stages["stitch_and_profile"] = time.perf_counter() - mark
    metrics = report.metrics
    summary = {
        "records": report.records,
        "persons_found": report.persons,
        "persons_true": int(metrics.get("true_persons", 0)),
        "run": report.kind,
        "new_records": report.new_records,
        "links_by_rule": report.by_rule,
        "pairwise": {k: round(metrics[k], 4) for k in ("precision", "recall", "f1")},
        "clusters": {
            k.removeprefix("cluster_"): round(metrics[k], 4)
            for k in (
                "cluster_precision",
                "cluster_recall",
                "cluster_f1",
                "cluster_exact_cluster_rate",
            )
        },
        "review_queue": report.review_items,
        "model_version": report.model_version,
        "sessions": {
            "events": stitched.events,
            "anonymous_events": stitched.anonymous_events,
            "anonymous_attributed": stitched.attributed_anonymous,
            "share_attributed": round(stitched.share_attributed, 4),
            "attributed_to_right_person": round(stitching["precision"], 4),
            "by_rule": stitched.by_rule,
        },
        "profiles": profiles,
    }
    checks = {
        "identity: every record has a person": {
            "ok": report.records == len(resolver.assignments()),
            "records": report.records,
        },
        "identity: every person has a profile": {
            "ok": profiles == report.persons,
            "persons": report.persons,
            "profiles": profiles,
        },
    }
    return summary, checks, {k: round(v, 2) for k, v in stages.items()}
