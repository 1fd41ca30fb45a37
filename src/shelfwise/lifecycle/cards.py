"""Model cards, generated for every registered version from what the lifecycle recorded.

A card says what the model is for (its family's description), who trained it and when, on
what data (the training frame's rows, time range and fingerprint; the feature-set versions;
the code version), how it scored overall and per segment (metrics logged as
``<kind>/<segment>/<metric>``, such as ``department/MEAT/wape``), its known limitations (its
family's), its registry state and every approval or move with who and why. Nothing is typed
by hand, so a card cannot drift from the model it describes.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from shelfwise.lifecycle.registry import ModelRegistry
from shelfwise.models import persistence
from shelfwise.tracking._tracker import (
    COMMIT_TAG,
    FAMILY_TAG,
    FEATURES_TAG,
    PRIMARY_METRIC_TAG,
    VERSION_TAG,
    mlflow_time,
    shelfwise_metric_name,
)

SEGMENT_SEPARATOR = "/"


def model_card(registry: ModelRegistry, name: str, version: str) -> dict[str, Any]:
    """The card of ``name`` version ``version`` (:class:`VersionNotFound` when there is none)."""
    client = registry.tracker.client
    model_version = registry.version(name, version)
    run = client.get_run(model_version.run_id) if model_version.run_id else None
    tags = dict(run.data.tags) if run else {}
    family = tags.get(FAMILY_TAG) or model_version.tags.get(FAMILY_TAG, "")
    overall: dict[str, float] = {}
    segments: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in (run.data.metrics if run else {}).items():
        parts = key.split(SEGMENT_SEPARATOR)
        if len(parts) == 3:
            kind, level, metric = parts
            segments.setdefault(kind, {}).setdefault(level, {})[metric] = value
        else:
            overall[shelfwise_metric_name(key)] = value
    purpose, limitations = _family_text(family)
    history = [
        {**move, "at": move["at"].isoformat()}
        for move in registry.history(name)
        if move["version"] == version
    ]
    return {
        "model": name,
        "version": version,
        "family": family,
        "purpose": purpose,
        "state": (registry.state(name, version) or "unknown"),
        # who registered the version, else the system user MLflow recorded for the run
        "owner": history[0]["actor"] if history else tags.get("mlflow.user", "unknown"),
        "trained_at": mlflow_time(run.info.start_time) if run else None,
        "run_id": model_version.run_id,
        "training_data": _training_data(run),
        "feature_sets": {
            key[len(FEATURES_TAG) + 1 :]: value
            for key, value in tags.items()
            if key.startswith(FEATURES_TAG + ".")
        },
        "code_version": {
            "shelfwise": tags.get(VERSION_TAG),
            "git_commit": tags.get(COMMIT_TAG),
        },
        "settings": dict(run.data.params) if run else {},
        "primary_metric": tags.get(PRIMARY_METRIC_TAG),
        "metrics": overall,
        "segments": segments,
        "limitations": list(limitations),
        "history": history,
    }


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a page a reviewer reads."""
    lines = [
        f"# {card['model']} v{card['version']} ({card['family']}): {card['state']}",
        "",
        card["purpose"],
        "",
        f"- owner: {card['owner']}; run {card['run_id']}",
        f"- code: shelfwise {card['code_version']['shelfwise']}"
        + (
            f", commit {card['code_version']['git_commit']}"
            if card["code_version"]["git_commit"]
            else ""
        ),
        f"- trained at: {card['trained_at'] or 'unknown'}",
        f"- training data: {_pairs(card['training_data'])}",
        f"- feature sets (name version): {_pairs(card['feature_sets'], sep=' ')}",
        "",
        f"## Metrics (primary: {card['primary_metric']})",
        "",
        *[f"- {k}: {v:.4g}" for k, v in sorted(card["metrics"].items())],
    ]
    for kind, levels in card["segments"].items():
        lines += ["", f"## Per {kind}", ""]
        lines += [
            f"- {level}: " + ", ".join(f"{m} {v:.4g}" for m, v in sorted(values.items()))
            for level, values in sorted(levels.items())
        ]
    lines += ["", "## Limitations", "", *[f"- {item}" for item in card["limitations"]]]
    lines += ["", "## History", ""]
    lines += [
        f"- {m['at']}: {m['from_state'] or 'registered'} -> {m['to_state']} by "
        f"{m['actor']}: {m['reason']}"
        for m in card["history"]
    ]
    return "\n".join(lines) + "\n"


def _pairs(values: dict[str, Any], sep: str = ": ") -> str:
    """``key: value; ...`` sorted by key, numbers with thousands separators, or 'none'."""
    if not values:
        return "none"

    def shown(value: Any) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{value:,}" if float(value).is_integer() else f"{value:,.4g}"
        return str(value)

    return "; ".join(f"{key}{sep}{shown(values[key])}" for key in sorted(values))


def _family_text(family: str) -> tuple[str, tuple[str, ...]]:
    try:
        cls = persistence.family_class(family)
    except ValueError:
        return f"a model of family {family!r}", ()
    # The family's own docstring (inspect.getdoc would fall back to the base class's).
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    purpose = doc.split("\n\n")[0].replace("\n", " ") if doc else f"a {family} model"
    return purpose, tuple(getattr(cls, "limitations", ()))


def _training_data(run: Any) -> dict[str, Any]:
    if run is None or not run.inputs.dataset_inputs:
        return {}
    profile: dict[str, Any] = json.loads(run.inputs.dataset_inputs[0].dataset.profile or "{}")
    profile.pop("columns", None)
    return profile
