"""The model lifecycle: one governed path from training to retirement, for every family.

:class:`ModelRegistry` keeps each version's registry state (MLflow aliases and a status tag)
and writes every move, with who, when, why and the metrics, to the operational database.
"""

from __future__ import annotations

from shelfwise.lifecycle.registry import ModelRegistry, TransitionRefused, VersionNotFound

__all__ = ["ModelRegistry", "TransitionRefused", "VersionNotFound"]
