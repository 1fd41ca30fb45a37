"""The quickstart's forecasting stage: weekly demand from the workspace, backtest, register.

Demand is read from the contract tables (:mod:`shelfwise.forecast.demand`): the top
``TOP_PRODUCTS`` products by quantity, per week in the stores' time zone, with their display
and mailer placements. The forecaster is backtested on the last ``HOLDOUT_WEEKS`` (fitted with
their quantities hidden, their promotions known) against a 4-week moving average; then it is
fitted on every week, so that what is served forecasts the weeks to come, and registered as a
version of ``forecaster`` with the backtest's metrics (MAE is its primary metric). The first
version becomes the champion; the lifecycle governs later ones.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from shelfwise.datasets import complete_journey
from shelfwise.forecast.backtest import rolling_backtest
from shelfwise.forecast.baselines import moving_average
from shelfwise.forecast.demand import DemandQuery, demand_frame
from shelfwise.forecast.metrics import metrics_by_level
from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.forecast.panel import PERIOD, SERIES, TARGET
from shelfwise.lifecycle.contract import TRAINED_UNTIL
from shelfwise.models.base import Evaluation
from shelfwise.workspace import Workspace

MODEL_NAME = "forecaster"
ACTOR = "quickstart"
EXPERIMENT = "forecaster"
HOLDOUT_WEEKS = 4
TOP_PRODUCTS = 500
FINGERPRINT_TAG = "shelfwise.forecaster.data"
SUMMARY_TAG = "shelfwise.forecaster.summary"


def workspace_demand(workspace: Workspace, top: int | None = TOP_PRODUCTS) -> pd.DataFrame:
    query = DemandQuery(top=top, timezone=complete_journey.TIMEZONE)
    return demand_frame(workspace.analytic.frame, query)


def backtest(
    frame: pd.DataFrame, settings: ForecasterSettings, origin: pd.Timestamp
) -> tuple[dict[str, float], float]:
    """Ours and the 4-week moving average on the horizon after ``origin``: (metrics, MA WAPE).
    The metrics hold each department's too, as ``department/<name>/<metric>``."""
    result = rolling_backtest(frame, settings, [origin], group="department")
    history = result.models[0].panel_.y
    rows = result.rows
    index = pd.Index(result.models[0].panel_.ids).get_indexer(pd.Index(rows[SERIES]))
    rows["moving_average"] = moving_average(history, 4)[index]
    baseline = result.metrics("moving_average", intervals=False)["wape"]
    per_department = metrics_by_level(
        "department",
        rows["group"].to_numpy(dtype=object),
        rows["actual"].to_numpy(),
        rows["forecast"].to_numpy(),
        lower=rows["lower"].to_numpy(),
        upper=rows["upper"].to_numpy(),
    )
    return {**result.metrics(), **per_department}, baseline


def train_forecaster(
    workspace: Workspace,
    progress: Callable[[str], None],
    settings: ForecasterSettings | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, float]]:
    """Returns the stage's summary, its checks and its seconds."""
    settings = settings or ForecasterSettings(horizon=HOLDOUT_WEEKS)
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    frame = workspace_demand(workspace)
    observed = frame[frame[TARGET].notna()]
    fingerprint = _fingerprint(observed)
    seconds["demand"] = time.perf_counter() - mark
    unchanged = workspace.tracker.unchanged_champion(
        MODEL_NAME, fingerprint, fingerprint_tag=FINGERPRINT_TAG, summary_tag=SUMMARY_TAG
    )
    if unchanged is not None:
        progress("the forecaster's champion was trained on this same demand: kept")
        return unchanged, _checks(unchanged), {k: round(v, 2) for k, v in seconds.items()}
    last = observed[PERIOD].max()
    origin = last - pd.Timedelta(weeks=HOLDOUT_WEEKS)
    series = observed[SERIES].nunique()
    progress(f"backtesting the forecaster on {series} products' last {HOLDOUT_WEEKS} weeks")
    mark = time.perf_counter()
    metrics, baseline = backtest(frame, settings, origin)
    seconds["backtest"] = time.perf_counter() - mark
    progress("fitting the forecaster on every week")
    mark = time.perf_counter()
    model = DemandForecaster(settings).fit(frame)
    seconds["fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    tracker = workspace.tracker
    record = tracker.log_training(
        model,
        experiment=EXPERIMENT,
        metrics=Evaluation({**metrics, "moving_average_wape": baseline}, "mae", False),
        dataset={
            "holdout_weeks": HOLDOUT_WEEKS,
            "origin": origin.isoformat(),
            "last_week": last.isoformat(),
            TRAINED_UNTIL: (last + pd.Timedelta(days=7)).isoformat(),
            "series": series,
        },
        params={"adopted_tiers": ",".join(model.report_["adopted"]) or "none"},
        tags={FINGERPRINT_TAG: fingerprint},
    )
    version = workspace.registry.register_first_champion(
        MODEL_NAME, record, actor=ACTOR, reason="trained by the quickstart on the workspace"
    )
    seconds["register"] = time.perf_counter() - mark
    summary = {
        "run": "trained",
        "model": MODEL_NAME,
        "version": version,
        "run_id": record.run_id,
        "series": series,
        "last_week": str(last.date()),
        "horizon_weeks": settings.horizon,
        "adopted_tiers": model.report_["adopted"],
        "backtest": {
            "origin": str(origin.date()),
            "mae": round(metrics["mae"], 3),
            "wape": round(metrics["wape"], 4),
            "coverage": round(metrics["coverage"], 4),
            "moving_average_wape": round(baseline, 4),
        },
    }
    tracker.client.set_tag(record.run_id, SUMMARY_TAG, json.dumps(summary, default=str))
    return summary, _checks(summary), {k: round(v, 2) for k, v in seconds.items()}


def _fingerprint(observed: pd.DataFrame) -> str:
    parts = (
        len(observed),
        observed[SERIES].nunique(),
        str(observed[PERIOD].max()),
        round(float(observed[TARGET].sum()), 3),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _checks(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    backtest = summary["backtest"]
    return {
        "forecaster: beats a 4-week moving average on the last four weeks": {
            "ok": backtest["wape"] < backtest["moving_average_wape"],
            "wape": backtest["wape"],
            "moving_average": backtest["moving_average_wape"],
        },
        "forecaster: registered": {"ok": bool(summary["version"]), "version": summary["version"]},
    }
