"""Simulated worlds shared by the simulator tests: built once per session, on fixed seeds."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from shelfwise.simulate import (
    FragmentedCustomers,
    SimulatedSessions,
    fragment_customers,
    simulate_people,
    simulate_sessions,
)

# The Complete Journey's number of households.
N_PERSONS = 2_469
# Enough records that a 3% noise rate is measured to a fraction of a percent.
N_LARGE = 20_000


def person_ids(n: int) -> list[str]:
    return [str(1000 + i) for i in range(n)]


@pytest.fixture(scope="session")
def people() -> pd.DataFrame:
    return simulate_people(person_ids(N_PERSONS), seed=7)


@pytest.fixture(scope="session")
def customers(people: pd.DataFrame) -> FragmentedCustomers:
    return fragment_customers(people, seed=7)


@pytest.fixture(scope="session")
def sessions(people: pd.DataFrame, customers: FragmentedCustomers) -> SimulatedSessions:
    return simulate_sessions(people, customers, seed=7)


@pytest.fixture(scope="session")
def large_people() -> pd.DataFrame:
    return simulate_people(person_ids(N_LARGE), seed=11)


@pytest.fixture(scope="session")
def large_customers(large_people: pd.DataFrame) -> FragmentedCustomers:
    return fragment_customers(large_people, seed=11)


def check_contract(frame: pd.DataFrame, table: str) -> None:
    """Exactly the contract's columns in its order, typed as the contract says, keys unique."""
    from shelfwise.data.contract import DType, get_table

    spec = get_table(table)
    assert tuple(frame.columns) == spec.column_names
    assert not frame.duplicated(list(spec.key)).any()
    for column in spec.columns:
        dtype = frame[column.name].dtype
        if column.dtype in (DType.STRING, DType.JSON):
            assert pd.api.types.is_string_dtype(dtype), (column.name, dtype)
        elif column.dtype in (DType.TIMESTAMP, DType.DATE):
            assert dtype == "datetime64[ns]", (column.name, dtype)
        elif column.dtype is DType.FLOAT:
            assert dtype == "float64", (column.name, dtype)
        if column.dtype is DType.DATE:
            dates = frame[column.name].dropna()
            assert (dates == dates.dt.normalize()).all(), column.name
        if column.allowed is not None:
            assert frame[column.name].dropna().isin(column.allowed).all(), column.name
        if column.minimum is not None:
            assert (frame[column.name].dropna() >= column.minimum).all(), column.name


ContractCheck = Callable[[pd.DataFrame, str], None]


@pytest.fixture(scope="session")
def assert_contract() -> ContractCheck:
    return check_contract
