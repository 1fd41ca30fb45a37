"""A contract check for mapped frames, run in DuckDB the way ingestion will see the rows."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pandas as pd
import pytest

from shelfwise.data.contract import get_table
from shelfwise.datasets._frames import CONTRACT_DTYPES

ContractCheck = Callable[[pd.DataFrame, str], None]


def check_contract(frame: pd.DataFrame, table: str) -> None:
    """Columns in contract order and dtypes, unique non-null keys, every limit and row rule."""
    spec = get_table(table)
    assert tuple(frame.columns) == spec.column_names
    for column in spec.columns:
        assert frame[column.name].dtype == CONTRACT_DTYPES[column.dtype], column.name
    assert not frame.duplicated(list(spec.key)).any(), f"{table}: duplicated keys"
    for name in spec.required_columns:
        assert frame[name].notna().all(), f"{table}.{name}: missing values"
    casts = ", ".join(f'CAST("{c.name}" AS {c.dtype.value}) AS "{c.name}"' for c in spec.columns)
    violations = []
    for column in spec.columns:
        name = f'"{column.name}"'
        if column.allowed is not None:
            allowed = ", ".join(f"'{value}'" for value in column.allowed)
            violations.append(f"{name} NOT IN ({allowed})")
        if column.minimum is not None:
            violations.append(
                f"{name} {'<=' if column.exclusive_minimum else '<'} {column.minimum}"
            )
        if column.maximum is not None:
            violations.append(f"{name} > {column.maximum}")
    violations.extend(f"({rule.violated})" for rule in spec.rules)
    with duckdb.connect() as con:
        con.register("mapped", frame)
        # Casting every JSON column to JSON also proves each value parses.
        typed = f"SELECT {casts} FROM mapped"
        ((rows,),) = con.execute(f"SELECT count(*) FROM ({typed})").fetchall()
        assert rows == len(frame)
        for condition in violations:
            sql = f"SELECT count(*) FROM ({typed}) WHERE {condition}"
            ((bad,),) = con.execute(sql).fetchall()
            assert bad == 0, f"{table}: {bad} rows violate {condition}"


@pytest.fixture(scope="session")
def contract_check() -> ContractCheck:
    return check_contract
