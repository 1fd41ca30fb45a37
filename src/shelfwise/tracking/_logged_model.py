"""How a fitted estimator becomes an MLflow logged model, and its training data a run input.

The estimator is saved by its own ``save`` (JSON and arrays) into the data folder of a pyfunc
model whose ``loader_module`` is :mod:`shelfwise.tracking.pyfunc`. Requirements, signature
and input example are given, never inferred: inference loads the model in a subprocess and
takes seconds per run; the signature comes from the family's declared columns.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shelfwise
from shelfwise.models.base import Column, Estimator

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel
    from mlflow.types import Schema

ESTIMATOR_FOLDER = "estimator"  # the saved estimator inside the MLflow model folder
LOADER_MODULE = "shelfwise.tracking.pyfunc"


def log_dataset(client: MlflowClient, run_id: str, description: dict[str, Any]) -> None:
    """The training data's description, as the run's dataset input (context "training")."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    profile = json.dumps(description, sort_keys=True, default=str)
    digest = description.get("fingerprint") or hashlib.sha256(profile.encode()).hexdigest()
    dataset = Dataset(
        name=str(description.get("name", "training")),
        digest=str(digest)[:36],
        source_type="shelfwise",
        source=json.dumps({"source": str(description.get("source", "frame"))}),
        schema=json.dumps({"columns": description.get("columns", [])}),
        profile=profile,
    )
    context = InputTag(key="mlflow.data.context", value="training")
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[context])])


def log_model(
    client: MlflowClient, estimator: Estimator[Any], model: LoggedModel, run_id: str
) -> None:
    """Save ``estimator`` as a pyfunc model into ``model``'s artefacts and mark it READY."""
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model, ModelSignature

    inputs, outputs = _schema(estimator.input_schema), _schema(estimator.output_schema)
    signature = ModelSignature(inputs=inputs, outputs=outputs) if inputs else None
    try:
        with tempfile.TemporaryDirectory(prefix="shelfwise-model-") as folder:
            data = estimator.save(Path(folder) / ESTIMATOR_FOLDER)
            local = Path(folder) / "mlflow-model"
            mlflow.pyfunc.save_model(
                str(local),
                loader_module=LOADER_MODULE,
                data_path=str(data),
                # Explicit requirements and signature: MLflow would otherwise load the
                # model in a subprocess to infer them (~7 s per run).
                pip_requirements=[f"shelfwise=={shelfwise.__version__}"],
                signature=signature,
                input_example=estimator.input_example(),
                mlflow_model=Model(
                    artifact_path=model.artifact_location,
                    model_uuid=model.model_id,
                    run_id=run_id,
                    model_id=model.model_id,
                ),
            )
            client.log_model_artifacts(model.model_id, str(local))
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    except BaseException:
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise


def _schema(columns: tuple[Column, ...]) -> Schema | None:
    from mlflow.types import ColSpec, Schema

    if not columns:
        return None
    return Schema([ColSpec(c.dtype, c.name, required=c.required) for c in columns])
