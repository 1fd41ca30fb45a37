"""One tenant's serving state and its decision path: model, then fallbacks, never empty.

A :class:`TenantRuntime` holds the tenant's champion recommender (swapped whole, so a request
sees one model from start to end), its catalogue for the rules, its online feature store and
its response cache. :meth:`TenantRuntime.recommend` answers from, in order:

1. the cache (a decision for the same request key, dropped when the person's events arrive);
2. the model: :func:`~shelfwise.recommend.decide.decide` within ``deadline_seconds`` of the
   request's arrival (a request that waited its deadline away in a queue, that finds
   ``max_in_flight`` decisions already in flight, or that would not finish in time, by the
   learnt cost of a decision, is shed to the next stage at once, so an overload degrades
   answers rather than spending the machine on decisions nobody waits for; a request whose
   decision is already under way shares it: see :mod:`shelfwise.serve.admission`);
3. this person's last good list (the model's last answer for them);
4. their segment's best sellers (when the request names a segment the model learned);
5. the catalogue's best sellers in stock.

A fault at any stage (an exception, a deadline passed, the cache down) is logged, counted in
``faults`` by stage, and the next stage answers; the response names the stage (``fallback``).

Which model step 2 uses is the request's variant (:mod:`shelfwise.serve.routing`): the
champion, an A/B experiment's arm, or a canary while it holds; the response names it.

The champion's own answers are also put, in the background, to the tenant's shadow versions
(challengers, experimental versions: :mod:`shelfwise.serve.shadow`), which never change one.

The tenant may also hold a demand forecaster (:meth:`TenantRuntime.forecast_async`, on threads
of its own so that a long forecast takes no decision's worker); without one the
recommendations are served as ever and a forecast is refused with the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping
from concurrent.futures import CancelledError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.features.store import FeatureStore
from shelfwise.forecast.model import DemandForecaster
from shelfwise.lifecycle import ModelRegistry
from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.cold_start import Context, categories_of
from shelfwise.recommend.decide import decide
from shelfwise.recommend.overrides import Overrides
from shelfwise.recommend.rules import RulePolicy, shown
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.admission import Admission
from shelfwise.serve.answers import (
    CHAMPION,
    Plan,
    Served,
    best_sellers,
    cache_key,
    listed,
    listed_frames,
    without,
)
from shelfwise.serve.audit import DecisionAudit
from shelfwise.serve.batching import BatchCost, MicroBatcher
from shelfwise.serve.cache import CacheUnavailable, ResponseCache
from shelfwise.serve.feedback import Attribution
from shelfwise.serve.forecasts import ForecastRefused, forecast_routed
from shelfwise.serve.group_commit import GroupCommit
from shelfwise.serve.routing import Canary, Experiment
from shelfwise.serve.schemas import (
    CatalogueChange,
    Event,
    ForecastRequest,
    RecommendationRequest,
)
from shelfwise.serve.segments import SegmentModels
from shelfwise.serve.shadow import ShadowTraffic
from shelfwise.serve.updates import apply_catalogue_changes, event_rows
from shelfwise.tracing import carried, span

log = logging.getLogger("shelfwise.serve")
LAST_GOOD_PERSONS = 100_000
FORECAST_THREADS = 2
EVENTS_PER_RUN = 5_000  # events folded in one run of the group commit (a request posts <= 1,000)


class TenantRuntime:
    """A tenant's models, catalogue, features and cache, and the decision path over them."""

    def __init__(
        self,
        name: str,
        catalogue: Catalogue,
        cache: ResponseCache,
        *,
        model: TwoStageRecommender | None = None,
        version: str | None = None,
        store: FeatureStore | None = None,
        policy: RulePolicy | None = None,
        overrides: Overrides | None = None,
        deadline_seconds: float = 0.5,
        audit: DecisionAudit | None = None,
        batching: bool = True,
        batch_window_seconds: float = 0.0,
        facts: Mapping[str, Any] | None = None,
        max_in_flight: int = 64,
        forecaster: DemandForecaster | None = None,
        forecaster_version: str | None = None,
        forecaster_facts: Mapping[str, Any] | None = None,
        registry: ModelRegistry | None = None,
        alerts: AlertInbox | None = None,
        shadow: ShadowTraffic | None = None,
        segments: SegmentModels | None = None,
    ) -> None:
        self.name = name
        # The lifecycle's registry and ML alert inbox (None: its endpoints answer 503).
        self.registry, self.alerts = registry, alerts
        self.catalogue = catalogue
        self.cache = cache
        self.store = store
        self._events: GroupCommit[Event, dict[str, Any]] = GroupCommit(
            self._fold_events, EVENTS_PER_RUN, f"events-{name}"
        )
        self.policy = policy or RulePolicy()
        self.overrides = overrides or Overrides()  # the merchandisers' pins and blocks
        self.rules_revision = 0  # how often the merchandising rules changed since the start
        self.deadline_seconds = deadline_seconds
        self._warned: dict[str, tuple[float, int]] = {}  # fault -> (last warned, held since)
        self.audit = audit
        self.feedback = Attribution()
        self.faults: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        # person -> their last good list, as JSON text: untracked by the garbage collector (see
        # MemoryCache), where 100,000 lists of item dicts would lengthen every full collection
        self._last_good: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        cost = BatchCost()
        self.batcher: MicroBatcher | None = (
            MicroBatcher(self._decide_many, batch_window_seconds, cost=cost) if batching else None
        )
        self.admission = Admission(self._decide, self.batcher, cost, max_in_flight, name)
        self.served = Served(None, None)
        self.experiment: Experiment | None = None
        self.canary: Canary | None = None
        self.swap(model, version, facts)
        self._forecasts = ThreadPoolExecutor(
            max_workers=FORECAST_THREADS, thread_name_prefix=f"forecast-{name}"
        )
        self._forecaster: tuple[DemandForecaster | None, str | None, dict[str, Any]]
        self.swap_forecaster(forecaster, forecaster_version, forecaster_facts)
        # The segments' own champions, where the lifecycle adopted one (else the champion).
        self.segments = segments or SegmentModels()
        self.shadow = shadow  # challengers scoring the champion's requests in the background
        if shadow is not None:
            shadow.bind(self._decide, self.faults)

    # Models.
    def swap(
        self,
        model: TwoStageRecommender | None,
        version: str | None,
        facts: Mapping[str, Any] | None = None,
    ) -> None:
        """Serve ``model`` from the next request on; requests in flight finish on the old."""
        self.served = Served(model, version, CHAMPION, dict(facts or {}))
        popular = best_sellers(self.catalogue, model)
        self._popular = (popular, self.catalogue.index(popular))  # skus and their rows

    def warm_up(self, model: TwoStageRecommender | None = None) -> float:
        """A decision for a known person, neither cached nor audited, so the first request
        does not pay for lazy imports and first-call set-up, then another whose time is the
        first a decision's cost learns (the set-up's is not a decision's); the first's
        seconds (0: no model). ``model``: one about to be swapped in (default: the served
        one); an error here is the model's, raised before it serves anyone."""
        model = model or self.served.model
        if model is None or not len(model.users_):
            return 0.0
        started = time.perf_counter()
        self._decide(model, RecommendationRequest(person_id=str(model.users_[0]), k=10))
        categories_of(model, self.catalogue)  # for category pages and up-sell: 0.2 s on CJ
        seconds = time.perf_counter() - started
        self.admission.cost.forget()
        self._decide(model, RecommendationRequest(person_id=str(model.users_[-1]), k=10))
        return seconds

    @property
    def ready(self) -> bool:
        return self.served.model is not None

    def swap_forecaster(
        self,
        model: DemandForecaster | None,
        version: str | None,
        facts: Mapping[str, Any] | None = None,
    ) -> None:
        """Forecast with ``model`` from the next request on (None: refuse forecasts, for the
        reason ``facts["reason"]`` gives); one assignment, so a request sees one model."""
        self._forecaster = (model, version, dict(facts or {}))

    @property
    def forecaster(self) -> DemandForecaster | None:
        return self._forecaster[0]

    @property
    def forecaster_version(self) -> str | None:
        return self._forecaster[1]

    @property
    def forecaster_facts(self) -> dict[str, Any]:
        """Its load time and artefact size, or (without one) the reason there is none."""
        return self._forecaster[2]

    def route(self, request: RecommendationRequest) -> Served:
        """The variant that answers this request: the canary's share, else the experiment's
        arm for the request's unit, else the segment's own champion, else the champion."""
        canary, experiment = self.canary, self.experiment
        person_unit = request.person_id or request.subject
        if canary is not None and canary.takes(person_unit):
            return Served(canary.model, canary.version, "canary")
        if experiment is not None:
            unit = request.subject if experiment.unit == "session" else person_unit
            arm = experiment.assign(unit)
            return Served(arm.model, arm.version, arm.name)
        return self.segments.route(request) or self.served

    # Decisions.
    def recommend(
        self, request: RecommendationRequest, request_id: str, arrived: float | None = None
    ) -> dict[str, Any]:
        """The decision for ``request``, waiting for the model in this thread; ``arrived``
        (``time.perf_counter()`` when it reached the service) starts its deadline, which is
        now when not given."""
        with span("recommend", tenant=self.name, request_id=request_id) as current:
            plan = self._plan(request, request_id, arrived or time.perf_counter())
            if plan.future is not None:
                try:
                    frames = plan.future.result(timeout=plan.budget)
                except BaseException as error:
                    return self._finished(plan, current, error=error)
                return self._finished(plan, current, frames=frames)
            return self._finished(plan, current)

    async def recommend_async(
        self, request: RecommendationRequest, request_id: str, arrived: float | None = None
    ) -> dict[str, Any]:
        """:meth:`recommend` for the event loop: a cached answer or a shed request is answered
        on the loop at once, and the loop awaits a model decision without holding a thread."""
        with span("recommend", tenant=self.name, request_id=request_id) as current:
            plan = self._plan(request, request_id, arrived or time.perf_counter())
            if plan.future is not None:
                waited = asyncio.wrap_future(plan.future)
                try:  # a shared future is not cancelled when this request stops waiting
                    frames = await asyncio.wait_for(
                        asyncio.shield(waited) if plan.shared else waited, plan.budget
                    )
                except BaseException as error:
                    if isinstance(error, asyncio.CancelledError):
                        task = asyncio.current_task()
                        if plan.shared and not (task is not None and task.cancelling()):
                            # not this request: the decision it shared was cancelled
                            return self._finished(plan, current, error=CancelledError())
                        if not plan.shared:
                            plan.future.cancel()
                        raise
                    return self._finished(plan, current, error=error)
                return self._finished(plan, current, frames=frames)
            return self._finished(plan, current)

    def _plan(self, request: RecommendationRequest, request_id: str, arrived: float) -> Plan:
        """The cached answer, or the model's decision started (a future), or the fault that
        keeps the model out of it (missing, shed late, busy or slow)."""
        served = self.route(request)
        key = cache_key(request, served, self.rules_revision)
        plan = Plan(request, request_id, served, key, time.perf_counter())
        cached = self._cached(plan.key)
        if cached is not None and not self._shown(cached["items"]):
            self.faults["cache_stale"] += 1  # an item went out of stock since: decide again
            cached = None
        if cached is not None:
            self.answers["cache"] += 1
            plan.body = {**cached, "request_id": request_id, "cached": True}
            return plan
        plan.budget = self.deadline_seconds - (time.perf_counter() - arrived)
        if served.model is None:
            plan.fault = "model_missing"
        elif plan.budget <= 0:
            plan.fault = "model_shed_late"  # it waited its deadline away before reaching us
        else:
            plan.future, plan.fault, plan.shared = self.admission.begin(
                served.model, request, plan.key, plan.budget
            )
        return plan

    def _finished(
        self,
        plan: Plan,
        current: Any,
        *,
        frames: Any = None,
        error: BaseException | None = None,
    ) -> dict[str, Any]:
        """The answer: the cached one, or the model's, or the fallbacks' (model faults logged
        and counted); remembered, cached and audited."""
        request, served = plan.request, plan.served
        body = plan.body
        if body is None:
            items, removed = self._model_items(plan, frames, error)
            body = self._fall_back(plan, items, removed)
            if self.shadow is not None:
                self.shadow.recommended(request, plan.request_id, body)
        else:
            self._audit(body, [])
        self.feedback.served(body, request.context.segment)
        current.set_attribute("variant", body["variant"])
        current.set_attribute("fallback", body["fallback"] or "")
        if served.variant == "canary" and self.canary is not None and plan.body is None:
            self.canary.observe(plan.fault is None, time.perf_counter() - plan.started)
        return body

    def _model_items(
        self, plan: Plan, frames: Any, error: BaseException | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        variant = plan.served.variant
        if isinstance(error, TimeoutError | FutureTimeout | CancelledError):
            assert plan.future is not None
            if not plan.shared:
                plan.future.cancel()  # not begun yet: no worker spends time on it
            plan.fault = "model_deadline"  # (a shared one: cancelled as its first caller's)
            self._warn(
                "model_deadline",
                "tenant %s: %s passed its %.3fs deadline",
                self.name,
                variant,
                self.deadline_seconds,
            )
        elif error is not None:
            plan.fault = "model_error"
            log.error(
                "tenant %s: %s failed; falling back",
                self.name,
                variant,
                exc_info=(type(error), error, error.__traceback__),
            )
        if plan.fault is not None:
            self.faults[plan.fault] += 1
            return [], []
        return listed_frames(*frames, request=plan.request)

    def _warn(self, fault: str, message: str, *args: Any) -> None:
        """A warning at most once a second per fault, with how many it stands for (under load
        a fault a request would flood the log, and writing it costs the requests)."""
        now = time.monotonic()
        with self._lock:
            last, held = self._warned.get(fault, (0.0, 0))
            if now - last < 1.0:
                self._warned[fault] = (last, held + 1)
                return
            self._warned[fault] = (now, 0)
        log.warning(message + (f" (and {held} more since the last warning)" if held else ""), *args)

    def _fall_back(
        self, plan: Plan, items: list[dict[str, Any]], removed: list[dict[str, Any]]
    ) -> dict[str, Any]:
        request, served = plan.request, plan.served
        subject = request.subject
        stage: str | None = None
        if not items:
            with self._lock:
                remembered, stage = self._last_good.get(subject, "[]"), "last_good"
            items = json.loads(remembered)
            kept = [item for item in items if self._shown([item])]
            items = without(kept, request, self._blocked(subject))[: request.k]
        if not items:
            items, stage = self._from_segment(served, request), "segment_popularity"
        if not items:
            items, stage = self._from_popularity(request), "popularity"
        self.answers[stage or "model"] += 1
        body = {
            "request_id": plan.request_id,
            "person_id": subject,
            "items": items,
            "model_version": served.version,
            "variant": served.variant,
            "fallback": stage,
            "cached": False,
        }
        if stage is None:
            text = json.dumps(items)
            with self._lock:
                self._last_good[subject] = text
                self._last_good.move_to_end(subject)
                while len(self._last_good) > LAST_GOOD_PERSONS:
                    self._last_good.popitem(last=False)
            self._store(plan.key, subject, body)
        self._audit(body, removed)
        return body

    def _audit(self, body: dict[str, Any], removed: list[dict[str, Any]]) -> None:
        if self.audit is not None and not self.audit.submit(body, removed):
            self.faults["audit_queue_full"] += 1

    def _decide(
        self, model: TwoStageRecommender, request: RecommendationRequest
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One request's decision with its context: (recommendations, removed) frames."""
        context = request.context
        subject = request.subject
        contexts = {
            subject: Context(
                recent=tuple(context.basket), category=context.category, segment=context.segment
            )
        }
        blocks = tuple(request.filters.exclude_skus)
        started = time.perf_counter()
        decision = decide(
            model,
            [subject],
            request.k,
            self.catalogue,
            replace(self.policy, scope=request.scope),
            basket=tuple(context.basket),
            overrides=(
                replace(self.overrides, blocks=(*self.overrides.blocks, *blocks))
                if blocks
                else self.overrides
            ),
            contexts=contexts,
        )
        self.admission.cost.observe(1, time.perf_counter() - started)
        return decision.recommendations, decision.removed

    def _decide_many(
        self, model: TwoStageRecommender, persons: list[str], k: int, scope: str
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One decision over many plain requests (the micro-batches)."""
        started = time.perf_counter()
        policy = replace(self.policy, scope=scope)
        decision = decide(model, persons, k, self.catalogue, policy, overrides=self.overrides)
        self.admission.cost.observe(len(persons), time.perf_counter() - started)
        return decision.recommendations, decision.removed

    def _shown(self, items: list[dict[str, Any]]) -> bool:
        """No item that the policy's rules on the item remove now: out of stock (a stock event
        may have come since), or of a category it excludes (the rules may have changed)."""
        rows = self.catalogue.index([item["sku"] for item in items])
        return bool(shown(self.catalogue, self.policy, rows).all())

    def set_merchandising(self, policy: RulePolicy, overrides: Overrides) -> None:
        """The merchandisers' new rules, for every decision from now on; the answers cached
        under the old ones are not read again (their keys name the rules' revision)."""
        shown(self.catalogue, policy, np.zeros(0, dtype=np.int64))  # its masks, made now
        self.policy, self.overrides = policy, overrides
        self.rules_revision += 1

    def _from_segment(self, served: Served, request: RecommendationRequest) -> list[dict[str, Any]]:
        segment = request.context.segment
        if served.model is None or segment is None:
            return []
        top = served.model.segment_top(segment)
        if top is None:
            return []
        skus = served.model.items_[top[top >= 0]]
        blocked = self._blocked(request.subject)
        return listed(
            self.catalogue, skus, "segment_popularity", request, blocked=blocked, policy=self.policy
        )

    def _from_popularity(self, request: RecommendationRequest) -> list[dict[str, Any]]:
        skus, rows = self._popular
        blocked = self._blocked(request.subject)
        return listed(self.catalogue, skus, "popularity", request, rows, blocked, self.policy)

    def _blocked(self, person: str) -> tuple[str, ...]:
        """The merchandisers' blocks for ``person``: everyone's and their own."""
        overrides = self.overrides
        return (*overrides.blocks, *overrides.person_blocks.get(person, ()))

    # Forecasts.
    async def forecast_async(self, request: ForecastRequest) -> dict[str, Any]:
        """The demand forecaster's answer to ``request``, computed on the tenant's forecast
        threads while the loop serves other requests; :class:`ForecastRefused` (503) without
        a forecaster, or for what the model cannot answer (404, 422)."""
        model, version, facts = self._forecaster
        if model is None:
            self.faults["forecaster_missing"] += 1
            reason = facts.get("reason", "none is loaded")
            raise ForecastRefused(
                503, f"tenant {self.name!r} serves no demand forecaster: {reason}"
            )
        with span("forecast", tenant=self.name, series=len(request.series_ids)):
            work = carried(forecast_routed)
            segments = self.segments.forecaster
            try:
                answer = await asyncio.get_running_loop().run_in_executor(
                    self._forecasts, work, model, version, request, segments
                )
            except ForecastRefused:
                raise
            except Exception:
                self.faults["forecast_error"] += 1
                raise
        if self.shadow is not None and not answer.get("segment_models"):
            self.shadow.forecasted(request, answer)  # the champion's answer, all of it
        return answer

    # The cache, which may fail without failing a request.
    def _cached(self, key: str) -> dict[str, Any] | None:
        try:
            with span("cache.get"):
                return self.cache.get(key)
        except CacheUnavailable:
            self.faults["cache"] += 1
            self._warn(
                "cache", "tenant %s: the cache is unavailable; answering without it", self.name
            )
            return None

    def _store(self, key: str, subject: str, body: dict[str, Any]) -> None:
        try:
            with span("cache.put"):
                self.cache.put(key, subject, body)
        except CacheUnavailable:
            self.faults["cache"] += 1

    # Events.
    def ingest(self, events: list[Event]) -> dict[str, Any]:
        """Feed the online store and drop the cached decisions of everyone the events name.
        Events that other requests post meanwhile are folded in the same run (see
        :mod:`shelfwise.serve.group_commit`); this returns once its own are in the store."""
        for event in events:
            self.feedback.observe(event)
        if self.shadow is not None:
            self.shadow.observed(events)  # purchases: the actuals of shadowed recommendations
        report: dict[str, Any] = {"rows": len(events), "seconds": 0.0}
        if self.store is not None:
            report = self._events.submit(events)
        subjects = sorted({e.person_id or f"session:{e.session_id}" for e in events})
        try:
            dropped = self.cache.invalidate(subjects)
        except CacheUnavailable:
            self.faults["cache"] += 1
            dropped = 0
        return {
            "accepted": len(events),
            "persons": len(subjects),
            "cache_entries_dropped": dropped,
            "seconds": float(report.get("seconds", 0.0)),
        }

    def _fold_events(self, events: list[Event]) -> dict[str, Any]:
        """One run of the events' group commit: every queued request's events into the
        online store's streaming sets at once."""
        if self.store is None:  # submitted only for a tenant with a store
            raise RuntimeError(f"tenant {self.name!r} has no online store")
        return self.store.ingest(event_rows(events))

    # Stock and prices.
    def apply_changes(self, changes: list[CatalogueChange]) -> dict[str, Any]:
        """Stock and price changes into the catalogue the rules read, at once: the next
        decision sees them, and a cached one showing an item now out of stock is not served."""
        return apply_catalogue_changes(self.catalogue, changes)

    def close(self) -> None:
        self.admission.close()
        self._events.close()
        self._forecasts.shutdown(wait=False, cancel_futures=True)
        if self.batcher is not None:
            self.batcher.close()
        if self.audit is not None:
            self.audit.close()
        if self.shadow is not None:
            self.shadow.close()
