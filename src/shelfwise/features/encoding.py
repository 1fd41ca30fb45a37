"""Categorical columns as numbers, the encoding of each chosen by how many values it holds.

A column with few values (at most ``one_hot_max`` once rare ones are folded) becomes one-hot
columns ``<col>=<value>``; a column with many becomes two: ``<col>__code``, an integer code
meant for LightGBM's ``categorical_feature``, and ``<col>__frequency``, the share of training
rows holding the value. Every encoded column also gets ``<col>__missing``, so that a missing
value is never silently dropped. The same fitted encoder turns the training frame and each
serving frame into the same columns, and round-trips through JSON.

Values are compared as strings (``str(value)``), except that a whole float is written as an
integer ("3", not "3.0"): an integer column that gains a missing value turns float in pandas,
and its values must still match the ones seen in training. None, NaN, ``pd.NA`` and strings
that are blank after stripping are all missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal, Self, cast, get_args

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.models.base import NotFittedError
from shelfwise.models.settings import Constraints, EstimatorSettings, Interval

OTHER = "__other__"
MISSING = "__missing__"
Encoding = Literal["one_hot", "code"]

# Floats beyond 2**53 are not all whole numbers that int64 can hold exactly.
_LARGEST_EXACT_INTEGER = 2.0**53


@dataclass(frozen=True)
class EncoderSettings(EstimatorSettings):
    """``one_hot_max``: a column with at most this many values (counting ``__other__``, not
    missing) is one-hot encoded, else coded. ``min_frequency``: values seen in fewer training
    rows are folded into ``__other__``. ``max_categories``: beyond this many values, the least
    frequent are folded into ``__other__`` too."""

    one_hot_max: int = 12
    min_frequency: int = 5
    max_categories: int = 1000

    constraints: ClassVar[Constraints] = {
        "one_hot_max": (Interval(0, None, integer=True),),
        "min_frequency": (Interval(1, None, integer=True),),
        "max_categories": (Interval(1, None, integer=True),),
    }


@dataclass(frozen=True)
class ColumnPlan:
    """What the encoder learned about one column.

    ``values`` are the kept values, by descending training count then value, with their
    ``counts``; ``other_count`` training rows held a value folded into ``__other__`` and
    ``missing_count`` a missing one, out of ``rows``. ``cardinality`` is the number of
    distinct values (missing aside) seen in training, before folding.
    """

    name: str
    encoding: Encoding
    values: tuple[str, ...]
    counts: tuple[int, ...]
    other_count: int
    missing_count: int
    rows: int
    cardinality: int

    def __post_init__(self) -> None:
        if self.encoding not in get_args(Encoding):
            raise ValueError(f"column {self.name!r}: unknown encoding {self.encoding!r}")
        if len(self.values) != len(self.counts) or len(set(self.values)) != len(self.values):
            raise ValueError(f"column {self.name!r}: values and counts do not match one to one")
        if sum(self.counts) + self.other_count + self.missing_count != self.rows:
            raise ValueError(f"column {self.name!r}: counts do not add up to {self.rows} rows")

    @property
    def folded(self) -> bool:
        """Were some training values folded into ``__other__``?"""
        return self.other_count > 0

    @property
    def output_columns(self) -> tuple[str, ...]:
        if self.encoding == "code":
            return (f"{self.name}__code", f"{self.name}__frequency", f"{self.name}__missing")
        other = (f"{self.name}={OTHER}",) if self.folded else ()
        return (*(f"{self.name}={value}" for value in self.values), *other, f"{self.name}__missing")

    @cached_property
    def _lookup(self) -> pd.Index:
        # Built once per plan: serving encodes many small frames with the same plan.
        return pd.Index(self.values, dtype=object)

    @cached_property
    def _shares(self) -> NDArray[np.float64]:
        """Training share of each kept value, then of ``__other__`` (the code ``n``)."""
        return np.array([*self.counts, self.other_count], dtype=np.float64) / self.rows

    def encode(self, values: pd.Series[Any]) -> pd.DataFrame:
        """This column's output columns for ``values``, on the same index."""
        text, missing = _as_text(values)
        position = self._lookup.get_indexer(pd.Index(text, dtype=object))
        unseen = position < 0
        if self.encoding == "code":
            position[unseen] = len(self.values)
            code = position.astype(np.float64)
            frequency = self._shares[position]
            code[missing] = np.nan
            frequency[missing] = self.missing_count / self.rows
            names = self.output_columns
            block = {
                names[0]: code,
                names[1]: frequency,
                names[2]: missing.astype(np.float32),
            }
            return pd.DataFrame(block, index=values.index)
        width = len(self.output_columns)
        position[unseen] = len(self.values) if self.folded else -1
        position[missing] = width - 1
        matrix = np.zeros((len(position), width), dtype=np.float32)
        hit = position >= 0
        matrix[np.flatnonzero(hit), position[hit]] = 1.0
        return pd.DataFrame(matrix, index=values.index, columns=list(self.output_columns))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "encoding": self.encoding,
            "values": list(self.values),
            "counts": list(self.counts),
            "other_count": self.other_count,
            "missing_count": self.missing_count,
            "rows": self.rows,
            "cardinality": self.cardinality,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnPlan:
        return cls(
            name=str(data["name"]),
            encoding=cast(Encoding, data["encoding"]),
            values=tuple(str(value) for value in data["values"]),
            counts=tuple(int(count) for count in data["counts"]),
            other_count=int(data["other_count"]),
            missing_count=int(data["missing_count"]),
            rows=int(data["rows"]),
            cardinality=int(data["cardinality"]),
        )


