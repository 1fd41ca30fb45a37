"""The online store: each entity's latest states, for serving, in-process or in Redis.

Sets with the same keys share a row per entity (all of a product's sets in one row), so that a
product's vector is one read: ``memory://`` keeps a float matrix per key group, ``redis://``
one packed float64 string per entity, read 200 at a time with one ``MGET``. Each set's slice
of a row carries the wall time it was written, which is the freshness every vector reports.
Category attributes are stored as codes of a vocabulary kept with the store's metadata.

The metadata (set versions, when each set was materialised and as of which moment, the
vocabularies) lives beside the rows; a reader refuses a set whose stored version is not the
definition's, since its states would mean something else.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.features.definitions import FeatureSet, FeatureVersionError

Matrix = NDArray[np.float64]
KEY_SEPARATOR = "\x1f"
REDIS_TIMEOUT_S = 2.0


def group_name(keys: Sequence[str]) -> str:
    return "+".join(keys)


def entity_keys(rows: Any, keys: Sequence[str]) -> list[str | None]:
    """One string per row for the entity's key columns (None where a key is missing)."""
    columns = [rows[k] for k in keys]
    if all(isinstance(c, np.ndarray) and c.dtype.kind in "UO" for c in columns):
        return _joined(columns)
    if len(keys) == 1:
        return [None if _missing(v) else str(v) for v in rows[keys[0]]]
    # plain Python, not pandas strings: ten times faster on a request's few hundred rows
    return [
        None if any(_missing(v) for v in values) else KEY_SEPARATOR.join(map(str, values))
        for values in zip(*(rows[k] for k in keys), strict=True)
    ]


def _joined(columns: Sequence[NDArray[Any]]) -> list[str | None]:
    """:func:`entity_keys` of text (or object) arrays, joined in numpy: a request's keys are
    a few hundred rows, for which a Python loop per row and key cost milliseconds."""
    missing = np.zeros(len(columns[0]), dtype=bool)
    for column in columns:
        if column.dtype.kind == "O":
            missing |= pd.isna(column)
    joined = columns[0].astype(str)  # str() of each object, as the loop would
    for column in columns[1:]:
        joined = np.char.add(np.char.add(joined, KEY_SEPARATOR), column.astype(str))
    texts: list[str | None] = joined.tolist()
    for at in np.flatnonzero(missing):
        texts[at] = None
    return texts


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or value != value


class Backend(Protocol):
    """Where rows of floats live, per key group, with a small JSON metadata document."""

    def get_rows(self, group: str, keys: Sequence[str | None], width: int) -> Matrix: ...

    def put_rows(self, group: str, keys: Sequence[str], rows: Matrix) -> None: ...

    def get_many(self, requests: Sequence[tuple[str, Sequence[str | None], int]]) -> list[Matrix]:
        """Several groups' rows at once: (group, keys, width) each."""
        ...

    def get_meta(self) -> dict[str, Any]: ...

    def put_meta(self, meta: dict[str, Any]) -> None: ...

    def meta_stamp(self) -> str: ...

    def get_stats(self) -> dict[str, Any]:
        """Ingest statistics: a document of their own, so that writing them after every batch
        neither rewrites the metadata nor makes readers load it again."""
        ...

    def put_stats(self, stats: dict[str, Any]) -> None: ...

    def clear(self) -> None: ...


@dataclass
class _Group:
    index: dict[str, int] = field(default_factory=dict)
    rows: Matrix = field(default_factory=lambda: np.empty((0, 0)))


