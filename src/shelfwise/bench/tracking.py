"""`shelfwise bench tracking`: how long logging a trained model takes.

Our path (explicit requirements and signature, the model saved as arrays and JSON) against
MLflow's defaults for the same model in the same run (a pickled python model whose
requirements MLflow infers), on a fresh SQLite-backed store in a temporary workspace.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.bench import BenchOptions, progress
from shelfwise.settings import Settings
from shelfwise.tracking import Tracker
from shelfwise.tracking.pyfunc import RankedItems, load_model_dir


def signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "person_id"), ColSpec("long", "k", required=False)]),
        outputs=Schema(
            [ColSpec("string", "person_id"), ColSpec("string", "sku"),
             ColSpec("double", "score"), ColSpec("long", "rank")]
        ),
    )  # fmt: skip


def small_model(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    skus = pd.Series(rng.zipf(1.3, 20_000) % 5_000).astype(str)
    return RankedItems.from_interactions(skus).save(folder / "model")


def _timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _mlflow_default(tracker: Tracker, model_dir: Path) -> None:
    import mlflow

    class Wrapped(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def predict(self, context: Any, model_input: pd.DataFrame) -> pd.DataFrame:
            return load_model_dir(model_dir).predict_frame(model_input)

    mlflow.set_tracking_uri(tracker.tracking_uri)
    with mlflow.start_run(experiment_id=tracker.experiment_id("bench-default")):
        mlflow.log_params({"half_life_days": 14})
        mlflow.log_metrics({"ndcg_at_10": 0.1})
        mlflow.pyfunc.log_model(name="model", python_model=Wrapped())


def run(options: BenchOptions) -> dict[str, Any]:
    ours_n, default_n = (2, 1) if options.smoke else (20, 3)
    with tempfile.TemporaryDirectory(prefix="shelfwise-bench-") as tmp:
        folder = Path(tmp)
        tracker = Tracker.from_settings(Settings(workspace=folder / "ws"))
        model_dir = small_model(folder)
        sig = signature()
        progress("warming up the store (schema creation is once per workspace)")
        tracker.experiment_id("bench")
        records = []

        def log_ours() -> None:
            records.append(
                tracker.log_training(
                    experiment="bench",
                    model_dir=model_dir,
                    signature=sig,
                    params={"half_life_days": 14},
                    metrics={"ndcg_at_10": 0.1},
                )
            )

        ours = [_timed(log_ours) for _ in range(ours_n)]
        progress(f"shelfwise log_training p50 {statistics.median(ours):.3f}s")
        register = [_timed(lambda r=r: tracker.register("bench", r)) for r in records]

        def load_back(attempt: int) -> None:
            folder_for = folder / f"load{attempt}"
            load_model_dir(tracker.download_model_dir(records[0].model_uri, folder_for))

        load = [_timed(lambda i=i: load_back(i)) for i in range(min(5, ours_n))]
        default = [_timed(lambda: _mlflow_default(tracker, model_dir)) for _ in range(default_n)]
        progress(f"MLflow defaults log_model p50 {statistics.median(default):.3f}s")
    ours_sorted = sorted(ours)
    return {
        "figures": {
            "log_run_p50_s": round(statistics.median(ours), 4),
            "log_run_p95_s": round(ours_sorted[int(0.95 * (len(ours) - 1))], 4),
            "mlflow_default_log_run_p50_s": round(statistics.median(default), 4),
            "register_p50_s": round(statistics.median(register), 4),
            "load_p50_s": round(statistics.median(load), 4),
            "repeats": ours_n,
            "baseline_repeats": default_n,
        }
    }
