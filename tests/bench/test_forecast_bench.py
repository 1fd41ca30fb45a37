"""`shelfwise bench forecast` in its smoke mode, on both protocols, references in the same run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.bench import BenchOptions, dumps, run_benchmark
from shelfwise.settings import Settings

REFERENCES = {
    "cj-weekly-top500": {"naive", "moving_average_4", "auto_ets", "croston", "tsb", "lightgbm"},
    "stallion": {"naive", "seasonal_naive", "auto_ets", "lightgbm", "lightgbm_price"},
    "cj-weekly-store-top50": {"naive", "moving_average_4", "auto_ets", "croston", "tsb"},
}


@pytest.mark.data
@pytest.mark.parametrize("protocol", sorted(REFERENCES))
def test_forecast_benchmark_smoke(settings: Settings, datasets_dir: Path, protocol: str) -> None:
    options = BenchOptions(settings, protocol=protocol, datasets=datasets_dir, smoke=True)
    result = json.loads(dumps(run_benchmark("forecast", options)))
    assert result["protocol"] == protocol
    assert REFERENCES[protocol] <= set(result["metrics"])
    ours = result["metrics"]["ours"]
    assert {"mae", "wape", "rmsse", "bias", "coverage"} <= set(ours)
    assert 0.5 <= ours["coverage"] <= 1.0
    assert result["best_reference"] in REFERENCES[protocol]
    if protocol == "cj-weekly-store-top50":
        assert result["series"] > 50  # 5 products, each in many stores
    if protocol == "cj-weekly-top500":
        assert ours["wape"] < result["metrics"]["naive"]["wape"]
        assert result["tiers_validation"]  # the tiers against the global model
        assert "global_only_wape" in next(iter(result["per_department"].values()))
        # Promotions planned ahead carry most of the gain: far below the moving average.
        assert ours["wape"] < 0.9 * result["metrics"]["moving_average_4"]["wape"]


def test_an_unknown_protocol_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown forecast protocol 'm5'"):
        run_benchmark("forecast", BenchOptions(settings, protocol="m5", smoke=True))
