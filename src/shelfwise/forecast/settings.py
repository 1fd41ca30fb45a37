"""The demand forecaster's settings: the grain and horizon, its inputs, tiers, intervals,
validation and the boosters' hyper-parameters, with their limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shelfwise.forecast.panel import FREQUENCIES
from shelfwise.models.settings import Constraints, EstimatorSettings, Interval, Options

MIN_VALIDATION = 4


@dataclass(frozen=True)
class ForecasterSettings(EstimatorSettings):
    freq: str = "W-MON"
    horizon: int = 4
    known: tuple[str, ...] = ("display_stores", "mailer_stores")
    static: tuple[str, ...] = ("department", "category")
    tier_by: str | None = "department"
    tier_min_series: int = 25
    tier_min_gain: float = 0.02
    interval_level: float = 0.8
    validation_origins: int | None = None  # None: a quarter of the history, 4 to a season
    min_history: int = 3
    start_at_first_sale: bool = True
    # A known covariate with no row is 0 (no promotion row: not promoted); False: unknown.
    absent_known_is_zero: bool = True
    rounds: int = 500
    learning_rate: float = 0.03
    leaves: int = 31
    min_leaf: int = 50
    seed: int = 0
    # Seasons after which a training row counts half (None: every origin counts the same):
    # demand drifts, and last year's weeks say less about next week than last month's.
    recency_half_life_seasons: float | None = 1.0
    # One thread fits steadily on a shared machine; OpenMP's default (every core) stalls there.
    threads: int = 1

    @property
    def min_periods(self) -> int:
        """The fewest periods a fit needs: history, validation origins and the horizon."""
        return self.min_history + self.horizon + (self.validation_origins or MIN_VALIDATION) + 1

    constraints: ClassVar[Constraints] = {
        "freq": (Options(tuple(FREQUENCIES)),),
        "horizon": (Interval(1, 104, integer=True),),
        "known": (tuple,),
        "static": (tuple,),
        "tier_by": (None, str),
        "tier_min_series": (Interval(2, None, integer=True),),
        "tier_min_gain": (Interval(0, 1),),
        "interval_level": (Interval(0, 1, "neither"),),
        "validation_origins": (None, Interval(1, None, integer=True)),
        "min_history": (Interval(1, None, integer=True),),
        "start_at_first_sale": (bool,),
        "absent_known_is_zero": (bool,),
        "rounds": (Interval(1, None, integer=True),),
        "learning_rate": (Interval(0, 1, "right"),),
        "leaves": (Interval(2, None, integer=True),),
        "min_leaf": (Interval(1, None, integer=True),),
        "seed": (int,),
        "recency_half_life_seasons": (None, Interval(0, None, "neither")),
        "threads": (Interval(1, None, integer=True),),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tier_by is not None and self.tier_by not in self.static:
            raise ValueError(f"tier_by {self.tier_by!r} must be one of static {self.static}")
