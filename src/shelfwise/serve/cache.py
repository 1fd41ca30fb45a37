"""The response cache: a decision per request key, dropped when that person's events arrive.

In-process by default (``memory://``: a bounded LRU with a time to live), Redis by URL
(``redis://host:port/db``: each entry a key with a TTL, and a set per person of their entries
so that an event drops them all). A cache that fails (Redis down) raises
:class:`CacheUnavailable`; the service counts it and answers without the cache.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

DEFAULT_TTL_SECONDS = 300.0
DEFAULT_MAX_ENTRIES = 100_000


class CacheUnavailable(RuntimeError):
    """The cache's backend did not answer."""


class ResponseCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, person: str, value: dict[str, Any]) -> None: ...

    def invalidate(self, persons: list[str]) -> int: ...


class MemoryCache:
    """A thread-safe LRU of decisions with a time to live. Each is kept as its JSON text, as
    Redis keeps it: a string is not tracked by the garbage collector, where a decision's dicts
    and lists are (a dozen objects each; 100,000 entries made every full collection, a pause of
    the whole service, walk over a million of them)."""

    def __init__(
        self, ttl_seconds: float = DEFAULT_TTL_SECONDS, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, str, str]] = OrderedDict()
        self._by_person: dict[str, tuple[str, ...]] = {}  # tuples: untracked too
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
        return dict(json.loads(entry[2]))

    def put(self, key: str, person: str, value: dict[str, Any]) -> None:
        text = json.dumps(value)
        with self._lock:
            self._drop(key)
            self._entries[key] = (time.monotonic() + self.ttl, person, text)
            self._by_person[person] = (*self._by_person.get(person, ()), key)
            while len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))

    def invalidate(self, persons: list[str]) -> int:
        with self._lock:
            keys = [k for p in persons for k in self._by_person.get(p, ())]
            for key in keys:
                self._drop(key)
            return len(keys)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            kept = tuple(k for k in self._by_person.get(entry[1], ()) if k != key)
            if kept:
                self._by_person[entry[1]] = kept
            else:
                self._by_person.pop(entry[1], None)


class RedisCache:
    """Decisions in Redis under ``prefix``; a set per person names their entries."""

    def __init__(self, url: str, prefix: str, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.05, socket_connect_timeout=0.05)
        self._errors = (redis.RedisError, OSError)
        self.prefix = prefix
        self.ttl = max(int(ttl_seconds), 1)

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = self._redis.get(f"{self.prefix}:r:{key}")
        except self._errors as error:
            raise CacheUnavailable(f"redis: {error}") from error
        return None if raw is None else dict(json.loads(raw))

    def put(self, key: str, person: str, value: dict[str, Any]) -> None:
        index = f"{self.prefix}:p:{person}"
        try:
            with self._redis.pipeline() as pipe:
                pipe.set(f"{self.prefix}:r:{key}", json.dumps(value), ex=self.ttl)
                pipe.sadd(index, key)
                pipe.expire(index, self.ttl)
                pipe.execute()
        except self._errors as error:
            raise CacheUnavailable(f"redis: {error}") from error

    def invalidate(self, persons: list[str]) -> int:
        try:
            dropped = 0
            for person in persons:
                index = f"{self.prefix}:p:{person}"
                keys = [k.decode() for k in self._redis.smembers(index)]
                if keys:
                    dropped += int(self._redis.delete(*(f"{self.prefix}:r:{k}" for k in keys)))
                self._redis.delete(index)
            return dropped
        except self._errors as error:
            raise CacheUnavailable(f"redis: {error}") from error


def open_cache(url: str, tenant: str, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> ResponseCache:
    """``memory://`` or ``redis://...``; each tenant's entries under their own prefix."""
    if url.startswith("memory://"):
        return MemoryCache(ttl_seconds)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCache(url, prefix=f"shelfwise:cache:{tenant}", ttl_seconds=ttl_seconds)
    raise ValueError(f"cache_url must be memory:// or redis://host:port/db, got {url!r}")
