"""MLflow, behind one adapter: tracking and registry built from the settings.

Domain code never imports mlflow. The tracker takes any fitted :class:`~shelfwise.models.Estimator`
and logs a run (settings, metrics, training data) and the model: saved as arrays and JSON, with
explicit requirements and signature so that nothing is inferred or pickled. Registry versions
carry a ``status`` tag (candidate, experimental, archived); aliases name the champion and the
challenger. Importing this package does not import mlflow.
"""

from __future__ import annotations

from shelfwise.tracking._tracker import ALIASES, STATUSES, Tracker, TrainingRecord

__all__ = ["ALIASES", "STATUSES", "Tracker", "TrainingRecord"]
