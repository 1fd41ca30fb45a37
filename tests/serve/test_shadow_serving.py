"""Shadow testing through the HTTP app, with a real champion and challenger of each family
registered: responses byte for byte as without shadowing, shadow rows for both roles, purchase
events filling the actuals, paired comparisons, one alert per completed test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.lifecycle import ModelRegistry
from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.shadow import ShadowTests
from shelfwise.models.base import Estimator, Evaluation
from shelfwise.ops import ShadowPrediction
from shelfwise.ops.states import RegistryState, ShadowRole
from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.app import create_app
from shelfwise.serve.auth import KeyRing
from shelfwise.serve.cache import MemoryCache
from shelfwise.serve.shadow import ShadowTraffic
from shelfwise.serve.shadow_models import ShadowModel
from shelfwise.serve.tenant import TenantRuntime
from shelfwise.serve.workspace import ChampionWatcher
from shelfwise.settings import Settings
from shelfwise.tracking import Tracker
from shelfwise.workspace import Workspace

WEEKS = pd.date_range("2024-01-01", periods=30, freq="W-MON")  # the last 2024-07-22
AHEAD = ["2024-07-29", "2024-08-05"]  # the first two forecast weeks
CHALLENGER = RecommenderSettings(ranker_trees=5, ranker_leaves=3, label_windows=1, seed=7)


def demand() -> pd.DataFrame:
    """6 series x 30 Mondays of Poisson demand."""
    rng = np.random.default_rng(0)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "series_id": f"s{i}",
                    "period_start": WEEKS,
                    "quantity": rng.poisson(3 + i, len(WEEKS)).astype(float),
                    "display_stores": 0.0,
                    "mailer_stores": 0.0,
                    "department": "d",
                    "category": "c",
                }
            )
            for i in range(6)
        ],
        ignore_index=True,
    )


def _forecaster(rounds: int) -> DemandForecaster:
    settings = ForecasterSettings(rounds=rounds, min_leaf=5, tier_by=None, validation_origins=2)
    return DemandForecaster(settings).fit(demand())


@pytest.fixture
def workspace(tmp_path: Path, make_tracker: Callable[[Settings], Tracker]) -> Iterator[Workspace]:
    settings = Settings(workspace=tmp_path / "workspace")
    make_tracker(settings)  # the workspace's MLflow store, copied from a migrated one
    workspace = Workspace(settings)
    workspace.operational.upgrade()
    yield workspace
    workspace.close()


def _register(
    registry: ModelRegistry, name: str, model: Estimator[Any], state: RegistryState
) -> str:
    record = registry.tracker.log_training(
        model, experiment=name, metrics=Evaluation({"mae": 1.0}, "mae", False)
    )
    return registry.register(name, record, actor="trainer", reason="planted", state=state)


@pytest.fixture(scope="module")
def challengers(planted_log: Callable[[int], pd.DataFrame]) -> dict[str, Estimator[Any]]:
    """The recommender's challenger, and the forecaster's champion and challenger."""
    return {
        "recommender": TwoStageRecommender(CHALLENGER).fit(planted_log(0)),
        "forecaster": _forecaster(20),
        "forecaster_challenger": _forecaster(5),
    }


@pytest.fixture
def served(
    workspace: Workspace,
    tenant_models: dict[str, TwoStageRecommender],
    challengers: dict[str, Estimator[Any]],
    keyring: KeyRing,
) -> Iterator[tuple[TestClient, TenantRuntime, ShadowTraffic]]:
    """Tenant a shadows its champions with their challengers; tenant b serves the same
    champions without shadowing."""
    registry = ModelRegistry(workspace.tracker, workspace.operational, tenant="a")
    champion, forecaster = tenant_models["a"], challengers["forecaster"]
    for name, version, model, state in (
        ("recommender", "1", champion, RegistryState.CHAMPION),
        ("recommender", "2", challengers["recommender"], RegistryState.CHALLENGER),
        ("forecaster", "1", forecaster, RegistryState.CHAMPION),
        ("forecaster", "2", challengers["forecaster_challenger"], RegistryState.CHALLENGER),
    ):
        assert _register(registry, name, model, state) == version
    alerts = AlertInbox(workspace.operational, registry, tenant="a")
    shadow = ShadowTraffic(ShadowTests(registry, alerts), min_samples=3, complete_every_seconds=0)
    assert shadow.refresh(workspace, None)
    common: dict[str, Any] = {
        "model": champion,
        "version": "1",
        "forecaster": forecaster,
        "forecaster_version": "1",
        "deadline_seconds": 30.0,  # the shadow's threads share two slow cores
    }
    skus = pd.Series(champion.items_, dtype=str)
    products = pd.DataFrame({"sku": skus, "category": skus.str[0], "price": 2.0})
    runtimes = {
        "a": TenantRuntime(
            "a",
            Catalogue.from_frame(products),
            MemoryCache(),
            registry=registry,
            alerts=alerts,
            shadow=shadow,
            **common,
        ),
        "b": TenantRuntime("b", Catalogue.from_frame(products), MemoryCache(), **common),
    }
    with TestClient(create_app(runtimes, keyring), raise_server_exceptions=False) as client:
        yield client, runtimes["a"], shadow
    for runtime in runtimes.values():
        runtime.close()


def _rows(shadow: ShadowTraffic, name: str) -> list[ShadowPrediction]:
    with shadow.tests.operational.session() as session:
        return list(
            session.scalars(
                sa.select(ShadowPrediction)
                .where(ShadowPrediction.model_name == name)
                .order_by(ShadowPrediction.id)
            )
        )


def test_recommendations_are_shadowed_unchanged_and_judged_on_purchases(
    served: tuple[TestClient, TenantRuntime, ShadowTraffic],
    as_: Callable[[str], dict[str, str]],
) -> None:
    client, runtime, shadow = served
    assert [(m.version, m.role) for m in shadow.models["recommender"]] == [
        ("2", ShadowRole.CHALLENGER)
    ]
    answers = {}
    for person in ("p00", "p01", "p02", "p03"):
        ask = {"person_id": person, "k": 5, "context": {"segment": "loyal"}}
        ours = client.post("/api/v1/recommendations", json=ask, headers=as_("a_reader"))
        theirs = client.post("/api/v1/recommendations", json=ask, headers=as_("b_reader"))
        assert ours.status_code == theirs.status_code == 200
        mine, other = ours.json()["request_id"], theirs.json()["request_id"]
        assert ours.content.replace(mine.encode(), other.encode()) == theirs.content
        answers[person] = ours.json()
    again = client.post(
        "/api/v1/recommendations", json={"person_id": "p00", "k": 5}, headers=as_("a_reader")
    )
    assert again.json()["fallback"] is None
    client.post(
        "/api/v1/recommendations", json={"person_id": "p00", "k": 5}, headers=as_("a_reader")
    )  # cached: not shadowed
    shadow.drain()
    rows = _rows(shadow, "recommender")
    assert len(rows) == 2 * 5
    by_request = {(r.request_id, r.role): r for r in rows}
    for person, body in answers.items():
        ours = by_request[(body["request_id"], "champion")]
        theirs = by_request[(body["request_id"], "challenger")]
        assert (ours.version, theirs.version) == ("1", "2")
        assert ours.prediction == [item["sku"] for item in body["items"]]
        assert ours.entity_key == theirs.entity_key == person
        assert theirs.segment == "loyal"
        assert len(theirs.prediction) == 5
        assert ours.predicted_at == theirs.predicted_at

    now = datetime.now(UTC).isoformat()
    bought = {person: answers[person]["items"][0]["sku"] for person in ("p00", "p01", "p02")}
    events = [
        {"kind": "purchase", "person_id": person, "sku": sku, "occurred_at": now}
        for person, sku in bought.items()
    ]
    assert client.post("/api/v1/events", json=events, headers=as_("a_writer")).status_code == 200
    shadow.drain()
    filled = [r for r in _rows(shadow, "recommender") if r.actual is not None]
    assert sorted({r.entity_key for r in filled}) == ["p00", "p01", "p02"]
    assert all(r.actual == [bought[r.entity_key]] for r in filled)

    found = client.get(
        "/api/v1/models/2/shadow", params={"model": "recommender"}, headers=as_("a_reader")
    ).json()
    assert found["samples"] == found["champion"]["samples"] == found["challenger"]["samples"]
    assert found["samples"] == 4  # p00 twice (its first answer and a fresh one), p01, p02
    assert found["champion"]["error"] == 0.0  # each bought the champion's first item
    assert found["completed"] is True  # past its 3 samples: completed after the purchases
    more = [{"kind": "purchase", "person_id": "p03", "sku": "s12", "occurred_at": now}]
    client.post("/api/v1/events", json=more, headers=as_("a_writer"))
    shadow.drain()
    alerts = client.get("/api/v1/ml-alerts", headers=as_("a_reader")).json()
    assert [(a["type"], a["version"]) for a in alerts] == [("shadow_test_complete", "2")]
    assert alerts[0]["link"] == "/api/v1/models/2/review?model=recommender"
    assert runtime.faults["shadow_error"] == 0


def test_forecasts_are_shadowed_unchanged_and_judged_when_their_weeks_end(
    served: tuple[TestClient, TenantRuntime, ShadowTraffic],
    as_: Callable[[str], dict[str, str]],
) -> None:
    client, _, shadow = served
    ask = {"series_ids": ["s0", "s1"], "horizon": 4}
    ours = client.post("/api/v1/forecasts", json=ask, headers=as_("a_reader"))
    theirs = client.post("/api/v1/forecasts", json=ask, headers=as_("b_reader"))
    assert ours.status_code == 200, ours.text
    assert ours.content == theirs.content
    shadow.drain()
    rows = _rows(shadow, "forecaster")
    assert (
        sorted((r.role, r.version) for r in rows)
        == [("challenger", "2")] * 8 + [("champion", "1")] * 8
    )
    champion = {r.entity_key: r.prediction["forecast"] for r in rows if r.role == "champion"}
    assert champion == {
        f"{row['series_id']}|{row['period_start']}": row["forecast"]
        for row in ours.json()["forecasts"]
    }

    sold = pd.DataFrame(
        {
            "series_id": ["s0", "s0", "s1", "s1"],
            "period_start": pd.to_datetime(AHEAD * 2),
            "quantity": [3.0, 4.0, 5.0, 6.0],
        }
    )
    assert shadow.tests.record_demand(pd.concat([demand(), sold])) == 2 * 4
    found = client.get(
        "/api/v1/models/2/shadow", params={"model": "forecaster"}, headers=as_("a_reader")
    ).json()
    assert (found["samples"], found["requests"], found["completed"]) == (4, 1, False)
    expected = np.mean(
        np.abs(
            [champion[f"{s}|{w}"] for s in ("s0", "s1") for w in AHEAD]
            - sold["quantity"].to_numpy()
        )
    )
    assert found["champion"]["mae"] == pytest.approx(expected)
    done = shadow.tests.complete("forecaster", "2", min_samples=4)
    assert done is not None
    assert "over 4 samples" in done["alert"]["message"]
    assert shadow.tests.sweep(min_samples=1) == []  # completed once


def test_a_failing_shadow_is_counted_and_a_moved_challenger_reloaded(
    served: tuple[TestClient, TenantRuntime, ShadowTraffic],
    as_: Callable[[str], dict[str, str]],
    workspace: Workspace,
) -> None:
    client, runtime, shadow = served
    shadow.versions.models["recommender"] = (ShadowModel(object(), "9", ShadowRole.EXPERIMENTAL),)
    ask = {"person_id": "p05", "k": 3}
    ours = client.post("/api/v1/recommendations", json=ask, headers=as_("a_reader"))
    theirs = client.post("/api/v1/recommendations", json=ask, headers=as_("b_reader"))
    assert ours.json()["items"] == theirs.json()["items"]
    shadow.drain()
    assert runtime.faults["shadow_error"] == 1
    assert _rows(shadow, "recommender") == []  # nothing to pair
    shadow.backlog = 0  # busy: the shadow work is skipped, the request answered as ever
    busy = client.post(
        "/api/v1/recommendations", json={"person_id": "p06"}, headers=as_("a_reader")
    )
    assert busy.status_code == 200
    assert busy.json()["fallback"] is None
    assert runtime.faults["shadow_busy"] == 1
    shadow.backlog = 256

    watcher = ChampionWatcher(workspace, runtime)
    assert watcher.check()  # the listed shadows differ from the registry's: reloaded
    assert [m.version for m in shadow.models["recommender"]] == ["2"]
    assert not watcher.check()
    assert runtime.registry is not None
    model = shadow.models["recommender"][0].model
    _register(runtime.registry, "recommender", model, RegistryState.CHALLENGER)
    assert watcher.check()
    assert [(m.version, m.role) for m in shadow.models["recommender"]] == [
        ("3", ShadowRole.CHALLENGER)
    ]
    assert runtime.served.version == "1"  # the champion did not move