def _as_text(values: pd.Series[Any]) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
    """Each value as a string, and which are missing (their text is then None)."""
    missing = values.isna().to_numpy(dtype=bool)
    text = values.astype(str).to_numpy(dtype=object)
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = (
                ~missing
                & (np.abs(numbers) < _LARGEST_EXACT_INTEGER)
                & (numbers == np.round(numbers))
            )
        text[whole] = numbers[whole].astype(np.int64).astype(str).astype(object)
    blank = pd.Series(text, dtype=object).str.strip().eq("").to_numpy(dtype=bool)
    missing |= blank
    text[missing] = None
    return text, missing


class CategoricalEncoder:
    """One-hot or code-and-frequency encoding per column, chosen by the column's cardinality.

    ``fit`` learns a :class:`ColumnPlan` per named column (in ``plans_``); ``transform``
    replaces each fitted column, in its place, by its numeric output columns and passes every
    other column through unchanged. What ``transform`` does to one value:

    - one-hot: a kept value sets its ``<col>=<value>`` column to 1; a value folded or unseen
      in training sets ``<col>=__other__`` if training folded some values, else nothing.
    - code: ``<col>__code`` is the value's rank by descending training count (then value),
      ``n`` for ``__other__`` and unseen values, NaN for missing, so that LightGBM treats it
      as missing; pass the column in ``categorical_feature``. ``<col>__frequency`` is the
      training share of the value, of ``__other__`` for unseen ones, of missing for missing.
    - both: ``<col>__missing`` is 1 for a missing value.
    """

    def __init__(self, settings: EncoderSettings | None = None) -> None:
        self.settings = settings if settings is not None else EncoderSettings()

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "plans_")

    def fit(self, frame: pd.DataFrame, columns: Sequence[str]) -> Self:
        if isinstance(columns, str):
            raise TypeError(f"columns must be a sequence of names, not the string {columns!r}")
        _check_columns(frame, columns, "fit")
        if len(set(columns)) != len(columns):
            raise ValueError(f"fit: columns named more than once: {list(columns)}")
        if len(frame) == 0:
            raise ValueError("fit: the frame has no rows")
        self.plans_ = {name: self._plan(name, frame[name]) for name in columns}
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        plans = self._fitted_plans()
        _check_columns(frame, list(plans), "transform")
        names = [
            output
            for column in frame.columns
            for output in (plans[column].output_columns if column in plans else (column,))
        ]
        if len(set(names)) != len(names):
            clashes = sorted({str(name) for name in names if names.count(name) > 1})
            raise ValueError(f"transform: output columns would clash: {clashes}")
        pieces: list[pd.DataFrame] = []
        passthrough: list[int] = []
        for position, column in enumerate(frame.columns):
            if column not in plans:
                passthrough.append(position)
                continue
            if passthrough:
                pieces.append(frame.iloc[:, passthrough])
                passthrough = []
            pieces.append(plans[column].encode(frame[column]))
        if passthrough:
            pieces.append(frame.iloc[:, passthrough])
        if not pieces:
            return frame.copy()
        return pd.concat(pieces, axis=1)

    def fit_transform(self, frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        return self.fit(frame, columns).transform(frame)

    def describe(self) -> list[dict[str, Any]]:
        """Per fitted column: its name, cardinality seen, encoding chosen and output columns."""
        return [
            {
                "name": plan.name,
                "cardinality": plan.cardinality,
                "encoding": plan.encoding,
                "output_columns": list(plan.output_columns),
            }
            for plan in self._fitted_plans().values()
        ]

    def to_dict(self) -> dict[str, Any]:
        """Settings and plans as plain values, ready for JSON."""
        return {
            "settings": self.settings.to_dict(),
            "plans": [plan.to_dict() for plan in self._fitted_plans().values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalEncoder:
        """The inverse of :meth:`to_dict`: a fitted encoder."""
        unknown = set(data) - {"settings", "plans"}
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
        encoder = cls(EncoderSettings.from_dict(data["settings"]))
        plans = [ColumnPlan.from_dict(plan) for plan in data["plans"]]
        encoder.plans_ = {plan.name: plan for plan in plans}
        return encoder

    def _fitted_plans(self) -> dict[str, ColumnPlan]:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit first")
        return self.plans_

    def _plan(self, name: str, values: pd.Series[Any]) -> ColumnPlan:
        text, missing = _as_text(values)
        counted = pd.Series(text[~missing], dtype=object).value_counts(sort=False)
        reserved = sorted({OTHER, MISSING} & set(counted.index))
        if reserved:
            raise ValueError(f"fit: column {name!r} holds the reserved values {reserved}")
        ranked = sorted(
            ((str(value), int(count)) for value, count in counted.items()),
            key=lambda pair: (-pair[1], pair[0]),
        )
        frequent = [pair for pair in ranked if pair[1] >= self.settings.min_frequency]
        kept = frequent[: self.settings.max_categories]
        missing_count = int(missing.sum())
        other_count = len(values) - missing_count - sum(count for _, count in kept)
        levels = len(kept) + (other_count > 0)
        return ColumnPlan(
            name=name,
            encoding="one_hot" if levels <= self.settings.one_hot_max else "code",
            values=tuple(value for value, _ in kept),
            counts=tuple(count for _, count in kept),
            other_count=other_count,
            missing_count=missing_count,
            rows=len(values),
            cardinality=len(ranked),
        )


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], verb: str) -> None:
    if not frame.columns.is_unique:
        raise ValueError(f"{verb}: the frame has duplicate column names: {list(frame.columns)}")
    absent = [name for name in columns if name not in frame.columns]
    if absent:
        raise ValueError(
            f"{verb}: column(s) {absent} not in the frame, whose columns are {list(frame.columns)}"
        )
