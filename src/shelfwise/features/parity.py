"""Train/serve parity: the online store, fed event by event, agrees with the offline frame.

:func:`check_parity` materialises the streaming and static sets as of ``start``, replays every
interaction of ``[start, end)`` into the online store in order (in batches that never split an
order), then compares the online vectors at ``end`` with the offline frame at ``end`` for a
random sample of person x product pairs and of sessions, feature by feature.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.data.validation import quote
from shelfwise.features.store import FeatureStore

RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-9


@dataclass
class ParityReport:
    start: str
    end: str
    replayed_rows: int
    batches: int
    ingest_rows_per_s: float
    entities_compared: int
    features_compared: int
    mismatched: dict[str, int] = field(default_factory=dict)  # feature -> rows that differ

    @property
    def ok(self) -> bool:
        return not self.mismatched and self.entities_compared > 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def order_batches(rows: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """``rows`` (sorted by time) cut into batches of about ``size`` rows between orders."""
    orders = rows["order_id"].to_numpy(dtype=object)
    bounds = [0]
    start = size
    while start < len(rows):
        while start < len(rows) and _same_order(orders[start], orders[start - 1]):
            start += 1
        bounds.append(start)
        start += size
    bounds.append(len(rows))
    return [rows.iloc[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _same_order(one: object, other: object) -> bool:
    return one is not None and one == other


def replayable(store: FeatureStore, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The offline interaction rows of ``[start, end)``, in time order."""
    table = store.offline.base_relation("fs_interactions")
    return store.workspace.analytic.frame(
        f"SELECT * FROM {quote(table)} WHERE event_at >= ? AND event_at < ? "
        "ORDER BY event_at, order_id, sku",
        [start.to_pydatetime(), end.to_pydatetime()],
    )


def equal(offline: np.ndarray[Any, Any], online: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Row by row: the same number (within tolerance, NaN equal to NaN) or the same category."""
    if offline.dtype == object or online.dtype == object:
        return np.array(
            [
                (a is None and b is None) or (a is not None and b is not None and a == b)
                for a, b in zip(offline, online, strict=True)
            ],
            dtype=bool,
        )
    close: np.ndarray[Any, Any] = np.isclose(
        offline.astype(np.float64),
        online.astype(np.float64),
        rtol=RELATIVE_TOLERANCE,
        atol=ABSOLUTE_TOLERANCE,
        equal_nan=True,
    )
    return close


def check_parity(
    store: FeatureStore,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    sample: int = 500,
    batch_rows: int = 5_000,
    seed: int = 0,
) -> ParityReport:
    """Replay ``[start, end)`` into the online store and compare it with the offline frame."""
    names = [s.name for s in store.sets if s.streaming or s.static]
    store.materialise(as_of=start.to_pydatetime(), sets=names)
    rows = replayable(store, start, end)
    batches = order_batches(rows, batch_rows)
    began = time.perf_counter()
    for batch in batches:
        store.ingest(batch)
    seconds = time.perf_counter() - began
    pairs = rows.dropna(subset=["person_id", "sku"])[["person_id", "sku"]].drop_duplicates()
    pairs = pairs.sample(min(sample, len(pairs)), random_state=seed)
    actors = rows[["actor_id"]].drop_duplicates()
    actors = actors.sample(min(sample, len(actors)), random_state=seed)
    report = ParityReport(
        start=start.isoformat(),
        end=end.isoformat(),
        replayed_rows=len(rows),
        batches=len(batches),
        ingest_rows_per_s=round(len(rows) / seconds, 1) if seconds > 0 else 0.0,
        entities_compared=len(pairs) + len(actors),
        features_compared=0,
    )
    compared: set[str] = set()
    for asked in (pairs, actors):
        if asked.empty:
            continue
        asked = asked.reset_index(drop=True).assign(as_of=end)
        offline = store.training_frame(asked, sets=names)
        online = store.vectors(asked, sets=names)
        for column in offline.columns:
            if column in asked.columns:
                continue
            same = equal(offline[column].to_numpy(), online[column].to_numpy())
            compared.add(column)
            if not same.all():
                report.mismatched[column] = report.mismatched.get(column, 0) + int((~same).sum())
    report.features_compared = len(compared)
    return report
