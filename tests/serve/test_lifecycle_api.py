"""The lifecycle endpoints over HTTP, on SQLite and PostgreSQL: the alert inbox and reviews."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shelfwise.lifecycle import ModelRegistry
from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.experiments import Experiments
from shelfwise.models.base import Evaluation
from shelfwise.ops import OperationalDatabase
from shelfwise.ops.states import AlertType, RegistryState
from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.popularity import PopularityRecommender
from shelfwise.serve.app import create_app
from shelfwise.serve.auth import KeyRing
from shelfwise.serve.cache import MemoryCache
from shelfwise.serve.tenant import TenantRuntime
from shelfwise.tracking import Tracker

READER = {"X-API-Key": "a-reader-key-0123456789"}
REVIEWER = {"X-API-Key": "a-reviewer-key-0123456"}
OTHER = {"X-API-Key": "b-reviewer-key-0123456"}
ADMIN = {"X-API-Key": "a-admin-key-0123456789"}  # tenant b: no registry
NAME = "forecaster"


@pytest.fixture
def registry(tracker: Tracker, migrated: OperationalDatabase) -> ModelRegistry:
    return ModelRegistry(tracker, migrated, tenant="a")


@pytest.fixture
def client(registry: ModelRegistry) -> Iterator[TestClient]:
    catalogue = Catalogue.from_frame(pd.DataFrame({"sku": ["x1"], "price": 1.0}))
    inbox = AlertInbox(registry.operational, registry, tenant="a")
    runtimes = {
        "a": TenantRuntime("a", catalogue, MemoryCache(), registry=registry, alerts=inbox),
        "b": TenantRuntime("b", catalogue, MemoryCache()),
    }
    keys = KeyRing(
        [
            {"key": READER["X-API-Key"], "tenant": "a", "roles": ["reader"]},
            {"key": REVIEWER["X-API-Key"], "tenant": "a", "roles": ["reader", "reviewer"]},
            {"key": OTHER["X-API-Key"], "tenant": "b", "roles": ["reader", "reviewer"]},
            {"key": "a-writer-key-0123456789", "tenant": "a", "roles": ["writer"]},
            {"key": "a-admin-key-0123456789", "tenant": "a", "roles": ["admin"]},
        ]
    )
    with TestClient(create_app(runtimes, keys), raise_server_exceptions=False) as test_client:
        yield test_client
    for runtime in runtimes.values():
        runtime.close()


def _version(registry: ModelRegistry, mae: float) -> str:
    log = pd.DataFrame(
        {"person_id": ["a"], "sku": ["x"], "occurred_at": pd.to_datetime(["2024-01-01"])}
    )
    record = registry.tracker.log_training(
        PopularityRecommender().fit(log),
        experiment=NAME,
        metrics=Evaluation({"mae": mae}, "mae", False),
    )
    return registry.register(NAME, record, actor="trainer", reason="scheduled")


def test_the_paths_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/ml-alerts"]
    assert "patch" in paths["/api/v1/ml-alerts/{alert_id}/read"]
    assert "patch" in paths["/api/v1/ml-alerts/{alert_id}/action"]
    assert {"get", "post"} <= set(paths["/api/v1/models/{version}/review"])
    assert "get" in paths["/api/v1/models/{version}/shadow"]
    assert "get" in paths["/api/v1/models/{version}/card"]
    assert "post" in paths["/api/v1/experiments"]
    assert "patch" in paths["/api/v1/experiments/{experiment_id}/approve"]
    assert "get" in paths["/api/v1/experiments/{experiment_id}/results"]
    assert "post" in paths["/api/v1/experiments/{experiment_id}/complete"]


def test_an_alert_is_read_then_approved_by_a_reviewer(
    client: TestClient, registry: ModelRegistry
) -> None:
    first, second = _version(registry, 8.0), _version(registry, 7.0)
    registry.transition(NAME, first, RegistryState.CHAMPION, actor="ana", reason="first")
    alert = AlertInbox(registry.operational, registry, tenant="a").raise_alert(
        AlertType.PROMOTION_PENDING,
        "v2 waits",
        "sensitive scope",
        model_name=NAME,
        version=second,
    )
    unread = client.get("/api/v1/ml-alerts", params={"status": "unread"}, headers=READER)
    assert [a["id"] for a in unread.json()] == [alert["id"]]
    assert (
        client.patch(f"/api/v1/ml-alerts/{alert['id']}/read", headers=READER).json()["status"]
        == "read"
    )
    body = {"action": "approve", "notes": "looked at it"}
    url = f"/api/v1/ml-alerts/{alert['id']}/action"
    assert client.patch(url, json=body, headers=READER).status_code == 403
    done = client.patch(url, json=body, headers=REVIEWER)
    assert done.status_code == 200, done.text
    assert done.json()["action"] == "approve"
    assert registry.tracker.get_alias_version(NAME, "champion") == second
    again = client.patch(url, json={"action": "dismiss"}, headers=REVIEWER)
    assert again.status_code == 409
    assert "already approve" in again.json()["detail"]
    assert client.patch("/api/v1/ml-alerts/999/read", headers=READER).status_code == 404


def test_a_review_approves_or_rejects_with_the_comparison(
    client: TestClient, registry: ModelRegistry
) -> None:
    first, second, third = (_version(registry, m) for m in (8.0, 7.0, 9.0))
    registry.transition(NAME, first, RegistryState.CHAMPION, actor="ana", reason="first")
    approve = {"model": NAME, "decision": "approve", "notes": "12% lower MAE"}
    answer = client.post(f"/api/v1/models/{second}/review", json=approve, headers=REVIEWER)
    assert answer.status_code == 200, answer.text
    review = answer.json()
    assert (review["state"], review["champion"], review["primary_metric"]) == (
        "champion",
        second,
        "mae",
    )
    assert review["metrics"]["mae"] == 7.0
    assert review["champion_metrics"]["mae"] == 8.0
    reject = {"model": NAME, "decision": "reject", "notes": "worse"}
    rejected = client.post(f"/api/v1/models/{third}/review", json=reject, headers=REVIEWER)
    assert rejected.json()["state"] == "archived"
    assert registry.state(NAME, third) == RegistryState.ARCHIVED
    refused = client.post(f"/api/v1/models/{second}/review", json=reject, headers=REVIEWER)
    assert refused.status_code == 409  # the champion: promote another or roll back
    missing = client.post("/api/v1/models/77/review", json=approve, headers=REVIEWER)
    assert missing.status_code == 404
    assert (
        client.post(f"/api/v1/models/{third}/review", json=approve, headers=READER).status_code
        == 403
    )
    last = registry.history(NAME)[-1]
    assert (last["version"], last["to_state"], last["reason"]) == (
        third,
        "archived",
        "review: worse",
    )


def test_a_reviewer_sees_the_evidence_before_deciding(
    client: TestClient, registry: ModelRegistry
) -> None:
    first, second = (_version(registry, m) for m in (8.0, 7.0))
    registry.transition(NAME, first, RegistryState.CHAMPION, actor="ana", reason="first")
    path = f"/api/v1/models/{second}/review?model={NAME}"
    answer = client.get(path, headers=REVIEWER)
    assert answer.status_code == 200, answer.text
    evidence = answer.json()
    assert (evidence["state"], evidence["champion"]) == ("candidate", first)
    assert (evidence["metrics"]["mae"], evidence["champion_metrics"]["mae"]) == (7.0, 8.0)
    # no retrain judged them on one window, and popularity has no feature importances
    assert (evidence["backtest"], evidence["importance_deltas"]) == (None, [])
    assert client.get(path, headers=READER).status_code == 403
    missing = client.get(f"/api/v1/models/77/review?model={NAME}", headers=REVIEWER)
    assert missing.status_code == 404
    assert "no version '77'" in missing.json()["detail"]


def test_a_tenant_without_a_registry_answers_503(client: TestClient) -> None:
    answer = client.get("/api/v1/ml-alerts", headers=OTHER)
    assert answer.status_code == 503
    assert "no model registry" in answer.json()["detail"]


def test_every_version_has_a_model_card(client: TestClient, registry: ModelRegistry) -> None:
    first = _version(registry, 8.0)
    registry.transition(NAME, first, RegistryState.CHAMPION, actor="ana", reason="first one")
    answer = client.get(f"/api/v1/models/{first}/card", params={"model": NAME}, headers=READER)
    assert answer.status_code == 200, answer.text
    card = answer.json()
    assert card["family"] == "popularity"
    assert card["purpose"].startswith("Most popular skus first")
    assert card["state"] == "champion"
    assert card["metrics"]["mae"] == 8.0
    assert card["primary_metric"] == "mae"
    assert card["training_data"]["rows"] == 1
    assert card["code_version"]["shelfwise"]
    run = registry.tracker.client.get_run(card["run_id"])
    assert card["code_version"]["git_commit"] == run.data.tags.get("shelfwise.git_commit")
    assert [m["to_state"] for m in card["history"]] == ["candidate", "champion"]
    assert card["history"][-1]["reason"] == "first one"
    assert "## History" in card["markdown"]
    trained = datetime.fromisoformat(card["trained_at"])  # a time a reviewer reads, in UTC
    assert trained.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - trained) < timedelta(hours=1)
    assert f"- trained at: {card['trained_at']}" in card["markdown"]
    assert "- training data: " in card["markdown"]
    assert "rows: 1" in card["markdown"]
    assert "{" not in card["markdown"]  # no dict printed as code
    missing = client.get("/api/v1/models/9/card", params={"model": NAME}, headers=READER)
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"{NAME} has no version '9'; its versions: {first}"
    unknown = client.get(f"/api/v1/models/{first}/card", params={"model": "nope"}, headers=READER)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == f"no model named 'nope'; registered: {NAME}"


def test_an_experiment_runs_from_proposal_to_decision(
    client: TestClient, registry: ModelRegistry
) -> None:
    champion = _version(registry, 8.0)
    registry.transition(NAME, champion, RegistryState.CHAMPION, actor="ana", reason="first")
    writer = {"X-API-Key": "a-writer-key-0123456789"}
    proposal = {
        "name": "weather-feature",
        "hypothesis": "rain moves soup",
        "type": "new_feature",
        "model": NAME,
    }
    assert client.post("/api/v1/experiments", json=proposal, headers=READER).status_code == 403
    typed = client.post("/api/v1/experiments", json={**proposal, "proposer": "bo"}, headers=writer)
    assert typed.status_code == 422  # the proposer is the key's name, not a typed one
    made = client.post("/api/v1/experiments", json=proposal, headers=ADMIN)
    assert made.status_code == 201, made.text
    experiment = made.json()
    assert (experiment["status"], experiment["proposer"]) == ("proposed", "key5")
    nul = client.post(
        "/api/v1/experiments", json={**proposal, "hypothesis": "rain\x00"}, headers=writer
    )
    assert nul.status_code == 422  # PostgreSQL cannot store it: refused where it came in
    assert nul.json()["detail"][0]["loc"] == ["body", "hypothesis"]
    again = client.post("/api/v1/experiments", json=proposal, headers=writer)
    assert again.status_code == 409
    url = f"/api/v1/experiments/{experiment['id']}"
    early = client.post(
        f"{url}/complete", json={"decision": "adopt", "rationale": "x"}, headers=REVIEWER
    )
    assert early.status_code == 409  # not approved yet
    assert "only from approved" in early.json()["detail"]
    self_approved = client.patch(f"{url}/approve", json={"rationale": "mine"}, headers=ADMIN)
    assert self_approved.status_code == 409  # the admin key proposed it
    assert "another person approves it" in self_approved.json()["detail"]
    named = client.patch(
        f"{url}/approve", json={"approver": "bo", "rationale": "x"}, headers=REVIEWER
    )
    assert named.status_code == 422  # an approver cannot be typed in either
    approved = client.patch(f"{url}/approve", json={"rationale": "cheap to try"}, headers=REVIEWER)
    assert approved.json()["status"] == "approved"
    waiting = client.get("/api/v1/experiments", params={"status": "approved"}, headers=READER)
    assert [e["id"] for e in waiting.json()] == [experiment["id"]]
    assert client.get("/api/v1/experiments?status=proposed", headers=READER).json() == []
    assert client.get("/api/v1/experiments?status=nope", headers=READER).status_code == 422
    assert client.get("/api/v1/experiments", headers=OTHER).status_code == 503  # not b's
    assert client.get(url, headers=READER).json()["approver"] == "key2"  # the reviewer's key
    assert client.get("/api/v1/experiments/999", headers=READER).status_code == 404
    huge = client.get(f"/api/v1/experiments/{2**64}", headers=READER)  # past a database integer
    assert huge.status_code == 422
    assert huge.json()["detail"][0]["loc"] == ["path", "experiment_id"]
    version = _version(registry, 7.5)
    Experiments(registry, AlertInbox(registry.operational, registry, "a")).tag_version(
        experiment["id"], version
    )
    results = client.get(f"{url}/results", headers=READER).json()
    assert [v["version"] for v in results["versions"]] == [version]
    assert results["versions"][0]["metrics"]["mae"] == 7.5
    assert results["champion"]["version"] == champion
    assert results["champion"]["metrics"]["mae"] == 8.0
    done = client.post(
        f"{url}/complete",
        json={"decision": "partial_adopt", "rationale": "helps soups only"},
        headers=REVIEWER,
    )
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["decision"]) == ("completed", "partial_adopt")
    alerts = client.get("/api/v1/ml-alerts", headers=READER).json()
    assert alerts[0]["type"] == "experiment_complete"
    assert alerts[0]["link"] == f"{url}/results"
    assert client.get("/api/v1/experiments/999/results", headers=READER).status_code == 404


def test_a_reviewer_lists_the_models_and_rolls_one_back(
    client: TestClient, registry: ModelRegistry
) -> None:
    first, second = (_version(registry, m) for m in (8.0, 7.0))
    registry.transition(NAME, first, RegistryState.CHAMPION, actor="ana", reason="first")
    registry.transition(NAME, second, RegistryState.CHAMPION, actor="ana", reason="better")
    listed = client.get("/api/v1/models", headers=READER)
    assert listed.status_code == 200, listed.text
    (model,) = listed.json()
    assert (model["model"], model["champion"], model["challenger"]) == (NAME, second, None)
    assert (model["rollback_to"], model["rollback_refused"]) == (first, None)
    assert [(v["version"], v["state"]) for v in model["versions"]] == [
        (second, "champion"),
        (first, "archived"),
    ]
    body = {"model": NAME, "notes": "v2 overshoots every promotion week"}
    assert client.post("/api/v1/models/rollback", json=body, headers=READER).status_code == 403
    answer = client.post("/api/v1/models/rollback", json=body, headers=REVIEWER)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model": NAME, "champion": first, "archived": second}
    (model,) = client.get("/api/v1/models", headers=READER).json()
    assert (model["rollback_to"], model["rollback_refused"]) == (second, None)  # and back
    assert registry.state(NAME, first) == RegistryState.CHAMPION
    assert registry.state(NAME, second) == RegistryState.ARCHIVED
    last = registry.history(NAME)[-1]
    assert (last["version"], last["actor"]) == (first, "key2")  # the reviewer's key, unnamed
    assert last["reason"] == "rollback: v2 overshoots every promotion week"
    unknown = client.post(
        "/api/v1/models/rollback", json={**body, "model": "nope"}, headers=REVIEWER
    )
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == f"no model named 'nope'; registered: {NAME}"
    persons = client.post(
        "/api/v1/models/rollback", json={**body, "model": "identity"}, headers=REVIEWER
    )
    assert persons.status_code == 409
    assert "shelfwise identity rollback" in persons.json()["detail"]
    other = client.post("/api/v1/models/rollback", json=body, headers=OTHER)
    assert other.status_code == 503  # tenant b has no registry here; a's models are not b's


def test_fuzzing_the_lifecycle_endpoints_finds_no_server_error(
    client: TestClient, registry: ModelRegistry, fuzz: Callable[..., list[str]]
) -> None:
    """With a registry that holds a champion, whatever schemathesis sends a reviewer's
    endpoints (model names with quotes, versions that are not numbers, unknown ids) is
    answered without a 5xx."""
    first, second = (_version(registry, m) for m in (8.0, 7.0))
    registry.transition(NAME, first, RegistryState.CHAMPION, actor="ana", reason="first")
    registry.transition(NAME, second, RegistryState.CHAMPION, actor="ana", reason="second")
    fuzzed = fuzz(
        client.app,
        lambda path: path.startswith(("/api/v1/models", "/api/v1/experiments", "/api/v1/ml-")),
        ADMIN,
        25,
    )
    assert len(fuzzed) == 15
