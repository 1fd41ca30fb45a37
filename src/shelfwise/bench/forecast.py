"""`shelfwise bench forecast --protocol cj-weekly-top500|stallion`: ours against the references.

Follows BENCHMARKS.md's forecasting protocols. At each origin the demand frame is cut (the
quantities after it hidden, the planned covariates kept, as a retailer knows its promotion
plan), the forecaster is fitted on what is left and forecasts the horizon for every series;
the references (:mod:`shelfwise.bench.forecast_reference`) are fitted on the same cut in the
same run. MAE, WAPE, RMSSE and bias are pooled over the origins, with the interval coverage
of ours, and reported per department; the department tiers are reported against a global
model fitted beside them (the same settings with ``tier_by=None``).

``--smoke``: 60 products (CJ) or 40 series (Stallion), small models, one origin.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.bench import BenchOptions, progress
from shelfwise.datasets import complete_journey
from shelfwise.datasets.forecasting import STALLION_KNOWN, stallion_demand
from shelfwise.forecast.backtest import ORIGIN, rolling_backtest
from shelfwise.forecast.demand import DemandQuery, complete_journey_query, demand_frame
from shelfwise.forecast.model import ForecasterSettings
from shelfwise.forecast.panel import PERIOD, SERIES, panel_from_frame

CJ_WEEKLY, STALLION = "cj-weekly-top500", "stallion"
# Not in BENCHMARKS.md: cj-weekly-top500's weeks and references, per product x store, for the
# top 50 products (smoke: 5), to show the forecaster where most series are intermittent.
CJ_STORES = "cj-weekly-store-top50"
GOAL = 0.10  # WAPE at least 10% below the best reference
COVERAGE = (0.77, 0.83)
# Backtest columns that are not forecasts to score.
_NOT_FORECASTS = {
    SERIES,
    PERIOD,
    ORIGIN,
    "lower",
    "upper",
    "demand_class",
    "model",
    "actual",
    "rmsse_scale",
    "group",
}


def _protocol(options: BenchOptions) -> tuple[pd.DataFrame, ForecasterSettings, list[str], str]:
    """The demand frame, our settings, the origins and the grouping reported per group."""
    name = options.protocol or CJ_WEEKLY
    smoke = options.smoke
    if name in (CJ_WEEKLY, CJ_STORES):
        stores = name == CJ_STORES
        query = DemandQuery(
            top=(5 if stores else 60) if smoke else (50 if stores else 500),
            ranked_until=pd.Timestamp("2017-10-30"),
            timezone=complete_journey.TIMEZONE,
            by_store=stores,
        )
        frame = demand_frame(complete_journey_query(), query)
        settings = ForecasterSettings(horizon=4)
        origins = ["2017-10-30"] if smoke else ["2017-10-30", "2017-11-27"]
        group = "department"
    elif name == STALLION:
        frame = stallion_demand(options.datasets)
        if smoke:
            frame = frame[frame[SERIES].isin(sorted(frame[SERIES].unique())[:40])]
        settings = ForecasterSettings(
            freq="MS",
            horizon=6,
            known=STALLION_KNOWN,
            static=("agency", "sku"),
            tier_by=None,
            start_at_first_sale=False,
            absent_known_is_zero=False,
            min_leaf=30,
        )
        origins = ["2017-06-01"]
        group = "sku"
    else:
        raise ValueError(
            f"unknown forecast protocol {name!r}; use {CJ_WEEKLY}, {STALLION} or {CJ_STORES}"
        )
    if smoke:
        settings = replace(settings, rounds=30, tier_min_series=10, validation_origins=2)
    return frame, settings, origins, group


def run(options: BenchOptions) -> dict[str, Any]:
    try:
        from shelfwise.bench.forecast_reference import references
    except ImportError as error:
        raise ValueError(
            f"the forecast references need statsforecast and mlforecast ({error}); "
            "install them with: pip install -c constraints.txt -e '.[bench]'"
        ) from error
    protocol = options.protocol or CJ_WEEKLY
    frame, settings, origins, group = _protocol(options)
    panel = panel_from_frame(
        frame,
        settings.freq,
        settings.known,
        settings.static,
        start_at_first_sale=settings.start_at_first_sale,
        known_fill=0.0 if settings.absent_known_is_zero else None,
    )
    progress(f"{protocol}: fitting the forecaster at {len(origins)} origin(s)")
    ours = rolling_backtest(frame, settings, origins, group=group)
    rows = ours.rows
    if settings.tier_by is not None:
        progress(f"{protocol}: the global model alone, for the tier comparison")
        alone = rolling_backtest(frame, replace(settings, tier_by=None), origins)
        rows["global_only"] = alone.rows["forecast"].to_numpy()
    series = pd.Index(panel.ids).get_indexer(pd.Index(rows[SERIES]))
    columns = np.asarray([panel.period_index(p) for p in rows[PERIOD]])
    origin_columns = np.asarray([panel.period_index(o) for o in rows[ORIGIN]])
    for when in origins:
        progress(f"{protocol}: origin {when}, the references")
        column = panel.period_index(pd.Timestamp(when))
        at = (origin_columns == column).nonzero()[0]
        steps = columns[at] - column
        kind = STALLION if protocol == STALLION else CJ_WEEKLY
        for name, matrix in references(panel, column, settings.horizon, kind).items():
            if name not in rows:
                rows[name] = np.nan
            rows.loc[at, name] = matrix[series[at], steps - 1]
    names = [c for c in rows.columns if c not in _NOT_FORECASTS]
    metrics = {name: _rounded(ours.metrics(name, intervals=name == "forecast")) for name in names}
    metrics = {"ours": metrics.pop("forecast"), **metrics}
    reference_names = [n for n in names if n not in ("forecast", "global_only")]
    best = min(reference_names, key=lambda n: metrics[n]["wape"])
    ratio = metrics["ours"]["wape"] / metrics[best]["wape"]
    coverage = metrics["ours"]["coverage"]
    compared = [c for c in ("forecast", "global_only", best) if c in rows]
    return {
        "protocol": protocol,
        "origins": origins,
        "series": len(panel.ids),
        "horizon": settings.horizon,
        "wape": metrics["ours"]["wape"],
        "mae": metrics["ours"]["mae"],
        "coverage": coverage,
        "interval_level": settings.interval_level,
        "best_reference": best,
        "best_reference_wape": metrics[best]["wape"],
        "wape_vs_best_reference": round(ratio - 1, 4),
        "goal_met": bool(ratio <= 1 - GOAL),
        "coverage_goal_met": bool(COVERAGE[0] <= coverage <= COVERAGE[1]),
        "metrics": metrics,
        f"per_{group}": ours.by_group(compared),
        "tiers_validation": [
            {"origin": str(m.panel_.periods[-1].date()), **m.report_["tiers"]}
            for m in ours.models
            if m.report_["tiers"]
        ],
        "validation_wape": [m.report_["validation_wape"] for m in ours.models],
        "fit_seconds": [round(m.fit_seconds_, 1) for m in ours.models],
    }


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items()}
