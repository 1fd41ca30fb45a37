"""`shelfwise bench tracking`: what logging, registering and loading back a model costs.

shelfwise's path (explicit requirements, signature and input example; the model saved as
arrays and JSON) against MLflow's defaults for the same model in the same run (the same
pyfunc folder logged with no requirements, so MLflow infers them by loading the model in a
subprocess), on a fresh SQLite store in a temporary workspace. The model is a popularity
recommender fitted on a deterministic interaction frame (numpy seed 0).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from shelfwise.bench import BenchOptions, progress
from shelfwise.recommend import PopularityRecommender, PopularitySettings
from shelfwise.settings import Settings
from shelfwise.tracking import Tracker, TrainingRecord
from shelfwise.tracking._logged_model import ESTIMATOR_FOLDER, LOADER_MODULE

MODEL_NAME = "bench-popularity"
T = TypeVar("T")
P = ParamSpec("P")


def interactions(rows: int = 20_000, persons: int = 2_000, skus: int = 5_000) -> pd.DataFrame:
    """A deterministic interaction log with a long-tailed sku popularity (seed 0)."""
    rng = np.random.default_rng(0)
    seconds = rng.integers(0, 120 * 86_400, rows)
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in rng.integers(0, persons, rows)],
            "sku": [f"sku-{i}" for i in rng.zipf(1.3, rows) % skus],
            "occurred_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s"),
        }
    )


def _timed(action: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> tuple[float, T]:
    started = time.perf_counter()
    result = action(*args, **kwargs)
    return time.perf_counter() - started, result


def _summary(seconds: Sequence[float]) -> tuple[float, float]:
    return statistics.median(seconds), float(np.percentile(seconds, 95))


def _log_with_mlflow_defaults(tracker: Tracker, model: PopularityRecommender, folder: Path) -> None:
    """The same run and model folder as ours, logged the way MLflow's docs show it."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    data = model.save(folder / ESTIMATOR_FOLDER)
    experiment_id = tracker.experiment_id("bench-mlflow-defaults")
    # The fluent API only knows the process-wide URI; set it for this block alone.
    with (
        _use_tracking_uri(tracker.tracking_uri),
        mlflow.start_run(experiment_id=experiment_id),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # the baseline's own advice to add a signature
        mlflow.log_params(model.settings.to_dict())
        mlflow.log_metrics({"fit_seconds": model.fit_seconds_})
        mlflow.pyfunc.log_model(name="model", loader_module=LOADER_MODULE, data_path=str(data))


def run(options: BenchOptions) -> dict[str, Any]:
    repeats = 2 if options.smoke else int(options.extra.get("repeats", 20))
    baseline_repeats = 1 if options.smoke else int(options.extra.get("baseline_repeats", 3))
    frame = interactions(rows=2_000 if options.smoke else 20_000)
    cutoff = frame["occurred_at"].quantile(0.9)
    train, test = frame[frame["occurred_at"] <= cutoff], frame[frame["occurred_at"] > cutoff]
    model = PopularityRecommender(PopularitySettings(half_life_days=14.0)).fit(train)
    evaluation = model.evaluate(test)
    progress(f"popularity model: {len(model.items_)} skus, ndcg@10 {evaluation.primary_value:.4f}")

    with tempfile.TemporaryDirectory(prefix="shelfwise-bench-tracking-") as folder:
        tracker = Tracker.from_settings(Settings(workspace=Path(folder) / "workspace"))
        store_s, _ = _timed(tracker.ensure_store)
        progress(f"created the MLflow store in {store_s:.2f} s (once per workspace)")

        def log() -> TrainingRecord:
            return tracker.log_training(
                model, experiment="bench", metrics=evaluation, params={"rows": len(train)}
            )

        first_s, _ = _timed(log)  # imports mlflow.pyfunc and warms the store's caches
        log_s, records = zip(*(_timed(log) for _ in range(repeats)), strict=True)
        progress(f"shelfwise log_training: p50 {statistics.median(log_s):.3f} s ({repeats} runs)")
        register_s, versions = zip(
            *(_timed(tracker.register, MODEL_NAME, record) for record in records), strict=True
        )
        load_s, loaded = zip(
            *(_timed(tracker.load_estimator, f"models:/{MODEL_NAME}/{v}") for v in versions),
            strict=True,
        )
        people = pd.DataFrame({"person_id": test["person_id"].unique()[:100]})
        identical = all(each.predict(people).equals(model.predict(people)) for each in loaded)
        progress(
            f"register p50 {statistics.median(register_s):.3f} s, load p50 "
            f"{statistics.median(load_s):.3f} s; loaded models identical: {identical}"
        )

        progress(f"MLflow defaults ({baseline_repeats} runs; requirements inferred by MLflow)")
        baseline_s = [
            _timed(_log_with_mlflow_defaults, tracker, model, Path(folder) / f"baseline-{i}")[0]
            for i in range(baseline_repeats)
        ]
        progress(f"MLflow defaults log: p50 {statistics.median(baseline_s):.3f} s")

    log_p50, log_p95 = _summary(log_s)
    baseline_p50 = statistics.median(baseline_s)
    return {
        "figures": {
            "log_run_p50_s": round(log_p50, 4),
            "log_run_p95_s": round(log_p95, 4),
            "mlflow_default_log_run_p50_s": round(baseline_p50, 4),
            "speedup_vs_mlflow_default": round(baseline_p50 / log_p50, 1),
            "register_p50_s": round(statistics.median(register_s), 4),
            "load_p50_s": round(statistics.median(load_s), 4),
            "first_log_run_s": round(first_s, 4),
            "store_create_s": round(store_s, 4),
            "loaded_models_identical": identical,
            "repeats": repeats,
            "baseline_repeats": baseline_repeats,
            "skus": len(model.items_),
            "train_rows": len(train),
        }
    }
