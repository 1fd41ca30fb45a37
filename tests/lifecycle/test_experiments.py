"""An experiment's status moves only forward, one step at a time (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

from shelfwise.lifecycle import ModelRegistry, TransitionRefused
from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.experiments import Experiments
from shelfwise.ops import OperationalDatabase
from shelfwise.ops.states import ExperimentDecision, ExperimentStatus
from shelfwise.tracking import Tracker


def test_the_status_runs_proposed_approved_in_progress_shadow_completed(
    tracker: Tracker, migrated: OperationalDatabase
) -> None:
    registry = ModelRegistry(tracker, migrated)
    book = Experiments(registry, AlertInbox(migrated, registry))
    made = book.propose("lags-52", "a year's lag helps", "new_feature", "forecaster", "ana")
    with pytest.raises(TransitionRefused, match="moves to in_progress only from approved"):
        book.advance(made["id"], ExperimentStatus.IN_PROGRESS, "ana")
    book.approve(made["id"], "bo", "worth a week")
    assert book.advance(made["id"], ExperimentStatus.IN_PROGRESS, "ana")["status"] == (
        "in_progress"
    )
    with pytest.raises(TransitionRefused, match="use approve or complete"):
        book.advance(made["id"], ExperimentStatus.COMPLETED, "ana")
    book.advance(made["id"], ExperimentStatus.SHADOW_TESTING, "ana")
    done = book.complete(made["id"], ExperimentDecision.REJECT, "bo", "no gain in shadow")
    assert (done["status"], done["decision"]) == ("completed", "reject")
    with pytest.raises(TransitionRefused, match="is completed"):
        book.approve(made["id"], "cy", "again")
