"""The service over a real workspace, on loopback: the registry's champion, online features,
the first admin key, events into the online store; and a champion that cannot be read."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

from shelfwise.forecast.model import ForecasterSettings
from shelfwise.forecast.stage import train_forecaster
from shelfwise.recommend.overrides import Overrides
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.rules import RulePolicy
from shelfwise.recommend.stage import purchase_log, train_recommender
from shelfwise.serve.app import create_app
from shelfwise.serve.auth import KeyRing, keys_file, new_key, write_keys
from shelfwise.serve.merchandising import merchandising_file
from shelfwise.serve.tenant import TenantRuntime
from shelfwise.serve.workspace import ChampionWatcher, keyring_of, tenant_from_workspace
from shelfwise.workspace import Workspace

SMALL = RecommenderSettings(label_days=21.0, ranker_trees=30, ranker_leaves=7, label_windows=1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(shop_workspace: Workspace) -> Iterator[tuple[str, str, TenantRuntime]]:
    """(base URL, admin key, tenant) of a uvicorn server over the shop's workspace."""
    train_recommender(shop_workspace, lambda _: None, SMALL)
    tenant = tenant_from_workspace(shop_workspace)
    keys, made = keyring_of(shop_workspace)
    assert made is not None
    assert tenant.ready
    port = _free_port()
    config = uvicorn.Config(create_app({tenant.name: tenant}, keys), port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", made, tenant
    server.should_exit = True
    thread.join(timeout=10)
    tenant.close()


def test_the_champion_answers_over_http_and_events_reach_the_online_store(
    served: tuple[str, str, TenantRuntime], shop_workspace: Workspace
) -> None:
    base, key, _ = served
    person = str(purchase_log(shop_workspace)["person_id"].iloc[-1])
    headers = {"X-API-Key": key}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        ready = client.get("/ready").json()
        assert ready["ready"] is True
        assert ready["without_model"] == []
        facts = ready["models"]["default"]
        assert facts["version"] == "1"
        assert facts["load_seconds"] > 0
        assert facts["artefact_bytes"] > 100_000
        body = client.post("/api/v1/recommendations", json={"person_id": person, "k": 5}).json()
        assert body["fallback"] is None
        assert len(body["items"]) == 5
        assert body["model_version"] == "1"
        event = {
            "kind": "add_to_cart",
            "person_id": person,
            "sku": body["items"][0]["sku"],
            "occurred_at": "2030-01-01T12:00:00Z",
        }
        accepted = client.post("/api/v1/events", json=[event, event]).json()
        assert accepted["accepted"] == 2
        assert accepted["cache_entries_dropped"] == 1
        again = client.post("/api/v1/recommendations", json={"person_id": person, "k": 5}).json()
        assert again["cached"] is False
    keys = json.loads((shop_workspace.settings.workspace / "api_keys.json").read_text())
    assert keys[0]["roles"] == ["admin"]
    assert keyring_of(shop_workspace)[1] is None


def test_events_posted_at_once_from_many_clients_all_reach_the_store(
    served: tuple[str, str, TenantRuntime], shop_workspace: Workspace
) -> None:
    """Requests posting events together share the online store's folds (a group commit): each
    gets a 200 once its events are in, and each event counts once. Two folds at once used to
    break the store's DuckDB connection, and every later event then failed."""
    base, key, tenant = served
    assert tenant.store is not None
    person = str(purchase_log(shop_workspace)["person_id"].iloc[0])
    sku = "sku0002"
    asked = pd.DataFrame(
        {"person_id": [person], "sku": [sku], "as_of": [pd.Timestamp("2031-01-01")]}
    )
    before = tenant.store.vectors(asked)["pp_views"].iloc[0]
    event = {"kind": "view", "person_id": person, "sku": sku, "occurred_at": "2030-06-01T12:00:00Z"}
    runs, callers = tenant._events.runs, tenant._events.callers

    def post(_: int) -> int:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
            return client.post("/api/v1/events", json=event).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, range(24)))
    assert statuses == [200] * 24
    assert tenant._events.callers - callers == 24
    assert tenant._events.runs - runs <= 24
    assert tenant.store.vectors(asked)["pp_views"].iloc[0] == before + 24


def test_a_new_champion_is_swapped_in_without_a_restart(
    served: tuple[str, str, TenantRuntime], shop_workspace: Workspace
) -> None:
    base, key, tenant = served
    watcher = ChampionWatcher(shop_workspace, tenant)
    assert not watcher.check()  # nothing moved
    tracker = shop_workspace.tracker
    model = tenant.served.model
    assert model is not None
    record = tracker.log_training(model, experiment="recommender")
    version = tracker.register("recommender", record)
    tracker.set_alias("recommender", "champion", version)
    assert watcher.check()
    person = str(purchase_log(shop_workspace)["person_id"].iloc[0])
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        body = client.post("/api/v1/recommendations", json={"person_id": person, "k": 3}).json()
    assert body["model_version"] == version != "1"
    assert body["fallback"] is None
    # the demand forecaster's champion is watched too: registered now, served at the next look
    assert tenant.forecaster is None
    summary, _, _ = train_forecaster(
        shop_workspace, lambda _: None, ForecasterSettings(rounds=20, min_leaf=10)
    )
    assert watcher.check()
    assert tenant.forecaster_version == summary["version"]
    forecaster = tenant.forecaster
    assert forecaster is not None
    series = forecaster.panel_.ids[0]
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        answer = client.post("/api/v1/forecasts", json={"series_ids": [series], "horizon": 2})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == summary["version"]
    assert len(answer.json()["forecasts"]) == 2


