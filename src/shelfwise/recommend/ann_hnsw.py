"""The embedded default vector index: faiss HNSW graphs in bands of vector norm.

:mod:`shelfwise.recommend.ann` shows the measurements behind the design. The items are split
into bands by norm: the longest band holds norms within ``band_ratio`` of the longest vector,
the next the ``band_ratio`` below that, and so on; the last of ``max_bands`` takes the rest.
Each band has its own graph, *linked by angle*: it is built on the unit vectors, then the
graph's stored vectors are replaced by the raw ones, so that a search walks links made by
angle but ranks by inner product. A query visits the bands from the longest down and skips a
band once the query's norm times the band's longest norm cannot beat its k-th score so far.

A new item joins the band of its norm and is linked by angle too: for the insertion the
graph's stored vectors are swapped for the band's unit vectors (made on first need and kept),
then swapped back. A graph cannot forget a node, so a withdrawn item stays as a waypoint and a
bitmap keeps it out of results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np
from numpy.typing import NDArray

from shelfwise.models.settings import Constraints, EstimatorSettings, Interval
from shelfwise.recommend.ann import Ids, VectorIndex, Vectors, VectorsOf, best_first

# A float32 inner product may exceed the float64 product of the norms by rounding.
NORM_BOUND_SLACK = 1e-4


@dataclass(frozen=True)
class HnswSettings(EstimatorSettings):
    """``m``: links per node; ``ef_construction``: candidates weighed when linking a node;
    ``ef_search``: candidates kept while searching (a search of k keeps at least 2k);
    ``band_ratio``: how much longer a band's longest vector may be than its shortest;
    ``max_bands``: how many bands of norm (the last takes every shorter vector)."""

    m: int = 32
    ef_construction: int = 200
    ef_search: int = 800
    band_ratio: float = 2.0
    max_bands: int = 4

    constraints: ClassVar[Constraints] = {
        "m": (Interval(4, 256, integer=True),),
        "ef_construction": (Interval(8, None, integer=True),),
        "ef_search": (Interval(1, None, integer=True),),
        "band_ratio": (Interval(1, None, closed="neither"),),
        "max_bands": (Interval(1, 16, integer=True),),
    }


class HnswIndex(VectorIndex[HnswSettings]):
    """Maximum-inner-product search over faiss HNSW graphs, one per band of norm."""

    backend = "hnsw"
    settings_type = HnswSettings

    edges_: NDArray[np.float64]  # ascending lower norm bounds of bands 1..max_bands-1
    bands_: list[_Band]
    _where: tuple[Ids, Ids, Ids] | None  # see _positions

    def _build(self, vectors: Vectors, ids: Ids) -> None:
        s = self.settings
        norms = np.linalg.norm(vectors, axis=1)
        self.edges_ = float(norms.max()) / s.band_ratio ** np.arange(s.max_bands - 1, 0, -1.0)
        band = np.searchsorted(self.edges_, norms, side="right")
        self.bands_ = [
            _Band.build(vectors[band == b], ids[band == b], s.m, s.ef_construction)
            for b in range(s.max_bands)
        ]
        self._where = None

    def _search(self, queries: Vectors, k: int) -> tuple[Ids, NDArray[np.float32]]:
        ef = max(self.settings.ef_search, 2 * k)
        reach = np.linalg.norm(queries, axis=1) * (1 + NORM_BOUND_SLACK)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        for band in sorted(self.bands_, key=lambda band: -band.max_norm):
            if not band.alive.any():
                continue
            # Cauchy-Schwarz: no item of the band scores above the query's norm times its own.
            rows = np.flatnonzero(reach * band.max_norm >= scores[:, -1])
            if not len(rows):
                break  # the bands left are shorter still
            found, values = band.search(queries[rows], k, ef)
            ids[rows], scores[rows] = best_first(
                np.hstack([ids[rows], found]), np.hstack([scores[rows], values]), k
            )
        return ids, scores

    def _add(self, vectors: Vectors, ids: Ids) -> None:
        band = np.searchsorted(self.edges_, np.linalg.norm(vectors, axis=1), side="right")
        for b in np.unique(band):
            self.bands_[b].insert(vectors[band == b], ids[band == b])
        self._where = None

    def _remove(self, ids: Ids) -> None:
        known, band, position = self._positions()
        at = np.searchsorted(known, ids)
        for b in np.unique(band[at]):
            self.bands_[b].withdraw(position[at][band[at] == b])
        self._where = None

    def _contains(self, ids: Ids) -> NDArray[np.bool_]:
        known = self._positions()[0]
        if not len(known):
            return np.zeros(len(ids), dtype=bool)
        at = np.minimum(np.searchsorted(known, ids), len(known) - 1)
        found: NDArray[np.bool_] = known[at] == ids
        return found

    def _positions(self) -> tuple[Ids, Ids, Ids]:
        """Every searchable id, sorted, with its band and its position in the band's graph."""
        if self._where is None:
            alive = [np.flatnonzero(band.alive) for band in self.bands_]
            ids = np.concatenate(
                [band.ids[at] for band, at in zip(self.bands_, alive, strict=True)]
            )
            band = np.repeat(np.arange(len(alive)), [len(at) for at in alive])
            order = np.argsort(ids)
            self._where = ids[order], band[order], np.concatenate(alive)[order]
        return self._where

    def _save(self, folder: Path, without_vectors: bool) -> dict[str, Any]:
        longest = np.array([band.max_norm for band in self.bands_])
        arrays: dict[str, NDArray[Any]] = {"edges": self.edges_, "max_norms": longest}
        flags = faiss.IO_FLAG_SKIP_STORAGE if without_vectors else 0  # the graph alone
        for b, band in enumerate(self.bands_):
            # faiss's stubs leave out the flags that its file-name overload takes too.
            faiss.write_index(band.graph, str(folder / f"band-{b}.faiss"), flags)  # type: ignore[call-overload]
            arrays[f"ids_{b}"], arrays[f"alive_{b}"] = band.ids, band.alive
        np.savez(folder / "bands.npz", allow_pickle=False, **arrays)
        return {"bands": len(self.bands_)}

    def _load(
        self, folder: Path, state: dict[str, Any], vectors: VectorsOf | None, **connection: Any
    ) -> None:
        flags = 0 if vectors is None else faiss.IO_FLAG_SKIP_STORAGE
        with np.load(folder / "bands.npz", allow_pickle=False) as arrays:
            self.edges_ = arrays["edges"]
            self.bands_ = [
                _Band(
                    faiss.read_index(str(folder / f"band-{b}.faiss"), flags),
                    arrays[f"ids_{b}"],
                    arrays[f"alive_{b}"],
                    float(arrays["max_norms"][b]),
                )
                for b in range(int(state["bands"]))
            ]
        if vectors is not None:
            for band in self.bands_:
                band.store(vectors(band.ids))
        self._where = None

    def __len__(self) -> int:
        return len(self._positions()[0]) if self.dim_ is not None else 0

    def _details(self) -> dict[str, Any]:
        return {
            "band_sizes": [int(band.alive.sum()) for band in self.bands_],
            "withdrawn": sum(int((~band.alive).sum()) for band in self.bands_),
        }


