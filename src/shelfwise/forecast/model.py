"""The demand forecaster: a global gradient-boosted model, department tiers, and a blend with
the simple forecasts that grocery demand rewards, with conformal intervals.

``fit`` takes the long demand frame (``series_id``, ``period_start``, ``quantity``; known
covariates and static attributes as the settings name them; rows past the last observed period
may carry planned covariates with no quantity). It then:

1. trains the global model on every origin whose horizon it can see, except the last
   ``validation_origins`` (by default a quarter of the origins the history holds, at least 4
   and at most one season, so that the intervals see errors of several periods), and a model
   per tier (a department with enough series);
2. forecasts those held-out origins with each, and with the moving average, TSB and the
   seasonal naive forecast; adopts a tier where it beats the global model on its own series
   by ``tier_min_gain``; learns the blend's weights per demand class and the conformal
   interval quantiles from the same origins;
3. trains the global and the adopted tier models again on everything.

``predict`` takes ``series_id`` and ``period_start`` (1 to ``horizon`` periods after the
last observed one) and, optionally, the known covariates of those periods, and returns the
forecast with its interval, the demand class and which model made it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.forecast import baselines
from shelfwise.forecast.blend import UNSCALED, adopt_tiers, fit_intervals, fit_weights
from shelfwise.forecast.design import MIN_SCALE, Design, Rows, rows_at
from shelfwise.forecast.metrics import forecast_metrics, naive_scale
from shelfwise.forecast.panel import PERIOD, SERIES, TARGET, Panel, panel_from_frame
from shelfwise.forecast.settings import MIN_VALIDATION
from shelfwise.forecast.settings import ForecasterSettings as ForecasterSettings
from shelfwise.models.base import Column, Estimator, Evaluation, LearnedArrays, gain_shares

Matrix = NDArray[np.float64]
GLOBAL = "global"
MEMBERS = ("model", "moving_average", "tsb", "croston", "seasonal_naive")
ZERO_DOMINATED = 0.5  # share of zeros lately above which a sub-unit forecast is noise: 0


class DemandForecaster(Estimator[ForecasterSettings]):
    """Demand per series and period ahead, with an interval: a global LightGBM on lags and
    planned promotions, department tiers where they help, blended with the simple forecasts
    per demand class."""

    family = "demand_forecaster"
    settings_type = ForecasterSettings
    training_columns = (SERIES, PERIOD)
    evaluation_columns = (SERIES, PERIOD, TARGET)
    input_schema = (Column(SERIES, "string"), Column(PERIOD, "datetime"))
    output_schema = (
        Column(SERIES, "string"),
        Column(PERIOD, "datetime"),
        Column("forecast", "double"),
        Column("lower", "double"),
        Column("upper", "double"),
        Column("demand_class", "string"),
        Column("model", "string"),
    )
    primary_metric = "mae"
    higher_is_better = False
    limitations = (
        "Forecasts the median (L1): unbiased for MAE, but for a product that sells in few "
        "weeks the median is 0; stock decisions should read the interval's upper bound.",
        "Knows the future only through the covariates it is given (planned display and "
        "mailer placements): an unplanned promotion, a stock-out or a new competitor is not "
        "in its forecast.",
        "A series younger than min_history periods gets the simple forecasts, not the model.",
        "Intervals are calibrated on recent held-out origins: after a shift in demand their "
        "coverage can fall below the level until the next retraining.",
    )

    panel_: Panel
    design_: Design
    levels_: dict[str, list[str]]
    boosters_: dict[str, lgb.Booster]
    weights_: Matrix
    intervals_: NDArray[np.float64]
    report_: dict[str, Any]

    # --- fit ---------------------------------------------------------------------------
    def _fit(self, frame: pd.DataFrame) -> None:
        s = self.settings
        panel = self._panel(frame, "fit")
        self.levels_ = {n: sorted(set(panel.series[n].astype(str))) for n in s.static}
        self.panel_ = panel
        self.design_ = Design.for_panel(
            panel, s.known, tuple(len(v) for v in self.levels_.values())
        )
        periods = panel.y.shape[1]
        held_out = s.validation_origins or max(
            MIN_VALIDATION, min(panel.season_length, (periods - s.horizon) // 4)
        )
        first = periods - 1 - s.horizon - held_out + 1
        if first < s.min_history + 1:
            raise ValueError(
                f"DemandForecaster.fit: {periods} periods are too few for horizon {s.horizon} "
                f"and {held_out} validation origins; need at least {s.min_periods}"
            )
        validation = list(range(first, periods - s.horizon))
        train = self._training_rows(target_until=first)
        boosters = self._train_all(train)
        report = self._validate(boosters, validation)
        self.boosters_ = self._train_all(
            self._training_rows(target_until=periods - 1), only=report["adopted"]
        )
        self.report_ = report

    def _panel(self, frame: pd.DataFrame, method: str) -> Panel:
        s = self.settings
        self._check_columns(frame)
        observed = frame[frame[TARGET].notna()] if TARGET in frame else frame.iloc[:0]
        if observed.empty:
            raise ValueError(
                f"DemandForecaster.{method}: the demand frame has no observed quantity"
            )
        return panel_from_frame(
            frame,
            s.freq,
            s.known,
            s.static,
            until=observed[PERIOD].max(),
            start_at_first_sale=s.start_at_first_sale,
            known_fill=0.0 if s.absent_known_is_zero else None,
        )

    def feature_importance(self) -> dict[str, float]:
        """The global booster's gain per feature, as shares (tiers are refinements of it)."""
        self.check_fitted()
        return gain_shares(self.boosters_[GLOBAL])

    def with_history(self, frame: pd.DataFrame) -> DemandForecaster:
        """The same fitted model forecasting from a newer history (the weeks sold since it
        was fitted), without refitting: a global model applies at any origin. Series it never
        saw are forecast too (their unknown categories as missing). The copy shares the
        boosters, blend and intervals; this model is unchanged."""
        self.check_fitted()
        fresh = copy.copy(self)
        fresh.panel_ = self._panel(frame, "with_history")
        return fresh

    def _check_columns(self, frame: pd.DataFrame) -> None:
        wanted = [TARGET, *self.settings.known, *self.settings.static]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise ValueError(
                f"DemandForecaster: the demand frame lacks {missing} (settings.known and "
                f"settings.static name them); it has {list(frame.columns)}"
            )

    def _static_codes(self) -> NDArray[np.int64]:
        series = self.panel_.series
        codes = [  # in the settings' order: the saved state's keys come back sorted
            pd.Index(self.levels_[name]).get_indexer(pd.Index(series[name].astype(str)))
            for name in self.settings.static
        ]
        return np.column_stack(codes) if codes else np.zeros((len(series), 0), np.int64)

    def _eligible(self, origin: int) -> NDArray[np.bool_]:
        return (origin - self.panel_.starts) >= self.settings.min_history - 1

    def _rows(self, origin: int, horizons: range, y: Matrix | None = None) -> Rows:
        panel = self.panel_
        return rows_at(
            self.design_,
            panel.y if y is None else y,
            panel.known,
            self._static_codes(),
            origin,
            horizons,
            self._season_offset(),
            self._eligible(origin),
        )

    def _season_offset(self) -> int:
        start = self.panel_.periods[0]
        if self.panel_.freq == "MS":
            return int(start.month - 1)
        if self.panel_.freq == "D":
            return int(start.dayofweek)
        return int(start.isocalendar().week - 1)

    def _training_rows(self, target_until: int) -> tuple[Rows, Matrix]:
        """Rows for every origin whose targets lie at or before ``target_until``, and targets."""
        parts, targets = [], []
        y = self.panel_.y
        for origin in range(target_until):
            horizons = range(1, min(self.settings.horizon, target_until - origin) + 1)
            rows = self._rows(origin, horizons)
            target = y[rows.series, rows.origin + rows.horizon]
            keep = ~np.isnan(target)
            parts.append(rows.subset(keep))
            targets.append(target[keep])
        return Rows.concat(parts), np.concatenate(targets)

    def _tiers(self) -> dict[str, NDArray[np.bool_]]:
        """Tier name -> which series it covers (departments with enough series)."""
        by = self.settings.tier_by
        if by is None:
            return {}
        values = self.panel_.series[by].astype(str).to_numpy()
        out = {}
        for level in self.levels_[by]:
            members = values == level
            if members.sum() >= self.settings.tier_min_series and level:
                out[f"{by}:{level}"] = members
        return out

    def _train_all(
        self, data: tuple[Rows, Matrix], only: list[str] | None = None
    ) -> dict[str, lgb.Booster]:
        rows, target = data
        boosters = {GLOBAL: self._train(rows, target)}
        for name, members in self._tiers().items():
            if only is not None and name not in only:
                continue
            keep = members[rows.series]
            if keep.sum() >= 10 * self.settings.min_leaf:
                boosters[name] = self._train(rows.subset(keep), target[keep])
        return boosters

    def _recency(self, rows: Rows) -> NDArray[np.float64]:
        """Weight of each training row by how recent its target is (1 without a half-life)."""
        seasons = self.settings.recency_half_life_seasons
        if seasons is None or len(rows.origin) == 0:
            return np.ones(len(rows.origin))
        half_life = seasons * self.design_.season
        age = (rows.origin + rows.horizon).max() - (rows.origin + rows.horizon)
        return np.asarray(0.5 ** (age / half_life), dtype=np.float64)

    def _train(self, rows: Rows, target: Matrix) -> lgb.Booster:
        s = self.settings
        params = {
            "objective": "l1",
            "learning_rate": s.learning_rate,
            "num_leaves": s.leaves,
            "min_data_in_leaf": s.min_leaf,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "seed": s.seed,
            "deterministic": True,
            "verbosity": -1,
            "num_threads": s.threads,
        }
        dataset = lgb.Dataset(
            rows.features,
            target / rows.scale,
            weight=rows.scale * self._recency(rows),
            feature_name=self.design_.names,
            categorical_feature=self.design_.categorical,
            free_raw_data=True,
        )
        return lgb.train(params, dataset, num_boost_round=s.rounds)

    # --- validation: tiers, blend, intervals ----------------------------------------------
    def _validate(self, boosters: dict[str, lgb.Booster], origins: list[int]) -> dict[str, Any]:
        s = self.settings
        y = self.panel_.y
        tiers = self._tiers()
        collected: dict[str, list[Any]] = {k: [] for k in ("rows", "actual", "global", "members")}
        tier_predictions: dict[str, list[Matrix]] = {
            name: [] for name in boosters if name != GLOBAL
        }
        for origin in origins:
            rows = self._rows(origin, range(1, s.horizon + 1))
            actual = y[rows.series, rows.origin + rows.horizon]
            keep = ~np.isnan(actual)
            rows = rows.subset(keep)
            collected["rows"].append(rows)
            collected["actual"].append(actual[keep])
            collected["global"].append(_predict(boosters[GLOBAL], rows))
            for name in tier_predictions:
                tier_predictions[name].append(_predict(boosters[name], rows))
            collected["members"].append(self._simple_members(y[:, : origin + 1], rows))
        rows = Rows.concat(collected["rows"])
        actual = np.concatenate(collected["actual"])
        model = np.concatenate(collected["global"])
        covered = {name: tiers[name][rows.series] for name in tier_predictions}
        model, adopted, comparison = adopt_tiers(
            actual,
            model,
            {name: np.concatenate(p) for name, p in tier_predictions.items()},
            covered,
            s.tier_min_gain,
        )
        for name in comparison:
            comparison[name]["series"] = int(tiers[name].sum())
        members = np.column_stack([model, np.vstack(collected["members"])])
        classes = self._classes_at(rows)
        self.weights_ = fit_weights(members, actual, classes)
        blended = self._finish(members, classes, rows)
        spread, groups = self._interval_groups(rows, classes)
        self.intervals_ = fit_intervals(
            (actual - blended) / spread, rows.horizon, groups, s.horizon, s.interval_level
        )
        total = max(actual.sum(), 1e-9)
        return {
            "adopted": adopted,
            "tiers": comparison,
            "validation_origins": [str(self.panel_.periods[o].date()) for o in origins],
            "validation_wape": {
                "blend": round(float(np.abs(blended - actual).sum() / total), 4),
                **{
                    name: round(float(np.abs(members[:, i] - actual).sum() / total), 4)
                    for i, name in enumerate(MEMBERS)
                },
            },
            "weights": {
                cls: dict(zip(MEMBERS, map(float, self.weights_[i]), strict=True))
                for i, cls in enumerate(baselines.CLASSES)
            },
        }

    def _simple_members(self, history: Matrix, rows: Rows) -> Matrix:
        design = self.design_
        average = baselines.moving_average(history, design.windows[0])
        tsb = baselines.tsb(history)
        croston = baselines.croston(history)
        seasonal = baselines.seasonal_naive(history, design.season, self.settings.horizon)
        return np.column_stack(
            [
                average[rows.series],
                tsb[rows.series],
                croston[rows.series],
                seasonal[rows.series, rows.horizon - 1],
            ]
        )

    def _at_origins(
        self, rows: Rows, measure: Callable[[Matrix], NDArray[Any]], window: int
    ) -> NDArray[Any]:
        """``measure`` of each row's series over the ``window`` periods up to its origin."""
        out: NDArray[Any] | None = None
        for origin in np.unique(rows.origin):
            at = rows.origin == origin
            history = self.panel_.y[:, max(0, origin - window + 1) : origin + 1]
            values = measure(history)
            if out is None:
                out = np.zeros(len(rows.series), dtype=values.dtype)
            out[at] = values[rows.series[at]]
        return out if out is not None else np.zeros(0)

    def _classes_at(self, rows: Rows) -> NDArray[np.int64]:
        classes = self._at_origins(rows, baselines.demand_classes, max(self.design_.windows[:2]))
        return np.asarray(classes, dtype=np.int64)

    def _interval_groups(
        self, rows: Rows, classes: NDArray[np.int64], unscaled_group: bool = True
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Each row's error scale for the intervals and its interval group. The scale: the
        series' typical one-period change over two scale windows (volatile series get wider
        intervals than steady ones of the same level), at least a tenth of its level; the group:
        its demand class. A series with no sale in that window (not launched yet, or
        discontinued) has no scale: its rows are the group ``UNSCALED``, their errors in units
        (divided by 1), so that they neither blow up their class's scaled errors nor get a
        zero-width interval (``unscaled_group=False``: a model saved before that group existed,
        whose rows keep their classes and the floored scale)."""
        window = 2 * self.design_.scale_window + 1
        change = self._at_origins(rows, lambda y: np.sqrt(naive_scale(y)), window)
        change = np.nan_to_num(np.asarray(change, float), nan=0.0)
        unsold = (change <= 0) & (rows.scale <= MIN_SCALE)
        unsold &= unscaled_group
        spread = np.where(unsold, 1.0, np.maximum(change, 0.1 * rows.scale))
        groups = np.where(unsold, UNSCALED, classes)
        return np.asarray(spread, float), np.asarray(groups, np.int64)

    def _finish(self, members: Matrix, classes: NDArray[np.int64], rows: Rows) -> Matrix:
        """The blend, clipped at 0, with sub-unit forecasts of zero-dominated series at 0."""
        blended = np.maximum((members * self.weights_[classes]).sum(axis=1), 0.0)
        window = max(self.design_.windows[:2])
        zeros = self._at_origins(rows, lambda y: baselines.zero_share(y, window), window)
        return np.where((zeros >= ZERO_DOMINATED) & (blended < 0.5), 0.0, blended)

    # --- predict ---------------------------------------------------------------------------
    def _predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        s = self.settings
        panel = self.panel_
        last = panel.y.shape[1] - 1
        ids = frame[SERIES].astype(str).to_numpy()
        index = pd.Index(panel.ids).get_indexer(pd.Index(ids))
        if (index < 0).any():
            unknown = sorted(set(ids[index < 0]))
            raise ValueError(
                f"DemandForecaster.predict: {len(unknown)} series the model was not trained "
                f"on, e.g. {unknown[:5]}"
            )
        future = panel.future_periods(s.horizon)
        when = pd.DatetimeIndex(pd.to_datetime(frame[PERIOD]))
        horizon = future.get_indexer(when) + 1
        if (horizon <= 0).any():
            bad = when[horizon <= 0][0]
            raise ValueError(
                f"DemandForecaster.predict: period_start {bad} is not one of the {s.horizon} "
                f"periods after the last observed one ({panel.periods[-1].date()}): "
                f"{[str(p.date()) for p in future]}"
            )
        repeated = pd.Series(list(zip(index, horizon, strict=True))).duplicated()
        if repeated.any() and any(name in frame.columns for name in s.known):
            first = int(np.flatnonzero(repeated.to_numpy())[0])
            raise ValueError(
                f"DemandForecaster.predict: series {ids[first]!r} and period {when[first].date()} "
                "are asked more than once with planned covariates; ask one plan per request"
            )
        known = self._known_with(frame, index, horizon, last)
        wanted = np.zeros(len(panel.ids), bool)
        wanted[index] = True
        rows = rows_at(
            self.design_,
            panel.y,
            known,
            self._static_codes(),
            last,
            range(1, s.horizon + 1),
            self._season_offset(),
            wanted,
        )
        model = _predict(self.boosters_[GLOBAL], rows)
        source = np.full(len(rows.series), GLOBAL, dtype=object)
        tiers = self._tiers()
        for name, booster in self.boosters_.items():
            if name != GLOBAL:
                covered = tiers[name][rows.series]
                model = np.where(covered, _predict(booster, rows), model)
                source[covered] = name
        eligible = self._eligible(last)[rows.series]
        simple = self._simple_members(panel.y, rows)
        # Too short a history for the model: the simple forecasts alone (TSB's weight).
        model = np.where(eligible, model, simple[:, 1])
        source[~eligible] = "baseline"
        members = np.column_stack([model, simple])
        classes = self._classes_at(rows)
        forecast = self._finish(members, classes, rows)
        spread, groups = self._interval_groups(
            rows, classes, unscaled_group=self.intervals_.shape[1] > UNSCALED
        )
        quantiles = self.intervals_[rows.horizon - 1, groups]
        # The interval holds the forecast even where the validation errors leaned one way.
        lower = np.maximum(forecast + np.minimum(quantiles[:, 0], 0.0) * spread, 0.0)
        upper = forecast + np.maximum(quantiles[:, 1], 0.0) * spread
        position = pd.Series(
            np.arange(len(rows.series)),
            index=pd.MultiIndex.from_arrays([rows.series, rows.horizon]),
        )
        at = position.loc[list(zip(index, horizon, strict=True))].to_numpy()
        return pd.DataFrame(
            {
                SERIES: ids,
                PERIOD: when,
                "forecast": forecast[at],
                "lower": lower[at],
                "upper": upper[at],
                "demand_class": np.asarray(baselines.CLASSES, dtype=object)[classes[at]],
                "model": source[at],
            }
        )

    def _known_with(
        self, frame: pd.DataFrame, index: NDArray[np.int64], horizon: NDArray[np.int64], last: int
    ) -> dict[str, Matrix]:
        """Known covariates through the horizon: as planned at fit, overlaid by the request's."""
        out = {}
        width = last + 1 + self.settings.horizon
        fill = 0.0 if self.settings.absent_known_is_zero else np.nan
        for name, values in self.panel_.known.items():
            padded = np.full((values.shape[0], width), fill)
            kept = min(values.shape[1], width)
            padded[:, :kept] = values[:, :kept]
            if name in frame.columns:
                given = frame[name].to_numpy(float)
                present = ~np.isnan(given)
                padded[index[present], last + horizon[present]] = given[present]
            out[name] = padded
        return out

    def _evaluate(self, frame: pd.DataFrame) -> Evaluation:
        predicted = self.predict(frame)
        index = pd.Index(self.panel_.ids).get_indexer(pd.Index(frame[SERIES].astype(str)))
        metrics = forecast_metrics(
            frame[TARGET].to_numpy(float),
            predicted["forecast"].to_numpy(),
            lower=predicted["lower"].to_numpy(),
            upper=predicted["upper"].to_numpy(),
            series=frame[SERIES].astype(str).to_numpy(dtype=object),
            scale=naive_scale(self.panel_.y)[index],
        )
        return Evaluation(metrics, "mae", False)

    def _input_example(self) -> pd.DataFrame | None:
        future = self.panel_.future_periods(self.settings.horizon)
        return pd.DataFrame({SERIES: [self.panel_.ids[0]], PERIOD: [future[0]]})

    # --- persistence -----------------------------------------------------------------------
    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        panel = self.panel_
        names = sorted(self.boosters_)
        arrays: LearnedArrays = {
            "y": panel.y,
            "weights": self.weights_,
            "intervals": self.intervals_,
            **{f"known_{i}": panel.known[name] for i, name in enumerate(self.settings.known)},
            **{
                # UTF-8 bytes: a numpy string array would hold four bytes per character
                f"booster_{i}": np.frombuffer(
                    self.boosters_[name].model_to_string().encode(), dtype=np.uint8
                )
                for i, name in enumerate(names)
            },
        }
        state = {
            "series": panel.ids,
            "static": {n: panel.series[n].astype(str).tolist() for n in self.settings.static},
            "first_period": panel.periods[0].isoformat(),
            "periods": len(panel.periods),
            "levels": self.levels_,
            "design": self.design_.state(),
            "boosters": names,
            "report": self.report_,
        }
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        s = self.settings
        periods = pd.date_range(state["first_period"], periods=state["periods"], freq=s.freq)
        series = pd.DataFrame(
            {SERIES: state["series"], **{n: state["static"][n] for n in s.static}}
        )
        known = {name: arrays[f"known_{i}"] for i, name in enumerate(s.known)}
        self.panel_ = Panel(np.asarray(arrays["y"], float), periods, series, s.freq, known)
        self.levels_ = {k: list(v) for k, v in state["levels"].items()}
        self.design_ = Design.from_state(state["design"], s.known)
        self.boosters_ = {
            name: lgb.Booster(model_str=arrays[f"booster_{i}"].tobytes().decode())
            for i, name in enumerate(state["boosters"])
        }
        self.weights_ = np.asarray(arrays["weights"], float)
        self.intervals_ = np.asarray(arrays["intervals"], float)
        self.report_ = state["report"]


def _predict(booster: lgb.Booster, rows: Rows) -> Matrix:
    if len(rows.series) == 0:
        return np.zeros(0)
    return np.asarray(booster.predict(rows.features, num_threads=1), float) * rows.scale
