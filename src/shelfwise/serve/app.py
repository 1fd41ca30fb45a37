"""The FastAPI application: versioned routers, health, readiness, metrics, safe errors."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise import __version__
from shelfwise.serve.auth import KeyRing, Principal, requires
from shelfwise.serve.dashboard import dashboard_router
from shelfwise.serve.docs import docs_router
from shelfwise.serve.errors import validation_error
from shelfwise.serve.forecasts import ForecastRefused
from shelfwise.serve.lifecycle import lifecycle_router
from shelfwise.serve.schemas import (
    MAX_BATCH,
    CatalogueChange,
    ChangesApplied,
    Event,
    EventsAccepted,
    FeedbackReport,
    ForecastRequest,
    ForecastResponse,
    RecommendationRequest,
    RecommendationResponse,
)
from shelfwise.serve.tenant import TenantRuntime

log = logging.getLogger("shelfwise.serve")
MAX_BODY_BYTES = 1_000_000


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shelfwise_requests_total",
            "Requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shelfwise_request_seconds",
            "Request latency by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.decisions = Counter(
            "shelfwise_decisions_total",
            "Decisions by tenant and the stage that answered.",
            ["tenant", "stage"],
            registry=self.registry,
        )
        self.faults = Counter(
            "shelfwise_faults_total",
            "Faults that degraded a request, by tenant and stage.",
            ["tenant", "stage"],
            registry=self.registry,
        )
        self.audit = Counter(
            "shelfwise_audit_records_total",
            "Decision audit records by tenant and outcome (written, dropped, failed).",
            ["tenant", "outcome"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "shelfwise_feedback_total",
            "Decisions, items shown and attributed outcomes, by variant, model and segment.",
            ["tenant", "variant", "model_version", "segment", "measure"],
            registry=self.registry,
        )
        self.batches = Counter(
            "shelfwise_micro_batches_total",
            "Micro-batches decided and the decisions in them, by tenant (measure: batches, "
            "decisions).",
            ["tenant", "measure"],
            registry=self.registry,
        )
        self.coalesced = Counter(
            "shelfwise_coalesced_total",
            "Requests that waited for the decision another request for the same key had "
            "begun, by tenant.",
            ["tenant"],
            registry=self.registry,
        )
        self.events = Counter(
            "shelfwise_events_total",
            "Events accepted, by tenant.",
            ["tenant"],
            registry=self.registry,
        )


def create_app(tenants: Mapping[str, TenantRuntime], keys: KeyRing) -> FastAPI:
    """The service over ``tenants`` (name -> runtime), guarded by ``keys``."""
    app = FastAPI(
        title="shelfwise",
        version=__version__,
        description="Decisions for a retailer: recommendations, served fast, never empty; "
        "demand forecasts with their intervals.",
        docs_url=None,  # FastAPI's pages load their scripts from a CDN: ours serve their own
        redoc_url=None,
    )
    app.state.tenants = dict(tenants)
    app.state.keys = keys
    app.state.metrics = metrics = Metrics()

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(Measured, metrics=metrics)
    app.include_router(_health())
    app.include_router(_recommendations(), prefix="/api/v1")
    app.include_router(_events(), prefix="/api/v1")
    app.include_router(_forecasts(), prefix="/api/v1")
    app.include_router(lifecycle_router(_tenant), prefix="/api/v1")
    app.include_router(dashboard_router())
    app.include_router(docs_router(app.title, app.openapi_url or "/openapi.json"))
    return app


class Measured:
    """Pure ASGI middleware (cheaper than ``BaseHTTPMiddleware`` on every request): stamps
    each request's arrival (``scope["state"]["arrived"]``, where its deadline starts), refuses
    a body over ``MAX_BODY_BYTES`` (413), counts and times every response, and turns an
    unhandled error into a 500 without a stack trace."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})["arrived"] = started
        route = scope["path"]
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            response = JSONResponse({"detail": f"the body is over {MAX_BODY_BYTES:,} bytes"}, 413)
            await response(scope, receive, send)
            self._count(route, 413, started)
            return
        status = 500
        began = False

        async def sent(message: Message) -> None:
            nonlocal status, began
            if message["type"] == "http.response.start":
                status, began = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, sent)
        except Exception:  # never a stack trace in a response
            log.exception("unhandled error on %s", route)
            status = 500
            if not began:
                await JSONResponse({"detail": "internal error; it has been logged"}, 500)(
                    scope, receive, send
                )
        self._count(route, status, started)

    def _count(self, route: str, status: int, started: float) -> None:
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _tenant(request: Request, principal: Principal) -> TenantRuntime:
    runtime: TenantRuntime | None = request.app.state.tenants.get(principal.tenant)
    if runtime is None:
        raise HTTPException(404, f"tenant {principal.tenant!r} has nothing served here")
    return runtime


