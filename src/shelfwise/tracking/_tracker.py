"""The tracker: MLflow runs, logged models and registry versions for every model family."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelfwise import __version__
from shelfwise.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.models import ModelSignature

CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_STATUSES = ("candidate", "challenger", "champion", "experimental", "archived")
STATUS_TAG = "shelfwise.status"
PYFUNC_LOADER = "shelfwise.tracking.pyfunc"
CHECK_TIMEOUT_S = 3.0


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Requirements are given explicitly; MLflow's check of them against this environment
    # only prints warnings when shelfwise is installed from a checkout.
    os.environ.setdefault("MLFLOW_VALIDATE_SERVING_INPUT", "false")


@dataclass(frozen=True)
class TrainingRecord:
    """What one logged training produced."""

    run_id: str
    model_uri: str
    experiment_id: str


class Tracker:
    """Tracking and registry on the URIs the settings name (a SQLite file by default)."""

    def __init__(self, tracking_uri: str, registry_uri: str, artifact_location: str) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self.artifact_location = artifact_location
        self._client: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracker:
        return cls(settings.tracking, settings.registry, settings.artifacts)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            _quiet_mlflow()
            from mlflow import MlflowClient

            if self.tracking_uri.startswith("sqlite:///"):
                Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                    parents=True, exist_ok=True
                )
            self._client = MlflowClient(self.tracking_uri, self.registry_uri)
        return self._client

    def experiment_id(self, name: str) -> str:
        """The experiment called ``name``, created with the workspace's artefact root."""
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        location = self.artifact_location
        if "://" not in location:
            location = Path(location).resolve().as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    def log_training(
        self,
        *,
        experiment: str,
        model_dir: Path,
        signature: ModelSignature,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
    ) -> TrainingRecord:
        """Log a run with its params, metrics and the model saved in ``model_dir``.

        The model is logged as a pyfunc whose loader reads the directory back (arrays and
        JSON, no pickle), with explicit requirements and signature: MLflow infers neither.
        """
        import mlflow

        experiment_id = self.experiment_id(experiment)
        with (
            self._fluent_uris(),
            mlflow.start_run(
                experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})
            ) as run,
        ):
            mlflow.log_params(dict(params))
            mlflow.log_metrics(dict(metrics))
            info = mlflow.pyfunc.log_model(
                name="model",
                loader_module=PYFUNC_LOADER,
                data_path=str(model_dir),
                pip_requirements=[f"shelfwise=={__version__}"],
                signature=signature,
            )
        return TrainingRecord(run.info.run_id, info.model_uri, experiment_id)

    def register(self, name: str, record: TrainingRecord, status: str = "candidate") -> str:
        """Register the logged model as a new version of ``name``; returns the version."""
        from mlflow.exceptions import MlflowException

        self._check_status(status)
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name)
        # The registry resolves models:/ URIs through MLflow's global tracking URI.
        with self._fluent_uris():
            version = self.client.create_model_version(
                name, source=record.model_uri, run_id=record.run_id, tags={STATUS_TAG: status}
            )
        return str(version.version)

    @contextmanager
    def _fluent_uris(self) -> Iterator[None]:
        """Point MLflow's global (fluent) URIs at this tracker for the block."""
        import mlflow

        previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])

    def set_status(self, name: str, version: str, status: str) -> None:
        self._check_status(status)
        self.client.set_model_version_tag(name, version, STATUS_TAG, status)

    def status(self, name: str, version: str) -> str | None:
        tags = self.client.get_model_version(name, version).tags
        return tags.get(STATUS_TAG)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def alias_version(self, name: str, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def download_model_dir(self, model_uri: str, destination: Path) -> Path:
        """The saved model directory of a logged model (for the family's own ``load``)."""
        from mlflow.artifacts import download_artifacts

        with self._fluent_uris():
            local = Path(download_artifacts(artifact_uri=model_uri, dst_path=str(destination)))
        data = local / "data"
        return next(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else local

    def check(self) -> tuple[bool, str]:
        """Can the tracking store be reached? Truthful, quick, and never raising."""
        uri = self.tracking_uri
        if uri.startswith("sqlite:///"):
            path = Path(uri.removeprefix("sqlite:///"))
            if path.exists():
                return True, f"{uri} (MLflow SQLite store)"
            parent = next((p for p in path.parents if p.exists()), None)
            if parent is not None and os.access(parent, os.W_OK):
                return True, f"{uri} not created yet (first run creates it)"
            return False, f"{uri}: folder not writable"
        if uri.startswith(("http://", "https://")):
            try:
                with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=CHECK_TIMEOUT_S):
                    return True, f"{uri}: MLflow server answers"
            except OSError as error:
                return False, f"{uri}: not reachable ({error})"
        try:
            self.client.search_experiments(max_results=1)
            return True, f"{uri}: reachable"
        except Exception as error:  # any backend failure is the answer, not a crash
            return False, f"{uri}: {type(error).__name__}: {error}"

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in MODEL_STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(MODEL_STATUSES)}")
