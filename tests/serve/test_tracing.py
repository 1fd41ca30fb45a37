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
    body = {"person_id": "p00", "k": 4}
    response = client.post("/api/v1/recommendations", json=body, headers=as_("a_reader"))
    assert response.status_code == 200
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert {
        "recommend",
        "cache.get",
        "retrieval",
        "features",
        "ranking",
        "rules",
        "cache.put",
    } <= set(finished)
    root = finished["recommend"]
    assert root.attributes is not None
    assert root.attributes["request_id"] == response.json()["request_id"]
    for name in ("retrieval", "ranking", "rules", "cache.get"):
        span = finished[name]
        assert span.context is not None
        assert root.context is not None
        assert span.context.trace_id == root.context.trace_id, name  # across the model's thread


def test_tracing_kinds() -> None:
    configure("none")
    with pytest.raises(ValueError, match="tracing must be one of"):
        configure("jaeger")
