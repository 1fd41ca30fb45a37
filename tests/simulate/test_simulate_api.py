"""The public surface of shelfwise.simulate is small, importable and free of import-time work."""

from __future__ import annotations

import subprocess
import sys

import shelfwise.simulate as simulate

PUBLIC = {
    "ChurnConfig", "FragmentationConfig", "FragmentedCustomers", "LegacyCatalogue",
    "LegacyConfig", "MarketConfig", "MarketTruth", "PeopleConfig", "SessionConfig",
    "SimulatedChurn", "SimulatedMarket", "SimulatedSessions", "SourceSystem",
    "fragment_customers", "legacy_catalogue", "new_records", "simulate_churn",
    "simulate_market", "simulate_people", "simulate_sessions",
}  # fmt: skip


def test_all_lists_exactly_the_public_names() -> None:
    assert set(simulate.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(simulate, name) is not None


def test_importing_does_not_load_faker() -> None:
    code = "import sys, shelfwise.simulate; print('faker' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_an_empty_population_gives_empty_contract_frames() -> None:
    from shelfwise.data.contract import get_table

    people = simulate.simulate_people([], seed=1)
    customers = simulate.fragment_customers(people, seed=1)
    sessions = simulate.simulate_sessions(people, customers, seed=1)
    assert customers.records.empty
    assert sessions.events.empty
    assert tuple(customers.records.columns) == get_table("customer_records").column_names
    assert tuple(sessions.events.columns) == get_table("events").column_names
