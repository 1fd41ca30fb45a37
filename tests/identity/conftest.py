"""A simulated world shared by the identity tests: fragmented customers and a model fitted once."""

from __future__ import annotations

import pandas as pd
import pytest

from shelfwise.identity.model import IdentityModel
from shelfwise.identity.settings import IdentitySettings
from shelfwise.simulate import FragmentedCustomers, fragment_customers, simulate_people

N_PERSONS = 1_500


@pytest.fixture(scope="session")
def world_people() -> pd.DataFrame:
    return simulate_people([str(1000 + i) for i in range(N_PERSONS)], seed=3)


@pytest.fixture(scope="session")
def world(world_people: pd.DataFrame) -> FragmentedCustomers:
    return fragment_customers(world_people, seed=3)


@pytest.fixture(scope="session")
def world_model(world: FragmentedCustomers) -> IdentityModel:
    return IdentityModel(IdentitySettings()).fit(world.records)


@pytest.fixture(scope="session")
def labelled_world(world: FragmentedCustomers) -> pd.DataFrame:
    """The records with their true person as ``entity_id`` (what ``evaluate`` scores against)."""
    truth = world.truth.rename(columns={"person_id": "entity_id"})
    return world.records.merge(truth, on=["source_system", "source_id"])
