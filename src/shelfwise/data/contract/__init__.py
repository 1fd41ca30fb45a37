"""The retail data contract: typed tables with their keys, limits and references."""

from __future__ import annotations

from shelfwise.data.contract._spec import Column, DType, RowRule, Table
from shelfwise.data.contract.tables import ALL_TABLES

TABLES: dict[str, Table] = {table.name: table for table in ALL_TABLES}


def get_table(name: str) -> Table:
    """The contract table called ``name``, or a ValueError that lists the known ones."""
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(TABLES)
        raise ValueError(f"unknown table {name!r}; the contract has: {known}") from None


__all__ = ["TABLES", "Column", "DType", "RowRule", "Table", "get_table"]
