"""Registry states with their history, on SQLite and PostgreSQL: every move recorded, the
champion replaced and rolled back, two promotions at once leaving one champion."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
import sqlalchemy as sa

from shelfwise.lifecycle import ModelRegistry, TransitionRefused
from shelfwise.models.base import Evaluation
from shelfwise.ops import AuditEntry, OperationalDatabase
from shelfwise.ops.states import RegistryState
from shelfwise.recommend.popularity import PopularityRecommender
from shelfwise.tracking import Tracker

CHAMPION, CHALLENGER = RegistryState.CHAMPION, RegistryState.CHALLENGER
NAME = "demo"


@pytest.fixture
def registry(tracker: Tracker, migrated: OperationalDatabase) -> ModelRegistry:
    return ModelRegistry(tracker, migrated)


def _version(registry: ModelRegistry, ndcg: float) -> str:
    log = pd.DataFrame(
        {
            "person_id": ["a", "b", "b"],
            "sku": ["x", "x", "y"],
            "occurred_at": pd.to_datetime(["2024-01-01"] * 3),
        }
    )
    model = PopularityRecommender().fit(log)
    record = registry.tracker.log_training(
        model, experiment=NAME, metrics=Evaluation({"ndcg@10": ndcg}, "ndcg@10", True)
    )
    return registry.register(NAME, record, actor="trainer", reason="weekly retrain")


def test_every_move_is_recorded_with_who_why_and_metrics(registry: ModelRegistry) -> None:
    first = _version(registry, 0.30)
    assert registry.state(NAME, first) == RegistryState.CANDIDATE
    registry.transition(NAME, first, CHAMPION, actor="ana", reason="first", metrics={"m": 1})
    second = _version(registry, 0.33)
    registry.transition(NAME, second, CHALLENGER, actor="policy", reason="shadow it")
    registry.transition(NAME, second, CHAMPION, actor="ana", reason="10% better")
    tracker = registry.tracker
    assert tracker.get_alias_version(NAME, "champion") == second
    assert tracker.get_alias_version(NAME, "challenger") is None
    assert registry.state(NAME, first) == RegistryState.ARCHIVED
    moves = [
        (m["version"], m["from_state"], m["to_state"], m["actor"]) for m in registry.history(NAME)
    ]
    assert moves == [
        (first, None, "candidate", "trainer"),
        (first, "candidate", "champion", "ana"),
        (second, None, "candidate", "trainer"),
        (second, "candidate", "challenger", "policy"),
        (first, "champion", "archived", "ana"),
        (second, "challenger", "champion", "ana"),
    ]
    assert registry.history(NAME)[0]["metrics"]["ndcg@10"] == pytest.approx(0.30)
    with registry.operational.session() as session:
        audited = session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "registry.transition")
        ).all()
        assert len(audited) == 6
        assert audited[-1].details["reason"] == "10% better"


def test_rollback_restores_the_previous_champion_in_one_call(registry: ModelRegistry) -> None:
    first, second = _version(registry, 0.30), _version(registry, 0.31)
    with pytest.raises(TransitionRefused, match="no previous champion"):
        registry.rollback(NAME, actor="ana", reason="nothing yet")
    registry.transition(NAME, first, CHAMPION, actor="ana", reason="first")
    assert registry.rollback_target(NAME) == (
        None,
        f"{NAME} has no previous champion to roll back to",
    )
    registry.transition(NAME, second, CHAMPION, actor="ana", reason="better offline")
    assert registry.rollback_target(NAME) == (first, "")
    assert registry.rollback_target("identity")[1].startswith("identity is rolled back with")
    assert registry.rollback(NAME, actor="oncall", reason="conversion fell") == first
    assert registry.tracker.get_alias_version(NAME, "champion") == first
    assert registry.state(NAME, second) == RegistryState.ARCHIVED
    assert registry.history(NAME)[-1]["reason"] == "rollback: conversion fell"


def test_moves_the_lifecycle_does_not_allow_are_refused(registry: ModelRegistry) -> None:
    first = _version(registry, 0.30)
    registry.transition(NAME, first, CHAMPION, actor="ana", reason="first")
    with pytest.raises(TransitionRefused, match="is the champion: promote another"):
        registry.transition(NAME, first, RegistryState.ARCHIVED, actor="ana", reason="old")
    with pytest.raises(TransitionRefused, match="already champion"):
        registry.transition(NAME, first, CHAMPION, actor="ana", reason="again")
    with pytest.raises(TransitionRefused, match="needs a reason"):
        registry.transition(NAME, first, CHALLENGER, actor="ana", reason=" ")


def test_two_promotions_at_the_same_moment_leave_one_champion(registry: ModelRegistry) -> None:
    first, second, third = (_version(registry, s) for s in (0.30, 0.31, 0.32))
    registry.transition(NAME, first, CHAMPION, actor="ana", reason="first")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def approve(version: str, reviewer: str) -> None:
        start.wait()
        try:
            registry.transition(NAME, version, CHAMPION, actor=reviewer, reason="approved")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=approve, args=a) for a in ((second, "bo"), (third, "cy"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    champion = registry.tracker.get_alias_version(NAME, "champion")
    assert champion in (second, third)
    states = {v: registry.state(NAME, v) for v in (first, second, third)}
    assert sum(state == CHAMPION for state in states.values()) == 1
    assert states[champion] == CHAMPION
    # the one promoted first was archived by the other, in the history as in MLflow
    loser = third if champion == second else second
    assert states[loser] == RegistryState.ARCHIVED
    assert [m["to_state"] for m in registry.history(NAME) if m["version"] == loser][-1] == (
        "archived"
    )
