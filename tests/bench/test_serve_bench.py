"""`shelfwise bench serve` in its smoke mode: the service in its own process, driven from
another at a fixed rate over loopback."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from shelfwise.bench import BenchOptions, dumps, run_benchmark, serve_floor
from shelfwise.bench.catalogue import simulated_products
from shelfwise.bench.serve import SMOKE_ITEMS
from shelfwise.ops.states import RegistryState
from shelfwise.recommend.stage import MODEL_NAME, purchase_log
from shelfwise.serve.workspace import load_champion, online_store
from shelfwise.settings import Settings
from shelfwise.workspace import Workspace

PHASE = ("rps_offered", "rps_served", "p50_ms", "p95_ms", "p99_ms", "errors", "model_share")


@pytest.mark.service
def test_serve_benchmark_smoke(
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The service's decisions get all the time they need: whether the model answers within
    # the default 100 ms depends on what else the machine runs (in the full suite it once
    # did not, and the cached phase's warm-up lists came from the fallbacks, which are
    # never cached). The figures' shape, not the service's speed, is under test here.
    monkeypatch.setenv("SHELFWISE_DECISION_DEADLINE_MS", "10000")
    folder = tmp_path_factory.mktemp("serve") / "workspace"
    options = BenchOptions(settings=settings, smoke=True, extra={"workspace": str(folder)})
    result = json.loads(dumps(run_benchmark("serve", options)).splitlines()[-1])
    figures = result["figures"]
    assert figures["items"] == SMOKE_ITEMS  # the shop's 80 products and simulated new ones
    for phase in ("uncached", "cached"):
        assert set(PHASE) <= set(figures[phase]), phase
        assert figures[phase]["errors"] == 0, phase
        assert figures[phase]["rps_served"] > 0, phase
        assert figures[phase]["p50_ms"] <= figures[phase]["p99_ms"], phase
        assert 0 <= figures[phase]["model_share"] <= 1, phase
    assert figures["cached"]["model_share"] == 1  # the cache holds the model's answers alone
    floor = figures["floor"]
    assert floor["prepared"]["persons"] > 0
    assert floor["prepared"]["features"] >= 80
    for phase in serve_floor.PHASES:
        assert floor[phase]["errors"] == 0, phase
        assert floor[phase]["rps_served"] > 0, phase
    assert floor["floor_ranker_2_workers"]["workers"] == 2
    _floor_scores_are_the_champions(folder, tmp_path_factory.mktemp("floor"))


def _floor_scores_are_the_champions(folder: Path, out: Path) -> None:
    """The floor ranks exactly what the champion ranks: the same candidates, the same scores."""
    workspace = Workspace(Settings(workspace=folder))  # as the bench opens it
    try:
        persons = sorted(purchase_log(workspace)["person_id"].astype(str).unique())[:3]
        model, _, _ = load_champion(workspace, online_store(workspace))
        # The enlarged champion came through the registry: recorded, and the old one archived.
        history = workspace.registry.history(MODEL_NAME)
        moves = [(m["version"], m["to_state"], m["actor"]) for m in history]
        assert moves[-3:] == [
            ("2", "candidate", "bench"),
            ("1", "archived", "bench"),
            ("2", "champion", "bench"),
        ], moves
        assert workspace.registry.state(MODEL_NAME, "1") == RegistryState.ARCHIVED
    finally:
        workspace.close()
    assert model is not None
    serve_floor.prepare(folder, persons, out, limit=3)
    rows, skus = np.load(out / "rows.npy"), np.load(out / "skus.npy")
    offsets = np.load(out / "offsets.npy")
    booster = lgb.Booster(model_file=str(out / "ranker.txt"))
    ranked = model.ranked(persons[:1], depth=len(model.items_))
    scored = ranked[ranked["source"] != "fallback"].set_index("sku")["score"]
    ours = pd.Series(booster.predict(rows[: offsets[1]]), index=skus[: offsets[1]])
    shared = scored.index.intersection(ours.index)
    assert len(shared) >= 0.9 * len(ours)  # new products placed among them have no row here
    np.testing.assert_allclose(ours[shared].to_numpy(), scored[shared].to_numpy(), rtol=1e-6)


def test_simulated_products_copy_a_real_products_attributes() -> None:
    real = pd.DataFrame(
        {
            "sku": ["a", "b"],
            "title": ["Milk 1L", None],
            "department": ["DAIRY", "BAKERY"],
            "category": ["MILK", "BREAD"],
            "subcategory": ["WHOLE", "WHITE"],
            "brand": ["National", "Private"],
            "price": [1.0, 2.0],
        }
    )
    latest = pd.Timestamp("2024-04-01", tz="UTC")
    made = simulated_products(real, 200, latest, seed=0, start=5)
    assert made["sku"].iloc[0] == "SIM0000005"
    assert made["sku"].is_unique
    template = made["department"].map({"DAIRY": 0, "BAKERY": 1})
    assert set(template) == {0, 1}  # both real products used as templates
    assert (made["category"] == real["category"].to_numpy()[template]).all()
    ratio = made["price"] / real["price"].to_numpy()[template]
    assert ratio.between(0.5, 2.0).all()
    assert made["title"].str.endswith("(variant)").all()
    launched = pd.to_datetime(made["launch_date"])
    assert launched.max() <= latest.tz_localize(None)
    assert launched.min() >= (latest - pd.Timedelta(days=61)).tz_localize(None)
