"""MLflow through the tracker, on a real SQLite store: log, register, alias, load back, serve."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

import shelfwise
from shelfwise.bench import BenchOptions, run_benchmark
from shelfwise.models import Evaluation
from shelfwise.ops.states import RegistryState
from shelfwise.recommend import PopularityRecommender, PopularitySettings
from shelfwise.settings import Settings
from shelfwise.tracking import ALIASES, STATUSES, Tracker, TrainingRecord
from shelfwise.tracking._store_check import redact

PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
PEOPLE = pd.DataFrame({"person_id": ["p1", "p2", "stranger"], "k": [3, 3, 5]})


def _log(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in rng.integers(0, 20, rows)],
            "sku": [f"s{i:02d}" for i in rng.zipf(1.5, rows) % 25],
            "occurred_at": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 30, rows), unit="D"),
        }
    )


@pytest.fixture
def model() -> PopularityRecommender:
    settings = PopularitySettings(half_life_days=7.0, exclude_seen=True)
    return PopularityRecommender(settings).fit(_log(400, seed=0))


@pytest.fixture
def evaluation(model: PopularityRecommender) -> Evaluation:
    return model.evaluate(_log(100, seed=1))


@pytest.fixture
def record(
    tracker: Tracker, model: PopularityRecommender, evaluation: Evaluation
) -> TrainingRecord:
    return tracker.log_training(
        model,
        experiment="popularity",
        metrics=evaluation,
        params={"train_rows": 400},
        dataset={"name": "simulated-log", "source": "tests"},
        tags={"owner": "tests"},
    )


@pytest.fixture
def fluent_uri(tracker: Tracker) -> Iterator[None]:
    """MLflow's own loaders read the process-wide URI; point it here for one test only."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(tracker.tracking_uri):
        yield


def _files(artifact_uri: str) -> list[Path]:
    return [p for p in Path(urlparse(artifact_uri).path).rglob("*") if p.is_file()]


