"""Rolling-origin backtests: at each origin, hide the quantities after it (the planned
covariates stay, as the promotion plan would), fit, forecast the horizon of every series, and
score against what was sold. The same code scores the quickstart's stage, the benchmarks and
the lifecycle's comparisons of a candidate with its champion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.forecast.metrics import forecast_metrics, naive_scale
from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.forecast.panel import PERIOD, SERIES, TARGET

ORIGIN = "origin"


@dataclass
class Backtest:
    """Every forecast row (series, period, origin, actual, forecast, lower, upper, the series'
    RMSSE scale and group) and the models fitted at each origin."""

    rows: pd.DataFrame
    models: list[DemandForecaster] = field(default_factory=list)

    def metrics(self, forecast: str = "forecast", intervals: bool = True) -> dict[str, float]:
        """MAE, WAPE, RMSSE, bias (and coverage) of column ``forecast``, pooled over origins."""
        rows = self.rows
        return forecast_metrics(
            rows["actual"].to_numpy(),
            rows[forecast].to_numpy(),
            lower=rows["lower"].to_numpy() if intervals else None,
            upper=rows["upper"].to_numpy() if intervals else None,
            series=rows[SERIES].to_numpy(dtype=object),
            scale=rows["rmsse_scale"].to_numpy(),
        )

    def by_group(self, columns: Sequence[str] = ("forecast",)) -> dict[str, dict[str, float]]:
        """Per group: rows, and MAE, WAPE, bias (coverage for ``forecast``) of each column."""
        out: dict[str, dict[str, float]] = {}
        for level, part in self.rows.groupby("group", sort=True):
            if part["actual"].sum() <= 0:
                continue
            entry: dict[str, float] = {"rows": float(len(part))}
            for column in columns:
                own = column == "forecast"
                scores = forecast_metrics(
                    part["actual"].to_numpy(),
                    part[column].to_numpy(),
                    lower=part["lower"].to_numpy() if own else None,
                    upper=part["upper"].to_numpy() if own else None,
                )
                prefix = "" if own else f"{column}_"
                for name in ("mae", "wape", "bias", "coverage"):
                    if name in scores:
                        entry[f"{prefix}{name}"] = round(scores[name], 4)
            out[str(level)] = entry
        return out


def hide_after(frame: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """The frame as it stood at ``origin``: later quantities unknown, plans kept."""
    cut = frame.copy()
    cut.loc[pd.to_datetime(cut[PERIOD]) > origin, TARGET] = np.nan
    return cut


def rolling_backtest(
    frame: pd.DataFrame,
    settings: ForecasterSettings,
    origins: Sequence[pd.Timestamp | str],
    group: str | None = None,
) -> Backtest:
    """Refit at each origin and forecast ``settings.horizon`` periods for every series; a
    period with no sale scores as 0, a period past the last observed one is not scored.
    ``group``: the static attribute reported per group."""
    observed = frame[frame[TARGET].notna()]
    sold = observed.groupby([SERIES, PERIOD])[TARGET].sum()
    last = pd.to_datetime(observed[PERIOD]).max()
    parts, models = [], []
    for when in origins:
        origin = pd.Timestamp(when)
        model = DemandForecaster(settings).fit(hide_after(frame, origin))
        panel = model.panel_
        grid = pd.MultiIndex.from_product(
            [panel.ids, panel.future_periods(settings.horizon)], names=[SERIES, PERIOD]
        )
        asked = grid.to_frame(index=False)
        asked = asked[asked[PERIOD] <= last]
        if asked.empty:
            raise ValueError(f"origin {origin.date()} leaves no observed period to score")
        grid = pd.MultiIndex.from_frame(asked)
        predicted = model.predict(asked)
        index = pd.Index(panel.ids).get_indexer(pd.Index(predicted[SERIES]))
        labels: Any = panel.series[group].astype(str).to_numpy()[index] if group else ""
        parts.append(
            predicted.assign(
                **{ORIGIN: origin},
                actual=sold.reindex(grid).fillna(0.0).to_numpy(),
                rmsse_scale=naive_scale(panel.y)[index],
                group=labels,
            )
        )
        models.append(model)
    return Backtest(pd.concat(parts, ignore_index=True), models)
