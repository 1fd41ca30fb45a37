"""Demand forecasts for the API: a request checked against the tenant's forecaster, the frame
its ``predict`` takes, and the response.

A request names series and a horizon (1 to the forecaster's, default all of it) and may plan
known covariates (promotions) for some of those series and periods. Whatever the model cannot
answer is refused with the status the client needs (:class:`ForecastRefused`): a series it
does not know (404, naming a few), a horizon past its own or a planned row off the asked
periods, for a series not asked for, given twice or naming a covariate the model does not
know (422). The work is CPU-bound and runs on the tenant's forecast threads, not the loop.
Series of a department whose own model the lifecycle adopted are answered by that model
(:func:`forecast_routed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.features.definitions import FEATURE_VERSIONS
from shelfwise.forecast.model import DemandForecaster
from shelfwise.serve.schemas import ForecastRequest
from shelfwise.serve.segments import COLUMNS, FORECASTER, split_forecast

SERIES, PERIOD = "series_id", "period_start"
SEGMENT_PREFIX = f"{FORECASTER}.{COLUMNS[FORECASTER]}."
NAMED = 5  # at most this many offending series or rows named in an error


class ForecastRefused(Exception):
    """A forecast request the service will not answer, with its HTTP status and reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def forecast(
    model: DemandForecaster, version: str | None, request: ForecastRequest
) -> dict[str, Any]:
    """The response body for ``request`` (a :class:`ForecastRequest`), or
    :class:`ForecastRefused`."""
    predicted = model.predict(predict_frame(model, request))
    days = pd.DatetimeIndex(predicted[PERIOD]).date
    forecasts = [
        {
            "series_id": series,
            "period_start": day,
            "forecast": float(value),
            "lower": float(lower),
            "upper": float(upper),
            "demand_class": str(demand_class),
            "model": str(made_by),
        }
        for series, day, value, lower, upper, demand_class, made_by in zip(
            predicted[SERIES].astype(str),
            days,
            predicted["forecast"],
            predicted["lower"],
            predicted["upper"],
            predicted["demand_class"],
            predicted["model"],
            strict=True,
        )
    ]
    return {
        "model_version": version,
        "interval_level": float(model.settings.interval_level),
        "last_observed_period": model.panel_.periods[-1].date(),
        "forecasts": forecasts,
    }


def forecast_routed(
    model: DemandForecaster,
    version: str | None,
    request: ForecastRequest,
    segments: Mapping[str, tuple[DemandForecaster, str]],
) -> dict[str, Any]:
    """:func:`forecast`, with each series a department's adopted model knows answered by
    that model (:mod:`shelfwise.serve.segments`); rows keep the request's series order and
    name the model that made them, ``segment_models`` the versions used."""
    if not segments:
        return forecast(model, version, request)
    overall, parts = split_forecast(request, segments)
    answers = [forecast(model, version, overall)] if overall.series_ids else []
    for key, part in parts.items():
        segment, segment_version = segments[key]
        answer = forecast(segment, segment_version, part)
        for row in answer["forecasts"]:
            row["model"] = f"{SEGMENT_PREFIX}{key} v{segment_version}: {row['model']}"
        answers.append(answer)
    rows: dict[str, list[dict[str, Any]]] = {}
    for answer in answers:
        for row in answer["forecasts"]:
            rows.setdefault(row["series_id"], []).append(row)
    return {
        "model_version": version,
        "interval_level": float(model.settings.interval_level),
        "last_observed_period": answers[0]["last_observed_period"],
        "forecasts": [row for s in dict.fromkeys(request.series_ids) for row in rows[s]],
        "segment_models": {key: segments[key][1] for key in parts},
    }


def predict_frame(model: DemandForecaster, request: ForecastRequest) -> pd.DataFrame:
    """One row per asked series and period (series in the request's order, first time each),
    with the planned covariates where the request gives them (NaN: as planned at fit)."""
    limit = model.settings.horizon
    horizon = limit if request.horizon is None else request.horizon
    if horizon > limit:
        raise ForecastRefused(
            422, f"horizon {horizon} is past the forecaster's: it forecasts at most {limit} periods"
        )
    series = list(dict.fromkeys(request.series_ids))
    known_ids = set(model.panel_.ids)
    unknown = [s for s in series if s not in known_ids]
    if unknown:
        raise ForecastRefused(
            404,
            f"{len(unknown)} series the forecaster does not know, e.g. {unknown[:NAMED]}",
        )
    periods = model.panel_.future_periods(horizon)
    frame = pd.DataFrame(
        {
            SERIES: np.repeat(np.asarray(series, dtype=object), horizon),
            PERIOD: np.tile(periods.to_numpy(), len(series)),
        }
    )
    for name, values in _planned(model, request, series, periods).items():
        frame[name] = values
    if model.feature_versions:
        # The forecaster reads its history from its own panel; a request carries series ids,
        # periods and plans, no feature-store features whose versions could differ.
        frame.attrs[FEATURE_VERSIONS] = model.feature_versions
    return frame


def _planned(
    model: DemandForecaster,
    request: ForecastRequest,
    series: list[str],
    periods: pd.DatetimeIndex,
) -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
    """Covariate name -> its value at each row of the predict frame (NaN where not planned)."""
    if not request.known:
        return {}
    allowed = model.settings.known
    named = sorted({name for row in request.known for name in row.values} - set(allowed))
    if named:
        raise ForecastRefused(
            422,
            f"known rows may carry the forecaster's known covariates {list(allowed)}; "
            f"got {named[:NAMED]}",
        )
    position = {s: i for i, s in enumerate(series)}
    column = {p.date(): j for j, p in enumerate(periods)}
    out: dict[str, np.ndarray[Any, np.dtype[np.float64]]] = {}
    seen: set[int] = set()
    strangers, off, twice = [], [], []
    for row in request.known:
        i, j = position.get(row.series_id), column.get(row.period_start)
        if i is None:
            strangers.append(row.series_id)
            continue
        if j is None:
            off.append(f"{row.series_id}@{row.period_start.isoformat()}")
            continue
        at = i * len(periods) + j
        if at in seen:
            twice.append(f"{row.series_id}@{row.period_start.isoformat()}")
        seen.add(at)
        for name, value in row.values.items():
            if name not in out:
                out[name] = np.full(len(series) * len(periods), np.nan)
            out[name][at] = value
    if strangers:
        raise ForecastRefused(
            422,
            f"{len(strangers)} known row(s) for series not in series_ids, e.g. "
            f"{sorted(set(strangers))[:NAMED]}",
        )
    if off:
        raise ForecastRefused(
            422,
            f"{len(off)} known row(s) off the forecast's periods, e.g. {off[:NAMED]}; the "
            f"periods are {[str(p.date()) for p in periods]}",
        )
    if twice:
        raise ForecastRefused(
            422, f"{len(twice)} known row(s) given twice for a series and period: {twice[:NAMED]}"
        )
    return out
