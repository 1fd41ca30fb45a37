"""Session stitching: each rule on a tiny world with a known answer, then a simulated world.

The tiny worlds are written event by event so that every attribution can be checked by eye:
``E(id, session, cookie, device, ref)`` is one web-shop event, logged in when ``ref`` is given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import pytest

from shelfwise.data.ingest import ingest
from shelfwise.data.store import AnalyticStore
from shelfwise.identity.sessions import (
    StitchReport,
    StitchSettings,
    evaluate_stitching,
    stitch_sessions,
)
from shelfwise.simulate import fragment_customers, simulate_people, simulate_sessions
from shelfwise.simulate.sources import KIOSK_DEVICE_IDS

HOME_IP = "10.0.0.1"
# web-shop accounts w1..w4 of persons P1..P4; crm record c9 of P9 knows its phone "d-phone".
PERSON_MAP = [("web", f"w{i}", f"P{i}") for i in range(1, 5)] + [("crm", "c9", "P9")]


@dataclass(frozen=True)
class E:
    event_id: str
    session: str | None
    cookie: str | None
    device: str | None
    ref: str | None = None
    ip: str = HOME_IP


def make_store(
    events: Sequence[E],
    person_map: Sequence[tuple[str, str, str]] = PERSON_MAP,
    records: Sequence[tuple[str, str, str]] = (("crm", "c9", "d-phone"),),
) -> AnalyticStore:
    store = AnalyticStore("duckdb:///:memory:")
    store.create_tables()
    frame = pd.DataFrame(
        {
            "event_id": [e.event_id for e in events],
            "occurred_at": pd.date_range("2017-03-01", periods=len(events), freq="min"),
            "source_system": "web",
            "event_type": ["login" if e.ref else "click" for e in events],
            "customer_ref": [e.ref for e in events],
            "anonymous_id": [e.cookie for e in events],
            "session_id": [e.session for e in events],
            "device_id": [e.device for e in events],
            "ip": [e.ip for e in events],
        }
    )
    assert ingest(store, "events", frame).quarantined == 0
    if records:
        rows = pd.DataFrame(records, columns=["source_system", "source_id", "device_id"])
        assert ingest(store, "customer_records", rows).quarantined == 0
    store.execute(
        "CREATE TABLE person_map (source_system VARCHAR, source_id VARCHAR, person_id VARCHAR)"
    )
    store.connection.executemany("INSERT INTO person_map VALUES (?, ?, ?)", list(person_map))
    return store


def stitched(
    events: Sequence[E],
    settings: StitchSettings | None = None,
    person_map: Sequence[tuple[str, str, str]] = PERSON_MAP,
) -> tuple[dict[str, tuple[str, str]], StitchReport]:
    """event_id -> (person_id, rule) for every attributed event, and the report."""
    store = make_store(events, person_map)
    report = stitch_sessions(store, settings=settings)
    rows = store.execute("SELECT event_id, person_id, rule FROM stitched_events")
    return {e: (p, r) for e, p, r in rows}, report


def test_login_attributes_an_event_by_its_own_customer_ref() -> None:
    got, report = stitched([E("e1", "s1", "k1", None, ref="w1"), E("e2", "s2", "k2", None, "zz")])
    assert got == {"e1": ("P1", "login")}
    assert (report.events, report.anonymous_events, report.attributed_anonymous) == (2, 0, 0)
    assert report.share_attributed == 0.0


def test_a_partial_login_gives_the_session_its_person() -> None:
    got, report = stitched([E("e1", "s1", "k1", None), E("e2", "s1", "k1", None, ref="w1")])
    assert got == {"e1": ("P1", "session"), "e2": ("P1", "login")}
    assert report.by_rule == {"login": 1, "session": 1, "cookie": 0, "device": 0}
    assert report.share_attributed == 1.0


def test_a_cookie_carries_its_person_into_later_anonymous_sessions() -> None:
    events = [E("e1", "s1", "k1", None, ref="w1"), E("e2", "s2", "k1", None)]
    got, _ = stitched(events)
    assert got["e2"] == ("P1", "cookie")
    got, _ = stitched(events, StitchSettings(use_cookie=False))
    assert "e2" not in got


def test_a_device_is_tied_by_identified_events_or_by_a_customer_record() -> None:
    events = [
        E("e1", "s1", "k1", "d-laptop", ref="w1"),
        E("e2", "s2", "k2", "d-laptop"),
        E("e3", "s3", "k3", "d-phone"),
    ]
    got, report = stitched(events)
    assert got["e2"] == ("P1", "device")
    assert got["e3"] == ("P9", "device")
    assert report.by_rule["device"] == 2
    got, _ = stitched(events, StitchSettings(device_from_records=False))
    assert "e3" not in got
    got, _ = stitched(events, StitchSettings(use_device=False))
    assert set(got) == {"e1"}


def test_rules_apply_strongest_first() -> None:
    events = [
        E("e1", "s1", "k1", "d1", ref="w1"),  # P1 in session s1, cookie k1, device d1
        E("e2", "s2", "k2", "d2", ref="w2"),  # P2 with cookie k2 and device d2
        E("e4", "s1", "k2", "d2"),  # session says P1, cookie and device say P2
        E("e5", "s9", "k1", "d2"),  # cookie says P1, device says P2
        E("e6", "s6", "k6", "d1", ref="w4"),  # P4's own login wins on P1's device
    ]
    got, _ = stitched(events)
    assert got["e4"] == ("P1", "session")
    assert got["e5"] == ("P1", "cookie")
    assert got["e6"] == ("P4", "login")


def test_a_session_with_two_persons_attributes_nothing() -> None:
    events = [
        E("e1", "s1", "k1", "d1", ref="w1"),
        E("e2", "s1", "k1", "d1", ref="w2"),
        E("e3", "s1", "k1", "d1"),
        E("e4", "s1", "k4", "d-phone"),  # its device names P9, but its session is shared
    ]
    got, report = stitched(events)
    assert got == {"e1": ("P1", "login"), "e2": ("P2", "login")}
    assert report.conflicts_by_rule == {"session": 1, "cookie": 1, "device": 1}
    assert report.conflicts == 3
    got, report = stitched(events, StitchSettings(conflict_stops=False))
    assert got["e4"] == ("P9", "device")
    assert "e3" not in got


def test_a_kiosk_seen_with_three_persons_never_attributes() -> None:
    events = [E(f"e{i}", f"s{i}", f"k{i}", "kiosk", ref=f"w{i}") for i in (1, 2, 3)]
    events.append(E("e9", "s9", "k9", "kiosk"))
    got, report = stitched(events)
    assert "e9" not in got
    assert report.conflicts_by_rule["device"] == 1
    # Allowing three persons per device names the kiosk's most frequent person, or none on a tie.
    got, _ = stitched(events, StitchSettings(max_persons_per_device=3))
    assert "e9" not in got
    got, _ = stitched(
        [*events, E("e4", "s4", "k4", "kiosk", ref="w1")], StitchSettings(max_persons_per_device=3)
    )
    assert got["e9"] == ("P1", "device")


def test_a_blocked_device_is_never_used_nor_counted_as_a_conflict() -> None:
    events = [E("e1", "s1", "k1", "till-7", ref="w2"), E("e2", "s2", "k2", "till-7")]
    got, _ = stitched(events)
    assert got["e2"] == ("P2", "device")
    got, report = stitched(events, StitchSettings(blocked_devices=("till-7",)))
    assert "e2" not in got
    assert report.conflicts == 0


def test_an_ip_is_never_used() -> None:
    events = [E("e1", "s1", "k1", "d1", ref="w1"), E("e2", "s2", "k2", None, ip=HOME_IP)]
    got, report = stitched(events)
    assert "e2" not in got
    assert report.attributed_anonymous == 0


def test_a_record_mapped_to_two_persons_is_trusted_nowhere() -> None:
    person_map = [*PERSON_MAP, ("web", "w1", "P7")]
    got, _ = stitched([E("e1", "s1", "k1", None, ref="w1")], person_map=person_map)
    assert got == {}


def test_settings_round_trip_through_json_and_refuse_bad_values() -> None:
    settings = StitchSettings(max_persons_per_device=2, blocked_devices=("a", "b"))
    assert StitchSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    with pytest.raises(ValueError, match="max_persons_per_device"):
        StitchSettings(max_persons_per_device=0)
    with pytest.raises(ValueError, match="unknown settings"):
        StitchSettings.from_dict({"use_ip": True})
    assert StitchSettings(use_session=False).rules == ("cookie", "device")


def test_the_report_is_plain_json() -> None:
    _, report = stitched([E("e1", "s1", "k1", None), E("e2", "s1", "k1", None, ref="w1")])
    assert json.loads(json.dumps(report.to_dict()))["by_rule"]["session"] == 1


def test_evaluation_counts_right_and_wrong_attributions() -> None:
    events = [
        E("e1", "s1", "k1", "d1", ref="w1"),
        E("e2", "s1", "k1", "d1"),  # session: P1, right
        E("e3", "s3", "k3", "d1"),  # device: P1, but truly person q2 (a family tablet)
        E("e4", "s4", "k4", None),  # unattributed, q3 has a record
        E("e5", "s5", "k5", None),  # unattributed, q8 has no record at all
    ]
    store = make_store(events)
    stitch_sessions(store)
    event_truth = pd.DataFrame(
        {"event_id": ["e1", "e2", "e3", "e4", "e5"], "person_id": ["q1", "q1", "q2", "q3", "q8"]}
    )
    record_truth = pd.DataFrame(
        [("web", "w1", "q1"), ("web", "w2", "q2"), ("web", "w3", "q3"), ("crm", "c9", "q9")],
        columns=["source_system", "source_id", "person_id"],
    )
    metrics = evaluate_stitching(store, event_truth, record_truth)
    assert metrics["anonymous_events"] == 4
    assert metrics["attributed_share"] == 0.5
    assert metrics["precision"] == 0.5
    assert metrics["recall"] == pytest.approx(1 / 3)
    assert (metrics["precision_session"], metrics["precision_device"]) == (1.0, 0.0)
    assert math.isnan(metrics["precision_cookie"])


# A simulated world: 2,000 persons over six systems, their sessions, a person_map from the truth.


@pytest.fixture(scope="module")
def world() -> tuple[AnalyticStore, pd.DataFrame, pd.DataFrame]:
    people = simulate_people([str(1000 + i) for i in range(2000)], seed=7)
    customers = fragment_customers(people, seed=7)
    sessions = simulate_sessions(people, customers, seed=7)
    store = AnalyticStore("duckdb:///:memory:")
    products = pd.DataFrame({"sku": [f"SKU-{i:05d}" for i in range(1, 201)]})
    for table, frame in (
        ("products", products),
        ("customer_records", customers.records),
        ("events", sessions.events),
    ):
        assert ingest(store, table, frame).quarantined == 0
    store.connection.register("record_truth", customers.truth)
    store.execute("CREATE TABLE person_map AS SELECT * FROM record_truth")
    store.connection.unregister("record_truth")
    return store, sessions.truth, customers.truth


def test_the_simulated_world_is_stitched_precisely(
    world: tuple[AnalyticStore, pd.DataFrame, pd.DataFrame],
) -> None:
    store, event_truth, record_truth = world
    report = stitch_sessions(store)
    metrics = evaluate_stitching(store, event_truth, record_truth)
    print(json.dumps({"report": report.to_dict(), "metrics": metrics}, indent=1))
    assert report.anonymous_events == metrics["anonymous_events"]
    assert 0.3 < report.share_attributed == metrics["attributed_share"] < 0.9
    assert metrics["precision"] >= 0.98
    assert metrics["precision_session"] >= 0.99
    assert metrics["precision_cookie"] >= 0.99
    on_kiosks = store.frame(
        "SELECT s.rule, count(*) AS events FROM stitched_events s JOIN events e "
        "USING (event_id) WHERE list_contains($1, e.device_id) GROUP BY s.rule",
        [list(KIOSK_DEVICE_IDS)],
    )
    assert "device" not in set(on_kiosks["rule"])
    # A kiosk's anonymous events are placed only by a partial login in their own session.
    rules = store.execute(
        "SELECT DISTINCT s.rule FROM stitched_events s JOIN events e USING (event_id) "
        "WHERE e.customer_ref IS NULL AND list_contains($1, e.device_id)",
        [list(KIOSK_DEVICE_IDS)],
    )
    assert {r for (r,) in rules} <= {"session"}
    assert report.conflicts_by_rule["device"] >= len(KIOSK_DEVICE_IDS)


def test_blocking_the_kiosks_changes_nothing_but_the_conflicts(
    world: tuple[AnalyticStore, pd.DataFrame, pd.DataFrame],
) -> None:
    store, event_truth, record_truth = world
    settings = StitchSettings(blocked_devices=KIOSK_DEVICE_IDS)
    report = stitch_sessions(store, output="kiosks_blocked", settings=settings)
    default = stitch_sessions(store, output="kiosks_shared")
    assert report.by_rule == default.by_rule
    assert report.conflicts == default.conflicts - len(KIOSK_DEVICE_IDS)
    metrics = evaluate_stitching(store, event_truth, record_truth, stitched="kiosks_blocked")
    assert metrics["precision"] >= 0.98
