"""The declarative base of the operational tables and the column types they share."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DEFAULT_TENANT = "default"

# Constraint names are spelled out so that migrations can drop or alter them by name on
# PostgreSQL; indexes are named by hand in each table.
NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the instant is stored as
    naive UTC and the zone is put back when read. Naive datetimes are refused rather than
    guessed at: a local wall-clock time stored as UTC would shift every window by hours.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone-aware time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def render_storage_type(kind: str, item: object, _context: object) -> str | Literal[False]:
    """Autogenerate hook: write a UtcDateTime column into a migration as its storage type.

    The UTC conversion lives in Python only; a migration that named the decorator would tie
    history to this module and fail to import in a generated revision.
    """
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


class Base(DeclarativeBase):
    """Declarative base of the operational tables; its metadata is the migrations' target."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    # Mutable wrappers so that `run.metrics["mape"] = 0.1` is seen by the session, not lost.
    type_annotation_map = {  # noqa: RUF012 (read by SQLAlchemy, never mutated)
        datetime: UtcDateTime(),
        dict[str, Any]: MutableDict.as_mutable(sa.JSON()),
        list[str]: MutableList.as_mutable(sa.JSON()),
    }


class OperationalRecord(Base):
    """Columns every operational table has: a surrogate key and the tenant it belongs to."""

    __abstract__ = True

    # 64-bit on PostgreSQL, where shadow predictions and the audit log grow without bound;
    # SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, sort_order=-2
    )
    tenant: Mapped[str] = mapped_column(
        sa.String(64), default=DEFAULT_TENANT, server_default=DEFAULT_TENANT, sort_order=-1
    )


def one_of(column: str, states: type[StrEnum]) -> sa.CheckConstraint:
    """A CHECK constraint that keeps ``column`` within a closed set of states.

    The enum rides along in ``info`` so that tests can hold every closed set to its constraint.
    """
    allowed = ", ".join(f"'{state.value}'" for state in states)
    return sa.CheckConstraint(
        f"{column} IN ({allowed})", name=column, info={"column": column, "states": states}
    )
