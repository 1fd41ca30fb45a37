"""OpenTelemetry spans around the stages of a decision, so a slow request shows where its
time went: ``cache``, ``retrieval``, ``features``, ``ranking``, ``rules``.

The spans use the OpenTelemetry API alone: without a configured tracer provider they cost
next to nothing. :func:`configure` installs one with the SDK: ``console`` prints finished
spans (a batch at a time) to stderr; ``none`` leaves tracing off. An OTLP collector needs the
``opentelemetry-exporter-otlp`` package, which shelfwise does not install; give its provider
to OpenTelemetry yourself and these spans go there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context, trace

TRACER = trace.get_tracer("shelfwise")
KINDS = ("none", "console")
P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span named ``name`` under the current one, with ``attributes``."""
    with TRACER.start_as_current_span(name, attributes=attributes) as current:
        yield current


def carried(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` run in the caller's trace context (for work handed to another thread)."""
    captured = context.get_current()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        token = context.attach(captured)
        try:
            return function(*args, **kwargs)
        finally:
            context.detach(token)

    return run


def configure(kind: str) -> None:
    """Install a tracer provider that exports spans (``console``), or leave tracing off."""
    if kind not in KINDS:
        raise ValueError(f"tracing must be one of {KINDS}, got {kind!r}")
    if kind == "none":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "shelfwise"}))
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
