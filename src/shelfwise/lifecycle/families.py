"""The model families the lifecycle governs, by registered model name.

Each family knows how to train a model on a window of the workspace's data and how to score a
model on a later window (:class:`shelfwise.lifecycle.retrain.Family`). Jobs, the CLI and the
scenarios reach a family through :func:`family_of`, so a new family is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shelfwise.lifecycle.contract import Family
    from shelfwise.workspace import Workspace


class UnknownModel(LookupError):
    """A model name no family answers to (the message lists those that do)."""


def _forecaster(workspace: Workspace, **options: Any) -> Family:
    from shelfwise.forecast.family import ForecasterFamily

    return ForecasterFamily(workspace, **options)


def _recommender(workspace: Workspace, **options: Any) -> Family:
    from shelfwise.recommend.family import RecommenderFamily

    return RecommenderFamily(workspace, **options)


FAMILIES: dict[str, Callable[..., Family]] = {
    "forecaster": _forecaster,
    "recommender": _recommender,
}


def family_of(workspace: Workspace, name: str, **options: Any) -> Family:
    """The family registered as ``name``, reading ``workspace``; ``options`` go to its
    constructor (settings, a smaller scope for tests)."""
    try:
        make = FAMILIES[name]
    except KeyError:
        raise UnknownModel(
            f"no model family is called {name!r}; the lifecycle governs "
            + ", ".join(sorted(FAMILIES))
        ) from None
    return make(workspace, **options)
