"""Each decision leaves spans for its stages, nested under the request's."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shelfwise.tracing import configure

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the process's first: install ours, once
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    EXPORTER.clear()
    return EXPORTER


def test_a_decision_shows_where_its_time_went(
    client: TestClient, as_: Callable[[str], dict[str, str]], spans: InMemorySpanExporter
) -> None:
    # A basket makes the request its own decision: one trace from the request to the rules.
    body = {"person_id": "p00", "k": 4, "context": {"basket": ["s01"]}}
    response = client.post("/api/v1/recommendations", json=body, headers=as_("a_reader"))
    assert response.status_code == 200
    finished = {span.name: span for span in spans.get_finished_spans()}
    stages = {"recommend", "cache.get", "retrieval", "features", "ranking", "rules", "cache.put"}
    assert stages <= set(finished)
    root = finished["recommend"]
    assert root.attributes is not None
    assert root.attributes["request_id"] == response.json()["request_id"]
    assert root.context is not None
    for name in ("retrieval", "ranking", "rules", "cache.get"):
        span = finished[name]
        assert span.context is not None
        assert span.context.trace_id == root.context.trace_id, name  # across the model's thread


def test_a_micro_batch_links_to_each_request_it_decided(
    client: TestClient, as_: Callable[[str], dict[str, str]], spans: InMemorySpanExporter
) -> None:
    response = client.post(
        "/api/v1/recommendations", json={"person_id": "p01", "k": 4}, headers=as_("a_reader")
    )
    assert response.status_code == 200
    finished = {span.name: span for span in spans.get_finished_spans()}
    batch, root = finished["decide.batch"], finished["recommend"]
    assert root.context is not None
    assert batch.context is not None
    assert [link.context.span_id for link in batch.links] == [root.context.span_id]
    assert finished["ranking"].context is not None
    assert finished["ranking"].context.trace_id == batch.context.trace_id


def test_tracing_kinds() -> None:
    configure("none")
    with pytest.raises(ValueError, match="tracing must be one of"):
        configure("jaeger")
