"""Micro-batches: decisions that arrive together are scored in one pass of the model.

The candidate stage, the feature fetch and the ranker all cost less per person on a batch
(one matrix product over many persons, one feature query, one LightGBM call). A
:class:`MicroBatcher` decides, whenever it is free, every batchable decision that queued while
it was busy (up to ``max_batch``; with ``window_seconds`` set it also waits that long for more),
so batches grow with the load and a lone request waits for nothing. It runs one
:func:`~shelfwise.recommend.decide.decide` per
group of requests that can share it (the same model, k and scope, no basket or per-request
filters) and hands each request its own list and removals. A request's deadline still holds:
it waits on its own future, and cancels it when the deadline passes, so a batch drops the
requests nobody waits for any more. The batch's spans (``decide.batch`` and the stages under it)
link to the span of every request in it.

Admission: a request given a deadline joins the next batch only if that batch, by the
:class:`BatchCost` learnt from the batches decided, would end by its deadline and by the
earliest deadline already in it, after the batch being decided now. Most of a decision's cost
is the same for one person as for several (measured on the million-item workspace: 28 ms for
one, 74 ms for eight), so under load the batcher takes a few requests more per batch instead
of shedding every request that finds one running.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pandas as pd
from opentelemetry import trace

from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.schemas import RecommendationRequest
from shelfwise.tracing import TRACER

# (model, persons, k, scope) -> (recommendations, removed) frames for all of them
Decider = Callable[[TwoStageRecommender, list[str], int, str], tuple[pd.DataFrame, pd.DataFrame]]
Result = tuple[pd.DataFrame, pd.DataFrame]
Group = tuple[int, int, str]  # (id of the model, k, scope): the requests one decide() serves
SLACK = 1.3  # a batch's expected cost times this must fit (a decision's time varies by 25%)


def batchable(request: RecommendationRequest) -> bool:
    """A known person's plain request: nothing of its own but k and scope."""
    context = request.context
    return (
        request.person_id is not None
        and not context.basket
        and context.category is None
        and context.segment is None
        and not request.filters.exclude_skus
    )


Moments = tuple[float, float, float, float]


def _mixed(old: Moments, new: Moments, weight: float) -> Moments:
    """Moving means: ``old`` moved ``weight`` of the way to ``new``."""
    a, b, c, d = (x + weight * (y - x) for x, y in zip(old, new, strict=True))
    return a, b, c, d


class BatchCost:
    """The seconds a decision over ``n`` persons takes, as ``fixed + per_person * n``, learnt
    from the decisions made: moving means of ``n``, the seconds, ``n**2`` and ``n * seconds``
    (each new decision weighs ``weight``), and their least-squares line. While the sizes seen
    hardly vary, the line keeps the slope it had and moves to the recent mean; before any two
    sizes were seen, another person costs ``prior_share`` of a decision (measured in process
    on the million-item workspace: 28 ms alone, 74 ms for eight, so 0.23), so that batches can
    form and their real cost be learnt."""

    def __init__(
        self, weight: float = 0.2, min_share: float = 0.1, prior_share: float = 0.25
    ) -> None:
        self.weight = weight
        self.min_share = min_share  # a person costs at least this share of the mean per person
        self.prior_share = prior_share
        self._moments: Moments | None = None  # means of n, seconds, n*n and n*seconds
        self._per_person: float | None = None
        self._lock = threading.Lock()

    def observe(self, persons: int, seconds: float) -> None:
        n, s = float(max(persons, 1)), float(seconds)
        point = (n, s, n * n, n * s)
        with self._lock:
            old, w = self._moments, self.weight
            self._moments = point if old is None else _mixed(old, point, w)
            mean_n, mean_s, nn, ns = self._moments
            spread = nn - mean_n * mean_n
            if spread >= 0.25:  # sizes that vary by half a person or more: a slope to learn
                self._per_person = (ns - mean_n * mean_s) / spread

    def forget(self) -> None:
        """Learn again from the next decision on."""
        with self._lock:
            self._moments, self._per_person = None, None

    def seconds(self, persons: int) -> float | None:
        """The expected seconds of a decision over ``persons`` (None: none made yet)."""
        with self._lock:
            if self._moments is None:
                return None
            mean_n, mean_s, _, _ = self._moments
            average = mean_s / mean_n
            per = self.prior_share * average if self._per_person is None else self._per_person
            per = min(max(per, self.min_share * average), average)  # fixed part >= 0
            return mean_s + per * (persons - mean_n)


@dataclass
class _Pending:
    model: TwoStageRecommender
    person: str
    k: int
    scope: str
    future: Future[Result]
    caller: trace.SpanContext  # the request's span, linked from its batch's
    deadline: float  # time.perf_counter() by which its caller stops waiting (inf: none)

    @property
    def group(self) -> Group:
        return (id(self.model), self.k, self.scope)


