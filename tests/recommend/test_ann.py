"""Vector indexes: exact answers by hand, one contract for every backend, recall of the default.

Every backend is held to the same contract (the ``make_index`` fixture): on small data each
must give :class:`ExactIndex`'s answer. Qdrant runs in its local mode (no server): in memory,
or for the save and load round trip in a folder (which writes each point to SQLite, slowly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from shelfwise.models.base import NotFittedError
from shelfwise.recommend.ann import (
    ExactIndex,
    ExactSettings,
    VectorIndex,
    load_index,
    measure_recall,
    open_index,
)
from shelfwise.recommend.ann_hnsw import HnswIndex
from shelfwise.recommend.ann_qdrant import QdrantIndex

INF = np.float32(np.inf)
NO_QDRANT = pytest.mark.skipif(find_spec("qdrant_client") is None, reason="the qdrant extra")


def clustered(
    items: int, queries: int, dim: int = 64, centres: int = 500, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Items and queries drawn around gaussian centres whose cluster sizes follow a power law."""
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centres, dim))
    weight = 1.0 / np.arange(1, centres + 1) ** 1.1
    weight /= weight.sum()

    def draw(rows: int) -> NDArray[np.float32]:
        centre = rng.choice(centres, size=rows, p=weight)
        return (middle[centre] + 0.35 * rng.standard_normal((rows, dim))).astype(np.float32)

    return draw(items), draw(queries)


