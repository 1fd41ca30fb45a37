"""The feature store: point-in-time correct features, identical in training and serving.

Feature sets are definitions as code (:mod:`~shelfwise.features.definitions`), versioned by a
hash of their definition; :mod:`~shelfwise.features.retail` holds the retail sets. Each set's
aggregates become *states* in SQL (:mod:`~shelfwise.features.states`), joined as of each
labelled moment offline (:mod:`~shelfwise.features.offline`) and folded event by event into
the online store (:mod:`~shelfwise.features.online`, in-process or Redis); one function turns
states into values on both sides (:mod:`~shelfwise.features.compute`), and
:func:`check_parity` proves it by replay. :class:`FeatureStore` binds it all to a workspace;
:class:`CategoricalEncoder` encodes categories by their cardinality. Names are imported on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Aggregate": "shelfwise.features.definitions",
    "Attribute": "shelfwise.features.definitions",
    "Derived": "shelfwise.features.definitions",
    "FeatureSet": "shelfwise.features.definitions",
    "FeatureVersionError": "shelfwise.features.definitions",
    "FEATURE_VERSIONS": "shelfwise.features.definitions",
    "RETAIL_FEATURE_SETS": "shelfwise.features.retail",
    "CROSS_FEATURES": "shelfwise.features.retail",
    "FeatureStore": "shelfwise.features.store",
    "EventFeed": "shelfwise.features.events",
    "OfflineFeatures": "shelfwise.features.offline",
    "check_parity": "shelfwise.features.parity",
    "CategoricalEncoder": "shelfwise.features.encoding",
    "EncoderSettings": "shelfwise.features.encoding",
}
__all__ = [
    "CROSS_FEATURES",
    "FEATURE_VERSIONS",
    "RETAIL_FEATURE_SETS",
    "Aggregate",
    "Attribute",
    "CategoricalEncoder",
    "Derived",
    "EncoderSettings",
    "EventFeed",
    "FeatureSet",
    "FeatureStore",
    "FeatureVersionError",
    "OfflineFeatures",
    "check_parity",
]

if TYPE_CHECKING:
    from shelfwise.features.definitions import (
        FEATURE_VERSIONS,
        Aggregate,
        Attribute,
        Derived,
        FeatureSet,
        FeatureVersionError,
    )
    from shelfwise.features.encoding import CategoricalEncoder, EncoderSettings
    from shelfwise.features.events import EventFeed
    from shelfwise.features.offline import OfflineFeatures
    from shelfwise.features.parity import check_parity
    from shelfwise.features.retail import CROSS_FEATURES, RETAIL_FEATURE_SETS
    from shelfwise.features.store import FeatureStore


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'shelfwise.features' has no attribute {name!r}")
