"""Which model answers a request: A/B variants by a stable hash, and a canary that rolls back.

Assignment hashes the randomisation unit (the person, or the session for anonymous traffic
or when ``unit="session"``) with the experiment's salt into [0, 1): the same unit always gets
the same variant, across requests and processes, and units spread by the shares.

A :class:`Canary` sends a share of traffic (by the same hash, salted apart) to a new model
version and watches it: once it has ``min_requests`` answers, an error rate above
``max_error_rate`` or a p95 latency above ``max_p95_ms`` over its last ``window`` answers rolls
it back at once (its traffic returns to the champion), with the reason kept and logged.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from shelfwise.recommend.two_stage import TwoStageRecommender

log = logging.getLogger("shelfwise.serve")
UNITS = ("person", "session")


def bucket(salt: str, unit: str) -> float:
    """A stable draw in [0, 1) for ``unit`` under ``salt``."""
    digest = hashlib.sha256(f"{salt}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Arm:
    """One variant of an experiment: its model, registry version and share of the units."""

    name: str
    model: TwoStageRecommender | None
    version: str | None
    share: float


@dataclass(frozen=True)
class Experiment:
    """An A/B test over ``arms`` whose shares sum to 1, randomised by ``unit``."""

    name: str
    arms: tuple[Arm, ...]
    unit: str = "person"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"experiment {self.name!r}: unit must be one of {UNITS}")
        if len(self.arms) < 2 or len({a.name for a in self.arms}) != len(self.arms):
            raise ValueError(f"experiment {self.name!r}: two or more arms with distinct names")
        shares = [a.share for a in self.arms]
        if min(shares) <= 0 or not np.isclose(sum(shares), 1.0):
            raise ValueError(f"experiment {self.name!r}: shares must be positive and sum to 1")

    def assign(self, unit: str) -> Arm:
        draw, edge = bucket(self.name, unit), 0.0
        for arm in self.arms:
            edge += arm.share
            if draw < edge:
                return arm
        return self.arms[-1]


@dataclass
class Canary:
    """A new version on ``share`` of the traffic, rolled back when it misbehaves."""

    model: TwoStageRecommender
    version: str
    share: float
    max_error_rate: float = 0.05
    max_p95_ms: float = 100.0
    min_requests: int = 50
    window: int = 500
    rolled_back: str | None = None  # the reason, once rolled back
    _outcomes: deque[tuple[bool, float]] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise ValueError(f"canary share must be in (0, 1), got {self.share}")
        self._outcomes = deque(maxlen=self.window)

    @property
    def active(self) -> bool:
        return self.rolled_back is None

    def takes(self, unit: str) -> bool:
        return self.active and bucket(f"canary:{self.version}", unit) < self.share

    def observe(self, ok: bool, seconds: float) -> None:
        """Record one answer; roll back when the window breaks a threshold."""
        with self._lock:
            self._outcomes.append((ok, seconds))
            if not self.active or len(self._outcomes) < self.min_requests:
                return
            errors = sum(1 for good, _ in self._outcomes if not good) / len(self._outcomes)
            p95 = 1000 * float(np.percentile([s for _, s in self._outcomes], 95))
            if errors > self.max_error_rate:
                self.rolled_back = f"error rate {errors:.1%} > {self.max_error_rate:.1%}"
            elif p95 > self.max_p95_ms:
                self.rolled_back = f"p95 {p95:.1f} ms > {self.max_p95_ms:g} ms"
            if self.rolled_back:
                log.error("canary %s rolled back: %s", self.version, self.rolled_back)
