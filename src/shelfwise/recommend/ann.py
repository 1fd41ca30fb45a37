"""Vector indexes for candidate retrieval: the skus whose embeddings best match a person's.

The retrieval stage narrows the catalogue to a few hundred candidates per person by
maximum-inner-product search (MIPS) of a query embedding against sku embeddings (ALS factors,
two-tower or content embeddings). Every backend derives from :class:`VectorIndex`, which checks
inputs, times the build and orders every answer the same way: descending inner product, ties
to the smaller id, ``-1`` (score ``-inf``) padding a row when fewer than k items exist.

- :class:`ExactIndex`: numpy brute force in bounded memory; the reference the others are
  held to.
- ``HnswIndex`` (:mod:`shelfwise.recommend.ann_hnsw`): the embedded default, faiss HNSW
  graphs in bands of vector norm.
- ``QdrantIndex`` (:mod:`shelfwise.recommend.ann_qdrant`, the ``qdrant`` extra): a Qdrant
  collection, for an index that several services share.

:func:`open_index` chooses the backend by URL, :func:`load_index` reopens a saved one and
:func:`measure_recall` holds any of them against :class:`ExactIndex`.

Why the default is what it is. Measured on this project's 2 shared cores with k=200 and 1,000
queries: recall@200, build seconds, query seconds per 1,000 queries (HNSW M=32,
ef_construction=200, ef_search=400 unless stated; timings vary about 2x with the machine's
load). Data: 50,000 x 64 vectors drawn around 500 gaussian centres with power-law cluster
sizes, queries drawn alike ("clustered"); implicit-ALS factors of the Complete Journey, 68,509
products x 64, queried by its 2,469 households ("CJ ALS"); 50,000 x 64 rank-12 factors whose
norms grow with log popularity ("low-rank")::

                                          clustered         CJ ALS            low-rank
    faiss HNSW, inner product             0.826 8s 0.4s     0.942 44s 1.0s    0.927 15s 0.6s
    usearch HNSW, inner product           0.849 20s 1.1s    0.940 68s 2.3s    0.951 15s 0.9s
    faiss HNSW, L2 after the MIPS-to-L2   0.987 12s 0.7s    0.748 21s 0.6s    0.927 13s 0.4s
      lift (usearch alike)
    faiss IVF-Flat, 4*sqrt(n) lists,      0.915 2s 0.3s     0.805 2s 0.1s     0.543 1s 0.1s
      64 probed
    faiss HNSW by inner product,          -                 0.997 133s 3.2s   -
      M=64 ef_construction=500 ef=800
    faiss HNSW linked by angle            0.981 21s 1.0s    0.987 48s 1.3s    0.704 17s 1.1s
    ... and in norm bands (the default)   0.984 30s 1.0s    0.994 37s 2.8s    1.000 23s 1.5s
    usearch by cosine in norm bands,      0.671 41s 1.4s    0.922 39s 3.0s    -
      400 fetched, rescored
    exact (numpy)                         1 - 0.4s          1 - 0.3s          1 - 0.5s

Inner-product graphs gather every node's links on a few long vectors (hubs) and miss most of
a tight cluster; the MIPS-to-L2 lift fails when norms differ a lot (short vectors crowd
together); a graph linked by angle and searched by inner product (as in ip-NSW+) fails when
the best scores belong to rare long vectors at wide angles. Splitting the items into bands of
similar norm removes the last failure, and a band that cannot beat a query's k-th score is
skipped, so the default holds 0.98-1.0 on all three. Only faiss lets a graph be linked by one
similarity and searched by another; IVF has to probe most of its lists at k=200. At this size
exact search is as fast: the graphs pay off on the catalogue of a large retailer, where
exact search grows with the catalogue and a graph search with its logarithm.
"""

from __future__ import annotations

import importlib
import json
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from shelfwise.models.base import NotFittedError
from shelfwise.models.settings import Constraints, EstimatorSettings, Interval
from shelfwise.recommend.matrix import top_k

