"""A/B assignment by a stable hash, and a canary that rolls itself back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.routing import Arm, Canary, Experiment, bucket
from shelfwise.serve.tenant import TenantRuntime


def test_buckets_are_stable_uniform_and_salted() -> None:
    draws = [bucket("exp", f"p{n}") for n in range(4000)]
    assert draws == [bucket("exp", f"p{n}") for n in range(4000)]  # the same every time
    assert all(0 <= d < 1 for d in draws)
    assert abs(sum(d < 0.25 for d in draws) / 4000 - 0.25) < 0.03
    assert [bucket("other", f"p{n}") for n in range(50)] != draws[:50]


def test_an_experiment_splits_units_by_share_and_refuses_bad_arms() -> None:
    arms = (Arm("control", None, "1", 0.7), Arm("treatment", None, "2", 0.3))
    experiment = Experiment("ranker-v2", arms)
    names = [experiment.assign(f"p{n}").name for n in range(3000)]
    assert abs(names.count("treatment") / 3000 - 0.3) < 0.03
    with pytest.raises(ValueError, match="sum to 1"):
        Experiment("x", (Arm("a", None, "1", 0.5), Arm("b", None, "2", 0.6)))
    with pytest.raises(ValueError, match="unit must be one of"):
        Experiment("x", arms, unit="device")


def test_a_canary_rolls_back_on_errors_or_latency(
    tenant_models: dict[str, TwoStageRecommender],
) -> None:
    model = tenant_models["a"]
    errors = Canary(model, "2", share=0.1, min_requests=10, max_error_rate=0.2)
    for n in range(10):
        errors.observe(ok=n % 3 != 0, seconds=0.001)  # 4 of 10 fail
    assert not errors.active
    assert errors.rolled_back == "error rate 40.0% > 20.0%"
    slow = Canary(model, "2", share=0.1, min_requests=10, max_p95_ms=20)
    for _ in range(10):
        slow.observe(ok=True, seconds=0.05)
    assert slow.rolled_back == "p95 50.0 ms > 20 ms"
    assert not slow.takes("anyone")
    healthy = Canary(model, "2", share=0.1, min_requests=10)
    for _ in range(20):
        healthy.observe(ok=True, seconds=0.002)
    assert healthy.active


def test_responses_name_their_variant_sticky_per_person(
    client: TestClient,
    runtimes: dict[str, TenantRuntime],
    tenant_models: dict[str, TwoStageRecommender],
    as_: Callable[[str], dict[str, str]],
) -> None:
    runtime = runtimes["a"]
    model = tenant_models["a"]
    runtime.experiment = Experiment(
        "ab", (Arm("control", model, "1", 0.5), Arm("b", model, "1", 0.5))
    )

    def variant(person: str) -> Any:
        body = {"person_id": person, "k": 3}
        response = client.post("/api/v1/recommendations", json=body, headers=as_("a_reader"))
        return response.json()["variant"]

    first = {p: variant(p) for p in ("p00", "p01", "p02", "p03", "p04", "p05")}
    assert set(first.values()) == {"control", "b"}
    assert {p: variant(p) for p in first} == first  # sticky
    assert all(runtime.experiment.assign(p).name == v for p, v in first.items())


def test_a_failing_canary_is_rolled_back_and_its_traffic_returns(
    client: TestClient,
    runtimes: dict[str, TenantRuntime],
    tenant_models: dict[str, TwoStageRecommender],
    as_: Callable[[str], dict[str, str]],
) -> None:
    runtime = runtimes["a"]
    broken = _Failing(tenant_models["a"])
    runtime.canary = Canary(broken, "9", share=0.5, min_requests=4, max_error_rate=0.1)  # type: ignore[arg-type]
    people = [f"p{n:02d}" for n in range(40)]
    canaried = [p for p in people if runtime.canary.takes(p)]
    assert len(canaried) >= 4
    for person in canaried[:4]:
        body = client.post(
            "/api/v1/recommendations", json={"person_id": person, "k": 3}, headers=as_("a_reader")
        ).json()
        assert body["variant"] == "canary"
        assert body["fallback"] is not None
        assert len(body["items"]) == 3
    assert runtime.canary.rolled_back == "error rate 100.0% > 10.0%"
    after = client.post(
        "/api/v1/recommendations", json={"person_id": canaried[0], "k": 3}, headers=as_("a_reader")
    ).json()
    assert after["variant"] == "champion"
    assert after["fallback"] is None


class _Failing:
    def __init__(self, model: TwoStageRecommender) -> None:
        self.items_, self.users_, self.models_ = model.items_, model.users_, model.models_

    def segment_top(self, segment: str) -> None:
        return None

    def ranked(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the new version is broken")
