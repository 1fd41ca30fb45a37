"""The demand forecaster as a lifecycle family: trained on a window, judged on the next one.

Periods are whole weeks: a window (start, end] holds the weeks that start after ``start`` and
end by ``end``. Scoring a model on (start, end] gives it the history up to ``start`` (the
champion too, through :meth:`DemandForecaster.with_history`: it is a global model and applies
at any origin) and the promotion plans, and scores MAE over the weeks of the window, as the
quickstart's backtest does. The scope is sensitive where any of its products is (alcohol,
tobacco, health).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shelfwise.forecast.backtest import hide_after
from shelfwise.forecast.metrics import forecast_metrics
from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.forecast.panel import PERIOD, SERIES, TARGET
from shelfwise.forecast.stage import EXPERIMENT, MODEL_NAME, TOP_PRODUCTS, workspace_demand
from shelfwise.models.base import Estimator, Evaluation
from shelfwise.workspace import Workspace

WEEK = pd.Timedelta(days=7)


class ForecasterFamily:
    model_name = MODEL_NAME
    experiment = EXPERIMENT

    def __init__(
        self,
        workspace: Workspace,
        settings: ForecasterSettings | None = None,
        top: int | None = TOP_PRODUCTS,
    ) -> None:
        self.workspace = workspace
        self.settings = settings or ForecasterSettings()
        self.frame = workspace_demand(workspace, top)

    def latest(self) -> pd.Timestamp:
        """The end of the last whole week sold."""
        observed = self.frame[self.frame[TARGET].notna()]
        return pd.Timestamp(observed[PERIOD].max()) + WEEK

    def sensitive_scope(self) -> list[str]:
        skus = self.frame[SERIES].astype(str).str.split("@").str[0].unique().tolist()
        if not skus:
            return []
        found = self.workspace.analytic.frame(
            "SELECT DISTINCT sensitive_category FROM products WHERE sensitive_category IS NOT "
            f"NULL AND sku IN ({', '.join(_quoted(s) for s in skus)})"
        )
        return sorted(found["sensitive_category"].astype(str))

    def train(self, start: pd.Timestamp, end: pd.Timestamp) -> Estimator[Any]:
        frame = self.frame[pd.to_datetime(self.frame[PERIOD]) >= start]
        return DemandForecaster(self.settings).fit(hide_after(frame, end - WEEK))

    def score(self, model: Estimator[Any], start: pd.Timestamp, end: pd.Timestamp) -> Evaluation:
        if not isinstance(model, DemandForecaster):
            raise TypeError(f"the forecaster family scores demand forecasters, not {model}")
        fresh = model.with_history(hide_after(self.frame, start - WEEK))
        periods = fresh.panel_.future_periods(fresh.settings.horizon)
        periods = periods[periods + WEEK <= end]
        if len(periods) == 0:
            raise ValueError(f"no whole week between {start} and {end} to score on")
        grid = pd.MultiIndex.from_product([fresh.panel_.ids, periods], names=[SERIES, PERIOD])
        predicted = fresh.predict(grid.to_frame(index=False))
        sold = self.frame[self.frame[TARGET].notna()].groupby([SERIES, PERIOD])[TARGET].sum()
        actual = sold.reindex(grid).fillna(0.0).to_numpy()
        metrics = forecast_metrics(
            actual,
            predicted["forecast"].to_numpy(),
            lower=predicted["lower"].to_numpy(),
            upper=predicted["upper"].to_numpy(),
        )
        metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
        return Evaluation(metrics, model.primary_metric, model.higher_is_better)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