def _health() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    def health() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @router.get("/ready")
    def ready(request: Request) -> JSONResponse:
        """Every tenant has a model loaded (else 503, naming those without), with each
        model's version, load time and artefact size; and each tenant's demand forecaster
        (optional: a tenant without one is ready, its forecasts refused with the reason)."""
        tenants: dict[str, TenantRuntime] = request.app.state.tenants
        missing = sorted(name for name, runtime in tenants.items() if not runtime.ready)
        status = 503 if missing or not tenants else 200
        models = {
            name: {"version": runtime.served.version, **runtime.served.facts}
            for name, runtime in tenants.items()
            if runtime.ready
        }
        forecasters = {name: _forecaster_facts(runtime) for name, runtime in tenants.items()}
        body = {
            "ready": status == 200,
            "without_model": missing,
            "models": models,
            "forecasters": forecasters,
        }
        return JSONResponse(body, status)

    @router.get("/metrics", response_class=PlainTextResponse)
    def prometheus(request: Request) -> PlainTextResponse:
        """Prometheus metrics: requests, latency, decisions by stage, faults, events."""
        metrics: Metrics = request.app.state.metrics
        for name, runtime in request.app.state.tenants.items():
            for stage, count in runtime.faults.items():
                _set_counter(metrics.faults.labels(name, stage), count)
            for stage, count in runtime.answers.items():
                _set_counter(metrics.decisions.labels(name, stage), count)
            for row in runtime.feedback.report():
                labels = (name, row["variant"], row["model_version"], row["segment"])
                for measure in (
                    "decisions",
                    "items_shown",
                    "clicks",
                    "add_to_carts",
                    "purchases",
                    "revenue",
                ):
                    _set_counter(metrics.feedback.labels(*labels, measure), row[measure])
            if runtime.batcher is not None:
                for measure in ("batches", "decisions"):
                    count = getattr(runtime.batcher, measure)
                    _set_counter(metrics.batches.labels(name, measure), count)
            _set_counter(metrics.coalesced.labels(name), runtime.admission.coalesced)
            if runtime.audit is not None:
                for outcome in ("written", "dropped", "failed"):
                    count = getattr(runtime.audit, outcome)
                    _set_counter(metrics.audit.labels(name, outcome), count)
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _forecaster_facts(runtime: TenantRuntime) -> dict[str, Any]:
    model, facts = runtime.forecaster, runtime.forecaster_facts
    if model is None:
        return {"version": None, "reason": facts.get("reason", "none is loaded")}
    return {
        "version": runtime.forecaster_version,
        "horizon": model.settings.horizon,
        "known_covariates": list(model.settings.known),
        "last_observed_period": str(model.panel_.periods[-1].date()),
        **facts,
    }


def _set_counter(child: Any, total: float) -> None:
    """Bring a counter up to the runtime's own tally (counters only go up)."""
    current = child._value.get()
    if total > current:
        child.inc(total - current)


def _recommendations() -> APIRouter:
    router = APIRouter(tags=["recommendations"])

    @router.post("/recommendations", response_model=RecommendationResponse)
    async def recommendations(
        body: RecommendationRequest,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
    ) -> dict[str, Any]:
        """The top ``k`` for a person (or an anonymous session or device) in a context, with
        scores, explanations, the model version and variant; never empty."""
        runtime = _tenant(request, principal)
        arrived = getattr(request.state, "arrived", None)
        return await runtime.recommend_async(body, request_id=uuid.uuid4().hex, arrived=arrived)

    return router


def _events() -> APIRouter:
    router = APIRouter(tags=["events"])

    @router.post("/events", response_model=EventsAccepted)
    def events(
        request: Request,
        principal: Annotated[Principal, Depends(requires("writer"))],
        body: Annotated[Event | list[Event], Body()],
    ) -> dict[str, Any]:
        """One event or a batch (at most 1,000): into the online store at once, and the
        cached decisions of the persons they name dropped."""
        batch = body if isinstance(body, list) else [body]
        if not batch:
            raise HTTPException(422, "an empty batch of events")
        if len(batch) > MAX_BATCH:
            raise HTTPException(422, f"at most {MAX_BATCH} events a batch, got {len(batch)}")
        runtime = _tenant(request, principal)
        accepted = runtime.ingest(batch)
        request.app.state.metrics.events.labels(runtime.name).inc(len(batch))
        return accepted

    @router.get("/feedback", response_model=FeedbackReport)
    def feedback(
        request: Request, principal: Annotated[Principal, Depends(requires("reviewer"))]
    ) -> dict[str, Any]:
        """Click-through, conversion and revenue per decision, per variant, model version and
        segment, from the outcomes attributed to the decisions that showed the items."""
        runtime = _tenant(request, principal)
        return {"rows": runtime.feedback.report(), "unattributed": runtime.feedback.unattributed}

    @router.post("/catalogue/changes", response_model=ChangesApplied)
    def catalogue_changes(
        request: Request,
        principal: Annotated[Principal, Depends(requires("writer"))],
        changes: Annotated[list[CatalogueChange], Body(max_length=MAX_BATCH)],
    ) -> dict[str, Any]:
        """Stock levels and prices, applied to the rules before this call returns: once it
        has, no decision shows an item it made out of stock."""
        return _tenant(request, principal).apply_changes(changes)

    return router


def _forecasts() -> APIRouter:
    router = APIRouter(tags=["forecasts"])

    @router.post(
        "/forecasts",
        response_model=ForecastResponse,
        responses={
            404: {"description": "a series the forecaster does not know"},
            503: {"description": "the tenant serves no demand forecaster (the reason given)"},
        },
    )
    async def forecasts(
        body: ForecastRequest,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
    ) -> dict[str, Any]:
        """Demand forecasts of the named series for the next ``horizon`` periods after the last
        observed one, each with its interval (at ``interval_level``), demand class and the
        model that made it; ``known`` plans promotions (known covariates) per series and
        period. 404 for a series the forecaster does not know, 422 for a horizon past its own
        or a planned row off the forecast's periods, 503 while the tenant has no forecaster."""
        runtime = _tenant(request, principal)
        try:
            return await runtime.forecast_async(body)
        except ForecastRefused as refused:
            raise HTTPException(refused.status, refused.detail) from None

    return router