class MicroBatcher:
    """Decides together the batchable decisions that queued while it was busy."""

    def __init__(
        self,
        decide: Decider,
        window_seconds: float = 0.0,
        max_batch: int = 64,
        cost: BatchCost | None = None,
    ) -> None:
        self.decide = decide
        self.window = window_seconds
        self.max_batch = max_batch
        self.cost = cost or BatchCost()  # observed by the caller's decide (it times them)
        self.batches = 0
        self.decisions = 0
        self.sizes: Counter[int] = Counter()  # persons per batch decided -> batches
        self._waiting: deque[_Pending] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._running = False  # a batch is being decided
        self._busy_until = 0.0  # when it should end (perf_counter)
        self._thread = threading.Thread(target=self._run, name="micro-batches", daemon=True)
        self._thread.start()

    def submit(
        self,
        model: TwoStageRecommender,
        person: str,
        k: int,
        scope: str,
        deadline: float | None = None,
    ) -> Future[Result] | None:
        """This person's (recommendations, removed) rows, once their batch is decided; None
        when ``deadline`` (``time.perf_counter()`` seconds) is given and the next batch, by
        its expected cost, would not end by it or by a deadline already in it."""
        caller = trace.get_current_span().get_span_context()
        future: Future[Result] = Future()
        pending = _Pending(model, person, k, scope, future, caller, deadline or float("inf"))
        with self._ready:
            if self._closed:  # the service is stopping: the request falls back
                future.set_exception(RuntimeError("the micro-batcher is closed"))
                return future
            if deadline is not None and not self._in_time(pending):
                return None
            self._waiting.append(pending)
            self._ready.notify()
        return future

    def _in_time(self, pending: _Pending) -> bool:
        """Whether the next batch, with ``pending`` in it, would end in time for everyone in
        it. A lone request, with nothing running or waiting, is let in whatever it would take
        (as is any before a cost is learnt): its answer fills the cache, and its time keeps
        the cost up to date after a slow spell."""
        waiting = [p for p in self._waiting if not p.future.cancelled()][: self.max_batch - 1]
        if not waiting and not self._running:
            return True
        groups = Counter(p.group for p in waiting)
        groups[pending.group] += 1
        costs = [self.cost.seconds(n) for n in groups.values()]
        if any(c is None for c in costs):
            return True
        now = time.perf_counter()
        start = self._busy_until if self._running else now
        end = max(start, now) + SLACK * sum(c for c in costs if c is not None)
        return end <= min([pending.deadline, *(p.deadline for p in waiting)])

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._waiting or self._closed)
                if not self._waiting:  # closed, and nothing left to decide
                    return
                if self.window > 0:  # what comes within the window joins this batch
                    until = time.monotonic() + self.window
                    self._ready.wait_for(
                        lambda: len(self._waiting) >= self.max_batch or self._closed,
                        timeout=max(until - time.monotonic(), 0.0),
                    )
                taken = [
                    self._waiting.popleft() for _ in range(min(len(self._waiting), self.max_batch))
                ]
                groups = Counter(p.group for p in taken if not p.future.cancelled())
                expected = sum(self.cost.seconds(n) or 0.0 for n in groups.values())
                self._busy_until = time.perf_counter() + expected
                self._running = True
            try:
                self._decide(taken)
            finally:
                with self._ready:
                    self._running = False

    def _decide(self, pending: list[_Pending]) -> None:
        groups: defaultdict[Group, list[_Pending]] = defaultdict(list)
        for item in pending:
            groups[item.group].append(item)
        for group in groups.values():
            # a request that stopped waiting (its deadline passed) cancelled its future
            items = [item for item in group if item.future.set_running_or_notify_cancel()]
            if not items:
                continue
            persons = list(dict.fromkeys(item.person for item in items))
            links = [trace.Link(item.caller) for item in items if item.caller.is_valid]
            try:
                with TRACER.start_as_current_span(
                    "decide.batch", links=links, attributes={"persons": len(persons)}
                ):
                    recommendations, removed = self.decide(
                        items[0].model, persons, items[0].k, items[0].scope
                    )
            except Exception as error:
                for item in items:
                    item.future.set_exception(error)
                continue
            self.batches += 1
            self.decisions += len(items)
            self.sizes[len(persons)] += 1
            by_person, gone = _per_person(recommendations, persons), _per_person(removed, persons)
            for item in items:
                item.future.set_result(
                    (
                        by_person.get(item.person, recommendations.iloc[0:0]),
                        gone.get(item.person, removed.iloc[0:0]),
                    )
                )


def _per_person(frame: pd.DataFrame, persons: list[str]) -> dict[Any, pd.DataFrame]:
    """``frame``'s rows by person (a batch of one: the frame itself, without a groupby)."""
    if len(persons) == 1:
        return {persons[0]: frame}
    return dict(tuple(frame.groupby("person_id")))