def test_a_run_records_settings_metrics_data_and_model(
    tracker: Tracker, settings: Settings, record: TrainingRecord, evaluation: Evaluation
) -> None:
    run = tracker.client.get_run(record.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["half_life_days"] == "7.0"
    assert run.data.params["exclude_seen"] == "True"
    assert run.data.params["train_rows"] == "400"
    assert run.data.metrics["ndcg_at_10"] == pytest.approx(evaluation.primary_value)
    assert "fit_seconds" in run.data.metrics
    assert run.data.tags["shelfwise.family"] == "popularity"
    assert run.data.tags["owner"] == "tests"
    assert run.data.tags["mlflow.user"]
    assert run.data.tags["mlflow.source.name"] == sys.argv[0]
    code = Path(shelfwise.__file__).parent
    commit = subprocess.run(
        ["git", "-C", str(code), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    expected = commit.stdout.strip() if commit.returncode == 0 else None
    assert run.data.tags.get("shelfwise.git_commit") == expected
    assert run.inputs is not None
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "simulated-log"

    restored = tracker.evaluation(record.run_id)
    assert restored is not None
    assert restored.primary_metric == "ndcg@10"
    assert restored.higher_is_better
    assert restored.primary_value == pytest.approx(evaluation.primary_value)
    assert record.model_uri == f"models:/{record.model_id}"
    assert tracker.client.get_logged_model(record.model_id).status.to_int() == 2  # READY


def test_artefacts_live_in_the_workspace_and_hold_no_pickle(
    settings: Settings, record: TrainingRecord
) -> None:
    assert record.artifact_uri.startswith(Path(settings.artifacts).as_uri())
    files = _files(record.artifact_uri)
    names = {p.name for p in files}
    assert {"MLmodel", "requirements.txt", "arrays.npz", "settings.json"} <= names
    assert not [p for p in files if p.suffix in (".pkl", ".pickle")]
    assert not [p for p in files if p.read_bytes().startswith(PICKLE_MAGIC)]
    requirements = next(p for p in files if p.name == "requirements.txt").read_text()
    assert "shelfwise==0.1.0" in requirements


def test_register_statuses_and_aliases(tracker: Tracker, record: TrainingRecord) -> None:
    assert tracker.register("popularity", record) == "1"
    assert tracker.register("popularity", record, status="experimental") == "2"
    assert tracker.get_status("popularity", "1") == "candidate"
    assert tracker.get_status("popularity", "2") == "experimental"
    tracker.set_status("popularity", "2", "archived")
    assert tracker.get_status("popularity", "2") == "archived"
    with pytest.raises(ValueError, match="status must be one of candidate"):
        tracker.set_status("popularity", "1", "retired")

    assert tracker.get_alias_version("popularity", "champion") is None
    assert tracker.get_alias_version("no-such-model", "champion") is None
    tracker.set_alias("popularity", "champion", "1")
    tracker.set_alias("popularity", "challenger", "2")
    assert tracker.get_alias_version("popularity", "champion") == "1"
    tracker.set_alias("popularity", "champion", "2")
    assert tracker.get_alias_version("popularity", "champion") == "2"
    tracker.delete_alias("popularity", "challenger")
    assert tracker.get_alias_version("popularity", "challenger") is None


def test_load_estimator_by_every_kind_of_uri(
    tracker: Tracker, record: TrainingRecord, model: PopularityRecommender
) -> None:
    version = tracker.register("popularity", record)
    tracker.set_alias("popularity", "champion", version)
    expected = model.predict(PEOPLE)
    for uri in (
        record.model_uri,
        f"models:/popularity/{version}",
        "models:/popularity@champion",
        record.artifact_uri,
    ):
        loaded = tracker.load_estimator(uri)
        assert isinstance(loaded, PopularityRecommender)
        assert loaded.settings == model.settings
        pd.testing.assert_frame_equal(loaded.predict(PEOPLE), expected)


@pytest.mark.usefixtures("fluent_uri")
def test_mlflow_pyfunc_serves_the_model(
    tracker: Tracker, record: TrainingRecord, model: PopularityRecommender
) -> None:
    import mlflow.pyfunc

    tracker.set_alias("popularity", "champion", tracker.register("popularity", record))
    served = mlflow.pyfunc.load_model("models:/popularity@champion")
    assert served.metadata.get_input_schema().input_names() == ["person_id", "k"]
    pd.testing.assert_frame_equal(served.predict(PEOPLE), model.predict(PEOPLE))
    without_k = served.predict(pd.DataFrame({"person_id": ["p1"]}))
    assert list(without_k["rank"]) == list(range(1, 11))


def test_two_trackers_keep_to_their_own_stores(
    tmp_path: Path, model: PopularityRecommender, make_tracker: Callable[[Settings], Tracker]
) -> None:
    first = make_tracker(Settings(workspace=tmp_path / "one"))
    second = make_tracker(Settings(workspace=tmp_path / "two"))
    record = first.log_training(model, experiment="popularity")
    second.log_training(model, experiment="popularity")
    assert first.register("popularity", record) == "1"
    assert second.get_alias_version("popularity", "champion") is None
    assert len(second.client.search_registered_models()) == 0


def test_states_agree_with_the_operational_tables() -> None:
    assert set(STATUSES) | set(ALIASES) == {state.value for state in RegistryState}


def test_check_is_truthful_and_quick(tmp_path: Path) -> None:
    tracker = Tracker(f"sqlite:///{tmp_path}/new/mlflow.db")
    ok, detail = tracker.check()
    assert ok
    assert "does not exist yet" in detail
    tracker.ensure_store()
    ok, detail = tracker.check()
    assert ok
    assert "MLflow store (schema" in detail

    (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
    ok, detail = Tracker(f"sqlite:///{tmp_path}/garbage.db").check()
    assert not ok
    assert "not a usable SQLite database" in detail

    (tmp_path / "a-file").write_text("")
    ok, detail = Tracker(f"sqlite:///{tmp_path}/a-file/mlflow.db").check()
    assert not ok
    assert "cannot be created" in detail

    ok, detail = Tracker("http://user:secret@127.0.0.1:1").check()
    assert not ok
    assert "not reachable" in detail
    assert "secret" not in detail

    ok, detail = Tracker("ftp://example.org/store").check()
    assert not ok
    assert redact("postgresql://me:pw@db/x") == "postgresql://me:***@db/x"


def test_telemetry_is_off_and_mlflow_is_not_imported_until_used(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from shelfwise.tracking import Tracker\n"
        "assert 'MLFLOW_DISABLE_TELEMETRY' not in os.environ\n"
        f"tracker = Tracker('sqlite:///{tmp_path}/mlflow.db')\n"
        "tracker.check()\n"
        "print(os.environ['MLFLOW_DISABLE_TELEMETRY'], os.environ['DO_NOT_TRACK'],"
        " 'mlflow' in sys.modules)\n"
    )
    environment = {
        k: v for k, v in os.environ.items() if k not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
    }
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    )
    assert found.stdout.split() == ["true", "1", "False"]


def test_tracking_benchmark_smoke(settings: Settings) -> None:
    result = run_benchmark("tracking", BenchOptions(settings=settings, smoke=True))
    figures = result["figures"]
    for key in (
        "log_run_p50_s",
        "log_run_p95_s",
        "mlflow_default_log_run_p50_s",
        "register_p50_s",
        "load_p50_s",
    ):
        assert figures[key] > 0, key
    assert figures["loaded_models_identical"] is True
    assert (figures["repeats"], figures["baseline_repeats"]) == (2, 1)


def test_ingest_benchmark_smoke(settings: Settings) -> None:
    figures = run_benchmark("ingest", BenchOptions(settings=settings, smoke=True))["figures"]
    assert figures["broken_file_balanced"] is True
    assert figures["broken_file_quarantined"] == figures["broken_file_planted"]
    assert figures["broken_file_reingest_inserted"] == 0


def test_a_run_records_the_feature_set_versions_and_the_loaded_model_enforces_them(
    tracker: Tracker,
) -> None:
    frame = _log(200, 3)
    frame.attrs["feature_versions"] = {"person_purchases": "aaaaaaaaaaaa", "product": "bbb"}
    model = PopularityRecommender().fit(frame)
    record = tracker.log_training(model, experiment="features")
    tags = tracker.client.get_run(record.run_id).data.tags
    assert tags["shelfwise.features.person_purchases"] == "aaaaaaaaaaaa"
    assert tags["shelfwise.features.product"] == "bbb"
    loaded = tracker.load_estimator(record.model_uri)
    assert loaded.feature_versions_ == frame.attrs["feature_versions"]
    asked = pd.DataFrame({"person_id": ["p1"]})
    asked.attrs["feature_versions"] = {"person_purchases": "cccccccccccc", "product": "bbb"}
    from shelfwise.features import FeatureVersionError

    with pytest.raises(FeatureVersionError, match="person_purchases"):
        loaded.predict(asked)
