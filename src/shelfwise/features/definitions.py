"""Feature definitions as code: named, versioned feature sets over entities.

A :class:`FeatureSet` names its entity and key columns, the stream of timestamped rows it
reads (a SQL query over the contract tables, see :mod:`shelfwise.features.retail`), and its
features:

- :class:`Aggregate`: a fold over the entity's rows strictly before the moment asked about
  (counts, sums, time-decayed sums, first and last times, latest values, windowed sums,
  per-session sums that reset after an inactivity gap);
- :class:`Attribute`: a current property of the entity (a product's department, a person's
  income band), for sets without time (``static``);
- :class:`Derived`: arithmetic over the set's other features (a ratio, a difference), with a
  documented default where the arithmetic has no answer (a division by zero).

A set's ``version`` is a hash of its whole definition, stream SQL included: change anything and
the version changes, so a model trained on one version refuses vectors of another.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

AggregateKind = Literal[
    "count",  # how many rows (matching ``where``)
    "sum",  # sum of ``value``
    "decayed",  # sum of ``value`` weighted 2^(-age / half-life), age measured at the moment asked
    "first",  # days since the first matching row
    "last",  # days since the latest matching row
    "latest",  # the latest non-null ``value``
    "max",  # the largest ``value``
    "window",  # sum of ``value`` over the ``window_days`` before the moment (batch sets only)
    "active",  # the latest row's ``value`` while the moment is before its ``until``, else 0
    "session",  # sum of ``value`` in the current session (0 once the session has ended)
    "sessions",  # how many sessions (by inactivity gap) so far
    "session_seconds",  # seconds since the current session started (0 when none is active)
]
AttributeKind = Literal["number", "category", "days_since"]
Entity = Literal[
    "person", "product", "person_product", "person_category", "person_brand", "store", "session"
]
ENTITY_KEYS: dict[str, tuple[str, ...]] = {
    "person": ("person_id",),
    "product": ("sku",),
    "person_product": ("person_id", "sku"),
    "person_category": ("person_id", "category"),
    "person_brand": ("person_id", "brand"),
    "store": ("store_id",),
    "session": ("actor_id",),
}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Kinds whose state needs the session bookkeeping (an inactivity gap).
SESSION_KINDS = ("session", "sessions", "session_seconds")
# Kinds that count from zero: an entity with no rows yet has 0, not "unknown".
ZERO_KINDS = ("count", "sum", "decayed", "window", "active", *SESSION_KINDS)


FEATURE_VERSIONS = "feature_versions"  # DataFrame.attrs key: the set versions a frame holds


class FeatureVersionError(ValueError):
    """Features of another definition than the one a model was trained on."""


@dataclass(frozen=True)
class Aggregate:
    """A fold over an entity's rows before the moment asked about."""

    name: str
    kind: AggregateKind
    value: str = "1"  # SQL over the stream's columns: what each row contributes
    where: str | None = None  # SQL filter: rows that contribute
    half_life_days: float | None = None  # decayed
    window_days: float | None = None  # window
    until: str | None = None  # active: SQL giving the end of the row's validity
    default: float | None = None  # for an entity with no rows; None: 0 or NaN by kind
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        if (self.kind == "decayed") != (self.half_life_days is not None):
            raise ValueError(f"{self.name}: half_life_days is for (and required by) decayed")
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise ValueError(f"{self.name}: half_life_days must be > 0")
        if (self.kind == "window") != (self.window_days is not None):
            raise ValueError(f"{self.name}: window_days is for (and required by) window")
        if self.window_days is not None and not self.window_days > 0:
            raise ValueError(f"{self.name}: window_days must be > 0")
        if (self.kind == "active") != (self.until is not None):
            raise ValueError(f"{self.name}: until is for (and required by) active")

    @property
    def missing_value(self) -> float:
        """What an entity with no rows before the moment gets."""
        if self.default is not None:
            return self.default
        return 0.0 if self.kind in ZERO_KINDS else math.nan


@dataclass(frozen=True)
class Attribute:
    """A current property of an entity, read from a static set's source."""

    name: str
    kind: AttributeKind
    expression: str  # SQL over the source's columns
    default: float | None = None  # numbers: for NULL (None: NaN, which LightGBM reads as missing)
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)


FORMULA_FUNCTIONS = {
    "coalesce": lambda a, b: np.where(np.isnan(a), b, a),
    "minimum": np.minimum,
    "maximum": np.maximum,
    "log1p": np.log1p,
}


@dataclass(frozen=True)
class Derived:
    """Arithmetic over features: ``+ - * /``, numbers, feature names and
    ``coalesce(a, b)``, ``minimum``, ``maximum``, ``log1p``. Where the result is not a finite
    number (a division by zero, a NaN input) the feature is ``default``."""

    name: str
    formula: str
    default: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        _parse_formula(self.formula)

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        tree = _parse_formula(self.formula)
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        return tuple(sorted(names - set(FORMULA_FUNCTIONS)))

    def evaluate(self, columns: dict[str, NDArray[Any]]) -> NDArray[np.float64]:
        code = _compiled(self.formula)
        scope: dict[str, Any] = {name: columns[name] for name in self.inputs}
        scope.update(FORMULA_FUNCTIONS)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            result = np.asarray(eval(code, {"__builtins__": {}}, scope), dtype=np.float64)
        return np.where(np.isfinite(result), result, self.default)


