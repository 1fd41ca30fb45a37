"""Stock and price changes reach the rules at once: an item out of stock is shown no more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from shelfwise.serve.tenant import TenantRuntime


def test_a_sku_out_of_stock_leaves_every_list_at_once(
    client: TestClient, runtimes: dict[str, TenantRuntime], as_: Callable[[str], dict[str, str]]
) -> None:
    def top(k: int = 5) -> Any:
        body = {"person_id": "p00", "k": k}
        return client.post("/api/v1/recommendations", json=body, headers=as_("a_writer")).json()

    first = top()
    sold_out = first["items"][0]["sku"]
    assert top()["cached"] is True
    change = [{"sku": sold_out, "on_hand": 0}, {"sku": "no-such-sku", "on_hand": 3}]
    applied = client.post("/api/v1/catalogue/changes", json=change, headers=as_("a_writer"))
    assert applied.json() == {"applied": 1, "stale": 0, "unknown_skus": ["no-such-sku"]}
    after = top()
    assert after["cached"] is False  # the cached list showed it: decided again
    assert sold_out not in {item["sku"] for item in after["items"]}
    assert len(after["items"]) == 5
    assert runtimes["a"].faults["cache_stale"] == 1


def test_late_stock_reports_are_ignored_and_prices_apply(
    client: TestClient, runtimes: dict[str, TenantRuntime], as_: Callable[[str], dict[str, str]]
) -> None:
    headers = as_("a_writer")
    changes = [
        {"sku": "s00", "on_hand": 4, "store_id": "s1", "at": "2024-05-02T10:00:00Z"},
        {"sku": "s00", "on_hand": 0, "store_id": "s1", "at": "2024-05-01T10:00:00Z"},
        {"sku": "s01", "price": 3.5, "cost": 1.0},
    ]
    body = client.post("/api/v1/catalogue/changes", json=changes, headers=headers).json()
    assert body == {"applied": 2, "stale": 1, "unknown_skus": []}
    facts = runtimes["a"].catalogue.facts(["s00", "s01"])
    assert facts["on_hand"].tolist()[0] == 4
    assert facts["price"].tolist()[1] == 3.5
    bad = client.post("/api/v1/catalogue/changes", json=[{"sku": "s00"}], headers=headers)
    assert bad.status_code == 422
    assert "on_hand or price" in bad.text
    refused = client.post("/api/v1/catalogue/changes", json=changes, headers=as_("a_reader"))
    assert refused.status_code == 403


def test_a_best_seller_out_of_stock_leaves_the_popularity_fallback(
    client: TestClient, runtimes: dict[str, TenantRuntime], as_: Callable[[str], dict[str, str]]
) -> None:
    runtimes["a"].admission.max_in_flight = 0  # every request is shed to the fallbacks

    def shed(k: int) -> Any:
        body = {"person_id": "p07", "k": k}
        return client.post("/api/v1/recommendations", json=body, headers=as_("a_writer")).json()

    first = shed(5)
    assert first["fallback"] == "popularity"
    best = first["items"][0]["sku"]
    client.post(
        "/api/v1/catalogue/changes", json=[{"sku": best, "on_hand": 0}], headers=as_("a_writer")
    )
    skus = [item["sku"] for item in shed(4)["items"]]
    assert best not in skus
    assert skus == [item["sku"] for item in first["items"][1:5]]  # the rest move up


def test_the_fallbacks_leave_out_the_basket_and_the_filters(
    client: TestClient, runtimes: dict[str, TenantRuntime], as_: Callable[[str], dict[str, str]]
) -> None:
    """A shed request gets best sellers, but never what is in its basket or its filters, as
    the model's own rules (in_basket, blocked) would have it; the last good list too."""
    runtimes["a"].admission.max_in_flight = 0  # every request is shed to the fallbacks

    def shed(body: dict[str, Any]) -> Any:
        return client.post("/api/v1/recommendations", json=body, headers=as_("a_writer")).json()

    first = shed({"person_id": "p08", "k": 5})
    assert first["fallback"] == "popularity"
    best = [item["sku"] for item in first["items"]]
    body = {"person_id": "p08", "k": 5, "context": {"basket": [best[0]]}}
    body["filters"] = {"exclude_skus": [best[1]]}
    answer = shed(body)
    skus = [item["sku"] for item in answer["items"]]
    assert len(skus) == 5
    assert not {best[0], best[1]} & set(skus)
    assert skus[:3] == best[2:]
    runtimes["a"].admission.max_in_flight = 4
    served = shed({"person_id": "p09", "k": 5})  # the model's: p09's last good list
    assert served["fallback"] is None
    runtimes["a"].admission.max_in_flight = 0
    theirs = [item["sku"] for item in served["items"]]
    again = shed({"person_id": "p09", "k": 5, "context": {"basket": [theirs[0]]}})
    assert again["fallback"] == "last_good"
    assert theirs[0] not in [item["sku"] for item in again["items"]]
