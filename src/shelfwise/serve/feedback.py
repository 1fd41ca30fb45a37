"""Feedback: clicks, carts and purchases attributed to the decision that showed the item.

Each decision served is remembered (a bounded window of recent ones): its request id, the
person, variant, model version, segment and skus shown. A later ``click``, ``add_to_cart`` or
``purchase`` event of a shown sku is attributed to that decision, named by the event's
``request_id``, or else the person's latest decision within ``window_seconds`` that showed the
sku. Totals are kept per (variant, model version, segment): decisions, items shown, and the
attributed clicks, carts, purchases and revenue, from which click-through, conversion and
revenue per decision follow.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

from shelfwise.serve.schemas import Event

OUTCOMES = ("click", "add_to_cart", "purchase")
DEFAULT_WINDOW_SECONDS = 1800.0
REMEMBERED = 200_000


# A decision remembered: (request id, subject, (variant, model version, segment), skus shown,
# when). A plain tuple of strings and numbers, not a class: the garbage collector stops tracking
# such a tuple, where each instance of a class (and each frozenset) stays tracked, and a full
# collection over the 200,000 remembered took 290 ms against 2 ms, a pause of the event loop.
Shown = tuple[str, str, tuple[str, str, str], tuple[str, ...], float]
REQUEST: Final = 0
SUBJECT: Final = 1
KEY: Final = 2
SKUS: Final = 3
AT: Final = 4


@dataclass
class Totals:
    decisions: int = 0
    items: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    revenue: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        rate = self.decisions or 1
        return {
            "decisions": self.decisions,
            "items_shown": self.items,
            **{f"{name}s": count for name, count in self.outcomes.items()},
            "revenue": round(self.revenue, 2),
            "click_through": round(self.outcomes["click"] / (self.items or 1), 4),
            "conversion": round(self.outcomes["purchase"] / rate, 4),
            "revenue_per_decision": round(self.revenue / rate, 4),
        }


class Attribution:
    """Recent decisions and the outcomes attributed to them, per variant, version, segment."""

    def __init__(self, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> None:
        self.window = window_seconds
        self.totals: defaultdict[tuple[str, str, str], Totals] = defaultdict(Totals)
        self.unattributed = 0
        self._by_request: OrderedDict[str, Shown] = OrderedDict()
        self._by_subject: dict[str, tuple[Shown, ...]] = {}
        self._lock = threading.Lock()

    def served(self, body: dict[str, Any], segment: str | None) -> None:
        """Remember a decision as it is answered."""
        key = (str(body["variant"]), str(body["model_version"]), segment or "unknown")
        skus = tuple(dict.fromkeys(str(item["sku"]) for item in body["items"]))
        shown: Shown = (body["request_id"], body["person_id"], key, skus, time.monotonic())
        subject = shown[SUBJECT]
        with self._lock:
            totals = self.totals[key]
            totals.decisions += 1
            totals.items += len(skus)
            self._by_request[shown[REQUEST]] = shown
            # a person's last 20 decisions are enough to find the one (a tuple: untracked too)
            self._by_subject[subject] = (*self._by_subject.get(subject, ())[-19:], shown)
            while len(self._by_request) > REMEMBERED:
                _, old = self._by_request.popitem(last=False)
                kept = tuple(s for s in self._by_subject.get(old[SUBJECT], ()) if s is not old)
                if kept:
                    self._by_subject[old[SUBJECT]] = kept
                else:
                    self._by_subject.pop(old[SUBJECT], None)

    def observe(self, event: Event) -> bool:
        """Attribute one event; True when a decision that showed its sku was found."""
        if event.kind not in OUTCOMES or event.sku is None:
            return False
        subject = event.person_id or f"session:{event.session_id}"
        with self._lock:
            shown = self._find(subject, event.sku, event.request_id)
            if shown is None:
                self.unattributed += 1
                return False
            totals = self.totals[shown[KEY]]
            totals.outcomes[event.kind] += 1
            if event.kind == "purchase":
                totals.revenue += (event.price or 0.0) * event.quantity
            return True

    def _find(self, subject: str, sku: str, request_id: str | None) -> Shown | None:
        if request_id is not None:
            shown = self._by_request.get(request_id)
            return shown if shown is not None and sku in shown[SKUS] else None
        now = time.monotonic()
        for shown in reversed(self._by_subject.get(subject, ())):
            if now - shown[AT] > self.window:
                return None
            if sku in shown[SKUS]:
                return shown
        return None

    def report(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"variant": v, "model_version": m, "segment": s, **totals.as_dict()}
                for (v, m, s), totals in sorted(self.totals.items())
            ]
