"""Micro-batches: plain requests that arrive together are decided in one pass, each getting
exactly the list it would have got alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.batching import MicroBatcher, batchable
from shelfwise.serve.schemas import RecommendationRequest
from shelfwise.serve.tenant import TenantRuntime


def test_which_requests_can_share_a_batch() -> None:
    assert batchable(RecommendationRequest(person_id="p00", k=5, scope="discovery"))
    assert not batchable(RecommendationRequest(session_id="s1"))
    assert not batchable(RecommendationRequest(person_id="p00", context={"basket": ["s01"]}))
    assert not batchable(RecommendationRequest(person_id="p00", context={"segment": "loyal"}))
    assert not batchable(RecommendationRequest(person_id="p00", filters={"exclude_skus": ["s"]}))


def test_requests_arriving_together_share_one_decision(runtimes: dict[str, TenantRuntime]) -> None:
    runtime = runtimes["a"]
    assert runtime.batcher is not None
    runtime.batcher.window = 0.2  # wide enough that the eight requests below meet
    people = [f"p{n:02d}" for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        bodies = list(
            pool.map(
                lambda p: runtime.recommend(RecommendationRequest(person_id=p, k=5), f"r-{p}"),
                people,
            )
        )
    assert runtime.batcher.decisions == 8
    assert runtime.batcher.batches < 8
    alone = TenantRuntime("alone", runtime.catalogue, runtime.cache, batching=False)
    model = runtime.served.model
    assert isinstance(model, TwoStageRecommender)
    alone.swap(model, "1")
    alone.cache.invalidate(people)
    for person, body in zip(people, bodies, strict=True):
        assert body["fallback"] is None
        single = alone.recommend(RecommendationRequest(person_id=person, k=5), "single")
        assert single["items"] == body["items"], person
    alone.close()


def test_a_failing_batch_fails_each_of_its_requests(
    tenant_models: dict[str, TwoStageRecommender],
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the model is broken")

    batcher = MicroBatcher(broken)  # type: ignore[arg-type]
    future = batcher.submit(tenant_models["a"], "p00", 5, "all")
    error = future.exception(timeout=5)
    assert isinstance(error, RuntimeError)
    batcher.close()


def test_a_batch_drops_the_requests_that_stopped_waiting(
    tenant_models: dict[str, TwoStageRecommender],
) -> None:
    release = threading.Event()
    decided: list[list[str]] = []

    def held(model: object, persons: list[str], k: int, scope: str) -> tuple[Any, Any]:
        decided.append(persons)
        release.wait(5)
        empty = pd.DataFrame({"person_id": pd.Series(dtype=str)})
        return empty, empty

    batcher = MicroBatcher(held, window_seconds=0.001)  # type: ignore[arg-type]
    model = tenant_models["a"]
    first = batcher.submit(model, "p00", 5, "all")
    while not decided:  # the first batch is being decided
        time.sleep(0.001)
    late = batcher.submit(model, "p01", 5, "all")
    kept = batcher.submit(model, "p02", 5, "all")
    assert late.cancel()  # its caller's deadline passed while it queued
    release.set()
    first.result(timeout=5)
    kept.result(timeout=5)
    assert decided == [["p00"], ["p02"]]
    assert batcher.decisions == 2
    batcher.close()
