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
from shelfwise.forecast.demand import DemandQuery, complete_journey_query, demand_frame
from shelfwise.forecast.metrics import forecast_metrics, naive_scale
from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.forecast.panel import PERIOD, SERIES, TARGET, panel_from_frame

CJ_WEEKLY, STALLION = "cj-weekly-top500", "stallion"
GOAL = 0.10  # WAPE at least 10% below the best reference
COVERAGE = (0.77, 0.83)


def _protocol(options: BenchOptions) -> tuple[pd.DataFrame, ForecasterSettings, list[str], str]:
    """The demand frame, our settings, the origins and the grouping reported per group."""
    name = options.protocol or CJ_WEEKLY
    smoke = options.smoke
    if name == CJ_WEEKLY:
        query = DemandQuery(
            top=60 if smoke else 500,
            ranked_until=pd.Timestamp("2017-10-30"),
            timezone=complete_journey.TIMEZONE,
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
        raise ValueError(f"unknown forecast protocol {name!r}; use {CJ_WEEKLY} or {STALLION}")
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
    scored: dict[str, list[np.ndarray[Any, Any]]] = {}
    actual, series, scale, groups, lower, upper, flat = [], [], [], [], [], [], []
    tiers, fit_seconds = [], []
    for when in origins:
        origin = pd.Timestamp(when)
        column = panel.period_index(origin)
        progress(f"{protocol}: origin {origin.date()}, fitting the forecaster")
        cut = frame.copy()
        cut.loc[cut[PERIOD] > origin, TARGET] = np.nan
        model = DemandForecaster(settings).fit(cut)
        fit_seconds.append(model.fit_seconds_)
        grid = pd.MultiIndex.from_product(
            [model.panel_.ids, model.panel_.future_periods(settings.horizon)],
            names=[SERIES, PERIOD],
        ).to_frame(index=False)
        ours = model.predict(grid)
        rows = pd.Index(panel.ids).get_indexer(pd.Index(grid[SERIES]))
        steps = np.asarray([panel.period_index(p) for p in grid[PERIOD]]) - column
        truth = np.nan_to_num(panel.y[rows, column + steps], nan=0.0)
        actual.append(truth)
        series.append(grid[SERIES].to_numpy(dtype=object))
        scale.append(naive_scale(panel.y[:, : column + 1])[rows])
        groups.append(panel.series[group].astype(str).to_numpy()[rows])
        lower.append(ours["lower"].to_numpy())
        upper.append(ours["upper"].to_numpy())
        scored.setdefault("ours", []).append(ours["forecast"].to_numpy())
        if settings.tier_by is not None:
            progress(f"{protocol}: the global model alone, for the tier comparison")
            alone = DemandForecaster(replace(settings, tier_by=None)).fit(cut)
            scored.setdefault("global_only", []).append(alone.predict(grid)["forecast"].to_numpy())
            tiers.append({"origin": when, **model.report_["tiers"]})
        progress(f"{protocol}: origin {origin.date()}, the references")
        for name, matrix in references(panel, column, settings.horizon, protocol).items():
            scored.setdefault(name, []).append(matrix[rows, steps - 1])
        flat.append(model.report_["validation_wape"])
    y = np.concatenate(actual)
    keys = np.concatenate(series)
    scales = np.concatenate(scale)
    by = np.concatenate(groups)
    low, high = np.concatenate(lower), np.concatenate(upper)
    metrics = {
        name: _rounded(
            forecast_metrics(
                y,
                np.concatenate(parts),
                series=keys,
                scale=scales,
                **({"lower": low, "upper": high} if name == "ours" else {}),
            )
        )
        for name, parts in scored.items()
    }
    reference_names = [n for n in metrics if n not in ("ours", "global_only")]
    best = min(reference_names, key=lambda n: metrics[n]["wape"])
    ratio = metrics["ours"]["wape"] / metrics[best]["wape"]
    per_group = _per_group(y, by, {k: np.concatenate(v) for k, v in scored.items()}, best)
    coverage = metrics["ours"]["coverage"]
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
        f"per_{group}": per_group,
        "tiers_validation": tiers,
        "validation_wape": flat,
        "fit_seconds": [round(s, 1) for s in fit_seconds],
    }


def _per_group(
    y: np.ndarray[Any, Any], by: np.ndarray[Any, Any], forecasts: dict[str, Any], best: str
) -> dict[str, dict[str, float]]:
    out = {}
    for level in sorted(set(by)):
        rows = by == level
        total = y[rows].sum()
        if total <= 0:
            continue
        out[level] = {
            "series_rows": int(rows.sum()),
            **{
                f"wape_{name}": round(
                    float(np.abs(np.maximum(f[rows], 0) - y[rows]).sum() / total), 4
                )
                for name, f in forecasts.items()
                if name in ("ours", "global_only", best)
            },
        }
    return out


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items()}
