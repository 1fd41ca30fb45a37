"""`shelfwise bench serve` in its smoke mode: the service in its own process, driven from
another at a fixed rate over loopback."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from shelfwise.bench import BenchOptions, dumps, run_benchmark
from shelfwise.bench.catalogue import simulated_products
from shelfwise.bench.serve import SMOKE_ITEMS
from shelfwise.settings import Settings

PHASE = ("rps_offered", "rps_served", "p50_ms", "p95_ms", "p99_ms", "errors", "model_share")


@pytest.mark.service
def test_serve_benchmark_smoke(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
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
