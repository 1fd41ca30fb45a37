"""MLflow, behind one adapter: tracking and registry built from the settings.

Domain code never imports mlflow; it hands the tracker a model directory (settings as JSON,
learned arrays as ``.npz``) and gets back a run id and a model URI. Runs log fast because the
requirements and the signature are given rather than inferred.
"""

from __future__ import annotations

from shelfwise.tracking._tracker import (
    CHALLENGER,
    CHAMPION,
    MODEL_STATUSES,
    Tracker,
    TrainingRecord,
)

__all__ = ["CHALLENGER", "CHAMPION", "MODEL_STATUSES", "Tracker", "TrainingRecord"]
