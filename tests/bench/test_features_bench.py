"""`shelfwise bench features` in its smoke mode (the simulated shop, memory and Redis)."""

from __future__ import annotations

import json

import pytest

from shelfwise.bench import BenchOptions, dumps, run_benchmark
from shelfwise.settings import Settings
from shelfwise.simulate.shop import simulate_shop

REQUIRED = (
    "build_seconds_recommender",
    "build_seconds_forecaster",
    "person_vector_p50_ms",
    "person_vector_p99_ms",
    "products200_p50_ms",
    "products200_p99_ms",
    "redis_person_vector_p50_ms",
    "redis_person_vector_p99_ms",
    "redis_products200_p50_ms",
    "redis_products200_p99_ms",
    "ingest_events_per_s",
)


@pytest.mark.service
def test_features_benchmark_smoke(
    settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELFWISE_BENCH_REDIS_URL", redis_url)
    result = json.loads(dumps(run_benchmark("features", BenchOptions(settings, smoke=True))))
    assert result["benchmark"] == "features"
    figures = result["figures"]
    assert "redis_error" not in figures
    for name in REQUIRED:
        assert figures[name] > 0, name
    assert figures["redis_ingest_events_per_s"] > 0
    # Every loyalty purchase line of weeks 14-17 and 4 negatives each; 50 products x 16 weeks.
    shop = simulate_shop(seed=0)
    orders = shop.tables["orders"].dropna(subset=["customer_ref"])
    week = (orders["ordered_at"] - orders["ordered_at"].min()).dt.days // 7 + 1
    labelled = orders.loc[week.between(14, 17), "order_id"]
    lines = shop.tables["order_lines"]["order_id"].isin(labelled).sum()
    assert figures["recommender_rows"] == 5 * lines
    assert figures["forecaster_rows"] == 50 * 16
    assert figures["recommender_features"] > figures["forecaster_features"] > 0
    assert figures["freshness_ok"] is True
