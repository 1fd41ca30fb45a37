"""`shelfwise bench serve` in its smoke mode: the service in its own process, driven from
another at a fixed rate over loopback."""

from __future__ import annotations

import json

import pytest

from shelfwise.bench import BenchOptions, dumps, run_benchmark
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
    assert figures["items"] > 0
    for phase in ("uncached", "cached"):
        assert set(PHASE) <= set(figures[phase]), phase
        assert figures[phase]["errors"] == 0, phase
        assert figures[phase]["rps_served"] > 0, phase
        assert figures[phase]["p50_ms"] <= figures[phase]["p99_ms"], phase
        assert 0 <= figures[phase]["model_share"] <= 1, phase
    assert figures["cached"]["model_share"] == 1  # the cache holds the model's answers alone
