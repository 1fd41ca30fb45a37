"""A retail world with known ground truth, deterministic by seed, for tests of correctness.

Who each customer record really is, which events a person made, the true price elasticities and
promotion lifts behind the sales, the true churn hazards: each simulator returns contract frames
and the truth they were drawn from. No accuracy claim rests on simulated data alone.

- :func:`simulate_people` -> true persons; :func:`fragment_customers` scatters them over source
  systems with realistic noise and garbage identifiers; :func:`new_records` adds fresh ones;
- :func:`simulate_sessions` -> web and app events, most of them anonymous;
- :func:`legacy_catalogue` -> the catalogue under old skus, for product matching;
- :func:`simulate_market` -> prices, promotions and sales with known causal effects;
- :func:`simulate_churn` -> customers, their orders and their known churn hazards.
"""

from __future__ import annotations

from shelfwise.simulate.catalogue import LegacyCatalogue, LegacyConfig, legacy_catalogue
from shelfwise.simulate.churn import ChurnConfig, SimulatedChurn, simulate_churn
from shelfwise.simulate.fragmentation import FragmentedCustomers, fragment_customers, new_records
from shelfwise.simulate.market import MarketConfig, MarketTruth, SimulatedMarket, simulate_market
from shelfwise.simulate.people import PeopleConfig, simulate_people
from shelfwise.simulate.sessions import SessionConfig, SimulatedSessions, simulate_sessions
from shelfwise.simulate.sources import FragmentationConfig, SourceSystem

__all__ = [
    "ChurnConfig",
    "FragmentationConfig",
    "FragmentedCustomers",
    "LegacyCatalogue",
    "LegacyConfig",
    "MarketConfig",
    "MarketTruth",
    "PeopleConfig",
    "SessionConfig",
    "SimulatedChurn",
    "SimulatedMarket",
    "SimulatedSessions",
    "SourceSystem",
    "fragment_customers",
    "legacy_catalogue",
    "new_records",
    "simulate_churn",
    "simulate_market",
    "simulate_people",
    "simulate_sessions",
]
