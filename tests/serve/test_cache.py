"""The response cache: in process and on a real Redis; a Redis that is down fails no request."""

from __future__ import annotations

import gc
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shelfwise.serve.app import create_app
from shelfwise.serve.auth import KeyRing
from shelfwise.serve.cache import CacheUnavailable, MemoryCache, RedisCache, open_cache
from shelfwise.serve.tenant import TenantRuntime

DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _exercise(cache: MemoryCache | RedisCache) -> None:
    cache.put("k1", "p1", {"items": [1]})
    cache.put("k2", "p1", {"items": [2]})
    cache.put("k3", "p2", {"items": [3]})
    assert cache.get("k1") == {"items": [1]}
    assert cache.get("nope") is None
    assert cache.invalidate(["p1", "nobody"]) == 2
    assert cache.get("k1") is None
    assert cache.get("k2") is None
    assert cache.get("k3") == {"items": [3]}


def test_memory_cache_invalidates_by_person_and_stays_bounded() -> None:
    _exercise(MemoryCache())
    small = MemoryCache(max_entries=2)
    for n in range(3):
        small.put(f"k{n}", f"p{n}", {"n": n})
    assert small.get("k0") is None
    assert small.get("k2") == {"n": 2}
    assert small.invalidate(["p0"]) == 0  # evicted entries leave no trace
    expired = MemoryCache(ttl_seconds=-1.0)
    expired.put("k", "p", {})
    assert expired.get("k") is None


def test_redis_cache_invalidates_by_person(redis_url: str) -> None:
    _exercise(RedisCache(redis_url, prefix="test"))
    other = RedisCache(redis_url, prefix="other-tenant")
    assert other.get("k3") is None  # each tenant under its own prefix


def test_a_redis_that_is_down_raises_cache_unavailable() -> None:
    cache = open_cache(DOWN, "a")
    with pytest.raises(CacheUnavailable, match="redis"):
        cache.get("k")
    with pytest.raises(ValueError, match="memory:// or redis://"):
        open_cache("memcached://x", "a")


def test_requests_succeed_with_redis_down_and_are_counted(
    runtimes: dict[str, TenantRuntime],
    keyring: KeyRing,
    as_: Callable[[str], dict[str, str]],
    redis_url: str,
) -> None:
    runtime = runtimes["a"]
    runtime.cache = open_cache(redis_url, "a")
    with TestClient(create_app(runtimes, keyring)) as client:
        body = {"person_id": "p00", "k": 3}
        ask = lambda: client.post("/api/v1/recommendations", json=body, headers=as_("a_writer"))  # noqa: E731
        assert ask().json()["cached"] is False
        assert ask().json()["cached"] is True  # from Redis
        runtime.cache = open_cache(DOWN, "a")  # Redis goes away
        answer = ask()
        assert answer.status_code == 200
        assert answer.json()["fallback"] is None
        event = {
            "kind": "view",
            "person_id": "p00",
            "sku": "s00",
            "occurred_at": "2024-04-25T10:00:00Z",
        }
        assert client.post("/api/v1/events", json=event, headers=as_("a_writer")).status_code == 200
        assert runtime.faults["cache"] == 3  # the read, the write, the invalidation
        assert 'shelfwise_faults_total{stage="cache",tenant="a"} 3.0' in client.get("/metrics").text


@pytest.mark.service
def test_stopping_redis_in_the_middle_of_a_load_run_fails_no_request(
    runtimes: dict[str, TenantRuntime],
    keyring: KeyRing,
    as_: Callable[[str], dict[str, str]],
    tmp_path: Path,
) -> None:
    """A Redis of the test's own, killed while two clients keep asking."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not _pings(url):
            assert time.monotonic() < deadline, "the test's Redis did not start"
            time.sleep(0.05)
        runtime = runtimes["a"]
        runtime.cache = open_cache(url, "a")
        statuses: list[int] = []
        stop = threading.Event()
        with TestClient(create_app(runtimes, keyring)) as client:

            def load(offset: int) -> None:
                i = offset
                while not stop.is_set():
                    body = {"person_id": f"p{i % 20:02d}", "k": 3}  # 20 keys: cache hits
                    answer = client.post(
                        "/api/v1/recommendations", json=body, headers=as_("a_reader")
                    )
                    statuses.append(answer.status_code)
                    i += 1

            threads = [threading.Thread(target=load, args=(n,)) for n in (0, 7)]
            for thread in threads:
                thread.start()
            _wait_for(lambda: len(statuses) >= 80)
            assert runtime.answers["cache"] > 0  # Redis was answering
            server.kill()  # mid-run
            server.wait(timeout=10)
            before = len(statuses)
            _wait_for(lambda: len(statuses) >= before + 80)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert set(statuses) == {200}
        assert runtime.faults["cache"] > 0  # each failed read and write counted
    finally:
        server.kill()
        server.wait(timeout=10)


def _pings(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.2).ping())
    except redis.exceptions.ConnectionError:
        return False


def _wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the load run made no progress"
        time.sleep(0.01)


def test_a_full_memory_cache_is_not_walked_by_the_garbage_collector() -> None:
    """Entries are kept as JSON text: 2,000 decisions add no object for a full collection
    (which pauses the whole service) to walk, where as dicts they added a dozen each."""
    cache = MemoryCache()
    gc.collect()
    before = len(gc.get_objects())
    for n in range(2_000):
        items = [{"sku": f"s{i}", "rank": i, "score": 0.5, "explanation": "x"} for i in range(10)]
        cache.put(f"k{n}", f"p{n % 300}", {"items": items, "fallback": None})
    gc.collect()
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    assert cache.get("k7") == {"items": items, "fallback": None}  # every entry has these items
