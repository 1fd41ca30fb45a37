"""MLflow through the tracker: log, register, alias, load back; no pickles; truthful checks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shelfwise.bench import BenchOptions, run_benchmark
from shelfwise.bench.tracking import signature, small_model
from shelfwise.settings import Settings
from shelfwise.tracking import CHAMPION, Tracker
from shelfwise.tracking.pyfunc import RankedItems, load_model_dir


@pytest.fixture
def tracker(settings: Settings) -> Tracker:
    return Tracker.from_settings(settings)


def test_log_register_alias_and_load_back(tracker: Tracker, tmp_path: Path) -> None:
    import mlflow

    model_dir = small_model(tmp_path)
    record = tracker.log_training(
        experiment="popularity", model_dir=model_dir, signature=signature(),
        params={"half_life_days": 14}, metrics={"ndcg_at_10": 0.25},
    )  # fmt: skip
    run = tracker.client.get_run(record.run_id)
    assert run.data.params == {"half_life_days": "14"}
    assert run.data.metrics == {"ndcg_at_10": 0.25}

    version = tracker.register("popularity", record)
    assert tracker.status("popularity", version) == "candidate"
    tracker.set_status("popularity", version, "champion")
    tracker.set_alias("popularity", CHAMPION, version)
    assert tracker.alias_version("popularity", CHAMPION) == version
    assert tracker.alias_version("popularity", "challenger") is None

    mlflow.set_tracking_uri(tracker.tracking_uri)
    mlflow.set_registry_uri(tracker.registry_uri)
    served = mlflow.pyfunc.load_model(f"models:/popularity@{CHAMPION}")
    top = served.predict(pd.DataFrame({"person_id": ["p1", "p2"], "k": [3, 3]}))
    expected = RankedItems.load(model_dir).predict_frame(pd.DataFrame({"person_id": ["p1"]}))
    assert list(top.loc[top.person_id == "p1", "sku"]) == list(expected["sku"][:3])

    downloaded = tracker.download_model_dir(record.model_uri, tmp_path / "download")
    assert not list(downloaded.rglob("*.pkl"))
    reloaded = load_model_dir(downloaded)
    assert isinstance(reloaded, RankedItems)


def test_unknown_status_is_refused(tracker: Tracker) -> None:
    with pytest.raises(ValueError, match="not one of candidate"):
        tracker._check_status("retired")


def test_check_is_truthful(tmp_path: Path) -> None:
    ok, detail = Tracker(f"sqlite:///{tmp_path}/x/mlflow.db", "", str(tmp_path)).check()
    assert ok
    assert "not created yet" in detail
    ok, detail = Tracker("http://127.0.0.1:1", "", str(tmp_path)).check()
    assert not ok
    assert "not reachable" in detail


def test_tracking_benchmark_smoke(settings: Settings) -> None:
    result = run_benchmark("tracking", BenchOptions(settings=settings, smoke=True))
    figures = result["figures"]
    for key in ("log_run_p50_s", "mlflow_default_log_run_p50_s", "register_p50_s", "load_p50_s"):
        assert figures[key] > 0


def test_ingest_benchmark_smoke(settings: Settings) -> None:
    figures = run_benchmark("ingest", BenchOptions(settings=settings, smoke=True))["figures"]
    assert figures["broken_file_balanced"] is True
    assert figures["broken_file_quarantined"] == figures["broken_file_planted"]
    assert figures["broken_file_reingest_inserted"] == 0
