"""The MLflow adapter: runs, logged models and registry versions for any model family.

Everything goes through one ``MlflowClient`` bound to the configured URIs, never through
MLflow's process-wide "current tracking URI", so two trackers in one process cannot write to
each other's store. Logging is fast by construction: the model is saved by
:mod:`shelfwise.persistence <shelfwise.models.persistence>` and wrapped with explicit pip
requirements, an explicit signature and the family's own input example, so MLflow neither
infers requirements (seconds, in a subprocess) nor pickles anything.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shelfwise
from shelfwise.models.base import Estimator, Evaluation
from shelfwise.settings import Settings
from shelfwise.tracking._logged_model import log_dataset, log_model
from shelfwise.tracking._store_check import check_store, sqlite_path

if TYPE_CHECKING:
    from mlflow import MlflowClient

# Registry states as in shelfwise.ops.states.RegistryState: aliases point at one version each,
# the status tag marks every other version.
ALIASES = ("champion", "challenger")
STATUSES = ("candidate", "experimental", "archived")
STATUS_TAG = "status"
FAMILY_TAG = "shelfwise.family"
VERSION_TAG = "shelfwise.version"
COMMIT_TAG = "shelfwise.git_commit"  # where shelfwise runs from a git checkout
PRIMARY_METRIC_TAG = "shelfwise.primary_metric"
HIGHER_IS_BETTER_TAG = "shelfwise.higher_is_better"
FEATURES_TAG = "shelfwise.features"  # + ".<set>": the feature-set versions of the training frame

MODEL_NAME = "model"  # the logged model's name within its run


IMPORTANCE_ARTIFACT = "feature_importance.json"


@dataclass(frozen=True)
class TrainingRecord:
    """What one logged training left in MLflow."""

    run_id: str
    model_id: str
    model_uri: str  # models:/<model_id>
    artifact_uri: str  # where the MLflow model folder lives
    experiment_id: str
    family: str
    metrics: dict[str, float]


def _disable_telemetry() -> None:
    """Opt out of MLflow's usage telemetry unless the operator opted in explicitly."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if "mlflow" in sys.modules:  # imported before us: its telemetry client already started
        from mlflow.telemetry import set_telemetry_client

        set_telemetry_client()  # type: ignore[no-untyped-call]


@functools.cache
def _shelfwise_commit() -> str | None:
    """The git commit of shelfwise's own code where it runs from a checkout, else None."""
    from mlflow.utils.git_utils import get_git_commit

    return get_git_commit(str(Path(shelfwise.__file__).parent))


def mlflow_time(epoch_ms: int | None) -> str | None:
    """An MLflow time (milliseconds since the epoch) as an ISO-8601 time in UTC, to the second."""
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "experiment"


def mlflow_metric_name(name: str) -> str:
    """MLflow refuses "@" in metric names: ``ndcg@10`` is logged as ``ndcg_at_10``."""
    return name.replace("@", "_at_")


def shelfwise_metric_name(name: str) -> str:
    """The inverse of :func:`mlflow_metric_name` for names of the ``kind_at_k`` shape."""
    return re.sub(r"^([a-z0-9]+)_at_(\d+)$", r"\1@\2", name)


def _error_code(error: Exception) -> str | None:
    return getattr(error, "error_code", None)


