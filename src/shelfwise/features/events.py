"""Contract events into the online store as they arrive: the real-time feed.

Events are posted as the contract's ``events`` rows (a page view, a cart, a search, a login),
with a source system's customer reference or only a cookie and a session. :class:`EventFeed`
gives each its person the way the offline interactions do: the record's person from
``person_map`` (the login rule), else the person an identified event of the same session
named (the session rule), else an anonymous actor keyed by cookie or session. Cookie and
device rules need the whole history and stay with the batch stitching. Purchase events are
left to the orders they echo, as offline. Then the rows are folded by
:meth:`FeatureStore.ingest <shelfwise.features.store.FeatureStore.ingest>`.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from shelfwise.features.retail import RESOLVED
from shelfwise.features.store import FeatureStore


def _page(context: Any) -> str | None:
    if context is None or context is pd.NA or (isinstance(context, float) and context != context):
        return None
    try:
        value = json.loads(context) if isinstance(context, str) else context
    except ValueError:
        return None
    page = value.get("page") if isinstance(value, dict) else None
    return str(page) if page is not None else None


def _text(series: pd.Series) -> pd.Series:
    """Strings, with blanks as missing (forms write '' where they mean unknown)."""
    text = series.astype("string").str.strip()
    return text.where(text != "", pd.NA)


class EventFeed:
    """Attributes posted events to persons and folds them into the online store."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self._records: dict[tuple[str, str], str] | None = None
        self._sessions: dict[str, str] = {}  # session id -> the person who logged in there

    def persons(self) -> dict[tuple[str, str], str]:
        """(source_system, source_id) -> person_id from the workspace's ``person_map``."""
        if self._records is None:
            frame = self.store.workspace.analytic.frame(RESOLVED)
            self._records = {
                (str(s), str(i)): str(p)
                for s, i, p in zip(
                    frame["source_system"], frame["source_id"], frame["person_id"], strict=True
                )
            }
        return self._records

    def refresh(self) -> None:
        """Read ``person_map`` again (after identity resolution ran)."""
        self._records = None

    def interactions(self, events: pd.DataFrame) -> pd.DataFrame:
        """Contract event rows as interaction rows, each with its person where one is known."""
        required = ("occurred_at", "event_type", "source_system")
        missing = [c for c in required if c not in events.columns]
        if missing:
            raise ValueError(
                f"events lack required column(s) {missing}; got {list(events.columns)}"
            )
        frame = events.reset_index(drop=True)

        def column(name: str) -> pd.Series:
            if name in frame:
                return _text(frame[name])
            return pd.Series(pd.NA, index=frame.index, dtype="string")

        system, customer = column("source_system"), column("customer_ref")
        session, cookie = column("session_id"), column("anonymous_id")
        records = self.persons()
        person = [
            records.get((s, c)) if isinstance(s, str) and isinstance(c, str) else None
            for s, c in zip(system, customer, strict=True)
        ]
        for index, (known, key) in enumerate(zip(person, session, strict=True)):
            if not isinstance(key, str):
                continue
            if known is not None:
                self._sessions[key] = known
            else:
                person[index] = self._sessions.get(key)
        fallback = cookie.fillna(session).fillna(system + ":" + customer)
        persons = pd.Series(person, index=frame.index, dtype="string")
        quantity = pd.to_numeric(frame["quantity"], errors="coerce") if "quantity" in frame else 0.0
        price = pd.to_numeric(frame["price"], errors="coerce") if "price" in frame else 0.0
        sales = price * (quantity if "quantity" in frame else 1.0)
        out = pd.DataFrame(
            {
                "person_id": persons,
                "actor_id": persons.fillna("anonymous:" + fallback),
                "sku": column("sku"),
                "event_at": frame["occurred_at"],
                "kind": column("event_type"),
                "quantity": quantity,
                "sales": sales,
                "device": system,
                "page": [_page(c) for c in frame["context"]] if "context" in frame else None,
            }
        )
        return out[out["kind"] != "purchase"].reset_index(drop=True)

    def ingest(self, events: pd.DataFrame) -> dict[str, Any]:
        """Attribute ``events`` and fold them into the streaming sets at once."""
        rows = self.interactions(events)
        report = self.store.ingest(rows) if len(rows) else {"rows": 0, "sets": {}}
        report["events"] = len(events)
        report["attributed"] = int(rows["person_id"].notna().sum())
        return report
