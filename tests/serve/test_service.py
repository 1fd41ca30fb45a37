"""The decision API in process: keys and tenants, decisions, cache, events, fallbacks, errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.serve import tenant as tenant_module
from shelfwise.serve.batching import BatchCost
from shelfwise.serve.schemas import RecommendationRequest
from shelfwise.serve.tenant import TenantRuntime

NOW = "2024-04-25T10:00:00Z"


Headers = Callable[[str], dict[str, str]]


def _ask(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/recommendations", json=body, headers=headers)


def test_a_known_person_gets_the_models_list_with_explanations(
    client: TestClient, as_: Headers
) -> None:
    response = _ask(client, as_("a_reader"), person_id="p00", k=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fallback"] is None
    assert body["cached"] is False
    assert body["model_version"] == "1"
    assert body["variant"] == "champion"
    assert [item["rank"] for item in body["items"]] == [1, 2, 3, 4, 5]
    assert {item["sku"] for item in body["items"][:4]} == {"s00", "s01", "s02", "s03"}  # staples
    assert all(item["explanation"] for item in body["items"])
    assert len(body["request_id"]) == 32
    # On a category page, that category first (categories here: a sku's first letter).
    paged = _ask(client, as_("a_reader"), person_id="p00", k=5, context={"category": "x"})
    assert paged.json()["fallback"] is None
    assert all(item["sku"].startswith("x") for item in paged.json()["items"])


def test_the_same_request_is_cached_until_the_persons_events_arrive(
    client: TestClient, as_: Headers
) -> None:
    first = _ask(client, as_("a_writer"), person_id="p01", k=4).json()
    again = _ask(client, as_("a_writer"), person_id="p01", k=4).json()
    assert again["cached"] is True
    assert again["items"] == first["items"]
    assert again["request_id"] != first["request_id"]
    event = {"kind": "view", "person_id": "p01", "sku": "x05", "occurred_at": NOW}
    accepted = client.post("/api/v1/events", json=event, headers=as_("a_writer"))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["cache_entries_dropped"] == 1
    assert _ask(client, as_("a_writer"), person_id="p01", k=4).json()["cached"] is False


def test_keys_and_roles_and_tenants(client: TestClient, as_: Headers) -> None:
    body = {"person_id": "p00", "k": 3}
    assert client.post("/api/v1/recommendations", json=body).status_code == 401
    wrong = {"X-API-Key": "not-a-key-of-this-service"}
    assert client.post("/api/v1/recommendations", json=body, headers=wrong).status_code == 401
    event = {"kind": "view", "person_id": "p00", "sku": "s00", "occurred_at": NOW}
    refused = client.post("/api/v1/events", json=event, headers=as_("a_reader"))
    assert refused.status_code == 403
    assert "writer" in refused.json()["detail"]
    # a reviewer reads what it reviews (the reader's role comes with it), and writes nothing
    assert _ask(client, as_("a_reviewer"), person_id="p00").status_code == 200
    assert client.post("/api/v1/events", json=event, headers=as_("a_reviewer")).status_code == 403
    assert _ask(client, as_("c_admin"), person_id="p00").status_code == 404  # nothing served for c
    # Tenant b's shopper is a stranger to tenant a: a's key gets a's popularity, never b's list.
    theirs = _ask(client, as_("b_reader"), person_id="b-p00", k=5).json()
    assert theirs["fallback"] is None
    ours = _ask(client, as_("a_reader"), person_id="b-p00", k=5).json()
    assert all(item["source"] == "popularity_fallback" for item in ours["items"])


def test_anonymous_visitors_get_their_baskets_complements(client: TestClient, as_: Headers) -> None:
    body = _ask(
        client,
        as_("a_reader"),
        session_id="web-1",
        k=5,
        context={"basket": ["s04"], "page": "cart"},
    ).json()
    assert body["person_id"] == "session:web-1"
    skus = [item["sku"] for item in body["items"]]
    assert len(skus) == 5
    assert "s04" not in skus
    assert {"s05", "s06", "s07"} & set(skus)  # s04's group


def test_a_failing_model_falls_back_and_the_list_is_never_empty(
    client: TestClient, runtimes: dict[str, TenantRuntime], as_: Headers
) -> None:
    good = _ask(client, as_("a_reader"), person_id="p02", k=5).json()
    runtime = runtimes["a"]
    broken = runtime.served.model
    assert broken is not None
    runtime.swap(_Broken(broken), "2")
    last = _ask(client, as_("a_reader"), person_id="p02", k=5).json()
    assert last["fallback"] == "last_good"
    assert last["items"] == good["items"]
    stranger = _ask(client, as_("a_reader"), person_id="p03", k=5).json()
    assert stranger["fallback"] == "popularity"
    assert len(stranger["items"]) == 5
    assert runtime.faults["model_error"] == 2
    metrics = client.get("/metrics").text
    assert 'shelfwise_faults_total{stage="model_error",tenant="a"} 2.0' in metrics
    assert 'shelfwise_decisions_total{stage="last_good",tenant="a"} 1.0' in metrics


def test_a_model_past_its_deadline_falls_back(
    client: TestClient,
    runtimes: dict[str, TenantRuntime],
    as_: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = tenant_module.decide

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(tenant_module, "decide", slow)
    runtimes["a"].deadline_seconds = 0.1
    started = time.perf_counter()
    body = _ask(client, as_("a_reader"), person_id="p04", k=3).json()
    assert time.perf_counter() - started < 0.45  # it did not wait for the slow model
    assert body["fallback"] == "popularity"
    assert len(body["items"]) == 3
    assert runtimes["a"].faults["model_deadline"] == 1


def test_a_request_that_queued_past_its_deadline_is_shed_without_the_model(
    runtimes: dict[str, TenantRuntime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtimes["a"]
    calls: list[Any] = []
    monkeypatch.setattr(tenant_module, "decide", lambda *a, **k: calls.append(a))
    runtime.deadline_seconds = 0.05
    late = time.perf_counter() - 0.06  # arrived 60 ms ago, waiting for a worker
    body = runtime.recommend(RecommendationRequest(person_id="p04", k=3), "r1", arrived=late)
    assert body["fallback"] == "popularity"
    assert len(body["items"]) == 3
    assert runtime.faults["model_shed_late"] == 1
    assert calls == []  # no decision was started for it


def test_an_overloaded_tenant_sheds_to_the_fallbacks(runtimes: dict[str, TenantRuntime]) -> None:
    runtime = runtimes["a"]
    good = runtime.recommend(RecommendationRequest(person_id="p05", k=4), "r1")
    assert good["fallback"] is None
    runtime.admission.max_in_flight = 0  # every decision slot taken
    busy = runtime.recommend(RecommendationRequest(person_id="p05", k=3), "r2")  # not cached
    assert busy["fallback"] == "last_good"
    assert busy["items"] == good["items"][:3]
    assert runtime.faults["model_shed_busy"] == 1


def test_a_decision_that_could_not_finish_in_time_is_shed_at_once(
    runtimes: dict[str, TenantRuntime],
) -> None:
    # A request with a basket is decided on its own (not in a micro-batch: see test_batching
    # for those), behind the decisions in flight.
    runtime = runtimes["a"]
    runtime.deadline_seconds = 0.1
    admission = runtime.admission
    admission.cost = BatchCost()
    admission.cost.observe(1, 0.04)  # two in flight and this one: 120 ms past a 100 ms deadline
    admission._in_flight = 2
    context = {"basket": ["s01"]}
    started = time.perf_counter()
    body = runtime.recommend(RecommendationRequest(person_id="p06", k=3, context=context), "r1")
    assert time.perf_counter() - started < 0.1  # answered at once, not after waiting
    assert body["fallback"] == "popularity"
    assert runtime.faults["model_shed_slow"] == 1
    admission._in_flight = 1  # one in flight and this one: 80 ms, in time
    request = RecommendationRequest(person_id="p06", k=3, context=context)
    assert runtime.recommend(request, "r2")["fallback"] is None
    admission._in_flight = 0
    admission.cost = BatchCost()
    admission.cost.observe(1, 1.0)  # a slow spell: with none in flight it is let in all the same
    runtime.cache.invalidate(["p06"])
    request = RecommendationRequest(person_id="p06", k=2, context=context)
    assert runtime.recommend(request, "r3")["fallback"] is None
    cost = runtime.admission.cost.seconds(1)
    assert cost is not None
    assert cost < 1.0  # and the cost is measured again


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"person_id": "p00", "k": 0}, "k"),
        ({"person_id": "p00", "k": 101}, "k"),
        ({"k": 3}, "person_id"),
        ({"person_id": "p00", "colour": "red"}, "colour"),
        ({"person_id": "p00", "scope": "everything"}, "scope"),
        ({"person_id": "p\x0000"}, "NUL"),  # PostgreSQL's audit log could not store it
        ({"person_id": "p00", "context": {"basket": ["s01", "s\x00"]}}, "basket"),
    ],
)
def test_bad_requests_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], where: str, as_: Headers
) -> None:
    response = client.post("/api/v1/recommendations", json=body, headers=as_("a_reader"))
    assert response.status_code == 422
    assert where in response.text


def test_bad_events_and_oversized_bodies(client: TestClient, as_: Headers) -> None:
    headers = as_("a_writer")
    no_time = {"kind": "view", "person_id": "p00", "sku": "s00"}
    assert client.post("/api/v1/events", json=no_time, headers=headers).status_code == 422
    nobody = {"kind": "view", "sku": "s00", "occurred_at": NOW}
    assert (
        "person_id or a session_id"
        in client.post("/api/v1/events", json=nobody, headers=headers).text
    )
    assert client.post("/api/v1/events", json=[], headers=headers).status_code == 422
    huge = {"person_id": "p00", "filters": {"exclude_skus": ["x" * 100] * 12_000}}
    assert client.post("/api/v1/recommendations", json=huge, headers=headers).status_code == 413


def test_a_bad_event_is_named_in_the_shape_it_was_sent(client: TestClient, as_: Headers) -> None:
    """One event or a batch: the 422 names the field where the caller put it, with no trace of
    the other shape the body could have had or of pydantic's validator names."""
    headers = as_("a_writer")
    alone = client.post(
        "/api/v1/events", json={"kind": "teleport", "person_id": "p00"}, headers=headers
    )
    assert alone.status_code == 422
    where = sorted(tuple(e["loc"]) for e in alone.json()["detail"])
    assert where == [("body", "kind"), ("body", "occurred_at")]
    good = {"kind": "view", "person_id": "p00", "sku": "s00", "occurred_at": NOW}
    batch = [good, good, {"kind": "view", "person_id": "p00"}]
    listed = client.post("/api/v1/events", json=batch, headers=headers)
    assert listed.status_code == 422
    assert [e["loc"] for e in listed.json()["detail"]] == [["body", 2, "occurred_at"]]
    assert "function-after" not in listed.text
    assert "function-after" not in alone.text


