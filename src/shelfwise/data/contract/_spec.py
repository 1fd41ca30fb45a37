"""The vocabulary of the retail data contract: columns, tables and row rules as plain data.

A table spec says what a row must look like; :mod:`shelfwise.data.validation` turns the spec
into SQL that splits any source into accepted and quarantined rows. Limits are written here as
data (a minimum, a set of allowed values, a reference to another table), never as scattered
``if`` statements in the ingest code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class DType(StrEnum):
    """Logical column types and their DuckDB storage type."""

    STRING = "VARCHAR"
    INTEGER = "BIGINT"
    FLOAT = "DOUBLE"
    BOOLEAN = "BOOLEAN"
    TIMESTAMP = "TIMESTAMP"
    DATE = "DATE"
    JSON = "JSON"


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    ``required`` rows without a value are quarantined; ``minimum``/``maximum`` bound numbers;
    ``allowed`` lists the permitted values of a categorical column; ``references`` names
    ``"table.column"`` that every non-null value must exist in (an unknown sku, say).
    """

    name: str
    dtype: DType
    required: bool = False
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    allowed: tuple[str, ...] | None = None
    references: str | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class RowRule:
    """A condition across columns, written in SQL over the typed columns of one row.

    ``violated`` is true for a bad row; ``message`` is the reason stored with it.
    """

    name: str
    violated: str
    message: str


@dataclass(frozen=True)
class Table:
    """A typed table of the contract.

    ``key`` identifies a row. On a key that is already stored, ``on_conflict="update"``
    replaces the stored row (dimensions such as products that change over time), while
    ``on_conflict="reject"`` quarantines a row that differs from the stored one (immutable facts
    such as events); an identical row is accepted and left as it is, so re-ingesting is
    idempotent either way.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    on_conflict: Literal["update", "reject"] = "reject"
    rules: tuple[RowRule, ...] = field(default_factory=tuple)
    time_column: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicated column names")
        missing = [k for k in self.key if k not in names]
        if missing:
            raise ValueError(f"table {self.name}: key columns {missing} are not columns")
        if self.time_column is not None and self.time_column not in names:
            raise ValueError(f"table {self.name}: time column {self.time_column} is not a column")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required or c.name in self.key)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name} has no column {name!r}")
