"""Demand as a panel: one row per series, one column per period, and what is known ahead.

A *series* is what one forecast is about: a product, or a product in one store. The long
frame (``series_id``, ``period_start``, ``quantity``, known covariates, static attributes) is
what the forecaster's ``fit`` takes and what the service and the quickstart hold; the
:class:`Panel` is its dense form for the mathematics. Periods are consecutive (weekly or
monthly); a period with no sale is 0, and a series starts at its first sale: before that it is
NaN, not zero demand.

Known covariates are values the retailer knows before the period starts (a product's display
and mailer placements, a planned price or discount). They may be given for the future
periods to forecast; where they are not, the forecaster treats them as unknown (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

SERIES = "series_id"
PERIOD = "period_start"
TARGET = "quantity"
FREQUENCIES = {"W-MON": 52, "MS": 12, "D": 7}

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class Panel:
    """Series x periods. ``y`` is NaN before a series starts; ``known`` has one matrix per
    covariate, NaN where unknown; ``series`` holds the static attributes in the same order."""

    y: Matrix
    periods: pd.DatetimeIndex
    series: pd.DataFrame
    freq: str
    known: dict[str, Matrix] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rows, columns = self.y.shape
        if rows != len(self.series) or columns != len(self.periods):
            raise ValueError(
                f"panel shape {self.y.shape} does not match {len(self.series)} series x "
                f"{len(self.periods)} periods"
            )
        for name, values in self.known.items():
            if values.shape[0] != rows or values.shape[1] < columns:
                raise ValueError(
                    f"known covariate {name!r} has shape {values.shape}; it needs {rows} rows "
                    f"and at least {columns} periods"
                )

    @property
    def ids(self) -> list[str]:
        return [str(s) for s in self.series[SERIES]]

    @property
    def season_length(self) -> int:
        return FREQUENCIES[self.freq]

    @property
    def starts(self) -> NDArray[np.int64]:
        """Each series' first period (its first sale)."""
        started = ~np.isnan(self.y)
        first = started.argmax(axis=1)
        first[~started.any(axis=1)] = self.y.shape[1]
        return np.asarray(first, dtype=np.int64)

    def until(self, period: int) -> Panel:
        """The panel cut after column ``period`` (inclusive); known covariates keep the future."""
        return Panel(
            self.y[:, : period + 1], self.periods[: period + 1], self.series, self.freq, self.known
        )

    def period_index(self, when: pd.Timestamp) -> int:
        """Column of the period starting at ``when`` (may lie past the panel's end)."""
        anchor = self.periods[0]
        if self.freq == "MS":
            return int((when.year - anchor.year) * 12 + when.month - anchor.month)
        days = (pd.Timestamp(when) - anchor).days
        return days // 7 if self.freq == "W-MON" else days

    def future_periods(self, horizon: int) -> pd.DatetimeIndex:
        return pd.date_range(self.periods[-1], periods=horizon + 1, freq=self.freq)[1:]


def panel_from_frame(
    frame: pd.DataFrame,
    freq: str,
    known: tuple[str, ...] = (),
    static: tuple[str, ...] = (),
    until: pd.Timestamp | None = None,
    start_at_first_sale: bool = True,
    known_fill: float | None = None,
) -> Panel:
    """The dense panel of a long frame; periods run from the earliest to ``until`` (default:
    the latest in the frame), and covariate columns may run past it into the future. A series
    starts at its first sale, or (``start_at_first_sale=False``, for panels that record
    zeros, as Stallion does) at its first row. ``known_fill``: the value of a known covariate
    where a series has no row (0 for counts of promoted stores: no promotion row, no promotion);
    None leaves it unknown."""
    if freq not in FREQUENCIES:
        raise ValueError(f"frequency {freq!r} is not supported; use one of {sorted(FREQUENCIES)}")
    data = frame.copy()
    data[PERIOD] = pd.to_datetime(data[PERIOD])
    data[SERIES] = data[SERIES].astype(str)
    observed = data[data[TARGET].notna()]
    if observed.empty:
        raise ValueError("the demand frame has no observed quantity")
    end = pd.Timestamp(until) if until is not None else observed[PERIOD].max()
    periods = pd.date_range(observed[PERIOD].min(), end, freq=freq)
    misaligned = ~observed[PERIOD].isin(periods) & (observed[PERIOD] <= end)
    if misaligned.any():
        example = observed.loc[misaligned, PERIOD].iloc[0]
        raise ValueError(
            f"period_start {example} is not on the {freq} grid that starts at {periods[0]}; "
            f"{int(misaligned.sum())} row(s) are off it"
        )
    ids = sorted(data[SERIES].unique())
    future = pd.date_range(periods[0], max(end, data[PERIOD].max()), freq=freq)
    row = pd.Index(ids).get_indexer(pd.Index(data[SERIES]))
    column = future.get_indexer(pd.Index(data[PERIOD]))
    y = np.full((len(ids), len(future)), np.nan)
    history = data[TARGET].notna().to_numpy() & (column < len(periods))
    y[row[history], column[history]] = 0.0
    np.add.at(y, (row[history], column[history]), data[TARGET].to_numpy(float)[history])
    y = y[:, : len(periods)]
    y = _start(y, at_sale=start_at_first_sale)
    covariates = {}
    for name in known:
        values = np.full((len(ids), len(future)), np.nan if known_fill is None else known_fill)
        present = data[name].notna().to_numpy() & (column >= 0)  # nothing before the panel
        values[row[present], column[present]] = data[name].to_numpy(float)[present]
        covariates[name] = values
    attributes = (
        data.drop_duplicates(SERIES).set_index(SERIES).reindex(ids)[list(static)].reset_index()
    )
    for name in static:
        attributes[name] = attributes[name].astype(object).where(attributes[name].notna(), "")
    return Panel(y, periods, attributes, freq, covariates)


def _start(y: Matrix, *, at_sale: bool) -> Matrix:
    """Zeros where a series has no row after it started; NaN before its start."""
    begun = np.nan_to_num(y, nan=0.0) > 0 if at_sale else ~np.isnan(y)
    started = np.maximum.accumulate(begun, axis=1)
    return np.where(started, np.nan_to_num(y, nan=0.0), np.nan)


def frame_from_panel(panel: Panel, last: int | None = None) -> pd.DataFrame:
    """The long frame of the observed part (``last``: only the last periods)."""
    y = panel.y if last is None else panel.y[:, -last:]
    periods = panel.periods if last is None else panel.periods[-last:]
    offset = len(panel.periods) - len(periods)
    rows, columns = np.nonzero(~np.isnan(y))
    out: dict[str, Any] = {
        SERIES: np.asarray(panel.ids, dtype=object)[rows],
        PERIOD: periods[columns],
        TARGET: y[rows, columns],
    }
    for name, values in panel.known.items():
        out[name] = values[rows, columns + offset]
    for name in panel.series.columns.drop(SERIES):
        out[name] = panel.series[name].to_numpy()[rows]
    return pd.DataFrame(out)