def test_health_readiness_and_docs(
    client: TestClient, runtimes: dict[str, TenantRuntime], as_: Headers
) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/recommendations", "/api/v1/events"} <= set(paths)
    runtimes["b"].swap(None, None)
    not_ready = client.get("/ready")
    assert not_ready.status_code == 503
    assert not_ready.json()["without_model"] == ["b"]
    body = _ask(client, as_("b_reader"), person_id="b-p00", k=4).json()  # still answers
    assert body["fallback"] == "popularity"
    assert len(body["items"]) == 4


class _Broken:
    """A model whose every decision fails, as an unreadable artefact would."""

    def __init__(self, model: Any) -> None:
        self.items_ = model.items_
        self.users_ = model.users_
        self.models_ = model.models_

    def segment_top(self, segment: str) -> None:
        return None

    def ranked(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("the model's artefact cannot be read")


def test_a_repeated_fault_is_warned_once_a_second_with_its_count(
    runtimes: dict[str, TenantRuntime],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = runtimes["a"]
    clock = [100.0]
    monkeypatch.setattr(tenant_module.time, "monotonic", lambda: clock[0])
    with caplog.at_level("WARNING", logger="shelfwise.serve"):
        for _ in range(3):
            runtime._warn("cache", "tenant %s: the cache is down", "a")
        clock[0] += 1.5
        runtime._warn("cache", "tenant %s: the cache is down", "a")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "tenant a: the cache is down",
        "tenant a: the cache is down (and 2 more since the last warning)",
    ]


def test_warming_up_leaves_no_trace_but_a_decision_s_cost(
    runtimes: dict[str, TenantRuntime],
) -> None:
    runtime = runtimes["a"]
    runtime.admission.cost.observe(1, 60.0)  # as a first decision's set-up might take
    assert runtime.warm_up() > 0
    cost = runtime.admission.cost.seconds(1)
    assert cost is not None
    assert cost < 60.0  # learnt from the second decision alone
    assert runtime.answers == {}
    assert not runtime._last_good
    first = runtime.recommend(RecommendationRequest(person_id="p00", k=3), "r1")
    assert first["cached"] is False  # the warm-up cached nothing
    empty = TenantRuntime("empty", runtime.catalogue, runtime.cache)
    assert empty.warm_up() == 0.0
    empty.close()
