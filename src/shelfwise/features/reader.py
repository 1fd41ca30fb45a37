"""One online request's reads: every key group fetched once, together, then decoded per set.

A request for a person and 200 products touches several key groups (the person's, the
session's, the products', the person x product pairs'). Those whose keys the request names are
fetched in one round trip (:meth:`Backend.get_many`: one pipeline on Redis); a group whose keys
another set lends (a product's category) is fetched when it is first needed. Each distinct
entity is read once: a person named by 200 candidates is one key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shelfwise.features.compute import StateBlock
from shelfwise.features.definitions import FeatureSet
from shelfwise.features.online import Backend, Layout, VersionGuard, entity_keys, group_name

Vocabularies = dict[str, tuple[dict[str, Any], np.ndarray[Any, Any]]]


class OnlineReader:
    """A state lookup (see :data:`shelfwise.features.compute.StateLookup`) for one request."""

    def __init__(
        self,
        backend: Backend,
        guard: VersionGuard,
        layouts: Mapping[str, Layout],
        vocabularies: Vocabularies,
    ) -> None:
        self.backend = backend
        self.guard = guard
        self.layouts = layouts
        self.vocabularies = vocabularies  # shared across requests, refreshed with the metadata
        self.ages: dict[str, float] = {}  # set -> age of its oldest value read, seconds
        self._rows: dict[str, np.ndarray[Any, Any]] = {}

    def prefetch(self, sets: Sequence[FeatureSet], rows: Mapping[str, Any]) -> None:
        """Fetch, in one round trip, every key group whose keys ``rows`` already hold."""
        wanted: dict[str, list[str | None]] = {}
        for feature_set in sets:
            group = group_name(feature_set.keys)
            if group not in wanted and all(k in rows for k in feature_set.keys):
                wanted[group] = entity_keys(rows, feature_set.keys)
        self._fetch(wanted)

    def _fetch(self, wanted: Mapping[str, list[str | None]]) -> None:
        requests, expansions = [], []
        for group, keys in wanted.items():
            distinct = dict.fromkeys(keys)
            position = {key: i for i, key in enumerate(distinct)}
            requests.append((group, list(distinct), self.layouts[group].width))
            expansions.append((group, [position[k] for k in keys]))
        for (group, expand), matrix in zip(
            expansions, self.backend.get_many(requests), strict=True
        ):
            self._rows[group] = matrix[expand]

    def __call__(self, feature_set: FeatureSet, rows: Mapping[str, Any]) -> StateBlock:
        self.guard.check(feature_set)
        layout = self.layouts[group_name(feature_set.keys)]
        if layout.group not in self._rows:
            self._fetch({layout.group: entity_keys(rows, feature_set.keys)})
        matrix = self._rows[layout.group]
        written = matrix[:, layout.written_column(feature_set)]
        present = ~np.isnan(written)
        if present.any():
            self.ages[feature_set.name] = float(time.time() - np.nanmin(written))
        block = matrix[:, layout.columns(feature_set)]
        columns: dict[str, Any] = {}
        for j, column in enumerate(feature_set.state_columns):
            if column in feature_set.categorical:
                words = self.words(f"{feature_set.name}.{column}")
                codes = np.where(np.isnan(block[:, j]), -1, block[:, j]).astype(np.int64)
                codes[codes >= len(words) - 1] = -1  # missing, or newer than this reader
                columns[column] = words[codes]
            else:
                columns[column] = block[:, j]
        return StateBlock(columns, present)

    def words(self, vocabulary: str) -> np.ndarray[Any, Any]:
        """A vocabulary as an array whose last entry (None) is where missing codes point;
        made again only when the store's metadata changed."""
        meta = self.guard.meta()
        cached = self.vocabularies.get(vocabulary)
        if cached is None or cached[0] is not meta:
            words = meta.get("vocabularies", {}).get(vocabulary, [])
            cached = (meta, np.array([*words, None], dtype=object))
            self.vocabularies[vocabulary] = cached
        return cached[1]
