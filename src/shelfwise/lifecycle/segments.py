"""Segments: the names a segment's model and metrics go by.

A family trained per segment (a department, say) registers each segment's model as its own
registered model, ``<model>.<column>.<key>``, with its own champion; the segment's metrics in
a whole-model evaluation are ``<column>/<key>/<metric>``. The key keeps what MLflow accepts in
a model or metric name (letters, digits, ``_``, ``-``), so ``MEAT-PCKGD`` stays itself and
``SALAD BAR`` becomes ``SALAD_BAR``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shelfwise.tracking import Tracker


def segment_key(level: str) -> str:
    """A segment's level as it appears in model and metric names."""
    key = re.sub(r"[^A-Za-z0-9_-]", "_", level.strip())
    if not key:
        raise ValueError(f"segment {level!r} has no letter or digit to name it by")
    return key


def segment_model(name: str, column: str, level: str) -> str:
    """The registered model that holds ``name``'s model of one segment."""
    return f"{name}.{column}.{segment_key(level)}"


def segment_champions(tracker: Tracker, name: str, column: str) -> dict[str, str]:
    """Each segment of ``column`` whose own model was adopted (it has a champion), by key:
    the champion's version. Segments missing here are served by ``name``'s champion."""
    prefix = f"{name}.{column}."
    found = tracker.client.search_registered_models(
        filter_string=f"name LIKE '{prefix}%'", max_results=1000
    )
    champions = {}
    for model in found:
        version = (model.aliases or {}).get("champion")
        if model.name.startswith(prefix) and version is not None:
            champions[model.name[len(prefix) :]] = str(version)
    return champions