def test_the_merchandisers_edit_is_taken_up_without_a_restart(
    served: tuple[str, str, TenantRuntime], shop_workspace: Workspace
) -> None:
    """An edit of the merchandising file counts from the watcher's next look: its excluded
    category and its block leave the answers, the cached ones too; an edit that cannot be read
    is counted and leaves the rules before it; no file, the defaults."""
    base, key, tenant = served
    watcher = ChampionWatcher(shop_workspace, tenant)
    watcher.check()
    person = str(purchase_log(shop_workspace)["person_id"].iloc[1])

    def ask() -> dict[str, Any]:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
            body = {"person_id": person, "k": 5}
            answer: dict[str, Any] = client.post("/api/v1/recommendations", json=body).json()
            return answer

    before = [item["sku"] for item in ask()["items"]]
    assert ask()["cached"] is True
    catalogue = tenant.catalogue
    category = str(catalogue.category[catalogue.index([before[0]])[0]])
    path = merchandising_file(shop_workspace.settings)
    edit = {"policy": {"excluded_categories": [category]}, "overrides": {"blocks": [before[1]]}}
    try:
        path.write_text(json.dumps(edit))
        assert watcher.check()
        after = ask()
        assert after["cached"] is False
        assert after["fallback"] is None
        skus = [item["sku"] for item in after["items"]]
        assert len(skus) == 5
        assert before[1] not in skus
        assert category not in {str(c) for c in catalogue.category[catalogue.index(skus)]}
        failed = tenant.faults["merchandising_file"]
        path.write_text('{"policy": {"max_per_category": 0}}')
        assert not watcher.check()
        assert tenant.faults["merchandising_file"] == failed + 1
        assert tenant.policy.excluded_categories == (category,)  # the rules before it stay
    finally:
        path.unlink(missing_ok=True)
    assert watcher.check()
    assert (tenant.policy, tenant.overrides) == (RulePolicy(), Overrides())
    assert not watcher.check()  # nothing moved since


def test_an_edited_keys_file_is_taken_up_without_a_restart(
    served: tuple[str, str, TenantRuntime], shop_workspace: Workspace
) -> None:
    """A key added to the file counts from the watcher's next look, and a removed one is
    refused; a file that cannot be read leaves the keys read before."""
    _, _, tenant = served
    path = keys_file(shop_workspace.settings)
    saved = path.read_text()
    keys = KeyRing.from_file(path)
    watcher = ChampionWatcher(shop_workspace, tenant, keys=keys)
    client = TestClient(create_app({tenant.name: tenant}, keys))  # no lifespan: tenant kept
    person = str(purchase_log(shop_workspace)["person_id"].iloc[2])
    late = new_key()

    def status(key: str) -> int:
        body = {"person_id": person, "k": 3}
        headers = {"X-API-Key": key}
        return client.post("/api/v1/recommendations", json=body, headers=headers).status_code

    assert status(late) == 401
    entry = {"name": "late", "key": late, "tenant": tenant.name, "roles": ["reader"]}
    try:
        write_keys(path, [*json.loads(saved), entry])
        watcher.check()
        assert status(late) == 200
        failed = tenant.faults["keys_file"]
        path.write_text("[{")
        watcher.check()
        assert tenant.faults["keys_file"] == failed + 1
        assert status(late) == 200  # the keys read before it
        path.write_text(saved)  # the late key removed
        watcher.check()
        assert status(late) == 401
    finally:
        path.write_text(saved)


def test_a_new_champion_that_fails_its_first_decision_is_not_served(
    served: tuple[str, str, TenantRuntime],
    shop_workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, tenant = served
    watcher = ChampionWatcher(shop_workspace, tenant)
    watcher.check()
    serving, before = tenant.served.version, tenant.faults["model_load"]
    decide = tenant._decide

    def broken(model: Any, request: Any) -> Any:
        if model is not tenant.served.model:  # the version being loaded
            raise RuntimeError("a feature it needs is gone")
        return decide(model, request)

    monkeypatch.setattr(tenant, "_decide", broken)
    tracker = shop_workspace.tracker
    record = tracker.log_training(tenant.served.model, experiment="recommender")
    version = tracker.register("recommender", record)
    tracker.set_alias("recommender", "champion", version)
    assert not watcher.check()
    assert tenant.served.version == serving != version
    assert tenant.faults["model_load"] == before + 1


def test_a_champion_that_cannot_be_read_serves_popularity(shop_workspace: Workspace) -> None:
    train_recommender(shop_workspace, lambda _: None, SMALL)  # kept where already trained
    tracker = shop_workspace.tracker
    version = tracker.get_alias_version("recommender", "champion")
    assert version is not None
    artefacts = shop_workspace.settings.workspace / "mlartifacts"
    damaged = list(artefacts.rglob("*.npz"))
    assert damaged
    saved = {p: p.read_bytes() for p in damaged}
    try:
        for path in damaged:
            path.write_bytes(b"not an archive")
        tenant = tenant_from_workspace(shop_workspace)
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
    assert not tenant.ready
    assert tenant.served.version is None
    tenant.close()
