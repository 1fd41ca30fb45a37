"""Shadow traffic: the tenant's challengers and experimental versions answering its requests
beside the champion, in the background, without touching a response.

A :class:`ShadowTraffic` holds, per family (``recommender``, ``forecaster``), the version the
registry's ``challenger`` alias names and any experimental versions the settings list
(``shadow_versions``, as ``NAME/VERSION``); :meth:`ShadowTraffic.refresh` reloads them when the
alias moves (the champion watch calls it). Once the champion's answer is made, the tenant
hands it here: the same request is put to each shadow model on a small pool of threads of its
own, and every version's answer, the champion's included, becomes a shadow prediction
(:mod:`shelfwise.lifecycle.shadow`). Only the champion's own model answers are shadowed (not a
cached answer, a fallback, an A/B arm or a canary): those are what the challenger would
replace. A shadow model that fails is logged and counted (``faults["shadow_error"]``), and work
beyond ``backlog`` is skipped and counted (``shadow_busy``), so shadowing costs a request
nothing but the hand-over.

Purchase events become the recommender's actuals, on a thread of their own (one, so two
purchases of a person never race on the same rows), which also completes the shadow tests
that are ready at most every ``complete_every_seconds``. The forecaster's actuals need whole
weeks of sales and are filled by a schedule (``ShadowTests.record_demand`` then ``sweep``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pandas as pd

from shelfwise.features.store import FeatureStore
from shelfwise.forecast.stage import MODEL_NAME as FORECASTER
from shelfwise.lifecycle.shadow import (
    MIN_SAMPLES,
    Prediction,
    ShadowRecorder,
    ShadowTests,
    forecast_key,
)
from shelfwise.ops._schema import utc_now
from shelfwise.ops.states import ShadowRole
from shelfwise.recommend.stage import MODEL_NAME as RECOMMENDER
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.answers import CHAMPION, listed_frames
from shelfwise.serve.forecasts import ForecastRefused, forecast
from shelfwise.serve.schemas import Event, ForecastRequest, RecommendationRequest
from shelfwise.serve.shadow_models import ShadowModel, ShadowVersions
from shelfwise.workspace import Workspace

log = logging.getLogger("shelfwise.serve")
Decide = Callable[[TwoStageRecommender, RecommendationRequest], tuple[pd.DataFrame, pd.DataFrame]]


class ShadowTraffic:
    """The tenant's shadow versions and the threads that put its requests to them."""

    def __init__(
        self,
        tests: ShadowTests,
        *,
        experimental: Iterable[str] = (),
        recorder: ShadowRecorder | None = None,
        threads: int = 2,
        backlog: int = 256,
        min_samples: int = MIN_SAMPLES,
        complete_every_seconds: float = 60.0,
    ) -> None:
        self.tests = tests
        self.recorder = recorder or ShadowRecorder(tests.operational, tests.tenant)
        self.versions = ShadowVersions(experimental)
        self.backlog, self.min_samples = backlog, min_samples
        self.complete_every = complete_every_seconds
        self.faults: Counter[str] = Counter()
        self._decide: Decide | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._last_sweep = -float("inf")
        self._warned: dict[str, float] = {}
        tenant = tests.tenant
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=f"shadow-{tenant}")
        self._actuals = ThreadPoolExecutor(1, thread_name_prefix=f"shadow-actuals-{tenant}")

    def bind(self, decide: Decide, faults: Counter[str]) -> None:
        """Decide as the tenant does (its catalogue, rules and context), and count faults in
        the tenant's counter (so ``/metrics`` shows them)."""
        self._decide, self.faults = decide, faults

    @property
    def models(self) -> dict[str, tuple[ShadowModel, ...]]:
        return self.versions.models

    def refresh(self, workspace: Workspace, store: FeatureStore | None) -> bool:
        """Load the versions now wanted (each family's challenger and listed experimental
        ones) and drop the others; True when anything changed. A registry that cannot be
        read leaves the shadows as they were (logged): shadowing never stops the service."""
        try:
            changed, failed = self.versions.refresh(workspace, store)
        except Exception:
            log.exception(
                "tenant %s: the shadow versions could not be looked up", self.tests.tenant
            )
            changed, failed = False, 1
        self.faults["shadow_load"] += failed
        return changed

    # The tenant's hooks.
    def recommended(
        self, request: RecommendationRequest, request_id: str, body: Mapping[str, Any]
    ) -> None:
        """After the champion's model answered ``request``: put it to the shadow versions."""
        shadows = self.models[RECOMMENDER]
        if not shadows or body["variant"] != CHAMPION or body["fallback"] or body["cached"]:
            return
        skus = [item["sku"] for item in body["items"]]
        champion = Prediction(
            ShadowRole.CHAMPION, str(body["model_version"]), request.subject, skus
        )
        at = utc_now()  # the request's time, every role's: an actual dated after it fits all
        self._submit(self._pool, self._score_lists, shadows, request, request_id, champion, at)

    def forecasted(self, request: ForecastRequest, body: Mapping[str, Any]) -> None:
        """After the champion forecaster answered ``request``: put it to the shadow versions."""
        shadows = self.models[FORECASTER]
        if shadows:
            self._submit(self._pool, self._score_forecasts, shadows, request, body, utc_now())

    def observed(self, events: Sequence[Event]) -> None:
        """Purchases of known persons become the actuals of their recommendations."""
        bought: dict[tuple[str, datetime], list[str]] = {}
        for event in events:
            if event.kind == "purchase" and event.person_id and event.sku:
                bought.setdefault((event.person_id, event.occurred_at), []).append(event.sku)
        if bought and self.models[RECOMMENDER]:
            self._submit(self._actuals, self._fill, bought)

    # The background work.
    def _score_lists(
        self,
        shadows: tuple[ShadowModel, ...],
        request: RecommendationRequest,
        request_id: str,
        champion: Prediction,
        at: datetime,
    ) -> None:
        predictions = [champion]
        assert self._decide is not None, "bind the tenant's decide first"
        for shadow in shadows:
            try:
                items, _ = listed_frames(*self._decide(shadow.model, request), request=request)
            except Exception:
                self._failed(RECOMMENDER, shadow)
                continue
            skus = [item["sku"] for item in items]
            predictions.append(Prediction(shadow.role, shadow.version, request.subject, skus))
        self._record(RECOMMENDER, request_id, predictions, request.context.segment, at)

    def _score_forecasts(
        self,
        shadows: tuple[ShadowModel, ...],
        request: ForecastRequest,
        body: Mapping[str, Any],
        at: datetime,
    ) -> None:
        predictions = _forecasts(ShadowRole.CHAMPION, str(body["model_version"]), body)
        for shadow in shadows:
            try:
                answer = forecast(shadow.model, shadow.version, request)
            except ForecastRefused as refused:  # a series or horizon it does not know
                self.faults["shadow_refused"] += 1
                self._warn(
                    f"refused:{shadow.version}",
                    "%s v%s refused: %s",
                    FORECASTER,
                    shadow.version,
                    refused.detail,
                )
                continue
            except Exception:
                self._failed(FORECASTER, shadow)
                continue
            predictions += _forecasts(shadow.role, shadow.version, answer)
        self._record(FORECASTER, uuid.uuid4().hex, predictions, None, at)

    def _record(
        self,
        name: str,
        request_id: str,
        predictions: list[Prediction],
        segment: str | None,
        at: datetime,
    ) -> None:
        if all(p.role == ShadowRole.CHAMPION for p in predictions):
            return  # no shadow answered: nothing to pair
        if not self.recorder.record(name, request_id, predictions, segment=segment, at=at):
            self.faults["shadow_queue_full"] += 1

    def _fill(self, bought: dict[tuple[str, datetime], list[str]]) -> None:
        self.recorder.flush(timeout=2.0)  # a purchase right after its recommendation finds it
        for (person, at), skus in bought.items():
            self.tests.record_purchases(person, skus, at)
        now = time.monotonic()
        if now - self._last_sweep >= self.complete_every:
            self._last_sweep = now
            for done in self.tests.sweep(min_samples=self.min_samples):
                log.warning("tenant %s: %s", self.tests.tenant, done["alert"]["title"])

    def _submit(self, pool: ThreadPoolExecutor, work: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self._pending >= self.backlog:
                self.faults["shadow_busy"] += 1
                return
            self._pending += 1
        try:
            future = pool.submit(work, *args)
        except RuntimeError:  # shut down
            self._settled(None)
            return
        future.add_done_callback(self._settled)

    def _settled(self, future: Future[None] | None) -> None:
        with self._lock:
            self._pending -= 1
        if future is None or future.cancelled() or future.exception() is None:
            return
        error = future.exception()
        self.faults["shadow_error"] += 1
        log.error("tenant %s: shadow work failed", self.tests.tenant, exc_info=error)

    def _failed(self, name: str, shadow: ShadowModel) -> None:
        self.faults["shadow_error"] += 1
        self._warn(
            f"error:{name}:{shadow.version}",
            "%s v%s failed in shadow",
            name,
            shadow.version,
            exc_info=True,
        )

    def _warn(self, key: str, message: str, *args: Any, exc_info: bool = False) -> None:
        """At most once a minute per ``key``: a failing shadow must not flood the log."""
        now = time.monotonic()
        if now - self._warned.get(key, -float("inf")) >= 60.0:
            self._warned[key] = now
            log.warning(message, *args, exc_info=exc_info)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until the shadow work handed over so far is done and written."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        self.recorder.flush(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._actuals.shutdown(wait=False, cancel_futures=True)
        self.recorder.close()


def _forecasts(role: ShadowRole, version: str, body: Mapping[str, Any]) -> list[Prediction]:
    """A forecast response as one prediction per series and week."""
    out = []
    for row in body["forecasts"]:
        week = str(row["period_start"])
        value = {"series_id": row["series_id"], "period_start": week}
        value.update({k: float(row[k]) for k in ("forecast", "lower", "upper")})
        out.append(Prediction(role, version, forecast_key(row["series_id"], week), value))
    return out
