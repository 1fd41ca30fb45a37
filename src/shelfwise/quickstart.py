"""The main job: a workspace built from The Complete Journey, validated, and summarised.

Stages: load and validate the data, then resolve identities (the households scattered over the
retailer's other systems by the simulator, linked back into persons, their sessions stitched
and profiled), then build the features (states, a replay that proves the online store equals
the offline frame, the online store materialised), then train the two-stage recommender on
them, backtest it on the last four weeks and register it, and the same for the demand
forecaster on the weekly demand of the top products. Later stages (training, registration,
serving) extend
:func:`run_quickstart`; each stage reports what it did in :class:`QuickstartReport`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from shelfwise.datasets import complete_journey
from shelfwise.workspace import Workspace

Progress = Callable[[str], None]


@dataclass
class LoadedSource:
    name: str
    table: str
    source: str
    rows_in: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]
    examples: dict[str, list[str]]
    seconds: float
    skipped: bool = False


@dataclass
class QuickstartReport:
    workspace: str
    loaded: list[LoadedSource] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    recommender: dict[str, Any] = field(default_factory=dict)
    forecaster: dict[str, Any] = field(default_factory=dict)
    merchandising: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(check["ok"] for check in self.checks.values())

    @property
    def quarantined(self) -> dict[str, dict[str, int]]:
        """Quarantine reasons with counts, per table, over everything loaded."""
        out: dict[str, dict[str, int]] = {}
        for item in self.loaded:
            for reason, count in item.reasons.items():
                table = out.setdefault(item.table, {})
                table[reason] = table.get(reason, 0) + count
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["quarantined"] = self.quarantined
        data["skipped"] = [item.name for item in self.loaded if item.skipped]
        return data


def _load_complete_journey(
    workspace: Workspace, report: QuickstartReport, *, reload: bool, progress: Progress
) -> None:
    sources = complete_journey.sources()
    for index, item in enumerate(sources, start=1):
        source = item.source
        progress(f"[{index}/{len(sources)}] {item.table} <- {source.name}")
        if not reload and workspace.already_ingested(item.table, source.fingerprint):
            rows = workspace.analytic.execute(
                "SELECT rows_in, accepted, quarantined, reasons FROM _ingest_log "
                "WHERE table_name = ? AND fingerprint = ? ORDER BY finished_at DESC LIMIT 1",
                [item.table, source.fingerprint],
            )
            rows_in, accepted, quarantined, reasons = rows[0]
            report.loaded.append(
                LoadedSource(
                    item.name,
                    item.table,
                    source.name,
                    rows_in,
                    accepted,
                    quarantined,
                    json.loads(reasons),
                    {},
                    0.0,
                    skipped=True,
                )
            )
            continue
        result = workspace.ingest(item.table, source)
        report.loaded.append(
            LoadedSource(
                name=item.name,
                table=item.table,
                source=source.name,
                rows_in=result.rows_in,
                accepted=result.accepted,
                quarantined=result.quarantined,
                reasons=result.reasons,
                examples=result.examples,
                seconds=result.seconds,
            )
        )


def _merchandising(workspace: Workspace) -> dict[str, Any]:
    """The merchandisers' file the service reads, written where there is none: a policy that
    leaves out The Complete Journey's lines that are not merchandise. Gasoline is its second
    best seller; without this it was every stranger's second recommendation."""
    from shelfwise.recommend.rules import RulePolicy
    from shelfwise.serve.merchandising import merchandising_file, write_merchandising

    path = merchandising_file(workspace.settings)
    if path.exists():
        return {"file": str(path), "written": False}
    excluded = tuple(
        dict.fromkeys(
            complete_journey.NOT_MERCHANDISE_DEPARTMENTS
            + complete_journey.NOT_MERCHANDISE_CATEGORIES
        )
    )
    write_merchandising(path, RulePolicy(excluded_categories=excluded))
    return {"file": str(path), "written": True, "excluded_categories": list(excluded)}


def _check_expected(report: QuickstartReport) -> None:
    """The Complete Journey's published sizes: every source row is accounted for."""
    rows_in = {item.name: item.rows_in for item in report.loaded}
    for name, expected in complete_journey.EXPECTED.items():
        seen = rows_in.get(name, 0)
        report.checks[f"{name} rows"] = {"ok": seen == expected, "seen": seen, "expected": expected}
    for item in report.loaded:
        balanced = item.rows_in == item.accepted + item.quarantined
        report.checks[f"{item.name}: rows in = accepted + quarantined"] = {
            "ok": balanced,
            "rows_in": item.rows_in,
            "accepted": item.accepted,
            "quarantined": item.quarantined,
        }


def run_quickstart(
    workspace: Workspace, *, reload: bool = False, progress: Progress | None = None
) -> QuickstartReport:
    """Build (or refresh) the workspace from The Complete Journey and check what was loaded."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    report = QuickstartReport(workspace=str(workspace.settings.workspace))

    stage = time.perf_counter()
    say("initialising the workspace")
    workspace.init()
    report.stage_seconds["init"] = round(time.perf_counter() - stage, 2)

    stage = time.perf_counter()
    _load_complete_journey(workspace, report, reload=reload, progress=say)
    report.stage_seconds["load"] = round(time.perf_counter() - stage, 2)

    _check_expected(report)
    report.merchandising = _merchandising(workspace)

    from shelfwise.identity.stage import resolve_complete_journey

    stage = time.perf_counter()
    report.identity, checks, seconds = resolve_complete_journey(workspace, say)
    report.checks.update(checks)
    report.stage_seconds.update({f"identity.{k}": v for k, v in seconds.items()})
    report.stage_seconds["identity"] = round(time.perf_counter() - stage, 2)

    from shelfwise.features.stage import build_features
    from shelfwise.features.store import FeatureStore

    stage = time.perf_counter()
    features = FeatureStore(workspace, online_url="memory://")  # its states serve both stages
    report.features, checks, seconds = build_features(workspace, say, features)
    report.checks.update(checks)
    report.stage_seconds.update({f"features.{k}": v for k, v in seconds.items()})
    report.stage_seconds["features"] = round(time.perf_counter() - stage, 2)

    from shelfwise.recommend.stage import train_recommender

    stage = time.perf_counter()
    report.recommender, checks, seconds = train_recommender(workspace, say, store=features)
    report.checks.update(checks)
    report.stage_seconds.update({f"recommender.{k}": v for k, v in seconds.items()})
    report.stage_seconds["recommender"] = round(time.perf_counter() - stage, 2)

    from shelfwise.forecast.stage import train_forecaster

    stage = time.perf_counter()
    report.forecaster, checks, seconds = train_forecaster(workspace, say)
    report.checks.update(checks)
    report.stage_seconds.update({f"forecaster.{k}": v for k, v in seconds.items()})
    report.stage_seconds["forecaster"] = round(time.perf_counter() - stage, 2)

    report.tables = workspace.analytic.counts()
    report.seconds = round(time.perf_counter() - started, 2)
    return report
