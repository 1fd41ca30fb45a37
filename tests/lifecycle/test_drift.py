"""Drift statistics with known answers, and the monitor's records and alert (SQLite, PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.drift import (
    DriftMonitor,
    DriftReport,
    Statistic,
    data_drift,
    performance_drift,
    psi,
)
from shelfwise.ops import DriftCheck, OperationalDatabase
from shelfwise.ops.states import AlertStatus, DriftKind, DriftStatistic


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shifted_one() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 20_000)
    assert psi(reference, rng.normal(0, 1, 20_000)) < 0.01
    assert 0.2 < psi(reference, rng.normal(0.5, 1, 20_000)) < 0.4  # about 0.25 for half a sd
    assert psi(reference, rng.normal(2, 1, 20_000)) > 2


def test_categorical_drift_by_chi_square_and_the_error_ratio() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"device": rng.choice(["app", "web"], 5000, p=[0.5, 0.5])})
    same = pd.DataFrame({"device": rng.choice(["app", "web"], 5000, p=[0.5, 0.5])})
    nudged = pd.DataFrame({"device": rng.choice(["app", "web"], 5000, p=[0.6, 0.4])})
    moved = pd.DataFrame({"device": rng.choice(["app", "web"], 5000, p=[0.75, 0.25])})
    assert not data_drift(reference, same)[0].drifted
    # significant (p far below 0.01) but small: the shares' PSI is about 0.04
    assert data_drift(reference, nudged)[0].value < 1e-6  # the p-value
    assert data_drift(reference, nudged)[0].details["psi"] == pytest.approx(0.04, abs=0.01)
    assert not data_drift(reference, nudged)[0].drifted
    assert data_drift(reference, moved)[0].drifted  # PSI about 0.27
    assert performance_drift(1.2, 1.0).drifted  # 20% worse error
    assert not performance_drift(1.1, 1.0).drifted
    assert performance_drift(0.30, 0.36, higher_is_better=True).drifted  # ndcg fell 17%
    assert performance_drift(0.30, 0.36, higher_is_better=True).value == pytest.approx(1.2)


def test_the_monitor_records_every_statistic_and_alerts_once(
    migrated: OperationalDatabase,
) -> None:
    rng = np.random.default_rng(2)
    n = 4000
    reference = pd.DataFrame(
        {
            "basket": rng.gamma(2, 10, n),
            "visits": rng.poisson(3, n).astype(float),
            "department": rng.choice(["MEAT", "DELI"], n),
        }
    )
    current = reference.sample(frac=1, random_state=0).reset_index(drop=True)
    current["basket"] = current["basket"] * 1.8  # the basket grew
    inbox = AlertInbox(migrated)
    monitor = DriftMonitor(migrated, inbox)
    report = monitor.check(
        "forecaster",
        "4",
        reference,
        current,
        segment_column="department",
        performance=[performance_drift(7.9, 7.4)],
    )
    assert report.summary()["drifted_features"] == ["basket"]
    assert report.drifted_share == pytest.approx(0.5)  # basket of basket and visits
    assert report.drifted
    with migrated.session() as session:
        rows = session.scalars(sa.select(DriftCheck)).all()
        segments = {row.segment for row in rows}
        kinds = {row.kind for row in rows}
    assert segments == {"all", "MEAT", "DELI"}
    assert kinds == {"data", "performance"}
    assert len(rows) == 2 * 3 + 1
    alerts = inbox.list(AlertStatus.UNREAD)
    assert [(a["type"], a["severity"], a["version"]) for a in alerts] == [
        ("drift_detected", "critical", None)
    ]
    assert "basket" in alerts[0]["message"]
    calm = monitor.check("forecaster", "4", reference, reference.copy())
    assert not calm.drifted
    assert calm.alert is None
    assert len(inbox.list()) == 1


def test_the_summary_keeps_segment_drift_apart_from_the_overall_share() -> None:
    def data(feature: str, segment: str, drifted: bool) -> Statistic:
        kind, statistic = DriftKind.DATA, DriftStatistic.CHI2
        return Statistic(kind, statistic, 0.0, 0.01, drifted, feature, segment)

    statistics = [
        data("weekday", "all", False),
        data("weekday", "segment=frequent", True),
        data("hour", "all", True),
        data("hour", "segment=frequent", True),
    ]
    summary = DriftReport("m", "1", statistics, 0.5, True, None).summary()
    assert summary["drifted_features"] == ["hour"]
    assert summary["drifted_in_segments"] == [
        "hour (segment=frequent)",
        "weekday (segment=frequent)",
    ]
