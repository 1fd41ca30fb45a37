"""The estimator contract that every model family follows.

Hyper-parameters in a frozen settings dataclass with their limits as data; ``fit`` on a
training frame returns the model; ``predict`` (and the family's own verb: ``recommend``,
``decide``, ``answer``) refuses an unfitted model; ``evaluate`` returns named metrics with one
primary metric and its direction; ``save`` / ``load`` use JSON and numpy arrays, never pickles.
"""

from __future__ import annotations

from shelfwise.models.base import Column, Estimator, Evaluation, NotFittedError
from shelfwise.models.persistence import family_class, read_meta
from shelfwise.models.settings import EstimatorSettings, Interval, Options

__all__ = [
    "Column",
    "Estimator",
    "EstimatorSettings",
    "Evaluation",
    "Interval",
    "NotFittedError",
    "Options",
    "family_class",
    "read_meta",
]
