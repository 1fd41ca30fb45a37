"""Hyper-parameters as frozen dataclasses whose limits are data, checked once by the base.

A family writes its settings as a frozen dataclass deriving from :class:`EstimatorSettings`
and lists, per field, the values it accepts (as scikit-learn's ``_parameter_constraints``)::

    @dataclass(frozen=True)
    class PopularitySettings(EstimatorSettings):
        half_life_days: float | None = None
        constraints: ClassVar[Constraints] = {"half_life_days": (None, Interval(0, None, "right"))}

An alternative is ``None``, a type (``bool``, ``int``, ``float``, ``str``), an
:class:`Interval` or an :class:`Options`. Settings round-trip through JSON: JSON arrays come
back as tuples, the one immutable sequence a frozen dataclass should hold.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self


@dataclass(frozen=True)
class Interval:
    """Numbers between ``low`` and ``high`` (None: unbounded); ``closed`` says which ends count."""

    low: float | None = None
    high: float | None = None
    closed: Literal["both", "left", "right", "neither"] = "both"
    integer: bool = False

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if math.isnan(value):
            return False
        low_open = self.closed in ("right", "neither")
        high_open = self.closed in ("left", "neither")
        if self.low is not None and (value < self.low or (value == self.low and low_open)):
            return False
        return self.high is None or not (value > self.high or (value == self.high and high_open))

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        kind = "an integer" if self.integer else "a number"
        return f"{kind} in {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Options:
    """One of a closed set of values."""

    values: tuple[object, ...]

    def accepts(self, value: object) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


Alternative = None | type | Interval | Options
Constraints = Mapping[str, tuple[Alternative, ...]]


def _accepts(alternative: Alternative, value: object) -> bool:
    if alternative is None:
        return value is None
    if isinstance(alternative, type):
        # bool is an int to Python, never to a hyper-parameter; an int is a fine float.
        if alternative is not bool and isinstance(value, bool):
            return False
        if alternative is float:
            return isinstance(value, int | float)
        return isinstance(value, alternative)
    return alternative.accepts(value)


def _describe(alternative: Alternative) -> str:
    if alternative is None:
        return "None"
    if isinstance(alternative, type):
        return alternative.__name__
    return str(alternative)


@dataclass(frozen=True)
class EstimatorSettings:
    """Base of every family's settings: checks ``constraints`` on construction."""

    constraints: ClassVar[Constraints] = {}

    def __post_init__(self) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(self.constraints) - names
        if unknown:
            raise TypeError(f"{type(self).__name__}.constraints names no field: {sorted(unknown)}")
        for name, alternatives in self.constraints.items():
            value = getattr(self, name)
            if not any(_accepts(alternative, value) for alternative in alternatives):
                expected = " or ".join(_describe(a) for a in alternatives)
                raise ValueError(f"{type(self).__name__}.{name}={value!r}: expected {expected}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, ready for JSON and for MLflow params."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """The inverse of :meth:`to_dict`; unknown names are refused rather than dropped."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown settings {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
