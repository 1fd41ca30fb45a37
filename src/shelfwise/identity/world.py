"""The Complete Journey's households as a retailer really sees them: scattered over systems.

The Complete Journey knows each household by its loyalty card only. A real retailer also has
the web shop, the CRM, the app, the e-mail list, support and returns, none sharing a key. This
module writes each household into those systems with the simulator (names, contact details
and realistic noise; the loyalty card number is the household's key, so the CRM and app
records that carry the card can be tied back to its baskets), adds their browsing sessions
(about 63% anonymous, on products each household really buys), and ingests both through the
data contract. The truth is kept so that identity resolution can be measured on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from shelfwise.datasets.complete_journey import SOURCE_SYSTEM
from shelfwise.simulate import fragment_customers, simulate_people, simulate_sessions
from shelfwise.workspace import Workspace

SEED = 2017
FAVOURITES = 20
FAVOURITES_HOLD_OUT_DAYS = 56  # eight weeks: every recommender backtest window and more


@dataclass(frozen=True)
class FragmentedWorld:
    """What was ingested, and who every record and event really is."""

    records: int
    events: int
    record_truth: pd.DataFrame  # source_system, source_id, person_id
    event_truth: pd.DataFrame  # event_id, person_id
    quarantined: int


def household_attributes(workspace: Workspace) -> pd.DataFrame:
    """Each loyalty-card household and its age band (which bounds the simulated birth date)."""
    frame: pd.DataFrame = workspace.analytic.frame(
        "SELECT source_id AS person_id, json_extract_string(attributes, '$.age') AS age "
        "FROM customer_records WHERE source_system = ? ORDER BY CAST(source_id AS INTEGER)",
        [SOURCE_SYSTEM],
    )
    return frame


def favourite_skus(workspace: Workspace) -> dict[str, list[str]]:
    """Each household's most bought products: what its sessions mostly look at.

    Counted on the orders before the last ``FAVOURITES_HOLD_OUT_DAYS`` of the data: sessions
    drawn from favourites that include the last weeks' purchases would tell a recommender,
    through its view features, what those weeks hold, and its backtests hold them out.
    """
    frame = workspace.analytic.frame(
        f"""SELECT customer_ref, list(sku ORDER BY n DESC, sku)[1:{FAVOURITES}] AS skus FROM (
              SELECT o.customer_ref, l.sku, count(*) AS n FROM orders AS o
              JOIN order_lines AS l USING (order_id) WHERE o.source_system = ?
                AND o.ordered_at < (SELECT max(ordered_at) FROM orders)
                    - INTERVAL {FAVOURITES_HOLD_OUT_DAYS} DAY
              GROUP BY ALL) GROUP BY ALL""",
        [SOURCE_SYSTEM],
    )
    return {str(k): list(v) for k, v in zip(frame["customer_ref"], frame["skus"], strict=True)}


def fragment_complete_journey(workspace: Workspace, seed: int = SEED) -> FragmentedWorld:
    """Simulate and ingest the households' other customer records and their sessions."""
    households = household_attributes(workspace)
    if households.empty:
        raise LookupError("no loyalty-card households in the workspace: load the data first")
    people = simulate_people(
        households["person_id"].tolist(), seed, attributes=households.dropna(subset=["age"])
    )
    # The household's card number is the Complete Journey's household key.
    people["loyalty_id"] = people["person_id"].astype("string")
    customers = fragment_customers(people, seed)
    favourites = favourite_skus(workspace)
    catalogue = sorted({sku for skus in favourites.values() for sku in skus})
    sessions = simulate_sessions(people, customers, seed, skus=catalogue, preferred_skus=favourites)
    record_report = workspace.ingest("customer_records", customers.records)
    event_report = workspace.ingest("events", sessions.events)
    card_truth = households[["person_id"]].assign(
        source_system=SOURCE_SYSTEM, source_id=households["person_id"]
    )
    record_truth = pd.concat(
        [customers.truth, card_truth[["source_system", "source_id", "person_id"]]],
        ignore_index=True,
    ).astype("string")
    return FragmentedWorld(
        records=len(customers.records) + len(households),
        events=len(sessions.events),
        record_truth=record_truth,
        event_truth=sessions.truth,
        quarantined=record_report.quarantined + event_report.quarantined,
    )
