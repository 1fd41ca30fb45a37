"""What posted events and catalogue changes do to a tenant's state: the events as rows of the
online store's streaming sets, and stock and price changes into the catalogue the rules read
(:class:`~shelfwise.serve.tenant.TenantRuntime` applies both)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.serve.schemas import CatalogueChange, Event


def event_rows(events: list[Event]) -> pd.DataFrame:
    """The events as the online store ingests them, one row each."""
    return pd.DataFrame(
        {
            "person_id": [e.person_id for e in events],
            "actor_id": [e.person_id or f"session:{e.session_id}" for e in events],
            "sku": [e.sku for e in events],
            "event_at": [e.occurred_at for e in events],
            "kind": [e.kind for e in events],
            "order_id": [e.order_id for e in events],
            "quantity": [e.quantity for e in events],
            "sales": [(e.price or 0.0) * e.quantity for e in events],
            "device": [e.device for e in events],
            "page": [e.page for e in events],
        }
    )


def apply_catalogue_changes(catalogue: Catalogue, changes: list[CatalogueChange]) -> dict[str, Any]:
    """Stock and price changes into ``catalogue`` in place: counts of those applied, those
    older than what it holds (stale), and the skus it does not know."""
    applied, stale, unknown = 0, 0, []
    for change in changes:
        try:
            if change.on_hand is not None:
                moment = None if change.at is None else pd.Timestamp(change.at)
                if not catalogue.update_stock(
                    change.sku, change.on_hand, store_id=change.store_id, at=moment
                ):
                    stale += 1
                    continue
            if change.price is not None:
                catalogue.update_price(change.sku, change.price, cost=change.cost)
            applied += 1
        except KeyError:
            unknown.append(change.sku)
    return {"applied": applied, "stale": stale, "unknown_skus": unknown}