DEFAULT_K = 200
INDEX_FILE = "index.json"
FORMAT_VERSION = 1
BACKENDS = {
    "exact": "shelfwise.recommend.ann:ExactIndex",
    "hnsw": "shelfwise.recommend.ann_hnsw:HnswIndex",
    "qdrant": "shelfwise.recommend.ann_qdrant:QdrantIndex",
}
URL_FORMS = (
    "None or 'embedded' (faiss HNSW in this process)",
    "'exact' (brute force)",
    "'qdrant+http://host:port/collection' or 'qdrant+https://...' (a Qdrant server)",
    "'qdrant:///folder/collection' (Qdrant's local mode, stored in folder)",
    "'qdrant://:memory:/collection' (Qdrant's local mode, in memory)",
)

Ids = NDArray[np.int64]
Vectors = NDArray[np.float32]
# The vectors of these ids, from the index's owner (a model keeping them anyway), for an index
# saved without its own copy.
VectorsOf = Callable[[Ids], Vectors]
SettingsT = TypeVar("SettingsT", bound=EstimatorSettings)


class VectorIndex(ABC, Generic[SettingsT]):
    """Maximum-inner-product search over items identified by non-negative int64 ids.

    A family writes the hooks (``_build``, ``_search``, ``_add``, ``_remove``, ``_contains``,
    ``_save``, ``_load``, ``__len__``); the public methods check their arguments first.
    """

    backend: ClassVar[str]
    settings_type: ClassVar[type[EstimatorSettings]]

    def __init__(self, settings: SettingsT | None = None) -> None:
        if settings is None:
            settings = cast(SettingsT, self.settings_type())
        elif not isinstance(settings, self.settings_type):
            raise TypeError(
                f"{type(self).__name__} takes {self.settings_type.__name__}, "
                f"got {type(settings).__name__}"
            )
        self.settings: SettingsT = settings
        self.dim_: int | None = None
        self.build_seconds_: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"

    # The contract.
    def build(self, vectors: Vectors, ids: Ids | None = None) -> Self:
        """Index ``vectors`` (n, d), replacing what was there; ``ids`` default to 0..n-1."""
        matrix = as_vectors(vectors, "vectors", None)
        if not len(matrix):
            raise ValueError("vectors: expected at least one row to build on")
        codes = np.arange(len(matrix), dtype=np.int64) if ids is None else as_ids(ids, "ids")
        check_pairs(matrix, codes)
        start = time.perf_counter()
        self._build(matrix, codes)
        self.dim_ = matrix.shape[1]
        self.build_seconds_ = time.perf_counter() - start
        return self

    def search(self, queries: Vectors, k: int = DEFAULT_K) -> tuple[Ids, NDArray[np.float32]]:
        """Per query row, the ``k`` best ids (m, k) and their inner products (m, k)."""
        matrix = as_vectors(queries, "queries", self.dim)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if not len(matrix):
            return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.float32)
        ids, scores = self._search(matrix, int(k))
        return best_first(ids, scores, int(k))

    def add(self, vectors: Vectors, ids: Ids) -> None:
        """Index new items (a new sku's content embedding) without a rebuild."""
        matrix = as_vectors(vectors, "vectors", self.dim)
        codes = as_ids(ids, "ids")
        check_pairs(matrix, codes)
        present = codes[self._contains(codes)]
        if len(present):
            raise ValueError(
                f"ids: already in the index, remove them first: {present[:10].tolist()}"
            )
        self._add(matrix, codes)

    def remove(self, ids: Ids) -> None:
        """Withdraw items: searches stop returning them."""
        self.check_built()
        codes = as_ids(ids, "ids")
        missing = codes[~self._contains(codes)]
        if len(missing):
            raise ValueError(f"ids: not in the index: {missing[:10].tolist()}")
        self._remove(codes)

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        self.check_built()
        assert self.dim_ is not None
        return self.dim_

    def describe(self) -> dict[str, Any]:
        """Backend, size, dimension, parameters and build seconds, ready for JSON."""
        return {
            "backend": self.backend,
            "size": len(self) if self.dim_ is not None else 0,
            "dim": self.dim_,
            "parameters": self.settings.to_dict(),
            "build_seconds": self.build_seconds_,
            **(self._details() if self.dim_ is not None else {}),
        }

    def save(self, directory: str | Path, *, without_vectors: bool = False) -> Path:
        """Write ``index.json`` and the backend's arrays or files into ``directory``;
        ``without_vectors``: not the vectors themselves, which the index's owner keeps and
        gives back to :func:`load_index` (a model's embeddings: the same bytes twice)."""
        self.check_built()
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        state = self._save(folder, without_vectors)
        header = {
            "backend": self.backend,
            "format": FORMAT_VERSION,
            "dim": self.dim_,
            "settings": self.settings.to_dict(),
            "build_seconds": self.build_seconds_,
            "state": state,
            "vectors": "owner" if without_vectors else "stored",
        }
        (folder / INDEX_FILE).write_text(json.dumps(header, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, directory: str | Path, **connection: Any) -> Self:
        """Reopen an index saved by :meth:`save` (its backend is read from ``index.json``)."""
        index = load_index(directory, **connection)
        if not isinstance(index, cls):
            raise TypeError(
                f"{directory}: the saved index is {type(index).__name__}, not {cls.__name__}"
            )
        return index

    def close(self) -> None:
        """Let go of connections and files (a served or on-disk Qdrant collection)."""

    def check_built(self) -> None:
        if self.dim_ is None:
            raise NotFittedError(f"{type(self).__name__} is not built: call build first")

    # The hooks.
    @abstractmethod
    def _build(self, vectors: Vectors, ids: Ids) -> None: ...

    @abstractmethod
    def _search(self, queries: Vectors, k: int) -> tuple[Ids, NDArray[np.float32]]:
        """Candidates per query in any order, at least the k best; -1 for none."""

    @abstractmethod
    def _add(self, vectors: Vectors, ids: Ids) -> None: ...

    @abstractmethod
    def _remove(self, ids: Ids) -> None: ...

    @abstractmethod
    def _contains(self, ids: Ids) -> NDArray[np.bool_]: ...

    @abstractmethod
    def _save(self, folder: Path, without_vectors: bool) -> dict[str, Any]:
        """Write the backend's files (a backend storing the vectors elsewhere, Qdrant, may
        ignore ``without_vectors``); returns what :meth:`_load` needs from ``index.json``."""

    @abstractmethod
    def _load(
        self, folder: Path, state: dict[str, Any], vectors: VectorsOf | None, **connection: Any
    ) -> None:
        """Reopen what :meth:`_save` wrote; ``vectors``: the owner's, when they were left out."""

    @abstractmethod
    def __len__(self) -> int:
        """Items a search can return (withdrawn ones excluded)."""

    def _details(self) -> dict[str, Any]:
        return {}


# The embedded indexes.
@dataclass(frozen=True)
class ExactSettings(EstimatorSettings):
    """``batch_bytes``: the most memory one batch of scores (queries x items float32) takes."""

    batch_bytes: int = 128 * 2**20

    constraints: ClassVar[Constraints] = {"batch_bytes": (Interval(1, None, integer=True),)}


class ExactIndex(VectorIndex[ExactSettings]):
    """Brute force: every query scored against every item, in batches of queries."""

    backend = "exact"
    settings_type = ExactSettings

    vectors_: Vectors  # rows in the order of ids_
    ids_: Ids  # sorted, so that top_k's ties (the smaller column) go to the smaller id

    def _build(self, vectors: Vectors, ids: Ids) -> None:
        order = np.argsort(ids, kind="stable")
        self.vectors_, self.ids_ = vectors[order], ids[order]

    def _search(self, queries: Vectors, k: int) -> tuple[Ids, NDArray[np.float32]]:
        n = len(self.ids_)
        rows = max(1, self.settings.batch_bytes // (4 * max(n, 1)))
        found = np.full((len(queries), min(k, n)), -1, dtype=np.int64)
        scores = np.full(found.shape, -np.inf, dtype=np.float32)
        for start in range(0, len(queries), rows):
            batch = slice(start, start + rows)
            columns, scores[batch] = top_k(queries[batch] @ self.vectors_.T, k)
            found[batch] = np.where(columns >= 0, self.ids_[np.maximum(columns, 0)], -1)
        return found, scores

    def _add(self, vectors: Vectors, ids: Ids) -> None:
        self._build(np.concatenate([self.vectors_, vectors]), np.concatenate([self.ids_, ids]))

    def _remove(self, ids: Ids) -> None:
        keep = ~np.isin(self.ids_, ids)
        self.vectors_, self.ids_ = self.vectors_[keep], self.ids_[keep]

    def _contains(self, ids: Ids) -> NDArray[np.bool_]:
        return np.isin(ids, self.ids_)

    def _save(self, folder: Path, without_vectors: bool) -> dict[str, Any]:
        if not without_vectors:
            np.save(folder / "vectors.npy", self.vectors_)
        np.save(folder / "ids.npy", self.ids_)
        return {}

    def _load(
        self, folder: Path, state: dict[str, Any], vectors: VectorsOf | None, **connection: Any
    ) -> None:
        self.ids_ = np.load(folder / "ids.npy", allow_pickle=False)
        self.vectors_ = (
            np.load(folder / "vectors.npy", allow_pickle=False)
            if vectors is None
            else vectors(self.ids_)
        )

    def __len__(self) -> int:
        return len(self.ids_) if self.dim_ is not None else 0


# Choosing, reopening and checking an index.
def open_index(url: str | None = None, **parameters: Any) -> VectorIndex[Any]:
    """An unbuilt index chosen by URL (one of ``URL_FORMS``); ``parameters`` are its settings'
    fields (``m=48``), and for Qdrant also ``api_key``."""
    if url is None or url == "embedded":
        kind = backend_class("hnsw")
    elif url == "exact":
        kind = backend_class("exact")
    elif url.split(":", 1)[0] in ("qdrant", "qdrant+http", "qdrant+https"):
        from shelfwise.recommend.ann_qdrant import QdrantIndex

        return QdrantIndex.from_url(url, **parameters)
    else:
        raise ValueError(f"unknown vector index URL {url!r}: expected " + "; ".join(URL_FORMS))
    return kind(kind.settings_type(**parameters))


def backend_class(name: str) -> type[VectorIndex[Any]]:
    """The index class of backend ``name`` (imported on first use: Qdrant is an extra)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown vector index backend {name!r}; known: {sorted(BACKENDS)}")
    module, attribute = BACKENDS[name].split(":")
    kind: type[VectorIndex[Any]] = getattr(importlib.import_module(module), attribute)
    return kind


def load_index(
    directory: str | Path, vectors: VectorsOf | None = None, **connection: Any
) -> VectorIndex[Any]:
    """Reopen an index saved by :meth:`VectorIndex.save`, whatever its backend; ``vectors``:
    the owner's vectors of given ids, for an index saved without them; ``connection`` goes
    to the backend (Qdrant's ``api_key``)."""
    folder = Path(directory)
    path = folder / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {INDEX_FILE}; is this a saved vector index?")
    header = json.loads(path.read_text())
    if header.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: format {header.get('format')!r}, expected {FORMAT_VERSION}")
    kind = backend_class(header["backend"])
    owner = header.get("vectors") == "owner"
    if owner and vectors is None:
        raise ValueError(
            f"{path}: the index was saved without its vectors (its owner keeps them): "
            "give them to load_index(..., vectors=...)"
        )
    dim = int(header["dim"])
    given = (lambda ids: as_vectors(vectors(ids), "vectors", dim)) if owner and vectors else None
    index = kind(kind.settings_type.from_dict(header["settings"]))
    index._load(folder, header["state"], given, **connection)
    index.dim_, index.build_seconds_ = int(header["dim"]), header["build_seconds"]
    return index


def measure_recall(
    vectors: Vectors,
    queries: Vectors,
    k: int = DEFAULT_K,
    index: VectorIndex[Any] | None = None,
) -> dict[str, Any]:
    """Build ``index`` (default: the embedded default) on ``vectors`` with ids 0..n-1 and hold
    its answers to ``queries`` against :class:`ExactIndex`: recall@k is the mean over queries
    of |ann ∩ exact| / min(k, n)."""
    chosen = open_index() if index is None else index
    chosen.build(vectors)
    exact = ExactIndex().build(vectors)
    start = time.perf_counter()
    found, _ = chosen.search(queries, k)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    truth, _ = exact.search(queries, k)
    exact_seconds = time.perf_counter() - start
    hits = [np.intersect1d(a[a >= 0], b[b >= 0]).size for a, b in zip(found, truth, strict=True)]
    per_1000 = 1000 / max(len(truth), 1)
    return {
        f"recall@{k}": float(np.mean(hits)) / min(k, len(exact)) if len(hits) else float("nan"),
        "k": k,
        "items": len(exact),
        "queries": len(truth),
        "dim": exact.dim,
        "backend": chosen.backend,
        "parameters": chosen.settings.to_dict(),
        "build_seconds": chosen.build_seconds_,
        "query_seconds_per_1000": seconds * per_1000,
        "exact_query_seconds_per_1000": exact_seconds * per_1000,
    }


# Checks and ordering shared by every backend.
def as_vectors(values: object, name: str, dim: int | None) -> Vectors:
    """A float32 (rows, dim) matrix of finite numbers, or a ValueError saying what is wrong."""
    array = np.asarray(values)
    expected = f"(rows, {dim if dim is not None else 'dim'})"
    if array.ndim != 2 or (dim is not None and array.shape[1] != dim) or array.shape[1] == 0:
        raise ValueError(f"{name}: expected shape {expected}, got {array.shape}")
    if array.dtype.kind != "f":
        raise ValueError(f"{name}: expected floating-point values (float32), got {array.dtype}")
    matrix = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{name}: rows {bad[:10].tolist()} hold NaN or infinite values")
    return matrix


def check_pairs(vectors: Vectors, ids: Ids) -> None:
    if len(ids) != len(vectors):
        raise ValueError(
            f"ids: expected {len(vectors)} ids, one per row of vectors, got {len(ids)}"
        )


def as_ids(values: object, name: str) -> Ids:
    """Distinct non-negative int64 ids (-1 pads search results), or a ValueError."""
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise ValueError(
            f"{name}: expected a 1-d array of integer ids, got {array.dtype} shape {array.shape}"
        )
    ids = array.astype(np.int64)
    if len(ids) and ids.min() < 0:
        raise ValueError(f"{name}: ids must be >= 0 (-1 pads search results), got {ids.min()}")
    ordered = np.sort(ids)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if len(repeated):
        raise ValueError(f"{name}: repeated ids {repeated[:10].tolist()}")
    return ids


def best_first(ids: Ids, scores: NDArray[np.float32], k: int) -> tuple[Ids, NDArray[np.float32]]:
    """Each row's candidates by descending score, ties to the smaller id, cut or padded to k
    (-1 with score -inf where a row has fewer)."""
    valid = ids >= 0
    by_score = np.where(valid, -scores, np.inf)
    by_id = np.where(valid, ids, np.iinfo(np.int64).max)
    order = np.lexsort((by_id, by_score), axis=-1)[:, :k]
    chosen = np.full((len(ids), k), -1, dtype=np.int64)
    values = np.full((len(ids), k), -np.inf, dtype=np.float32)
    width = order.shape[1]
    kept = np.take_along_axis(valid, order, axis=1)
    chosen[:, :width] = np.where(kept, np.take_along_axis(ids, order, axis=1), -1)
    values[:, :width] = np.where(kept, np.take_along_axis(scores, order, axis=1), -np.inf)
    return chosen, values


def index_arrays(
    index: VectorIndex[Any] | None, prefix: str, *, without_vectors: bool = False
) -> dict[str, NDArray[np.uint8]]:
    """The index's own files as byte arrays named ``<prefix><file>``, to save inside a model's
    arrays so that it loads without a rebuild (none for no index); ``without_vectors``: the
    model keeps them, and gives them to :func:`index_from_arrays`."""
    if index is None:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        index.save(folder, without_vectors=without_vectors)
        return {
            f"{prefix}{path.name}": np.frombuffer(path.read_bytes(), dtype=np.uint8)
            for path in sorted(Path(folder).iterdir())
            if path.is_file()
        }


def index_from_arrays(
    arrays: dict[str, NDArray[Any]], prefix: str, vectors: VectorsOf | None = None
) -> VectorIndex[Any] | None:
    """The index :func:`index_arrays` saved under ``prefix`` (None: there is none)."""
    files = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    if not files:
        return None
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data.tobytes())
        return load_index(folder, vectors)


__all__ = [
    "DEFAULT_K",
    "ExactIndex",
    "ExactSettings",
    "VectorIndex",
    "backend_class",
    "best_first",
    "index_arrays",
    "index_from_arrays",
    "load_index",
    "measure_recall",
    "open_index",
]