@dataclass
class _Band:
    """One band's graph (a faiss IndexHNSWFlat storing the raw vectors) and its item ids."""

    graph: Any
    ids: Ids  # per graph position
    alive: NDArray[np.bool_]  # False: withdrawn
    max_norm: float
    unit: Any = None  # the unit vectors in a faiss IndexFlatIP, made for the first insertion
    bitmap: NDArray[np.uint8] | None = field(default=None, repr=False)  # alive, packed

    @classmethod
    def build(cls, vectors: Vectors, ids: Ids, m: int, ef_construction: int) -> _Band:
        graph = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = ef_construction
        if len(vectors):
            graph.add(_unit(vectors))
            # The links are made: from now on the graph ranks by the raw inner products.
            graph.storage.reset()
            graph.storage.add(vectors)
        return cls(graph, ids.copy(), np.ones(len(ids), dtype=bool), _longest(vectors))

    def search(self, queries: Vectors, k: int, ef: int) -> tuple[Ids, NDArray[np.float32]]:
        # faiss's stubs leave SearchParametersHNSW out.
        params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
        if self.bitmap is None and not self.alive.all():
            self.bitmap = np.packbits(self.alive, bitorder="little")
        if self.bitmap is not None:
            # Both the selector and its bitmap must outlive the search: they are locals here.
            selector = faiss.IDSelectorBitmap(len(self.alive), faiss.swig_ptr(self.bitmap))
            params.sel = selector
        scores, positions = self.graph.search(queries, k, params=params)
        found = np.where(positions >= 0, self.ids[np.maximum(positions, 0)], -1)
        return found, scores.astype(np.float32, copy=False)

    def insert(self, vectors: Vectors, ids: Ids) -> None:
        if self.unit is None:
            self.unit = faiss.IndexFlatIP(self.graph.d)
            if self.graph.ntotal:
                self.unit.add(_unit(self.graph.reconstruct_n(0, self.graph.ntotal)))
        raw = self.graph.storage
        self.graph.storage = self.unit
        try:
            self.graph.add(_unit(vectors))
        finally:
            self.graph.storage = raw
        raw.add(vectors)
        self.ids = np.concatenate([self.ids, ids])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])
        self.max_norm = max(self.max_norm, _longest(vectors))
        self.bitmap = None

    def store(self, vectors: Vectors) -> None:
        """Give a graph read without its stored vectors the raw vectors of its positions."""
        storage = faiss.IndexFlatIP(self.graph.d)
        if len(vectors):
            storage.add(vectors)
        storage.this.disown()  # type: ignore[attr-defined]  # the graph owns it from now on
        self.graph.storage = storage
        self.graph.own_fields = True

    def withdraw(self, positions: Ids) -> None:
        self.alive[positions] = False
        self.bitmap = None


def _unit(vectors: Vectors) -> Vectors:
    """Rows scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1), dtype=np.float32)


def _longest(vectors: NDArray[Any]) -> float:
    return float(np.linalg.norm(vectors, axis=1).max()) if len(vectors) else 0.0


__all__ = ["HnswIndex", "HnswSettings"]
