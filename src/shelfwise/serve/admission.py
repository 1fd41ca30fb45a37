"""Which model decisions begin: a tenant's slots in flight, its micro-batches and its pool.

A request that missed the cache asks :meth:`Admission.begin` for the model's decision. It
gets, in order:

1. the decision already under way for the same cache key (the same person, k, scope, context
   and model), which it shares and must never cancel: under load the same popular request
   comes many times before its answer reaches the cache;
2. or a decision of its own: in the next micro-batch when the request is plain and that
   batch, by the learnt :class:`~shelfwise.serve.batching.BatchCost`, would end within its
   budget (:mod:`shelfwise.serve.batching`), else alone on the decision pool, behind those in
   flight;
3. or the fault that sheds it to the fallbacks: ``model_shed_busy`` (``max_in_flight``
   decisions in flight already) or ``model_shed_slow`` (it would not end in time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.batching import BatchCost, MicroBatcher, batchable
from shelfwise.serve.schemas import RecommendationRequest
from shelfwise.tracing import carried

DECISION_THREADS = 4  # the pool deciding requests that cannot share a micro-batch

# (model, request) -> its (recommendations, removed) frames, decided alone
DecideOne = Callable[[TwoStageRecommender, RecommendationRequest], Any]


class Admission:
    """The decisions in flight for one tenant, and whether one more may begin."""

    def __init__(
        self,
        decide_one: DecideOne,
        batcher: MicroBatcher | None,
        cost: BatchCost,
        max_in_flight: int,
        name: str,
    ) -> None:
        self.decide_one, self.batcher = decide_one, batcher
        self.cost = cost  # a decision's cost by its persons, learnt from those decided
        self.max_in_flight = max_in_flight
        self.coalesced = 0  # requests that waited for another's decision for the same key
        self._in_flight = 0
        self._flights: dict[str, Future[Any]] = {}  # cache key -> its decision under way
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(DECISION_THREADS, thread_name_prefix=f"decide-{name}")

    def begin(
        self, model: TwoStageRecommender, request: RecommendationRequest, key: str, budget: float
    ) -> tuple[Future[Any] | None, str | None, bool]:
        """The decision for ``request`` (cache key ``key``) within ``budget`` seconds: its
        future, or the fault that sheds it; and whether the future is another request's."""
        flight = self._flights.get(key)
        if flight is not None and not flight.done():
            self.coalesced += 1
            return flight, None, True
        future, fault = self._start(model, request, budget)
        if future is not None:
            self._fly(key, future)
        return future, fault, False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _fly(self, key: str, future: Future[Any]) -> None:
        """``future`` is the decision for ``key`` until it ends."""

        def landed(_: Future[Any]) -> None:
            with self._lock:
                if self._flights.get(key) is future:
                    del self._flights[key]

        with self._lock:
            self._flights[key] = future
        future.add_done_callback(landed)

    def _admit(self, budget: float, batched: bool) -> str | None:
        """One more decision in flight (None), or why not: ``max_in_flight`` already are
        (busy), or, for a decision of its own, it would not finish within ``budget`` seconds
        behind those in flight at the learnt cost of a decision (slow; a batched one's timing
        is the batcher's). With none in flight it is always let in, so the cost is measured
        again after a slow spell."""
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                return "model_shed_busy"
            cost = None if batched else self.cost.seconds(1)
            if self._in_flight and cost is not None and (self._in_flight + 1) * cost > budget:
                return "model_shed_slow"
            self._in_flight += 1
            return None

    def _release(self, _: Future[Any] | None = None) -> None:
        """A slot in flight freed (also a done callback, hence the unused future)."""
        with self._lock:
            self._in_flight -= 1

    def _start(
        self, model: TwoStageRecommender, request: RecommendationRequest, budget: float
    ) -> tuple[Future[Any] | None, str | None]:
        """The model's decision, begun (its future), or the fault that sheds it: in the
        request's micro-batch where it can share one and that batch ends within ``budget``
        seconds, else on the pool. Its slot in flight frees when it ends, or when it is
        cancelled before it began."""
        batcher = self.batcher if batchable(request) else None
        if (fault := self._admit(budget, batcher is not None)) is not None:
            return None, fault
        future: Future[Any] | None
        try:
            if batcher is not None:
                deadline = time.perf_counter() + budget
                future = batcher.submit(
                    model, request.subject, request.k, request.scope, deadline=deadline
                )
                if future is None:
                    self._release()
                    return None, "model_shed_slow"
            else:
                future = self._pool.submit(carried(self.decide_one), model, request)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)
        return future, None