class Tracker:
    """Log trainings, register versions and load models back, for every model family."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        registry_uri: str | None = None,
        artifact_root: str | None = None,
    ) -> None:
        _disable_telemetry()
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        # None lets an MLflow server choose where artefacts go (it may proxy them).
        self.artifact_root = artifact_root
        self._experiment_ids: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracker:
        remote = settings.tracking.startswith(("http://", "https://"))
        artifact_root = settings.artifact_location or (None if remote else settings.artifacts)
        return cls(settings.tracking, registry_uri=settings.registry, artifact_root=artifact_root)

    def __repr__(self) -> str:
        return f"Tracker({self.tracking_uri!r})"

    @cached_property
    def client(self) -> MlflowClient:
        """The MLflow client, made on first use (importing MLflow takes seconds)."""
        from mlflow import MlflowClient

        for uri in {self.tracking_uri, self.registry_uri}:
            path = sqlite_path(uri) if uri.startswith("sqlite:") else None
            if path is not None:  # SQLite creates the file, not its folder
                path.parent.mkdir(parents=True, exist_ok=True)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def check(self) -> tuple[bool, str]:
        """Can the tracking store (and the registry, where it differs) be reached?"""
        ok, detail = check_store(self.tracking_uri)
        if self.registry_uri != self.tracking_uri:
            registry_ok, registry_detail = check_store(self.registry_uri)
            ok, detail = ok and registry_ok, f"{detail}; registry {registry_detail}"
        return ok, detail

    def ensure_store(self) -> None:
        """Create the store's tables now rather than on the first logged run."""
        self.client.search_experiments(max_results=1)
        if self.registry_uri != self.tracking_uri:
            self.client.search_registered_models(max_results=1)

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created under the artefact root if it is new."""
        if name in self._experiment_ids:
            return self._experiment_ids[name]
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(
                    name, artifact_location=self._artifact_location(name)
                )
            except Exception as error:
                if _error_code(error) != "RESOURCE_ALREADY_EXISTS":
                    raise
                # Another process created it between our lookup and create.
                return self.experiment_id(name)
        elif experiment.lifecycle_stage != "active":
            raise ValueError(f"experiment {name!r} is deleted; restore it or use another name")
        else:
            experiment_id = experiment.experiment_id
        self._experiment_ids[name] = experiment_id
        return experiment_id

    def _artifact_location(self, experiment: str) -> str | None:
        if self.artifact_root is None:
            return None
        root = self.artifact_root
        if "://" not in root:  # a local folder: MLflow expects it as an absolute file URI
            root = Path(root).resolve().as_uri()
        return f"{root.rstrip('/')}/{_slug(experiment)}"

    def log_training(
        self,
        estimator: Estimator[Any],
        *,
        experiment: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | Evaluation | None = None,
        dataset: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
    ) -> TrainingRecord:
        """One run holding the settings (plus ``params``), metrics, the training data's
        description (``dataset`` adds to it) and the model, logged as an MLflow model.

        An :class:`Evaluation` as ``metrics`` also records its primary metric and direction,
        so that the lifecycle can compare runs without knowing the family.
        """
        from mlflow.entities import Metric, Param
        from mlflow.tracking.context.registry import resolve_tags

        estimator.check_fitted()
        experiment_id = self.experiment_id(experiment)
        values = dict(metrics.metrics if isinstance(metrics, Evaluation) else metrics or {})
        values.setdefault("fit_seconds", estimator.fit_seconds_)
        run_params = {**estimator.settings.to_dict(), **(params or {})}
        run_tags = {FAMILY_TAG: estimator.family, VERSION_TAG: shelfwise.__version__}
        commit = _shelfwise_commit()
        if commit:
            run_tags[COMMIT_TAG] = commit
        if isinstance(metrics, Evaluation):
            run_tags[PRIMARY_METRIC_TAG] = metrics.primary_metric
            run_tags[HIGHER_IS_BETTER_TAG] = str(metrics.higher_is_better).lower()
        for name, version in estimator.feature_versions.items():
            run_tags[f"{FEATURES_TAG}.{name}"] = version
        run_tags.update(tags or {})
        # MLflow's context: who trained it, from which program (and the program's git commit
        # where it lives in a git checkout), as mlflow.start_run would record them.
        run = self.client.create_run(
            experiment_id, run_name=run_name or estimator.family, tags=resolve_tags(run_tags)
        )
        run_id = run.info.run_id
        try:
            model = self.client.create_logged_model(
                experiment_id,
                name=MODEL_NAME,
                source_run_id=run_id,
                params={key: str(value) for key, value in run_params.items()},
                tags={FAMILY_TAG: estimator.family},
                model_type=estimator.family,
            )
            now = int(time.time() * 1000)
            self.client.log_batch(
                run_id,
                # model_id ties the metrics to the logged model too, as mlflow's log_model does.
                metrics=[
                    Metric(mlflow_metric_name(key), float(value), now, 0, model_id=model.model_id)
                    for key, value in values.items()
                ],
                params=[Param(key, str(value)) for key, value in run_params.items()],
            )
            log_dataset(self.client, run_id, {**estimator.training_data_, **(dataset or {})})
            importance = estimator.feature_importance()
            if importance:
                self.client.log_dict(run_id, importance, IMPORTANCE_ARTIFACT)
            log_model(self.client, estimator, model, run_id)
        except BaseException:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        self.client.set_terminated(run_id)
        return TrainingRecord(
            run_id=run_id,
            model_id=model.model_id,
            model_uri=f"models:/{model.model_id}",
            artifact_uri=model.artifact_location,
            experiment_id=experiment_id,
            family=estimator.family,
            metrics=values,
        )

    def register(
        self,
        name: str,
        record: TrainingRecord,
        status: str = "candidate",
        description: str | None = None,
    ) -> str:
        """Register the record's model as a new version of ``name``; returns the version."""
        _check_status(status)
        try:
            self.client.create_registered_model(name)
        except Exception as error:
            if _error_code(error) != "RESOURCE_ALREADY_EXISTS":
                raise
        # The artefact location as source (not models:/<id>): MLflow would resolve that id
        # through the process-wide tracking URI rather than this tracker's.
        version = self.client.create_model_version(
            name,
            source=record.artifact_uri,
            run_id=record.run_id,
            model_id=record.model_id,
            tags={STATUS_TAG: status, FAMILY_TAG: record.family},
            description=description,
            await_creation_for=0,
        )
        return str(version.version)

    def set_status(self, name: str, version: str, status: str) -> None:
        _check_status(status)
        self.client.set_model_version_tag(name, version, STATUS_TAG, status)

    def get_status(self, name: str, version: str) -> str | None:
        tags: dict[str, str] = self.client.get_model_version(name, version).tags
        return tags.get(STATUS_TAG)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` (``champion``, ``challenger``) of model ``name`` at ``version``."""
        self.client.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)

    def get_alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the alias or the model is unset."""
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except Exception as error:
            if _error_code(error) in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
                return None
            raise

    def unchanged_champion(
        self, name: str, fingerprint: str, *, fingerprint_tag: str, summary_tag: str
    ) -> dict[str, Any] | None:
        """The summary (JSON in ``summary_tag``) of the run behind ``name``'s champion when
        that run was trained on data of this ``fingerprint``; None: train anew."""
        version = self.get_alias_version(name, "champion")
        if version is None:
            return None
        run_id = self.client.get_model_version(name, version).run_id
        if run_id is None:
            return None
        tags = self.client.get_run(run_id).data.tags
        if tags.get(fingerprint_tag) != fingerprint or summary_tag not in tags:
            return None
        summary: dict[str, Any] = json.loads(tags[summary_tag])
        return {**summary, "run": "unchanged"}

    def evaluation(self, run_id: str) -> Evaluation | None:
        """The run's metrics as an Evaluation, when it was logged with one."""
        run = self.client.get_run(run_id)
        primary = run.data.tags.get(PRIMARY_METRIC_TAG)
        if primary is None:
            return None
        higher = run.data.tags.get(HIGHER_IS_BETTER_TAG) == "true"
        metrics = {shelfwise_metric_name(k): v for k, v in run.data.metrics.items()}
        return Evaluation(metrics, primary, higher)

    def training_data(self, run_id: str) -> dict[str, Any]:
        """The run's training-data description (its dataset profile; empty: none logged)."""
        run_inputs = self.client.get_run(run_id).inputs
        inputs = run_inputs.dataset_inputs if run_inputs is not None else []
        if not inputs:
            return {}
        found: dict[str, Any] = json.loads(inputs[0].dataset.profile or "{}")
        return found

    def feature_importance(self, run_id: str) -> dict[str, float]:
        """The importance shares logged with the run (empty: none logged)."""
        with tempfile.TemporaryDirectory(prefix="shelfwise-importance-") as folder:
            try:
                path = self.client.download_artifacts(run_id, IMPORTANCE_ARTIFACT, folder)
            except Exception:  # an older run, or a family without importances
                return {}
            found = json.loads(Path(path).read_text())
        return {str(k): float(v) for k, v in found.items()}

    def load_estimator(self, model_uri: str) -> Estimator[Any]:
        """The estimator behind ``model_uri`` (``models:/<model_id>``, ``models:/name/3``,
        ``models:/name@champion`` or an artefact location), loaded from its saved arrays and
        JSON rather than through pyfunc."""
        import mlflow.artifacts
        from mlflow.models import Model

        location = self._model_location(model_uri)
        with tempfile.TemporaryDirectory(prefix="shelfwise-load-") as folder:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=folder, tracking_uri=self.tracking_uri
            )
            data = Model.load(local).flavors["python_function"]["data"]
            return Estimator.load(Path(local) / data)

    def artefact_bytes(self, model_uri: str) -> int | None:
        """The size on disk of the model's artefacts, where they are local (None: remote)."""
        location = self._model_location(model_uri)
        path = (
            Path(location.removeprefix("file://"))
            if "://" not in location.removeprefix("file://")
            else None
        )
        if path is None or not path.exists():
            return None
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    def _model_location(self, model_uri: str) -> str:
        # Resolved with this tracker's client: MLflow's own models:/ resolution uses the
        # process-wide tracking URI.
        if not model_uri.startswith("models:/"):
            return model_uri
        path = model_uri.removeprefix("models:/")
        if "@" in path:
            name, alias = path.rsplit("@", 1)
            version = str(self.client.get_model_version_by_alias(name, alias).version)
        elif "/" in path:
            name, version = path.rsplit("/", 1)
        else:
            return str(self.client.get_logged_model(path).artifact_location)
        return str(self.client.get_model_version_download_uri(name, version))


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
