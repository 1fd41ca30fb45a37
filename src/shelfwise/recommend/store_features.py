"""The feature store as the re-ranker's feature provider, offline for training, online to serve.

The recommender asks for the features of its candidates as rows of ``person_id``, ``sku`` and
``as_of``. Offline (training and backtests) they come from the store's point-in-time frame,
each as of its own ``as_of``; online (serving) from the online store's current vectors, which
the store's parity check keeps equal to the offline frame. ``persons`` maps the recommender's
person ids to the store's where they differ (a benchmark's household ids to resolved persons);
ids it does not map are passed as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from shelfwise.features.store import FeatureStore
from shelfwise.recommend.two_stage import FeatureProvider


def store_features(
    store: FeatureStore,
    *,
    online: bool = False,
    persons: Mapping[str, str] | None = None,
    sets: Sequence[str] | None = None,
) -> FeatureProvider:
    """A provider reading ``store``: its offline frame, or with ``online`` its vectors."""

    def provide(rows: pd.DataFrame) -> pd.DataFrame:
        keys = rows[["person_id", "sku", "as_of"]].reset_index(drop=True)
        if persons is not None:
            mapped = keys["person_id"].map(persons)
            keys["person_id"] = mapped.fillna(keys["person_id"])
        keys["as_of"] = pd.to_datetime(keys["as_of"], utc=True).dt.tz_localize(None)
        if online:
            return store.vectors(keys.drop(columns="as_of"), sets)
        return store.training_frame(keys, sets)

    return provide
