"""The demand forecaster as a lifecycle family: trained on a window, judged on the next one.

Periods are whole weeks: a window (start, end] holds the weeks that start after ``start`` and
end by ``end``. Scoring a model on (start, end] gives it the history up to ``start`` (the
champion too, through :meth:`DemandForecaster.with_history`: it is a global model and applies
at any origin) and the promotion plans, and scores MAE over the weeks of the window, as the
quickstart's backtest does, overall and per department. The scope is sensitive where any of
its products is (alcohol, tobacco, health). Its segments are departments.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.forecast.backtest import hide_after
from shelfwise.forecast.metrics import forecast_metrics, metrics_by_level
from shelfwise.forecast.model import DemandForecaster, ForecasterSettings
from shelfwise.forecast.panel import FREQUENCIES, PERIOD, SERIES, TARGET
from shelfwise.forecast.stage import EXPERIMENT, MODEL_NAME, TOP_PRODUCTS, workspace_demand
from shelfwise.lifecycle.segments import segment_model
from shelfwise.models.base import Estimator, Evaluation
from shelfwise.workspace import Workspace

WEEK = pd.Timedelta(days=7)
SEGMENT = "department"


class ForecasterFamily:
    model_name = MODEL_NAME
    experiment = EXPERIMENT
    segment_column = SEGMENT

    overall_model: str | None = None
    # Two seasons of weeks: 90 days (13 weeks) hold no season, and on The Complete Journey a
    # forecaster fitted on them is a third worse (MAE) than one fitted on every week.
    min_window_days = 2 * 364

    def __init__(
        self,
        workspace: Workspace,
        settings: ForecasterSettings | None = None,
        top: int | None = TOP_PRODUCTS,
        segment: str | None = None,
        frame: pd.DataFrame | None = None,
    ) -> None:
        """``segment``: one department's model (its own registered model, whose rival is
        the overall forecaster); ``frame``: the demand already read (``top`` is then moot)."""
        self.workspace = workspace
        self.settings = settings or ForecasterSettings()
        self.frame = workspace_demand(workspace, top) if frame is None else frame
        if segment is not None:
            self.frame = self.frame[self.frame[SEGMENT].astype(str) == segment]
            if self.frame.empty:
                raise ValueError(f"forecaster: no series in {SEGMENT} {segment!r}")
            self.model_name = segment_model(MODEL_NAME, SEGMENT, segment)
            self.overall_model = MODEL_NAME

    def segments(self) -> list[str]:
        """Departments with enough series for a model of their own (the forecaster's
        ``tier_min_series``, as for its internal tiers)."""
        counts = self.frame.drop_duplicates(SERIES)[SEGMENT].dropna().astype(str).value_counts()
        return sorted(counts[counts >= self.settings.tier_min_series].index)

    def for_segment(self, level: str) -> ForecasterFamily:
        return ForecasterFamily(self.workspace, self.settings, segment=level, frame=self.frame)

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
        """Fitted on the weeks in (start, end]. A window shorter than a fit needs (a drift
        retrain's 30 days are 4 weeks; horizon, validation and history take 12) starts at the
        fewest weeks that fit, and the recency weighting's half-life becomes the window's
        length, so that its weeks still lead."""
        period = pd.to_datetime(self.frame[PERIOD])
        weeks = np.sort(period[period + WEEK <= end].unique())
        settings = self.settings
        inside = weeks[weeks >= np.datetime64(start)]
        if 0 < len(inside) < settings.min_periods <= len(weeks):
            start = pd.Timestamp(weeks[-settings.min_periods])
            season = FREQUENCIES[settings.freq]
            settings = replace(settings, recency_half_life_seasons=len(inside) / season)
        frame = self.frame[period >= start]
        return DemandForecaster(settings).fit(hide_after(frame, end - WEEK))

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
        department = self.frame.drop_duplicates(SERIES).set_index(SERIES)[SEGMENT]
        levels = department.reindex(grid.get_level_values(SERIES)).to_numpy(dtype=object)
        metrics.update(
            metrics_by_level(
                SEGMENT,
                levels,
                actual,
                predicted["forecast"].to_numpy(),
                lower=predicted["lower"].to_numpy(),
                upper=predicted["upper"].to_numpy(),
            )
        )
        metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
        return Evaluation(metrics, model.primary_metric, model.higher_is_better)

    def inputs(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """What the model reads about the weeks in (start, end], one row per series-week:
        quantity, unit price, discount share, placements, category; with its department."""
        period = pd.to_datetime(self.frame[PERIOD])
        rows = self.frame[(period >= start) & (period + WEEK <= end)]
        quantity = rows[TARGET].astype(float)
        sales = rows["sales_value"].astype(float)
        return pd.DataFrame(
            {
                "quantity": quantity,
                "unit_price": (sales / quantity.where(quantity > 0)).astype(float),
                "discount_share": (rows["discount_value"].abs() / sales.where(sales > 0)),
                "display_stores": rows["display_stores"].astype(float),
                "mailer_stores": rows["mailer_stores"].astype(float),
                "category": rows["category"].astype(str),
                SEGMENT: rows[SEGMENT].astype(str),
            }
        ).reset_index(drop=True)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
