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
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
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


@dataclass
class _Pending:
    model: TwoStageRecommender
    person: str
    k: int
    scope: str
    future: Future[Result]
    caller: trace.SpanContext  # the request's span, linked from its batch's


class MicroBatcher:
    """Decides together the batchable decisions that queued while it was busy."""

    def __init__(self, decide: Decider, window_seconds: float = 0.0, max_batch: int = 64) -> None:
        self.decide = decide
        self.window = window_seconds
        self.max_batch = max_batch
        self.batches = 0
        self.decisions = 0
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="micro-batches", daemon=True)
        self._thread.start()

    def submit(self, model: TwoStageRecommender, person: str, k: int, scope: str) -> Future[Result]:
        """This person's (recommendations, removed) rows, once their batch is decided."""
        future: Future[Result] = Future()
        caller = trace.get_current_span().get_span_context()
        self._queue.put(_Pending(model, person, k, scope, future, caller))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending, closing = [first], False
            while len(pending) < self.max_batch:
                try:  # what queued meanwhile, and what comes within the window, if one is set
                    item = (
                        self._queue.get(timeout=self.window)
                        if self.window > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                pending.append(item)
            self._decide(pending)
            if closing:
                return

    def _decide(self, pending: list[_Pending]) -> None:
        groups: defaultdict[tuple[int, int, str], list[_Pending]] = defaultdict(list)
        for item in pending:
            groups[(id(item.model), item.k, item.scope)].append(item)
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