class MemoryBackend:
    """Rows in numpy matrices of this process."""

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}
        self._meta: dict[str, Any] = {}
        self._stats: dict[str, Any] = {}
        self._stamp = 0
        self._lock = threading.Lock()

    def get_rows(self, group: str, keys: Sequence[str | None], width: int) -> Matrix:
        found = self._groups.get(group)
        if found is None or found.rows.shape[1] != width:
            return np.full((len(keys), width), np.nan)
        index = found.index
        positions = np.fromiter(
            (index.get(k, -1) if k is not None else -1 for k in keys), np.int64, len(keys)
        )
        out = found.rows[positions]
        out[positions < 0] = np.nan
        return out

    def get_many(self, requests: Sequence[tuple[str, Sequence[str | None], int]]) -> list[Matrix]:
        return [self.get_rows(group, keys, width) for group, keys, width in requests]

    def put_rows(self, group: str, keys: Sequence[str], rows: Matrix) -> None:
        with self._lock:
            found = self._groups.get(group)
            if found is None or found.rows.shape[1] != rows.shape[1]:
                found = self._groups[group] = _Group(rows=np.empty((0, rows.shape[1])))
            index = found.index
            positions = np.empty(len(keys), dtype=np.int64)
            fresh = 0
            size = len(index)
            for i, key in enumerate(keys):
                position = index.get(key)
                if position is None:
                    position = index[key] = size + fresh
                    fresh += 1
                positions[i] = position
            needed = size + fresh
            if needed > len(found.rows):
                grown = np.full((max(needed, 2 * len(found.rows), 1024), rows.shape[1]), np.nan)
                grown[: len(found.rows)] = found.rows
                found.rows = grown
            found.rows[positions] = rows

    def get_meta(self) -> dict[str, Any]:
        copied: dict[str, Any] = json.loads(json.dumps(self._meta))
        return copied

    def put_meta(self, meta: dict[str, Any]) -> None:
        self._meta = json.loads(json.dumps(meta))
        self._stamp += 1

    def meta_stamp(self) -> str:
        return str(self._stamp)

    def get_stats(self) -> dict[str, Any]:
        copied: dict[str, Any] = json.loads(json.dumps(self._stats))
        return copied

    def put_stats(self, stats: dict[str, Any]) -> None:
        self._stats = json.loads(json.dumps(stats))

    def clear(self) -> None:
        self._groups.clear()
        self._meta = {}
        self._stats = {}
        self._stamp += 1


class RedisBackend:
    """Rows as packed float64 strings in Redis, one key per entity."""

    def __init__(self, url: str, prefix: str = "shelfwise:features") -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )

    def _key(self, group: str, key: str) -> str:
        return f"{self.prefix}:{group}:{key}"

    def get_rows(self, group: str, keys: Sequence[str | None], width: int) -> Matrix:
        return self.get_many([(group, keys, width)])[0]

    def get_many(self, requests: Sequence[tuple[str, Sequence[str | None], int]]) -> list[Matrix]:
        """One MGET per group, all in one pipeline: one round trip whatever the groups."""
        wanted = [[i for i, k in enumerate(keys) if k is not None] for _, keys, _ in requests]
        pipe = self.client.pipeline(transaction=False)
        for (group, keys, _), positions in zip(requests, wanted, strict=True):
            if positions:
                pipe.mget([f"{self.prefix}:{group}:{keys[i]}" for i in positions])
        replies = iter(pipe.execute())
        out = []
        for (_, keys, width), positions in zip(requests, wanted, strict=True):
            rows = np.full((len(keys), width), np.nan)
            if positions:
                values = next(replies)
                size = width * 8
                found = [j for j, v in enumerate(values) if v is not None and len(v) == size]
                if found:
                    packed = b"".join([values[j] for j in found])
                    unpacked = np.frombuffer(packed, dtype=np.float64).reshape(len(found), width)
                    rows[np.asarray(positions)[found]] = unpacked
            out.append(rows)
        return out

    def put_rows(self, group: str, keys: Sequence[str], rows: Matrix) -> None:
        data = np.ascontiguousarray(rows, dtype=np.float64)
        pipe = self.client.pipeline(transaction=False)
        chunk = 5_000
        for start in range(0, len(keys), chunk):
            pipe.mset(
                {
                    self._key(group, key): data[i].tobytes()
                    for i, key in enumerate(keys[start : start + chunk], start=start)
                }
            )
        pipe.execute()

    def get_meta(self) -> dict[str, Any]:
        raw = self.client.get(f"{self.prefix}:meta")
        meta: dict[str, Any] = json.loads(raw) if raw else {}
        return meta

    def put_meta(self, meta: dict[str, Any]) -> None:
        pipe = self.client.pipeline()
        pipe.set(f"{self.prefix}:meta", json.dumps(meta))
        pipe.incr(f"{self.prefix}:meta_stamp")
        pipe.execute()

    def meta_stamp(self) -> str:
        value = self.client.get(f"{self.prefix}:meta_stamp")
        return value.decode() if value else "0"

    def get_stats(self) -> dict[str, Any]:
        raw = self.client.get(f"{self.prefix}:stats")
        stats: dict[str, Any] = json.loads(raw) if raw else {}
        return stats

    def put_stats(self, stats: dict[str, Any]) -> None:
        self.client.set(f"{self.prefix}:stats", json.dumps(stats))

    def clear(self) -> None:
        names = list(self.client.scan_iter(f"{self.prefix}:*", count=10_000))
        for start in range(0, len(names), 10_000):
            self.client.delete(*names[start : start + 10_000])