def skewed(items: int, queries: int, dim: int = 16, seed: int = 0) -> NDArray[np.float32]:
    """Random directions with norms from 0.1 to 3, so that every norm band has members."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((items + queries, dim)) * rng.uniform(
        0.1, 3, (items + queries, 1)
    )
    return vectors.astype(np.float32)


# ExactIndex by hand.
@pytest.fixture
def plane() -> ExactIndex:
    # Given out of id order: ties must still go to the smaller id.
    vectors = np.array([[1, 1], [0, 1], [2, 0], [1, 0]], dtype=np.float32)
    return ExactIndex().build(vectors, np.array([30, 20, 40, 10]))


def test_exact_ranks_by_inner_product_with_ties_to_the_smaller_id(plane: ExactIndex) -> None:
    ids, scores = plane.search(np.array([[1, 0], [0, 1]], dtype=np.float32), k=4)
    # [1, 0] scores 10: 1, 20: 0, 30: 1, 40: 2; [0, 1] scores 10: 0, 20: 1, 30: 1, 40: 0.
    assert ids.tolist() == [[40, 10, 30, 20], [20, 30, 10, 40]]
    assert scores.tolist() == [[2, 1, 1, 0], [1, 1, 0, 0]]
    assert ids.dtype == np.int64
    assert scores.dtype == np.float32


def test_exact_pads_with_minus_one_when_k_exceeds_the_items(plane: ExactIndex) -> None:
    ids, scores = plane.search(np.array([[0.5, 2]], dtype=np.float32), k=6)
    assert ids.tolist() == [[30, 20, 40, 10, -1, -1]]  # 2.5, 2, 1, 0.5
    assert scores.tolist() == [[2.5, 2, 1, 0.5, -INF, -INF]]


def test_exact_batches_give_the_same_answer() -> None:
    vectors, queries = clustered(2_000, 50, dim=8, centres=20)
    whole = ExactIndex().build(vectors).search(queries, 30)
    # A batch of one query at a time: 2,000 items x 4 bytes.
    piecemeal = ExactIndex(ExactSettings(batch_bytes=8_000)).build(vectors).search(queries, 30)
    np.testing.assert_array_equal(whole[0], piecemeal[0])
    # BLAS sums in another order for another batch shape: the last bit may differ.
    np.testing.assert_allclose(whole[1], piecemeal[1], rtol=1e-6)


def test_exact_removes_and_adds(plane: ExactIndex) -> None:
    plane.remove(np.array([40]))
    plane.add(np.array([[3, 0]], dtype=np.float32), np.array([5]))
    ids, _ = plane.search(np.array([[1, 0]], dtype=np.float32), k=5)
    assert ids.tolist() == [[5, 10, 30, 20, -1]]
    assert len(plane) == 4


# One contract for every backend.
Factory = Callable[[], VectorIndex]


def url_of(backend: str, folder: Path) -> str:
    urls = {"qdrant-memory": "qdrant://:memory:/items", "qdrant-folder": f"qdrant://{folder}/items"}
    return urls.get(backend, backend)


@pytest.fixture(params=["exact", "embedded", pytest.param("qdrant-memory", marks=NO_QDRANT)])
def make_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    url = url_of(request.param, tmp_path / "qdrant")
    made: list[VectorIndex] = []

    def make() -> VectorIndex:
        made.append(open_index(url))
        return made[-1]

    yield make
    for index in made:
        index.close()


@pytest.fixture
def small() -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    data = skewed(400, 30)
    return data[:400], np.arange(400, dtype=np.int64) * 3 + 7, data[400:]


def test_every_backend_agrees_with_exact_on_a_small_set(
    make_index: Factory, small: tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]
) -> None:
    vectors, ids, queries = small
    truth, best = ExactIndex().build(vectors, ids).search(queries, 25)
    found, scores = make_index().build(vectors, ids).search(queries, 25)
    np.testing.assert_array_equal(found, truth)
    np.testing.assert_allclose(scores, best, rtol=1e-5, atol=1e-5)


def test_every_backend_takes_new_items_and_withdraws_old_ones(
    make_index: Factory, small: tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]
) -> None:
    vectors, ids, _ = small
    index = make_index().build(vectors, ids)
    # New skus far from the rest, each its own best match; one longer than anything built.
    fresh = np.zeros((3, vectors.shape[1]), dtype=np.float32)
    fresh[[0, 1, 2], [0, 1, 2]] = [100.0, 120.0, 500.0]
    index.add(fresh, np.array([5_000, 5_001, 5_002]))
    assert len(index) == 403
    assert index.search(fresh, 1)[0].ravel().tolist() == [5_000, 5_001, 5_002]

    index.remove(np.array([5_001, ids[0]]))
    assert len(index) == 401
    found, _ = index.search(np.vstack([fresh, vectors[:1]]), 402)
    assert not np.isin([5_001, ids[0]], found).any()
    assert (found[:, :401] >= 0).all()
    assert (found[:, 401] == -1).all()

    index.add(fresh[1:2], np.array([5_001]))  # a withdrawn sku may come back
    assert index.search(fresh[1:2], 1)[0].tolist() == [[5_001]]


def test_every_backend_refuses_known_ids_and_unknown_removals(
    make_index: Factory, small: tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]
) -> None:
    vectors, ids, _ = small
    index = make_index().build(vectors, ids)
    with pytest.raises(ValueError, match=r"ids: already in the index.*\[7\]"):
        index.add(vectors[:2], np.array([7, 99_999]))
    with pytest.raises(ValueError, match=r"ids: not in the index: \[8\]"):
        index.remove(np.array([7, 8]))
    assert len(index) == 400


@pytest.mark.parametrize(
    "backend", ["exact", "embedded", pytest.param("qdrant-folder", marks=NO_QDRANT)]
)
def test_every_backend_round_trips_through_save_and_load(backend: str, tmp_path: Path) -> None:
    data = skewed(60, 10)
    vectors, ids, queries = data[:60], np.arange(60, dtype=np.int64) * 3 + 7, data[60:]
    index = open_index(url_of(backend, tmp_path / "qdrant")).build(vectors, ids)
    index.remove(ids[:5])
    before = index.search(queries, 20)
    description = index.describe()
    index.save(tmp_path / "saved")
    index.close()

    again = load_index(tmp_path / "saved")
    try:
        assert type(again) is type(index)
        after = again.search(queries, 20)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])
        assert again.describe() == description
        assert again.dim == 16
        assert len(again) == 55
    finally:
        again.close()


@pytest.mark.parametrize("backend", ["exact", "embedded"])
def test_an_index_saved_without_its_vectors_takes_its_owners_back(
    backend: str, tmp_path: Path
) -> None:
    """A model keeping the vectors anyway saves the index without its copy: the graph alone,
    a fraction of the bytes, and the same answers once the owner gives them back, new items
    and withdrawn ones included."""
    data = skewed(300, 10)
    vectors, ids, queries = data[:300], np.arange(300, dtype=np.int64) * 2, data[300:]
    index = open_index(backend).build(vectors[:280], ids[:280])
    index.add(vectors[280:], ids[280:])
    index.remove(ids[:5])
    before = index.search(queries, 20)
    whole = index.save(tmp_path / "whole")
    lean = index.save(tmp_path / "lean", without_vectors=True)
    size = {f: sum(p.stat().st_size for p in f.iterdir()) for f in (whole, lean)}
    assert size[whole] - size[lean] >= vectors.nbytes * 0.9

    owner = dict(zip(ids.tolist(), vectors, strict=True))
    again = load_index(lean, vectors=lambda asked: np.stack([owner[i] for i in asked.tolist()]))
    after = again.search(queries, 20)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert len(again) == 295
    fresh = np.zeros((1, vectors.shape[1]), dtype=np.float32)
    fresh[0, 3] = 1_000.0
    again.add(fresh, np.array([9_999]))  # a graph given back its vectors grows as before
    assert again.search(fresh, 1)[0].tolist() == [[9_999]]
    with pytest.raises(ValueError, match="saved without its vectors"):
        load_index(lean)
    np.testing.assert_array_equal(load_index(whole).search(queries, 20)[0], before[0])


def test_every_backend_explains_bad_input(
    make_index: Factory, small: tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]
) -> None:
    vectors, ids, queries = small
    index = make_index()
    with pytest.raises(NotFittedError, match="call build first"):
        index.search(queries, 5)
    with pytest.raises(ValueError, match=r"vectors: expected shape \(rows, dim\), got \(400,\)"):
        index.build(vectors[:, 0])
    with pytest.raises(ValueError, match="vectors: expected floating-point values"):
        index.build(vectors.astype(np.int64))
    broken = vectors.copy()
    broken[[3, 9], 1] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"vectors: rows \[3, 9\] hold NaN or infinite values"):
        index.build(broken)
    with pytest.raises(ValueError, match="ids: expected 400 ids, one per row of vectors, got 3"):
        index.build(vectors, ids[:3])
    with pytest.raises(ValueError, match=r"ids: repeated ids \[7\]"):
        index.build(vectors, np.where(ids == 10, 7, ids))
    with pytest.raises(ValueError, match=r"ids: ids must be >= 0"):
        index.build(vectors, ids - 10)
    with pytest.raises(ValueError, match="ids: expected a 1-d array of integer ids"):
        index.build(vectors, ids.astype(np.float64))

    index.build(vectors, ids)
    with pytest.raises(ValueError, match=r"queries: expected shape \(rows, 16\), got \(30, 8\)"):
        index.search(queries[:, :8], 5)
    broken = queries.copy()
    broken[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"queries: rows \[4\] hold NaN or infinite values"):
        index.search(broken, 5)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        index.search(queries, 0)
    with pytest.raises(ValueError, match=r"vectors: expected shape \(rows, 16\), got \(1, 15\)"):
        index.add(vectors[:1, :15], np.array([1]))


# The embedded default.
def test_the_default_reaches_recall_95_at_200_on_clustered_vectors() -> None:
    vectors, queries = clustered(20_000, 200, seed=7)
    report = measure_recall(vectors, queries, k=200)
    assert report["recall@200"] >= 0.95
    assert report["backend"] == "hnsw"
    assert report["items"] == 20_000
    assert report["parameters"]["ef_search"] >= 2 * 200
    assert report["build_seconds"] > 0
    assert report["query_seconds_per_1000"] > 0


def test_the_default_splits_items_into_bands_of_norm() -> None:
    index = HnswIndex().build(skewed(1_000, 0))
    description = index.describe()
    # Norms from 0.1 to 3 times a chi(16): every one of the four bands has members.
    assert all(size > 0 for size in description["band_sizes"])
    assert sum(description["band_sizes"]) == 1_000 == description["size"]


# Choosing a backend by URL.
def test_open_index_chooses_the_backend_by_url(tmp_path: Path) -> None:
    assert isinstance(open_index(), HnswIndex)
    assert isinstance(open_index("embedded", m=48), HnswIndex)
    assert open_index("embedded", m=48).settings.m == 48
    assert isinstance(open_index("exact"), ExactIndex)
    served = open_index("qdrant+https://vectors.example:6333/skus", api_key="secret")
    assert isinstance(served, QdrantIndex)
    assert (served.location, served.collection) == ("https://vectors.example:6333", "skus")
    local = open_index(f"qdrant://{tmp_path}/store/skus")
    assert isinstance(local, QdrantIndex)
    assert (local.location, local.collection) == (f"{tmp_path}/store", "skus")
    memory = open_index("qdrant://:memory:/skus", ef_search=800)
    assert isinstance(memory, QdrantIndex)
    assert (memory.location, memory.collection) == (":memory:", "skus")
    assert memory.settings.ef_search == 800


@pytest.mark.parametrize(
    "url",
    ["faiss://local", "postgres://db/items", "qdrant+grpc://host:6334/skus", "Exact"],
)
def test_open_index_names_the_accepted_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"unknown vector index URL.*'embedded'.*qdrant\+http://"):
        open_index(url)


@pytest.mark.parametrize(
    "url",
    [
        "qdrant+http://host:6333",  # no collection
        "qdrant+http://host:6333/a/b",  # a collection has no folder on a server
        "qdrant://host:6333/skus",  # a server needs qdrant+http
        "qdrant:///skus",  # a local collection needs a folder
        "qdrant://:memory:/skus?x=1",
    ],
)
def test_open_index_explains_a_bad_qdrant_url(url: str) -> None:
    with pytest.raises(ValueError, match=r"expected qdrant\+http://host:port/collection"):
        open_index(url)


def test_open_index_refuses_unknown_settings() -> None:
    with pytest.raises(ValueError, match=r"HnswSettings.m=2: expected an integer in \[4, 256\]"):
        open_index(m=2)


@NO_QDRANT
def test_an_in_memory_qdrant_collection_refuses_to_save(tmp_path: Path) -> None:
    index = open_index("qdrant://:memory:/skus").build(skewed(10, 0))
    with pytest.raises(ValueError, match="in-memory Qdrant collection cannot be saved"):
        index.save(tmp_path)


def test_load_explains_a_folder_without_an_index(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no index\.json"):
        load_index(tmp_path)
    ExactIndex().build(skewed(10, 0)).save(tmp_path / "exact")
    with pytest.raises(TypeError, match="the saved index is ExactIndex, not HnswIndex"):
        HnswIndex.load(tmp_path / "exact")
    assert isinstance(ExactIndex.load(tmp_path / "exact"), ExactIndex)
