"""`shelfwise bench identity` in its smoke mode, for every protocol, so that it cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.bench import BenchOptions, dumps, run_benchmark
from shelfwise.settings import Settings

pytestmark = pytest.mark.data


@pytest.mark.parametrize("protocol", ["febrl4", "febrl3", "identity-1m"])
def test_identity_benchmark_smoke(settings: Settings, datasets_dir: Path, protocol: str) -> None:
    options = BenchOptions(settings=settings, protocol=protocol, datasets=datasets_dir, smoke=True)
    result = json.loads(dumps(run_benchmark("identity", options)))
    assert result["benchmark"] == "identity"
    assert result["protocol"] == protocol
    assert result["primary_metric"] == "f1"
    track = result["tracks"]["default"]
    assert set(track) == {"shelfwise", "splink_reference"}
    for figures in track.values():
        assert 0.0 <= figures["precision"] <= 1.0
        assert figures["seconds"] > 0
    # Even on a few hundred records, both link nearly every true pair and nothing else.
    assert track["shelfwise"]["f1"] > 0.9
    assert track["splink_reference"]["f1"] > 0.8
    if protocol != "febrl4":
        assert "cluster_f1" in track["shelfwise"]


def test_unknown_protocol_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="febrl4"):
        run_benchmark("identity", BenchOptions(settings=settings, protocol="febrl9", smoke=True))
