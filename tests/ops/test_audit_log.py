"""The audit log keeps what was recorded: the database itself refuses UPDATE and DELETE."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from shelfwise.ops import AuditEntry, OperationalDatabase, PromotionPolicy, record_audit

APPROVAL = {
    "actor": "ben@example.com",
    "action": "approve_promotion",
    "entity_type": "model_version",
    "entity_id": "basket_recommender/8",
    "details": {"alert_id": 3},
}


@pytest.fixture
def audited(migrated: OperationalDatabase) -> OperationalDatabase:
    """A database holding one audit entry: a promotion approved by a reviewer."""
    with migrated.session() as session:
        record_audit(session, **APPROVAL)
    return migrated


def _entry_is_as_written(database: OperationalDatabase) -> bool:
    with database.session() as session:
        entry = session.scalars(sa.select(AuditEntry)).one()
        return {column: getattr(entry, column) for column in APPROVAL} == APPROVAL


def test_record_audit_writes_one_entry(migrated: OperationalDatabase) -> None:
    details = {"from": "challenger", "to": "champion", "metrics": {"ndcg_at_10": 0.41}}
    with migrated.session() as session:
        entry = record_audit(
            session,
            actor="policy:basket_recommender",
            action="promote",
            entity_type="model_version",
            entity_id="basket_recommender/8",
            details=details,
            tenant="hypermart",
        )
        # Changing the caller's dict after the call must not rewrite what was recorded.
        details["metrics"]["ndcg_at_10"] = 0.99

    with migrated.session() as session:
        stored = session.get_one(AuditEntry, entry.id)
        assert stored.tenant == "hypermart"
        assert stored.details == {
            "from": "challenger",
            "to": "champion",
            "metrics": {"ndcg_at_10": 0.41},
        }
        assert stored.at.utcoffset() is not None


def test_an_entry_rolls_back_with_the_change_it_describes(migrated: OperationalDatabase) -> None:
    def create_the_same_policy_twice() -> None:
        with migrated.session() as session:
            record_audit(
                session,
                actor="ben@example.com",
                action="create_policy",
                entity_type="promotion_policy",
                entity_id="store_demand",
                details={},
            )
            session.add(PromotionPolicy(model_name="store_demand", primary_metric="wape"))
            session.add(PromotionPolicy(model_name="store_demand", primary_metric="wape"))

    with pytest.raises(sa.exc.IntegrityError):
        create_the_same_policy_twice()

    with migrated.session() as session:
        assert session.scalars(sa.select(AuditEntry)).all() == []


def test_an_update_is_refused(audited: OperationalDatabase) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), audited.session() as s:
        s.execute(sa.update(AuditEntry).values(actor="someone_else"))

    assert _entry_is_as_written(audited)


def test_an_update_through_the_orm_is_refused(audited: OperationalDatabase) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), audited.session() as s:
        s.scalars(sa.select(AuditEntry)).one().details = {"alert_id": 4}

    assert _entry_is_as_written(audited)


def test_a_delete_is_refused(audited: OperationalDatabase) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), audited.session() as s:
        s.execute(sa.delete(AuditEntry))

    assert _entry_is_as_written(audited)


def test_a_delete_in_raw_sql_is_refused(audited: OperationalDatabase) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), audited.engine.begin() as c:
        c.execute(sa.text("DELETE FROM audit_log WHERE actor = 'ben@example.com'"))

    assert _entry_is_as_written(audited)


@pytest.mark.service
def test_a_truncate_is_refused_on_postgresql(postgres_url: str) -> None:
    database = OperationalDatabase(postgres_url)
    try:
        database.upgrade()
        with pytest.raises(sa.exc.IntegrityError, match="append-only"), database.session() as s:
            s.execute(sa.text("TRUNCATE audit_log"))
    finally:
        database.dispose()
