"""Shadow tests on planted predictions with known answers (SQLite, PostgreSQL): actuals filled
only where they belong, paired comparisons, and a completion that raises one alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from shelfwise.lifecycle import ModelRegistry
from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.experiments import Experiments
from shelfwise.lifecycle.shadow import Prediction, ShadowRecorder, ShadowTests, forecast_key
from shelfwise.models.base import Evaluation
from shelfwise.ops import AuditEntry, OperationalDatabase, ShadowPrediction
from shelfwise.ops._schema import utc_now
from shelfwise.ops.states import ExperimentStatus, RegistryState, ShadowRole
from shelfwise.recommend.popularity import PopularityRecommender
from shelfwise.tracking import Tracker

CHAMPION, CHALLENGER, EXPERIMENTAL = (
    ShadowRole.CHAMPION,
    ShadowRole.CHALLENGER,
    ShadowRole.EXPERIMENTAL,
)
W1, W2, W3 = "2024-01-01", "2024-01-08", "2024-01-15"


@pytest.fixture
def registry(tracker: Tracker, migrated: OperationalDatabase) -> ModelRegistry:
    return ModelRegistry(tracker, migrated, tenant="a")


@pytest.fixture
def shadow(registry: ModelRegistry) -> ShadowTests:
    return ShadowTests(registry, AlertInbox(registry.operational, registry, tenant="a"))


def _versions(registry: ModelRegistry, name: str) -> None:
    """v1 the champion, v2 the challenger, v3 a candidate (shadowed as experimental)."""
    log = pd.DataFrame({"person_id": ["a"], "sku": ["x"], "occurred_at": [pd.Timestamp(W1)]})
    for _ in range(3):
        record = registry.tracker.log_training(
            PopularityRecommender().fit(log),
            experiment=name,
            metrics=Evaluation({"mae": 1.0}, "mae", False),
        )
        registry.register(name, record, actor="trainer", reason="planted")
    registry.transition(name, "1", RegistryState.CHAMPION, actor="ana", reason="first")
    registry.transition(name, "2", RegistryState.CHALLENGER, actor="ana", reason="second")


def _forecasts(
    role: ShadowRole, version: str, values: dict[tuple[str, str], float]
) -> list[Prediction]:
    return [
        Prediction(
            role,
            version,
            forecast_key(series, week),
            {"series_id": series, "period_start": week, "forecast": value},
        )
        for (series, week), value in values.items()
    ]


def _record(
    database: OperationalDatabase, name: str, request: str, *rows: list[Prediction], **kw: Any
) -> None:
    recorder = ShadowRecorder(database, "a", interval_seconds=0.01)
    assert recorder.record(name, request, [p for row in rows for p in row], **kw)
    recorder.close()
    assert recorder.written == sum(len(row) for row in rows)


def test_forecasts_are_filled_when_their_week_ends_and_paired_for_mae(
    shadow: ShadowTests, registry: ModelRegistry
) -> None:
    db = registry.operational
    _versions(registry, "forecaster")
    flat = dict.fromkeys([("s1", W1), ("s1", W2), ("s2", W1), ("s2", W2)], 10.0)
    tested = {("s1", W1): 11.0, ("s1", W2): 10.0, ("s2", W1): 6.0, ("s2", W2): 1.0}
    _record(
        db, "forecaster", "r1", _forecasts(CHAMPION, "1", flat), _forecasts(CHALLENGER, "2", tested)
    )
    # a week not over yet, and a series the demand never names: pending
    later = {("s1", W3): 5.0, ("s9", W1): 5.0}
    _record(
        db, "forecaster", "r2", _forecasts(CHAMPION, "1", later), _forecasts(CHALLENGER, "2", later)
    )
    # the challenger did not answer: no pair
    _record(db, "forecaster", "r3", _forecasts(CHAMPION, "1", {("s1", W1): 0.0}))
    # paired, but before the window
    old = {("s1", W1): 0.0}
    at = utc_now() - timedelta(days=60)
    _record(
        db,
        "forecaster",
        "r4",
        _forecasts(CHAMPION, "1", old),
        _forecasts(CHALLENGER, "2", old),
        at=at,
    )
    demand = pd.DataFrame(
        {
            "series_id": ["s1", "s1", "s2", "s2"],
            "period_start": pd.to_datetime([W1, W2, W1, W3]),
            "quantity": [11.0, 9.0, 8.0, None],  # s2 sold nothing in W2; W3 only planned
        }
    )
    assert shadow.record_demand(demand) == 8 + 1 + 2
    with db.session() as session:
        pending = session.scalars(
            sa.select(ShadowPrediction.entity_key).where(ShadowPrediction.actual.is_(None))
        ).all()
        actual = session.scalars(
            sa.select(ShadowPrediction.actual).where(
                ShadowPrediction.request_id == "r1",
                ShadowPrediction.entity_key == forecast_key("s2", W2),
            )
        ).all()
    assert sorted(pending) == sorted(["s1|2024-01-15", "s9|2024-01-01"] * 2)
    assert actual == [0.0, 0.0]

    found = shadow.compare("forecaster", "2", min_samples=5)
    # champion |10-11| + |10-9| + |10-8| + |10-0| = 14; challenger 0 + 1 + 2 + 1 = 4; Σy = 28
    assert (found["samples"], found["requests"], found["ready"]) == (4, 1, False)
    assert found["champion"] == {
        "version": "1",
        "samples": 4,
        "error": 3.5,
        "mae": 3.5,
        "wape": 0.5,
    }
    assert found["challenger"]["samples"] == 4
    assert found["challenger"]["error"] == pytest.approx(1.0)
    assert found["challenger"]["wape"] == pytest.approx(4 / 28)
    assert found["challenger"]["role"] == "challenger"
    assert found["difference"] == pytest.approx(-2.5)
    assert found["metric"] == "mae"
    assert shadow.compare("forecaster", "2", window=timedelta(days=90))["samples"] == 5


def test_a_purchase_fills_the_lists_shown_in_the_week_before_and_hit_rate_decides(
    shadow: ShadowTests, registry: ModelRegistry
) -> None:
    db = registry.operational
    _versions(registry, "recommender")
    shown = utc_now() - timedelta(days=1)

    def lists(request: str, person: str, ours: list[str], theirs: list[str]) -> None:
        rows = [
            Prediction(CHAMPION, "1", person, ours),
            Prediction(CHALLENGER, "2", person, theirs),
        ]
        _record(db, "recommender", request, rows, at=shown)

    lists("q1", "p1", ["a", "b", "c"], ["d", "e", "f"])
    lists("q2", "p2", ["a", "b"], ["c", "d"])
    lists("q3", "p3", ["a"], ["b"])
    lists("q4", "p4", ["a"], ["b"])  # p4 buys nothing: no sample
    _record(db, "recommender", "q1", [Prediction(EXPERIMENTAL, "3", "p1", ["a"])], at=shown)
    assert shadow.record_purchases("p1", ["d"], shown + timedelta(hours=1)) == 3
    assert shadow.record_purchases("p2", ["a"], shown + timedelta(days=2)) == 2
    assert shadow.record_purchases("p2", ["c", "a"], shown + timedelta(days=3)) == 2
    assert shadow.record_purchases("p3", ["a"], shown + timedelta(days=8)) == 0  # too late
    assert shadow.record_purchases("p3", ["a"], shown - timedelta(hours=1)) == 0  # before
    with db.session() as session:
        filled = session.scalars(
            sa.select(ShadowPrediction).where(ShadowPrediction.entity_key == "p2")
        ).all()
    assert [row.actual for row in filled] == [["a", "c"], ["a", "c"]]
    assert all(row.actual_at == shown + timedelta(days=3) for row in filled)

    found = shadow.compare("recommender", "2")
    assert (found["samples"], found["champion"]["samples"], found["challenger"]["samples"]) == (
        2,
        2,
        2,
    )
    assert found["metric"] == "1 - hit_rate"
    assert found["champion"]["error"] == pytest.approx(0.5)  # p1 missed, p2 hit
    assert found["challenger"]["error"] == pytest.approx(0.0)
    experimental = shadow.compare("recommender", "3")
    assert experimental["samples"] == 1
    assert experimental["challenger"]["role"] == "experimental"
    assert experimental["challenger"]["error"] == experimental["champion"]["error"] == 1.0


def test_a_ready_test_completes_once_on_its_experiment_with_one_alert(
    shadow: ShadowTests, registry: ModelRegistry
) -> None:
    db = registry.operational
    _versions(registry, "recommender")
    book = Experiments(registry, shadow.alerts)
    made = book.propose("als-64", "more factors", "new_algorithm", "recommender", "ana")
    book.approve(made["id"], "bo", "cheap to try")
    book.advance(made["id"], ExperimentStatus.IN_PROGRESS, "ana")
    book.advance(made["id"], ExperimentStatus.SHADOW_TESTING, "ana")
    book.tag_version(made["id"], "2")
    shown = utc_now() - timedelta(hours=2)
    for n in range(3):
        person = f"p{n}"
        rows = [
            Prediction(CHAMPION, "1", person, ["a"]),
            Prediction(CHALLENGER, "2", person, ["b"]),
        ]
        _record(db, "recommender", f"q{n}", rows, at=shown)
        shadow.record_purchases(person, ["b"], shown + timedelta(hours=1))

    assert shadow.complete("recommender", "2", min_samples=4) is None  # 3 of 4 samples
    assert shadow.alerts.list() == []
    done = shadow.complete("recommender", "2", min_samples=3)
    assert done is not None
    assert done["experiment"] == made["id"]
    assert done["comparison"]["samples"] == 3
    alert = done["alert"]
    assert (alert["type"], alert["severity"], alert["version"]) == (
        "shadow_test_complete",
        "info",
        "2",
    )
    assert alert["link"] == "/api/v1/models/2/review?model=recommender"
    assert "better than the champion" in alert["title"]
    assert "1 - hit_rate 0 over 3 samples" in alert["message"]
    assert "champion v1: 1 - hit_rate 1 over 3 samples" in alert["message"]
    assert shadow.completed("recommender", "2")
    assert shadow.complete("recommender", "2", min_samples=3) is None
    assert shadow.complete("recommender", "2", force=True) is None
    assert shadow.sweep(min_samples=1) == []
    assert [a["type"] for a in shadow.alerts.list()] == ["shadow_test_complete"]
    results = book.results(made["id"])
    assert results["shadow"]["2"]["challenger"]["error"] == 0.0
    assert results["status"] == "shadow_testing"  # a person still decides
    with db.session() as session:
        audited = session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "shadow_test.complete")
        ).all()
    assert [(a.entity_id, a.details["samples"]) for a in audited] == [("recommender/2", 3)]


def test_sweep_completes_what_is_ready_and_force_what_is_not(
    shadow: ShadowTests, registry: ModelRegistry
) -> None:
    db = registry.operational
    _versions(registry, "recommender")
    _versions(registry, "forecaster")
    shown = utc_now() - timedelta(hours=2)
    rows = [Prediction(CHAMPION, "1", "p1", ["a"]), Prediction(CHALLENGER, "2", "p1", ["a"])]
    _record(db, "recommender", "q1", rows, at=shown)
    shadow.record_purchases("p1", ["a"], shown + timedelta(minutes=5))
    week = {("s1", W1): 1.0}
    _record(
        db, "forecaster", "r1", _forecasts(CHAMPION, "1", week), _forecasts(CHALLENGER, "2", week)
    )

    done = shadow.sweep(min_samples=1)  # the forecast has no actual yet
    assert [(d["comparison"]["model"], d["comparison"]["samples"]) for d in done] == [
        ("recommender", 1)
    ]
    assert "not better" in done[0]["alert"]["title"]  # equal errors
    assert done[0]["experiment"] is None  # stored in the audit log and the alert only
    empty = shadow.complete("forecaster", "2", force=True)
    assert empty is not None
    assert empty["comparison"]["champion"] == {"version": "1", "samples": 0, "error": None}
    assert "no samples" in empty["alert"]["title"]
    with pytest.raises(LookupError, match="shadow tests score forecaster, recommender"):
        shadow.compare("churn", "1")