_COMPILED: dict[str, Any] = {}
_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub,
    ast.UAdd, ast.Name, ast.Load, ast.Constant, ast.Call,
)  # fmt: skip


def _parse_formula(formula: str) -> ast.Expression:
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"formula {formula!r}: {error.msg}") from error
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"formula {formula!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise ValueError(f"formula {formula!r}: only numbers are allowed as constants")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in FORMULA_FUNCTIONS
        ):
            raise ValueError(
                f"formula {formula!r}: only {', '.join(FORMULA_FUNCTIONS)} may be called"
            )
    return tree


def _compiled(formula: str) -> Any:
    if formula not in _COMPILED:
        _COMPILED[formula] = compile(_parse_formula(formula), "<formula>", "eval")
    return _COMPILED[formula]


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise ValueError(f"feature name {name!r}: use lower case letters, digits and _")


@dataclass(frozen=True)
class FeatureSet:
    """Features of one entity, from one stream, with one version."""

    name: str
    entity: Entity
    stream: str  # SQL: key columns, ``event_at`` (not for static sets) and what features read
    aggregates: tuple[Aggregate, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    derived: tuple[Derived, ...] = ()
    streaming: bool = False  # updated by each ingested event, not only by materialisation
    freshness_target_seconds: float = 86_400.0
    session_gap_minutes: float | None = None
    description: str = ""
    keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "keys", ENTITY_KEYS[self.entity])
        if self.aggregates and self.attributes:
            raise ValueError(
                f"{self.name}: a set has aggregates (over time) or attributes, not both"
            )
        kinds = {a.kind for a in self.aggregates}
        if kinds & set(SESSION_KINDS) and self.session_gap_minutes is None:
            raise ValueError(f"{self.name}: session features need session_gap_minutes")
        if self.streaming and kinds & {"window", "active"}:
            raise ValueError(
                f"{self.name}: window and active features change with the clock, not with "
                "events; put them in a batch (materialised) set"
            )
        names = self._names()
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"{self.name}: features named twice: {duplicated}")
        known = set(names[: len(names) - len(self.derived)])
        for derived in self.derived:
            unknown = set(derived.inputs) - known
            if unknown:
                raise ValueError(f"{self.name}.{derived.name}: unknown inputs {sorted(unknown)}")
            known.add(derived.name)

    @property
    def static(self) -> bool:
        """A set of current attributes, without time."""
        return bool(self.attributes)

    @property
    def kind(self) -> Literal["static", "streaming", "batch"]:
        """Static attributes, states updated by each event, or states materialised in batch."""
        if self.static:
            return "static"
        return "streaming" if self.streaming else "batch"

    @property
    def missing_indicator(self) -> str:
        return f"{self.name}_missing"

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        """The columns this set adds to a frame, in order."""
        return (*self._names(), self.missing_indicator)

    def _names(self) -> list[str]:
        return [
            *(a.name for a in self.aggregates),
            *(a.name for a in self.attributes),
            *(d.name for d in self.derived),
        ]

    @cached_property
    def categorical(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes if a.kind == "category")

    @cached_property
    def state_columns(self) -> tuple[str, ...]:
        """What the online store keeps per entity (all numbers), in order."""
        if self.static:
            return tuple(a.name for a in self.attributes)
        columns = ["_last_at", *(a.name for a in self.aggregates)]
        columns.extend(f"_until_{a.name}" for a in self.aggregates if a.kind == "active")
        return tuple(columns)

    def definition(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("description")
        data.pop("freshness_target_seconds")
        for group in ("aggregates", "attributes", "derived"):
            for item in data[group]:
                item.pop("description")
        data["stream"] = " ".join(self.stream.split())
        return data

    @cached_property
    def version(self) -> str:
        """A hash of the definition (descriptions and freshness targets aside)."""
        text = json.dumps(self.definition(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_versions(expected: dict[str, str], actual: dict[str, str], *, where: str) -> None:
    """Refuse features whose set versions differ from those a model was trained on."""
    problems = []
    if not actual:
        raise FeatureVersionError(
            f"{where}: the model was trained on feature sets "
            + ", ".join(f"{k}@{v}" for k, v in sorted(expected.items()))
            + " but the input carries no feature versions; build it with the feature store"
        )
    for name, version in sorted(expected.items()):
        seen = actual.get(name)
        if seen is None:
            problems.append(f"{name}: missing (trained on version {version})")
        elif seen != version:
            problems.append(f"{name}: version {seen}, trained on {version}")
    if problems:
        raise FeatureVersionError(
            f"{where}: features of another definition than the model was trained on; "
            + "; ".join(problems)
            + ". Retrain the model or materialise the feature sets it was trained on."
        )
