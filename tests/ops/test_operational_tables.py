"""Every operational table stores and returns its rows, and refuses rows the lifecycle cannot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest
import sqlalchemy as sa

from shelfwise.ops import (
    AuditEntry,
    BacktestResult,
    Base,
    DecisionRecord,
    DriftCheck,
    Experiment,
    JobRun,
    MLAlert,
    OperationalDatabase,
    PromotionPolicy,
    RegistryTransition,
    RetrainingRun,
    ShadowPrediction,
)
from shelfwise.ops._schema import OperationalRecord

# Written in a non-UTC zone on purpose: rows must come back as the same instant, in UTC.
PARIS_SUMMER = timezone(timedelta(hours=2))
MONDAY = datetime(2024, 6, 3, 9, 30, 15, 250_000, tzinfo=PARIS_SUMMER)
HOUR = timedelta(hours=1)

# One fully populated row per table, as the lifecycle would write it.
SAMPLES: dict[type[OperationalRecord], dict[str, Any]] = {
    PromotionPolicy: {
        "model_name": "basket_recommender",
        "primary_metric": "ndcg_at_10",
        "higher_is_better": True,
        "min_improvement": 0.02,
        "requires_review": True,
        "sensitive_scopes": ["alcohol", "baby_formula"],
        "created_at": MONDAY,
        "updated_at": MONDAY + HOUR,
    },
    RegistryTransition: {
        "model_name": "basket_recommender",
        "version": "7",
        "from_state": "challenger",
        "to_state": "champion",
        "actor": "policy:basket_recommender",
        "reason": "ndcg_at_10 +6.1% over version 5",
        "metrics": {"ndcg_at_10": 0.412, "champion_ndcg_at_10": 0.388},
        "at": MONDAY,
    },
    RetrainingRun: {
        "model_name": "store_demand",
        "trigger": "drift",
        "status": "succeeded",
        "version_produced": "12",
        "window_start": MONDAY - timedelta(days=364),
        "window_end": MONDAY,
        "started_at": MONDAY,
        "ended_at": MONDAY + HOUR,
        "metrics": {"wape": 0.183},
        "run_metadata": {"mlflow_run_id": "4f2a9c", "rows": 1_470_000},
        "error": None,
    },
    DriftCheck: {
        "model_name": "store_demand",
        "version": "11",
        "segment": "department=GROCERY",
        "kind": "data",
        "feature": "basket_value",
        "statistic": "psi",
        "value": 0.31,
        "threshold": 0.2,
        "drifted": True,
        "details": {"bins": [0.1, 0.2, 0.7], "reference": "2024-Q1"},
        "checked_at": MONDAY,
    },
    ShadowPrediction: {
        "model_name": "basket_recommender",
        "version": "8",
        "role": "challenger",
        "request_id": "req-0001",
        "entity_key": "household:1164",
        "segment": "loyalty=gold",
        "prediction": ["sku:1029743", "sku:995242", "sku:6534178"],
        "actual": ["sku:995242"],
        "predicted_at": MONDAY,
        "actual_at": MONDAY + timedelta(days=2),
    },
    BacktestResult: {
        "model_name": "store_demand",
        "version": "12",
        "segment": "all",
        "window_start": MONDAY - timedelta(days=28),
        "window_end": MONDAY,
        "metrics": {"wape": 0.19, "bias": -0.02},
        "primary_metric": "wape",
        "primary_value": 0.19,
        "created_at": MONDAY,
    },
    Experiment: {
        "name": "promo-depth-feature",
        "hypothesis": "Promotion depth improves demand forecasts on promoted skus",
        "experiment_type": "new_feature",
        "model_name": "store_demand",
        "proposer": "ana@example.com",
        "status": "completed",
        "approver": "ben@example.com",
        "approval_rationale": "Cheap to test, shadow only",
        "decision": "partial_adopt",
        "decision_rationale": "Better on promoted skus only",
        "results": {"wape_promoted": 0.21, "wape_other": 0.18},
        "created_at": MONDAY,
        "approved_at": MONDAY + HOUR,
        "completed_at": MONDAY + timedelta(days=14),
    },
    MLAlert: {
        "alert_type": "promotion_pending",
        "severity": "warning",
        "status": "actioned",
        "model_name": "basket_recommender",
        "version": "8",
        "title": "Version 8 awaits review",
        "message": "Challenger beats the champion by 6.1% but touches alcohol.",
        "link": "/reviews/basket_recommender/8",
        "action": "approve",
        "action_notes": "Checked the alcohol slate by hand",
        "actor": "ben@example.com",
        "created_at": MONDAY,
        "read_at": MONDAY + HOUR,
        "actioned_at": MONDAY + 2 * HOUR,
    },
    AuditEntry: {
        "at": MONDAY,
        "actor": "ben@example.com",
        "action": "approve_promotion",
        "entity_type": "model_version",
        "entity_id": "basket_recommender/8",
        "details": {"alert_id": 1, "notes": "ok"},
    },
    JobRun: {
        "job_name": "drift_sweep",
        "model_name": "store_demand",
        "status": "failed",
        "started_at": MONDAY,
        "ended_at": MONDAY + HOUR,
        "error": "feature store unreachable",
        "details": {"attempt": 2},
    },
    DecisionRecord: {
        "at": MONDAY,
        "request_id": "9f2c4e1a",
        "person_id": "P-000042",
        "variant": "canary",
        "model_version": "7",
        "fallback": "last_good",
        "cached": False,
        "details": {
            "items": [{"sku": "1001", "rank": 1, "score": 0.93, "source": "buy_again"}],
            "removed": [{"sku": "2002", "rule": "out_of_stock"}],
        },
    },
}

CLOSED_SETS = [
    pytest.param(
        table.name,
        constraint.info["column"],
        constraint.info["states"],
        id=f"{table.name}.{constraint.info['column']}",
    )
    for table in Base.metadata.sorted_tables
    # Sorted, since a table keeps its constraints in a set whose order differs between runs.
    for constraint in sorted(table.constraints, key=lambda constraint: str(constraint.name))
    if isinstance(constraint, sa.CheckConstraint) and "states" in constraint.info
]


def _model(table: str) -> type[OperationalRecord]:
    return next(model for model in SAMPLES if model.__tablename__ == table)


def _row(model: type[OperationalRecord], **changes: Any) -> OperationalRecord:
    return model(**{**SAMPLES[model], **changes})


def test_every_table_and_column_has_a_sample() -> None:
    assert {model.__tablename__ for model in SAMPLES} == set(Base.metadata.tables)
    for model, values in SAMPLES.items():
        assert set(values) | {"id", "tenant"} == set(sa.inspect(model).column_attrs.keys())


@pytest.mark.parametrize("model", list(SAMPLES), ids=lambda model: model.__tablename__)
def test_a_row_round_trips(migrated: OperationalDatabase, model: type[OperationalRecord]) -> None:
    with migrated.session() as session:
        row = _row(model, tenant="hypermart")
        session.add(row)
        session.flush()
        key = row.id

    with migrated.session() as session:
        stored = session.get_one(model, key)
        assert stored.tenant == "hypermart"
        for column, value in SAMPLES[model].items():
            assert getattr(stored, column) == value, column
            if isinstance(value, datetime):
                assert getattr(stored, column).utcoffset() == timedelta(0), column


def test_tenant_defaults_to_default(migrated: OperationalDatabase) -> None:
    with migrated.session() as session:
        session.add(_row(JobRun))

    with migrated.session() as session:
        assert session.scalars(sa.select(JobRun.tenant)).one() == "default"


@pytest.mark.parametrize(("table", "column", "states"), CLOSED_SETS)
def test_every_known_state_is_accepted(
    migrated: OperationalDatabase, table: str, column: str, states: type[StrEnum]
) -> None:
    model = _model(table)
    with migrated.session() as session:
        # One tenant per row keeps the (tenant, name) unique constraints out of the way.
        session.add_all(_row(model, tenant=state.value, **{column: state}) for state in states)

    with migrated.session() as session:
        stored = session.scalars(sa.select(getattr(model, column))).all()
        assert sorted(stored) == sorted(state.value for state in states)


@pytest.mark.parametrize(("table", "column", "states"), CLOSED_SETS)
def test_an_unknown_state_is_refused(
    migrated: OperationalDatabase, table: str, column: str, states: type[StrEnum]
) -> None:
    with pytest.raises(sa.exc.IntegrityError), migrated.session() as session:
        session.add(_row(_model(table), **{column: "sideways"}))


@pytest.mark.parametrize("model", [RetrainingRun, BacktestResult], ids=["retraining", "backtest"])
def test_a_window_that_ends_before_it_starts_is_refused(
    migrated: OperationalDatabase, model: type[OperationalRecord]
) -> None:
    with pytest.raises(sa.exc.IntegrityError), migrated.session() as session:
        session.add(_row(model, window_start=MONDAY, window_end=MONDAY - HOUR))


def test_a_negative_promotion_margin_is_refused(migrated: OperationalDatabase) -> None:
    with pytest.raises(sa.exc.IntegrityError), migrated.session() as session:
        session.add(_row(PromotionPolicy, min_improvement=-0.01))


def test_one_promotion_policy_per_model_and_tenant(migrated: OperationalDatabase) -> None:
    with migrated.session() as session:
        session.add(_row(PromotionPolicy, tenant="hypermart"))
        session.add(_row(PromotionPolicy, tenant="corner_shop"))

    with pytest.raises(sa.exc.IntegrityError), migrated.session() as session:
        session.add(_row(PromotionPolicy, tenant="hypermart"))


def test_a_naive_timestamp_is_refused(migrated: OperationalDatabase) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), migrated.session() as s:
        s.add(_row(JobRun, started_at=datetime(2024, 6, 3, 9, 30)))


def test_defaults_fill_a_minimal_row(migrated: OperationalDatabase) -> None:
    before = datetime.now(UTC)
    with migrated.session() as session:
        run = RetrainingRun(model_name="store_demand", trigger="scheduled")
        session.add(run)

    with migrated.session() as session:
        stored = session.get_one(RetrainingRun, run.id)
        assert (stored.status, stored.metrics, stored.run_metadata) == ("running", {}, {})
        assert stored.window_start is None
        assert before <= stored.started_at <= datetime.now(UTC)


def test_changes_inside_json_columns_are_saved_and_stamped(migrated: OperationalDatabase) -> None:
    with migrated.session() as session:
        policy = _row(PromotionPolicy)
        session.add(policy)

    with migrated.session() as session:
        stored = session.get_one(PromotionPolicy, policy.id)
        stored.sensitive_scopes.append("tobacco")

    with migrated.session() as session:
        stored = session.get_one(PromotionPolicy, policy.id)
        assert stored.sensitive_scopes == ["alcohol", "baby_formula", "tobacco"]
        assert stored.updated_at > SAMPLES[PromotionPolicy]["updated_at"]


def test_a_missing_actual_is_stored_as_sql_null(migrated: OperationalDatabase) -> None:
    with migrated.session() as session:
        session.add(_row(ShadowPrediction, actual=None, actual_at=None))

    with migrated.session() as session:
        missing = session.scalars(
            sa.select(sa.func.count()).where(ShadowPrediction.actual.is_(None))
        ).one()
        assert missing == 1
