"""Demand forecasting: weekly (or monthly) demand per product, or per product and store.

:class:`DemandForecaster` is the family the lifecycle governs (MAE is its primary metric); the
demand it learns from is read from the contract tables by :mod:`shelfwise.forecast.demand`.
"""

from __future__ import annotations

from shelfwise.forecast.model import DemandForecaster, ForecasterSettings

__all__ = ["DemandForecaster", "ForecasterSettings"]