def open_backend(url: str, prefix: str = "shelfwise:features") -> Backend:
    if url.startswith("memory://"):
        return MemoryBackend()
    if url.startswith(("redis://", "rediss://")):
        return RedisBackend(url, prefix)
    raise ValueError(f"online store URL {url!r}: expected memory:// or redis://")


@dataclass(frozen=True)
class Layout:
    """Where each set's state columns sit in its key group's rows."""

    group: str
    sets: tuple[FeatureSet, ...]
    offsets: dict[str, int]  # set name -> first column
    width: int

    @classmethod
    def of(cls, sets: Iterable[FeatureSet]) -> dict[str, Layout]:
        groups: dict[str, list[FeatureSet]] = {}
        for feature_set in sets:
            groups.setdefault(group_name(feature_set.keys), []).append(feature_set)
        layouts = {}
        for group, members in groups.items():
            offsets, width = {}, 0
            for feature_set in members:
                offsets[feature_set.name] = width
                width += len(feature_set.state_columns) + 1  # + the time it was written
            layouts[group] = cls(group, tuple(members), offsets, width)
        return layouts

    def columns(self, feature_set: FeatureSet) -> slice:
        start = self.offsets[feature_set.name]
        return slice(start, start + len(feature_set.state_columns))

    def written_column(self, feature_set: FeatureSet) -> int:
        return self.offsets[feature_set.name] + len(feature_set.state_columns)


class VersionGuard:
    """The store's metadata, read again whenever another writer changed it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._stamp: str | None = None
        self._meta: dict[str, Any] = {}
        self._checked_at = 0.0

    def meta(self, max_age_s: float = 1.0) -> dict[str, Any]:
        now = time.monotonic()
        if self._stamp is None or now - self._checked_at > max_age_s:
            stamp = self.backend.meta_stamp()
            if stamp != self._stamp:
                self._meta = self.backend.get_meta()
                self._stamp = stamp
            self._checked_at = now
        return self._meta

    def forget(self) -> None:
        self._stamp = None

    def check(self, feature_set: FeatureSet) -> dict[str, Any]:
        info = self.meta().get("sets", {}).get(feature_set.name)
        if info is None:
            raise LookupError(
                f"feature set {feature_set.name!r} is not in the online store yet; run "
                "`shelfwise features materialise`"
            )
        if info["version"] != feature_set.version:
            raise FeatureVersionError(
                f"the online store holds version {info['version']} of feature set "
                f"{feature_set.name!r}, the definition is version {feature_set.version}; "
                "materialise it again"
            )
        return dict(info)
