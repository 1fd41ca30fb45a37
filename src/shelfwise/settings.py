"""One typed settings object for the whole platform.

Read from (highest priority first) keyword arguments, ``SHELFWISE_*`` environment variables,
a ``shelfwise.toml`` file (``SHELFWISE_CONFIG`` names another one), and the defaults below.
Every backend is named by a URL; an unset URL means the embedded default inside the workspace.
Nothing here touches the disk: :class:`shelfwise.workspace.Workspace` creates what is needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PLACEHOLDER_SECRET = "change-me"

# Accepted URL schemes per backend: the first of each list is the embedded default.
ANALYTIC_SCHEMES = ("duckdb",)
OPERATIONAL_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
TRACKING_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "file", "http", "https")
KEY_VALUE_SCHEMES = ("memory", "redis", "rediss")


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _check_scheme(field: str, url: str | None, allowed: tuple[str, ...]) -> None:
    if url is None:
        return
    if _scheme(url) not in allowed:
        raise ValueError(
            f"{field}={url!r}: unsupported URL scheme; expected one of "
            + ", ".join(f"{s}://" for s in allowed)
        )


class Settings(BaseSettings):
    """Where shelfwise keeps its data and which backend serves each concern."""

    model_config = SettingsConfigDict(
        env_prefix="SHELFWISE_",
        extra="forbid",
        validate_default=True,
    )

    environment: Literal["development", "test", "production"] = "development"
    workspace: Path = Field(
        default=Path("shelfwise-workspace"),
        description="Folder holding the embedded stores, artefacts and logs.",
    )
    analytic_url: str | None = Field(
        default=None,
        description="DuckDB file for typed tables; default <workspace>/analytic.duckdb",
    )
    operational_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of lifecycle tables; default sqlite:///<workspace>/operational.db",
    )
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking store; default sqlite:///<workspace>/mlflow.db"
    )
    registry_uri: str | None = Field(
        default=None, description="MLflow model registry; default: the tracking URI"
    )
    artifact_location: str | None = Field(
        default=None, description="MLflow artefact root; default <workspace>/mlartifacts"
    )
    online_store_url: str = Field(
        default="memory://", description="memory:// or redis://host:port/db"
    )
    cache_url: str = Field(default="memory://", description="memory:// or redis://host:port/db")
    decision_deadline_ms: float = Field(
        default=100.0,
        gt=0,
        description="A model decision's deadline from the request's arrival; past it the "
        "request is answered from its fallbacks",
    )
    max_in_flight: int = Field(
        default=32,
        ge=1,
        description="Model decisions in flight per tenant, queued in a micro-batch or "
        "running; more are answered from fallbacks at once. Below it a decision is let in "
        "only when, by the learnt cost of a decision, it would end by its deadline",
    )
    tracing: Literal["none", "console"] = Field(
        default="none", description="OpenTelemetry spans of each decision: none, or console"
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="JSON list of API keys (key, tenant, roles); default "
        "<workspace>/api_keys.json, made with one admin key on the first `shelfwise serve`",
    )
    merchandising_file: Path | None = Field(
        default=None,
        description="JSON of the service's rule policy and merchandisers' pins and blocks "
        "(shelfwise.serve.merchandising); default <workspace>/merchandising.json, if present",
    )
    datasets: Path | None = Field(
        default=None,
        description="Folder of benchmark datasets; default ../shared/datasets when it exists",
    )
    shadow_versions: list[Annotated[str, StringConstraints(pattern=r"^[\w.-]+/\w+$")]] = Field(
        default_factory=list,
        description="Experimental versions to score in shadow beside each model's challenger, "
        "as NAME/VERSION (recommender/7)",
    )
    shadow_min_samples: int = Field(
        default=200,
        ge=1,
        description="Paired samples (champion and shadow, with actuals) at which a shadow test "
        "completes and raises its alert",
    )
    secret_key: SecretStr = Field(default=SecretStr(PLACEHOLDER_SECRET))
    retrain_cron: str = Field(
        default="0 3 * * 1",
        description="When every governed model is retrained (cron, UTC): Mondays at 03:00",
    )
    drift_check_cron: str = Field(
        default="0 4 * * *",
        description="When every champion is checked for drift (cron, UTC): daily at 04:00",
    )
    retrain_window_days: int = Field(
        default=90, ge=1, description="Days of data a scheduled retrain trains on"
    )
    backtest_window_days: int = Field(
        default=30,
        ge=1,
        description="The most recent days a candidate and the champion are judged on",
    )
    drift_window_days: int = Field(
        default=30,
        ge=1,
        description="Days of data an emergency (drift-triggered) retrain trains on",
    )
    min_improvement: float = Field(
        default=0.05,
        ge=0,
        description="Relative gain on the primary metric that promotes a candidate by itself",
    )
    backtest_check_cron: str = Field(
        default="15 4 * * *",
        description="When every champion is backtested on the latest window (cron, UTC): "
        "daily at 04:15",
    )
    shadow_check_cron: str = Field(
        default="30 4 * * *",
        description="When the forecasts' actuals are filled and ready shadow tests completed "
        "(cron, UTC): daily at 04:30",
    )
    scheduler: bool = Field(
        default=True,
        description="Whether `shelfwise serve` also runs the jobs on their schedules, each in "
        "a process of its own (`shelfwise jobs run` runs one by hand)",
    )
    analytic_read_only: bool = Field(
        default=False,
        description="Open the analytic store read-only: `shelfwise serve` does, so that its "
        "jobs and other readers can open it beside it (DuckDB lets one process write a file, "
        "or any number read it)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("SHELFWISE_CONFIG", "shelfwise.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @field_validator("workspace")
    @classmethod
    def _absolute_workspace(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("retrain_cron", "drift_check_cron", "backtest_check_cron", "shadow_check_cron")
    @classmethod
    def _cron(cls, value: str, info: ValidationInfo) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(
                f"{info.field_name}={value!r} is not a cron expression; five fields, minute "
                "hour day-of-month month day-of-week, e.g. '0 3 * * 1' (Mondays at 03:00 UTC)"
            )
        return value

    @model_validator(mode="after")
    def _check_backends(self) -> Settings:
        _check_scheme("analytic_url", self.analytic_url, ANALYTIC_SCHEMES)
        _check_scheme("operational_url", self.operational_url, OPERATIONAL_SCHEMES)
        _check_scheme("tracking_uri", self.tracking_uri, TRACKING_SCHEMES)
        _check_scheme("registry_uri", self.registry_uri, TRACKING_SCHEMES)
        _check_scheme("online_store_url", self.online_store_url, KEY_VALUE_SCHEMES)
        _check_scheme("cache_url", self.cache_url, KEY_VALUE_SCHEMES)
        secret = self.secret_key.get_secret_value()
        if self.environment == "production" and secret == PLACEHOLDER_SECRET:
            raise ValueError(
                "secret_key: the placeholder secret is refused in production; "
                "set SHELFWISE_SECRET_KEY"
            )
        return self

    # Resolved URLs: the embedded default where nothing was configured.
    @property
    def analytic(self) -> str:
        return self.analytic_url or f"duckdb:///{self.workspace / 'analytic.duckdb'}"

    @property
    def operational(self) -> str:
        return self.operational_url or f"sqlite:///{self.workspace / 'operational.db'}"

    @property
    def tracking(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.workspace / 'mlflow.db'}"

    @property
    def registry(self) -> str:
        return self.registry_uri or self.tracking

    @property
    def artifacts(self) -> str:
        return self.artifact_location or str(self.workspace / "mlartifacts")

    @property
    def datasets_dir(self) -> Path | None:
        """The benchmark datasets folder, or None when none is configured or found."""
        if self.datasets is not None:
            return self.datasets.expanduser().resolve()
        for candidate in (Path("../shared/datasets"), Path("shared/datasets")):
            if candidate.is_dir():
                return candidate.resolve()
        return None

    def environment_variables(self) -> dict[str, str]:
        """These settings as the ``SHELFWISE_*`` variables that give them to a child process
        (whatever file or arguments they came from here); unset ones are left out."""
        values = self.model_dump(mode="json", exclude={"secret_key"})
        out = {"SHELFWISE_SECRET_KEY": self.secret_key.get_secret_value()}
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list | dict):
                text = json.dumps(value)
            else:
                text = str(value)
            out[f"SHELFWISE_{name.upper()}"] = text
        return out

    def describe(self) -> dict[str, Any]:
        """Resolved settings without secrets, for `shelfwise doctor` and logs."""
        return {
            "environment": self.environment,
            "workspace": str(self.workspace),
            "analytic": self.analytic,
            "operational": _hide_password(self.operational),
            "tracking": _hide_password(self.tracking),
            "registry": _hide_password(self.registry),
            "artifacts": self.artifacts,
            "online_store": _hide_password(self.online_store_url),
            "cache": _hide_password(self.cache_url),
            "datasets": str(self.datasets_dir) if self.datasets_dir else None,
        }


def _hide_password(url: str) -> str:
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def duckdb_path(url: str) -> str:
    """The file path (or ':memory:') of a duckdb:/// URL."""
    if _scheme(url) != "duckdb":
        raise ValueError(f"not a duckdb URL: {url!r}")
    # As with SQLAlchemy's sqlite URLs: duckdb:///relative, duckdb:////absolute.
    path = url.split("://", 1)[1]
    path = path[1:] if path.startswith("/") else path
    return path or ":memory:"
