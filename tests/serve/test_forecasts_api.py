"""The forecasts API: a small demand forecaster served per tenant, its errors, keys, and a
tenant (or a workspace) without one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.recommend.catalogue import Catalogue
from shelfwise.serve import tenant as tenant_module
from shelfwise.serve.app import create_app
from shelfwise.serve.auth import KeyRing
from shelfwise.serve.cache import MemoryCache
from shelfwise.serve.tenant import TenantRuntime
from shelfwise.serve.workspace import FORECASTER, load_forecaster

SERIES = 12
WEEKS = 40
FUTURE = ["2024-10-07", "2024-10-14", "2024-10-21", "2024-10-28"]  # after 2024-09-30
READER = {"X-API-Key": "a-reader-key-0123456789"}
WRITER = {"X-API-Key": "a-writer-key-0123456789"}  # events only, not a reader
OTHER = {"X-API-Key": "b-reader-key-0123456789"}  # tenant b: no forecaster
URL = "/api/v1/forecasts"


def demand() -> pd.DataFrame:
    """12 series x 40 Mondays of Poisson demand that a display (stores showing it) lifts."""
    rng = np.random.default_rng(0)
    weeks = pd.date_range("2024-01-01", periods=WEEKS, freq="W-MON")
    parts = []
    for i in range(SERIES):
        display = (rng.random(WEEKS) < 0.2) * rng.integers(1, 6, WEEKS)
        mailer = (rng.random(WEEKS) < 0.1) * rng.integers(1, 4, WEEKS)
        quantity = rng.poisson((2 + i) * (1 + 0.3 * display + 0.2 * mailer))
        parts.append(
            pd.DataFrame(
                {
                    "series_id": f"s{i:02d}",
                    "period_start": weeks,
                    "quantity": quantity.astype(float),
                    "display_stores": display.astype(float),
                    "mailer_stores": mailer.astype(float),
                    "department": f"d{i % 2}",
                    "category": f"c{i % 4}",
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def forecaster() -> DemandForecaster:
    settings = ForecasterSettings(rounds=30, min_leaf=5, tier_min_series=4, validation_origins=2)
    # One LightGBM thread: on a busy 2-core machine its two OpenMP threads sometimes take
    # 10-70 s over a fit that takes 0.2 s alone.
    train = lgb.train
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            lgb, "train", lambda params, *a, **k: train({**params, "num_threads": 1}, *a, **k)
        )
        return DemandForecaster(settings).fit(demand())


@pytest.fixture
def client(forecaster: DemandForecaster) -> Iterator[TestClient]:
    catalogue = Catalogue.from_frame(pd.DataFrame({"sku": ["x1", "x2"], "price": 1.0}))
    runtimes = {
        "a": TenantRuntime(
            "a", catalogue, MemoryCache(), forecaster=forecaster, forecaster_version="3"
        ),
        "b": TenantRuntime(
            "b",
            catalogue,
            MemoryCache(),
            forecaster_facts={"reason": f"no champion of {FORECASTER!r} is registered"},
        ),
    }
    keys = KeyRing(
        [
            {"key": READER["X-API-Key"], "tenant": "a", "roles": ["reader"]},
            {"key": WRITER["X-API-Key"], "tenant": "a", "roles": ["writer"]},
            {"key": OTHER["X-API-Key"], "tenant": "b", "roles": ["reader"]},
        ]
    )
    with TestClient(create_app(runtimes, keys), raise_server_exceptions=False) as test_client:
        yield test_client
    for runtime in runtimes.values():
        runtime.close()


def _ask(client: TestClient, headers: dict[str, str] = READER, **body: Any) -> Any:
    return client.post(URL, json=body, headers=headers)


def test_forecasts_for_the_whole_horizon_with_intervals_off_the_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = []
    real = tenant_module.forecast_routed

    def watched(*args: Any) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(tenant_module, "forecast_routed", watched)
    response = _ask(client, series_ids=["s03", "s00", "s03"])  # a repeat is answered once
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "3"
    assert body["interval_level"] == 0.8
    assert body["last_observed_period"] == "2024-09-30"
    rows = body["forecasts"]
    assert [(r["series_id"], r["period_start"]) for r in rows] == [
        (series, day) for series in ("s03", "s00") for day in FUTURE
    ]
    for row in rows:
        assert 0 <= row["lower"] <= row["forecast"] <= row["upper"], row
        assert row["demand_class"]
        assert row["model"]
    assert threads
    assert all(name.startswith("forecast-a") for name in threads)

    short = _ask(client, series_ids=["s05"], horizon=2).json()["forecasts"]
    assert [r["period_start"] for r in short] == FUTURE[:2]


def test_a_planned_display_raises_the_forecast(client: TestClient) -> None:
    def planned(stores: float) -> list[float]:
        known = [
            {"series_id": "s06", "period_start": day, "display_stores": stores} for day in FUTURE
        ]
        response = _ask(client, series_ids=["s06"], known=known)
        assert response.status_code == 200, response.text
        return [row["forecast"] for row in response.json()["forecasts"]]

    without, displayed = planned(0.0), planned(5.0)
    assert all(d > w for d, w in zip(displayed, without, strict=True)), (displayed, without)
    # A covariate left out of a row keeps the plan the forecaster was fitted with (none here).
    plain = _ask(client, series_ids=["s06"]).json()["forecasts"]
    assert [row["forecast"] for row in plain] == pytest.approx(without)


def test_unknown_series_are_a_404_naming_a_few(client: TestClient) -> None:
    response = _ask(client, series_ids=["s00", *(f"nope{i}" for i in range(8))])
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "8 series" in detail
    assert "nope0" in detail
    assert "nope7" not in detail  # a few, not all


def test_a_horizon_past_the_models_and_bad_plans_are_a_422(client: TestClient) -> None:
    too_long = _ask(client, series_ids=["s00"], horizon=5)
    assert too_long.status_code == 422
    assert "at most 4" in too_long.json()["detail"]
    assert _ask(client, series_ids=["s00"], horizon=0).status_code == 422
    assert _ask(client, series_ids=[]).status_code == 422
    assert _ask(client, series_ids=["s00"] * 1001).status_code == 422

    def planned(horizon: int, *rows: dict[str, Any]) -> Any:
        return _ask(client, series_ids=["s00"], horizon=horizon, known=list(rows))

    row = {"series_id": "s00", "period_start": FUTURE[2], "display_stores": 3}
    off = planned(2, row)  # the third week is past the two asked for
    assert off.status_code == 422
    assert "off the forecast's periods" in off.json()["detail"]
    before = planned(4, {**row, "period_start": "2024-09-30"})  # observed already
    assert before.status_code == 422
    assert planned(4, {**row, "series_id": "s01"}).status_code == 422  # not asked for
    assert planned(4, row, row).status_code == 422  # given twice
    unknown = planned(4, {**row, "price_cut": 0.2})
    assert unknown.status_code == 422
    assert "display_stores" in unknown.json()["detail"]
    assert planned(4, {**row, "display_stores": "many"}).status_code == 422
    assert planned(4, row).status_code == 200


def test_keys_and_roles(client: TestClient) -> None:
    assert _ask(client, headers={}, series_ids=["s00"]).status_code == 401
    wrong = {"X-API-Key": "not-a-key-of-this-service"}
    assert _ask(client, headers=wrong, series_ids=["s00"]).status_code == 401
    refused = _ask(client, headers=WRITER, series_ids=["s00"])
    assert refused.status_code == 403
    assert "reader" in refused.json()["detail"]


def test_a_tenant_without_a_forecaster_is_a_503_with_the_reason(client: TestClient) -> None:
    response = _ask(client, headers=OTHER, series_ids=["s00"])
    assert response.status_code == 503
    assert "no champion of 'forecaster' is registered" in response.json()["detail"]
    ready = client.get("/ready").json()
    assert ready["forecasters"]["a"]["version"] == "3"
    assert ready["forecasters"]["a"]["horizon"] == 4
    assert ready["forecasters"]["b"]["version"] is None
    metrics = client.get("/metrics").text
    assert 'shelfwise_faults_total{stage="forecaster_missing",tenant="b"} 1.0' in metrics
    spec = client.get("/openapi.json").json()
    assert spec["paths"][URL]["post"]["tags"] == ["forecasts"]


def test_a_forecaster_that_cannot_be_loaded_leaves_the_service_up(
    forecaster: DemandForecaster,
) -> None:
    def workspace(alias: str | None, loaded: Any) -> Any:
        def load(uri: str) -> Any:
            if isinstance(loaded, Exception):
                raise loaded
            return loaded

        tracker = SimpleNamespace(
            get_alias_version=lambda name, alias_name: alias,
            load_estimator=load,
            artefact_bytes=lambda uri: 1234,
        )
        return cast(Any, SimpleNamespace(tracker=tracker))

    model, version, facts = load_forecaster(workspace("7", forecaster))
    assert model is forecaster
    assert version == "7"
    assert facts["artefact_bytes"] == 1234
    assert load_forecaster(workspace(None, forecaster)) == (
        None,
        None,
        {"reason": "no champion of 'forecaster' is registered"},
    )
    model, version, facts = load_forecaster(workspace("8", OSError("gone")))
    assert (model, version) == (None, None)
    assert "v8 cannot be loaded" in facts["reason"]
    model, _, facts = load_forecaster(workspace("9", object()))  # not a forecaster
    assert model is None
    assert "v9" in facts["reason"]


def test_fuzzed_forecast_requests_get_no_server_error(
    client: TestClient, fuzz: Callable[..., list[str]]
) -> None:
    assert len(fuzz(client.app, lambda path: path == URL, READER, 40)) == 1
