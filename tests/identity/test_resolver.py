"""The resolver over a workspace: stable ids across runs, incremental links, review, rollback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from shelfwise.identity.resolver import IdentityResolver
from shelfwise.ops.states import RegistryState
from shelfwise.settings import Settings
from shelfwise.simulate import FragmentedCustomers, new_records
from shelfwise.workspace import Workspace


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace(settings)
    ws.init()
    yield ws
    ws.close()


def _load(workspace: Workspace, records: pd.DataFrame) -> None:
    report = workspace.ingest("customer_records", records)
    assert report.quarantined == 0, report.reasons


def test_runs_keep_ids_link_new_records_and_honour_reviews(
    workspace: Workspace, world: FragmentedCustomers, world_people: pd.DataFrame
) -> None:
    _load(workspace, world.records)
    resolver = IdentityResolver(workspace)
    first = resolver.resolve(truth=world.truth)
    assert first.kind == "full"
    assert first.records == len(world.records)
    assert first.metrics["cluster_precision"] >= 0.97
    assert first.model_version == "1"
    assert workspace.tracker.get_alias_version("identity", "champion") == "1"
    before = resolver.assignments().set_index("unique_id")["person_id"]
    person_map = workspace.analytic.frame("SELECT * FROM person_map")
    assert len(person_map) == len(world.records)

    # 1% new records: linked against the stored model and graph, no retraining.
    fresh = new_records(world_people, world, seed=4, share=0.01)
    _load(workspace, fresh.records)
    second = resolver.resolve()
    assert second.kind == "incremental"
    assert second.new_records == len(fresh.records)
    assert second.model_version == "1"
    after = resolver.assignments().set_index("unique_id")["person_id"]
    kept = after.reindex(before.index)
    moved = kept[kept != before]
    # An existing person keeps its id; only a merge into an older id may change one.
    merged = set(resolver.runs().iloc[-1:]["merges"]) != {0}
    assert moved.empty or merged, moved.head()
    joined = after[
        after.index.isin(fresh.records["source_system"] + ":" + fresh.records["source_id"])
    ]
    assert joined.isin(before).mean() > 0.5  # most new records join an existing person

    # A reviewer splits a linked pair; it stays split on every later run.
    links = resolver.links_of(str(before.index[0]))
    pair = resolver.model().accepted(resolver._chain_links(resolver.current_run()))
    left, right = pair.iloc[0]["unique_id_l"], pair.iloc[0]["unique_id_r"]
    assert after[left] == after[right]
    resolver.decide(left, right, "split", reviewer="ana", reason="different people")
    third = resolver.resolve()
    split = resolver.assignments().set_index("unique_id")["person_id"]
    assert split[left] != split[right]
    assert third.splits >= 1 or third.new_persons >= 1
    resolver.resolve()  # nothing new: the decision still holds
    again = resolver.assignments().set_index("unique_id")["person_id"]
    assert again[left] != again[right]
    assert links is not None

    explanation = resolver.explain(left, right)
    assert explanation["rule"] in {"email", "phone", "loyalty_id", "model"}

    # Roll the last run back: the run before it is current again.
    current = resolver.current_run()
    assert current is not None
    rolled = resolver.rollback()
    assert rolled["rolled_back"] == current["run_id"]
    assert resolver.current_run()["run_id"] == rolled["current"]  # type: ignore[index]


def test_a_retrain_registers_a_new_version_and_rollback_restores_the_champion(
    workspace: Workspace, world: FragmentedCustomers
) -> None:
    _load(workspace, world.records.head(1_200))
    resolver = IdentityResolver(workspace)
    resolver.resolve()
    ids = resolver.assignments().set_index("unique_id")["person_id"]
    retrained = resolver.resolve(retrain=True)
    assert retrained.model_version == "2"
    assert workspace.tracker.get_alias_version("identity", "champion") == "2"
    again = resolver.assignments().set_index("unique_id")["person_id"]
    # A new model links nearly the same way, and ids follow the previous run where it does.
    assert (again.reindex(ids.index) == ids).mean() > 0.95
    resolver.rollback()
    assert workspace.tracker.get_alias_version("identity", "champion") == "1"
    # Each move went through the registry, recorded with who and why, as for every model.
    moves = [
        (m["version"], m["from_state"], m["to_state"])
        for m in workspace.registry.history("identity")
    ]
    assert moves == [
        ("1", None, "candidate"),
        ("1", "candidate", "champion"),
        ("2", None, "candidate"),
        ("1", "champion", "archived"),
        ("2", "candidate", "champion"),
        ("2", "champion", "archived"),
        ("1", "archived", "champion"),
    ]
    assert workspace.registry.state("identity", "2") == RegistryState.ARCHIVED
    assert "rollback" in workspace.registry.history("identity")[-1]["reason"]


def test_decisions_are_checked(workspace: Workspace, world: FragmentedCustomers) -> None:
    _load(workspace, world.records.head(600))
    resolver = IdentityResolver(workspace, track=False)
    resolver.resolve()
    ids = resolver.assignments()["unique_id"]
    with pytest.raises(ValueError, match="confirm"):
        resolver.decide(ids.iloc[0], ids.iloc[1], "merge", reviewer="ana")
    with pytest.raises(ValueError, match="reviewer"):
        resolver.decide(ids.iloc[0], ids.iloc[1], "confirm", reviewer="")
    with pytest.raises(ValueError, match="unknown record"):
        resolver.decide("crm:nobody", ids.iloc[1], "confirm", reviewer="ana")


@pytest.mark.service
def test_runs_decisions_and_rollbacks_are_audited_on_postgres(
    tmp_path: Path, postgres_url: str, world: FragmentedCustomers
) -> None:
    from shelfwise.ops import AuditEntry

    ws = Workspace(Settings(workspace=tmp_path / "ws", operational_url=postgres_url))
    ws.init()
    try:
        _load(ws, world.records.head(800))
        resolver = IdentityResolver(ws, track=False, actor="nightly-job")
        resolver.resolve()
        ids = resolver.assignments()["unique_id"]
        resolver.decide(ids.iloc[0], ids.iloc[1], "split", reviewer="ana", reason="twins")
        resolver.resolve()
        resolver.rollback()
        with ws.operational.session() as session:
            entries = session.query(AuditEntry).order_by(AuditEntry.at).all()
        actions = [(e.actor, e.action) for e in entries]
        assert actions == [
            ("nightly-job", "identity.resolve"),
            ("ana", "identity.split"),
            ("nightly-job", "identity.resolve"),
            ("nightly-job", "identity.rollback"),
        ]
        assert entries[1].details["reason"] == "twins"
    finally:
        ws.close()
