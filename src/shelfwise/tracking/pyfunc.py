"""The pyfunc face of every logged shelfwise model (MLflow's ``loader_module``).

``mlflow.pyfunc.load_model`` calls :func:`_load_pyfunc` with the saved estimator's folder; the
estimator is rebuilt from its JSON and arrays (never a pickle) and MLflow's ``predict`` calls
the estimator's ``predict``: for a recommender, a frame of ``person_id`` (and optional ``k``)
in, ranked recommendations out. This module does not import mlflow.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from shelfwise.models.base import Estimator


class EstimatorModel:
    """What MLflow serves: a fitted estimator, answering frames."""

    def __init__(self, estimator: Estimator[Any]) -> None:
        self.estimator = estimator

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.estimator.predict(frame)


def _load_pyfunc(data_path: str) -> EstimatorModel:
    return EstimatorModel(Estimator.load(data_path))
