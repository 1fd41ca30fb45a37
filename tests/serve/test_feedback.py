"""Clicks, carts and purchases attributed to the decisions that showed the items."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve import feedback
from shelfwise.serve.feedback import Attribution
from shelfwise.serve.routing import Arm, Experiment
from shelfwise.serve.schemas import Event
from shelfwise.serve.tenant import TenantRuntime

NOW = "2024-04-25T10:00:00Z"


def test_outcomes_count_for_the_variant_that_showed_the_item(
    client: TestClient,
    runtimes: dict[str, TenantRuntime],
    tenant_models: dict[str, TwoStageRecommender],
    as_: Callable[[str], dict[str, str]],
) -> None:
    model = tenant_models["a"]
    runtime = runtimes["a"]
    runtime.experiment = Experiment(
        "ab", (Arm("control", model, "1", 0.5), Arm("b", model, "1", 0.5))
    )
    headers = as_("a_writer")

    def show(person: str) -> Any:
        body = {"person_id": person, "k": 3, "context": {"segment": "loyal"}}
        return client.post("/api/v1/recommendations", json=body, headers=headers).json()

    decisions = {p: show(p) for p in ("p00", "p01", "p02", "p03")}
    first = decisions["p00"]
    shown = first["items"][0]["sku"]
    events = [
        # by request id
        {"kind": "click", "person_id": "p00", "sku": shown, "occurred_at": NOW,
         "request_id": first["request_id"]},
        # by the attribution window: p00's latest decision showed it
        {"kind": "purchase", "person_id": "p00", "sku": shown, "occurred_at": NOW,
         "price": 2.5, "quantity": 2},
        # a sku no decision showed: not attributed
        {"kind": "click", "person_id": "p00", "sku": "never-shown", "occurred_at": NOW},
        # a view is not an outcome
        {"kind": "view", "person_id": "p01", "sku": shown, "occurred_at": NOW},
    ]  # fmt: skip
    assert client.post("/api/v1/events", json=events, headers=headers).status_code == 200
    report = client.get("/api/v1/feedback", headers=as_("c_admin"))
    assert report.status_code == 404  # tenant c serves nothing
    assert client.get("/api/v1/feedback", headers=as_("a_writer")).status_code == 403
    api = client.get("/api/v1/feedback", headers=as_("a_reviewer")).json()
    runtime_report = runtime.feedback.report()
    assert api == {"rows": runtime_report, "unattributed": 1}
    assert sum(r["decisions"] for r in runtime_report) == 4
    assert runtime.feedback.unattributed == 1
    mine = next(r for r in runtime_report if r["variant"] == first["variant"])
    assert mine["segment"] == "loyal"
    assert mine["clicks"] == 1
    assert mine["purchases"] == 1
    assert mine["revenue"] == 5.0
    assert mine["click_through"] == round(1 / mine["items_shown"], 4)
    others = [r for r in runtime_report if r["variant"] != first["variant"]]
    assert all(r["clicks"] == 0 and r["purchases"] == 0 for r in others)
    metrics = client.get("/metrics").text
    assert "shelfwise_feedback_total{" in metrics
    assert 'measure="revenue"' in metrics


def _body(request_id: str, person: str, skus: list[str]) -> dict[str, Any]:
    items = [{"sku": sku, "rank": i + 1} for i, sku in enumerate(skus)]
    return {
        "request_id": request_id,
        "person_id": person,
        "items": items,
        "variant": "champion",
        "model_version": "3",
    }


def _click(person: str, sku: str, request_id: str | None = None) -> Event:
    return Event(kind="click", person_id=person, sku=sku, occurred_at=NOW, request_id=request_id)


def test_attribution_finds_the_decision_and_forgets_the_oldest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feedback, "REMEMBERED", 3)
    attribution = Attribution()
    attribution.served(_body("r1", "p1", ["a", "b", "a"]), "loyal")
    attribution.served(_body("r2", "p1", ["c"]), None)
    assert attribution.observe(_click("p1", "a"))  # p1's latest decision that showed a
    assert not attribution.observe(_click("p1", "c", request_id="r1"))  # r1 did not show c
    assert attribution.observe(_click("p1", "c", request_id="r2"))
    for n in (3, 4):
        attribution.served(_body(f"r{n}", "p2", ["d"]), None)
    assert not attribution.observe(_click("p1", "a"))  # r1 was forgotten
    assert attribution.observe(_click("p1", "c"))  # r2 was not
    rows = {row["segment"]: row for row in attribution.report()}
    assert rows["loyal"]["items_shown"] == 2  # distinct skus shown
    assert rows["loyal"]["clicks"] == 1
    assert rows["unknown"]["clicks"] == 2
    assert attribution.unattributed == 2


def test_remembered_decisions_are_not_walked_by_the_garbage_collector() -> None:
    """A full collection pauses the whole service for as long as it walks what is tracked:
    200,000 remembered decisions as objects took 290 ms, as plain tuples 2 ms."""
    attribution = Attribution()
    gc.collect()
    before = len(gc.get_objects())
    for n in range(2_000):
        attribution.served(_body(f"r{n}", f"p{n % 300}", [f"s{n % 97}", f"s{n % 89}"]), "x")
    gc.collect()
    gc.collect()
    assert len(gc.get_objects()) - before < 100
