"""The scale-out vector index: a Qdrant collection (the ``qdrant`` extra).

A Qdrant server holds the index outside the process, so that several services share one and
it outlives them; the same class drives Qdrant's local mode (in memory or in a folder, no
server), which is how it is tested. Items are points whose ids are the sku codes, scored by
``Distance.DOT``; the base class orders each answer (ties to the smaller id) as every backend.

Qdrant's HNSW links its graph by the inner product itself, which section "Why the default is
what it is" of :mod:`shelfwise.recommend.ann` measured at 0.83-0.95 recall@200 with
``ef_search=400``: hold a collection against :class:`~shelfwise.recommend.ann.ExactIndex`
with :func:`~shelfwise.recommend.ann.measure_recall` before serving from it, and raise
``ef_search`` if it falls short. Local mode searches by brute force, so it is exact; on disk
it writes each point to SQLite on its own (about 15 ms a point here), so it suits tests and
small catalogues only.

Saving writes where the collection lives, never its points: the server (or folder) keeps them.
The API key is never saved; pass it again to :func:`~shelfwise.recommend.ann.load_index`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray

from shelfwise.models.settings import Constraints, EstimatorSettings, Interval
from shelfwise.recommend.ann import Ids, VectorIndex, Vectors, VectorsOf

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

INSTALL = "the Qdrant index needs qdrant-client: pip install 'shelfwise[qdrant]'"
MEMORY = ":memory:"
URL_FORMS = (
    "qdrant+http://host:port/collection, qdrant+https://host:port/collection, "
    "qdrant:///folder/collection or qdrant://:memory:/collection"
)


@dataclass(frozen=True)
class QdrantSettings(EstimatorSettings):
    """``m``, ``ef_construction``, ``ef_search``: the collection's HNSW parameters, as
    :class:`~shelfwise.recommend.ann_hnsw.HnswSettings` (a search of k keeps at least 2k);
    ``upload_batch``: points per upsert; ``query_batch``: queries per request."""

    m: int = 32
    ef_construction: int = 200
    ef_search: int = 800
    upload_batch: int = 1024
    query_batch: int = 64

    constraints: ClassVar[Constraints] = {
        "m": (Interval(4, 256, integer=True),),
        "ef_construction": (Interval(4, None, integer=True),),
        "ef_search": (Interval(1, None, integer=True),),
        "upload_batch": (Interval(1, None, integer=True),),
        "query_batch": (Interval(1, None, integer=True),),
    }


class QdrantIndex(VectorIndex[QdrantSettings]):
    """One Qdrant collection. ``location``: ``http(s)://host:port`` for a server, a folder for
    local mode on disk, or ``":memory:"``; the client connects on first use."""

    backend = "qdrant"
    settings_type = QdrantSettings

    def __init__(
        self,
        settings: QdrantSettings | None = None,
        *,
        location: str = MEMORY,
        collection: str = "items",
        api_key: str | None = None,
    ) -> None:
        super().__init__(settings)
        self.location, self.collection = location, collection
        self._api_key = api_key
        self._client: QdrantClient | None = None

    @classmethod
    def from_url(cls, url: str, *, api_key: str | None = None, **parameters: Any) -> QdrantIndex:
        """An unbuilt index from a URL of :data:`URL_FORMS`; ``parameters`` are settings."""
        location, collection = parse_url(url)
        return cls(
            QdrantSettings(**parameters), location=location, collection=collection, api_key=api_key
        )

    @property
    def client(self) -> QdrantClient:
        if self._client is None:
            try:
                from qdrant_client import QdrantClient
            except ImportError as error:
                raise ImportError(INSTALL) from error
            if self.location == MEMORY:
                self._client = QdrantClient(location=MEMORY)
            elif self.location.startswith(("http://", "https://")):
                self._client = QdrantClient(url=self.location, api_key=self._api_key)
            else:
                self._client = QdrantClient(path=self.location)
        return self._client

    def close(self) -> None:
        """Let the connection go (local mode on disk: release the folder's lock); the next
        call connects again."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _build(self, vectors: Vectors, ids: Ids) -> None:
        from qdrant_client import models

        s = self.settings
        if self.client.collection_exists(self.collection):
            self.client.delete_collection(self.collection)
        self.client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=vectors.shape[1], distance=models.Distance.DOT),
            hnsw_config=models.HnswConfigDiff(m=s.m, ef_construct=s.ef_construction),
        )
        self._add(vectors, ids)

    def _search(self, queries: Vectors, k: int) -> tuple[Ids, NDArray[np.float32]]:
        from qdrant_client import models

        # Local mode is exact and warns that search parameters do nothing there.
        served = self.location.startswith(("http://", "https://"))
        ef = max(self.settings.ef_search, 2 * k)
        params = models.SearchParams(hnsw_ef=ef) if served else None
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        for start in range(0, len(queries), self.settings.query_batch):
            requests = [
                models.QueryRequest(query=row.tolist(), limit=k, params=params, with_payload=False)
                for row in queries[start : start + self.settings.query_batch]
            ]
            answers = self.client.query_batch_points(self.collection, requests=requests)
            for row, answer in enumerate(answers, start=start):
                ids[row, : len(answer.points)] = [int(point.id) for point in answer.points]
                scores[row, : len(answer.points)] = [point.score for point in answer.points]
        return ids, scores

    def _add(self, vectors: Vectors, ids: Ids) -> None:
        from qdrant_client import models

        step = self.settings.upload_batch
        for start in range(0, len(ids), step):
            batch = models.Batch(
                ids=ids[start : start + step].tolist(),
                vectors=vectors[start : start + step].tolist(),
            )
            self.client.upsert(self.collection, points=batch, wait=True)

    def _remove(self, ids: Ids) -> None:
        from qdrant_client import models

        selector = models.PointIdsList(points=ids.tolist())
        self.client.delete(self.collection, points_selector=selector, wait=True)

    def _contains(self, ids: Ids) -> NDArray[np.bool_]:
        points = self.client.retrieve(
            self.collection, ids=ids.tolist(), with_payload=False, with_vectors=False
        )
        found: NDArray[np.bool_] = np.isin(ids, [int(point.id) for point in points])
        return found

    def _save(self, folder: Path, without_vectors: bool) -> dict[str, Any]:
        """The collection's address: its vectors stay in Qdrant whatever ``without_vectors``."""
        if self.location == MEMORY:
            raise ValueError(
                "an in-memory Qdrant collection cannot be saved: open it with "
                "qdrant:///folder/collection (or on a server) to keep it"
            )
        return {"location": self.location, "collection": self.collection}

    def _load(
        self, folder: Path, state: dict[str, Any], vectors: VectorsOf | None, **connection: Any
    ) -> None:
        self.location, self.collection = state["location"], state["collection"]
        self._api_key = connection.get("api_key")
        self._client = None
        if not self.client.collection_exists(self.collection):
            raise ValueError(
                f"{folder}: collection {self.collection!r} is gone from {self.location}"
            )

    def __len__(self) -> int:
        if self.dim_ is None:
            return 0
        return int(self.client.count(self.collection, exact=True).count)

    def _details(self) -> dict[str, Any]:
        return {"location": self.location, "collection": self.collection}


def parse_url(url: str) -> tuple[str, str]:
    """(location, collection) of a Qdrant URL; a ValueError names the accepted forms."""
    parts = urlsplit(url)
    folder, _, collection = parts.path.rstrip("/").rpartition("/")
    if not collection or parts.query or parts.fragment:
        raise ValueError(f"Qdrant URL {url!r}: expected {URL_FORMS}")
    if parts.scheme in ("qdrant+http", "qdrant+https") and parts.netloc and not folder:
        return f"{parts.scheme.removeprefix('qdrant+')}://{parts.netloc}", collection
    if parts.scheme == "qdrant" and parts.netloc == MEMORY and not folder:
        return MEMORY, collection
    if parts.scheme == "qdrant" and not parts.netloc and folder:
        return folder, collection
    raise ValueError(f"Qdrant URL {url!r}: expected {URL_FORMS}")


__all__ = ["QdrantIndex", "QdrantSettings", "parse_url"]
