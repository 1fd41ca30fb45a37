"""Session stitching: which person each event belongs to, anonymous events included.

About two events in three carry no ``customer_ref``. They still carry a session, a cookie
(``anonymous_id``) and a device, and each of those may have been seen in events whose person is
known. The rules, strongest first:

``login``
    the event's own ``(source_system, customer_ref)`` is a record in ``person_map``;
``session``
    its ``session_id`` holds identified events of exactly one person (a partial login: the
    events before the login belong to whoever logged in);
``cookie``
    its ``anonymous_id`` was in identified sessions of exactly one person (a cookie lives on a
    device across sessions until it is cleared);
``device``
    its ``device_id`` is tied to one person by identified events or by a customer record, was
    seen with no more than ``max_persons_per_device`` persons and is not a known kiosk or till.

Each rule is a vote counted over keys, so two persons behind one key is evidence that the key is
shared: it attributes nothing and is counted as a conflict, and (by default) an event whose
session is shared is not handed to its cookie or device either. IPs are never used: shop Wi-Fi,
carrier NAT and ``0.0.0.0`` put thousands of persons behind one address.

Everything runs as SQL inside the analytic store, so the Complete Journey's volumes stitch in
seconds; relation names are parameters so that tests can stitch small hand-made tables.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from shelfwise.data.store import AnalyticStore
from shelfwise.data.validation import quote
from shelfwise.models.settings import Constraints, EstimatorSettings, Interval

# The rules after ``login``, strongest first, and the events column each one keys on.
RULE_KEYS = {"session": "session_id", "cookie": "anonymous_id", "device": "device_id"}
WEAK_RULES = tuple(RULE_KEYS)


@dataclass(frozen=True)
class StitchSettings(EstimatorSettings):
    """Which rules may attribute an anonymous event, and which devices are never trusted.

    ``use_session``: a session with identified events of exactly one person gives that person
    its anonymous events (turn off only to measure the other rules alone).
    ``use_cookie``: an ``anonymous_id`` seen in identified sessions of exactly one person.
    ``use_device``: a device tied to one person by identified events or customer records.
    ``max_persons_per_device``: a device seen with more persons is shared (a kiosk, a family
    tablet) and never used; above 1, a device seen with up to this many persons attributes to
    the person most of its evidence names, and a tie attributes nothing.
    ``blocked_devices``: known kiosk and till ids, never used and never counted as conflicts.
    ``device_from_records``: ``customer_records.device_id`` ties a device to its record's person
    (the loyalty app's phone is known before any event is).
    ``conflict_stops``: an event whose session (or cookie) points at two or more persons is not
    handed to a weaker rule, since the stronger key already says the device was shared.
    """

    use_session: bool = True
    use_cookie: bool = True
    use_device: bool = True
    max_persons_per_device: int = 1
    blocked_devices: tuple[str, ...] = ()
    device_from_records: bool = True
    conflict_stops: bool = True

    constraints: ClassVar[Constraints] = {
        **dict.fromkeys(("use_session", "use_cookie", "use_device"), (bool,)),
        **dict.fromkeys(("device_from_records", "conflict_stops"), (bool,)),
        "max_persons_per_device": (Interval(1, None, integer=True),),
        "blocked_devices": (tuple,),
    }

    @property
    def rules(self) -> tuple[str, ...]:
        """The weaker rules in use, strongest first (``login`` always applies)."""
        used = {"session": self.use_session, "cookie": self.use_cookie, "device": self.use_device}
        return tuple(rule for rule in WEAK_RULES if used[rule])


@dataclass(frozen=True)
class StitchReport:
    """What stitching attributed: events per rule and the shared keys it refused to trust.

    ``by_rule`` counts every attributed event (identified ones included) by the rule that
    attributed it; ``conflicts`` counts sessions, cookies and devices pointing at two or more
    persons that left at least one event unattributed, ``conflicts_by_rule`` per kind of key.
    """

    events: int
    anonymous_events: int
    attributed_anonymous: int
    share_attributed: float
    by_rule: dict[str, int]
    conflicts: int
    conflicts_by_rule: dict[str, int]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _blank_is_null(column: str) -> str:
    """Forms and trackers write '' where they mean unknown; '' must not become a shared key."""
    return f"NULLIF(trim({quote(column)}), '')"


def _resolved_records(person_map: str) -> str:
    """person_map rows naming exactly one person (a record mapped twice is trusted nowhere)."""
    return (
        "SELECT source_system, source_id, min(person_id) AS person_id "
        f"FROM {quote(person_map)} WHERE person_id IS NOT NULL "
        "GROUP BY source_system, source_id HAVING count(DISTINCT person_id) = 1"
    )


def relation_exists(store: AnalyticStore, name: str) -> bool:
    """Is there a table or view ``name`` (temporary ones included)?"""
    found = store.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = $1 UNION ALL "
        "SELECT count(*) FROM duckdb_views() WHERE view_name = $1 AND NOT internal",
        [name],
    )
    return any(row[0] for row in found)


@contextmanager
def _scratch(store: AnalyticStore, *names: str) -> Iterator[dict[str, str]]:
    """Temporary tables with names of their own, dropped whatever happens."""
    tag = uuid.uuid4().hex[:12]
    tables = {name: f"_stitch_{name}_{tag}" for name in names}
    try:
        yield tables
    finally:
        for table in tables.values():
            store.execute(f"DROP TABLE IF EXISTS {quote(table)}")


def stitch_sessions(
    store: AnalyticStore,
    *,
    person_map: str = "person_map",
    events: str = "events",
    customer_records: str = "customer_records",
    output: str = "stitched_events",
    settings: StitchSettings | None = None,
) -> StitchReport:
    """Attribute events to persons and write ``output`` (replaced): one row per attributed event
    with ``event_id, person_id, rule, session_id``.

    ``person_map`` (``source_system, source_id, person_id``) is the identity resolver's answer;
    an event whose ``customer_ref`` is not in it is treated like an anonymous one, so that its
    session, cookie or device may still place it. Without ``customer_records`` devices learn
    from events alone.
    """
    settings = settings or StitchSettings()
    exists = relation_exists(store, customer_records)
    with _scratch(store, "events", "keys", "decided") as scratch:
        store.execute(_events_sql(events, person_map, scratch["events"]))
        store.execute(
            _keys_sql(scratch, person_map, customer_records, exists, settings),
            [list(settings.blocked_devices)],
        )
        store.execute(_decide_sql(scratch, settings))
        store.execute(
            f"CREATE OR REPLACE TABLE {quote(output)} AS SELECT event_id, person_id, rule, "
            f"session_id FROM {quote(scratch['decided'])} WHERE person_id IS NOT NULL "
            "ORDER BY event_id"
        )
        return _report(store, scratch["decided"], settings)


def _events_sql(events: str, person_map: str, target: str) -> str:
    return f"""
        CREATE TEMP TABLE {quote(target)} AS
        WITH resolved AS ({_resolved_records(person_map)}),
        ev AS (
            SELECT event_id, source_system,
                {_blank_is_null("customer_ref")} AS customer_ref,
                {_blank_is_null("session_id")} AS session_id,
                {_blank_is_null("anonymous_id")} AS anonymous_id,
                {_blank_is_null("device_id")} AS device_id
            FROM {quote(events)}
        )
        SELECT ev.event_id, ev.session_id, ev.anonymous_id, ev.device_id,
            ev.customer_ref IS NULL AS anonymous, r.person_id AS login_person
        FROM ev LEFT JOIN resolved r
            ON r.source_system = ev.source_system AND r.source_id = ev.customer_ref"""


def _keys_sql(
    scratch: dict[str, str],
    person_map: str,
    customer_records: str,
    records_exist: bool,
    settings: StitchSettings,
) -> str:
    """One row per session, cookie and device with evidence: its persons and the one it names.

    ``person_id`` is NULL for a key that is shared (the rule then attributes nothing). A cookie
    learns from events placed by login or session, a device from those and from customer
    records; neither learns from the other, so one mistaken key cannot spread its mistake.
    """
    work = quote(scratch["events"])
    from_records = ""
    if settings.device_from_records and records_exist:
        from_records = f"""
            UNION ALL
            SELECT {_blank_is_null("device_id")} AS device_id, r.person_id
            FROM {quote(customer_records)} c JOIN ({_resolved_records(person_map)}) r
                ON r.source_system = c.source_system AND r.source_id = c.source_id"""
    session_person = "s.person_id" if settings.use_session else "NULL"
    return f"""
        CREATE TEMP TABLE {quote(scratch["keys"])} AS
        WITH sessions AS (
            SELECT session_id AS key, count(DISTINCT login_person) AS persons,
                CASE WHEN count(DISTINCT login_person) = 1 THEN min(login_person) END
                    AS person_id
            FROM {work} WHERE login_person IS NOT NULL AND session_id IS NOT NULL
            GROUP BY session_id
        ),
        known AS (
            SELECT w.anonymous_id, w.device_id, coalesce(w.login_person, {session_person})
                AS person_id
            FROM {work} w LEFT JOIN sessions s ON s.key = w.session_id
        ),
        cookies AS (
            SELECT anonymous_id AS key, count(DISTINCT person_id) AS persons,
                CASE WHEN count(DISTINCT person_id) = 1 THEN min(person_id) END AS person_id
            FROM known WHERE person_id IS NOT NULL AND anonymous_id IS NOT NULL
            GROUP BY anonymous_id
        ),
        evidence AS (
            SELECT device_id, person_id FROM known WHERE person_id IS NOT NULL {from_records}
        ),
        device_votes AS (
            SELECT device_id, person_id, count(*) AS votes FROM evidence
            WHERE device_id IS NOT NULL AND person_id IS NOT NULL
                AND NOT list_contains($1::VARCHAR[], device_id)
            GROUP BY device_id, person_id
        ),
        device_top AS (
            SELECT device_id, count(*) AS persons, max(votes) AS top FROM device_votes
            GROUP BY device_id
        ),
        devices AS (
            SELECT v.device_id AS key, t.persons,
                CASE WHEN t.persons <= {settings.max_persons_per_device} AND count(*) = 1
                    THEN min(v.person_id) END AS person_id
            FROM device_votes v JOIN device_top t
                ON t.device_id = v.device_id AND v.votes = t.top
            GROUP BY v.device_id, t.persons
        )
        SELECT 'session' AS rule, * FROM sessions
        UNION ALL SELECT 'cookie' AS rule, * FROM cookies
        UNION ALL SELECT 'device' AS rule, * FROM devices"""


def _decide_sql(scratch: dict[str, str], settings: StitchSettings) -> str:
    """Each event's person and rule: the strongest rule that names one person wins."""
    rules = settings.rules
    keys = quote(scratch["keys"])
    joins = "".join(
        f"\n LEFT JOIN {keys} k_{rule} "
        f"ON k_{rule}.rule = '{rule}' AND k_{rule}.key = w.{RULE_KEYS[rule]}"
        for rule in rules
    )
    flags = "".join(
        f", k_{rule}.person_id AS {rule}_person, k_{rule}.key AS {rule}_key, "
        f"(k_{rule}.key IS NOT NULL AND k_{rule}.person_id IS NULL) AS {rule}_conflict"
        for rule in rules
    )
    person_cases = ["WHEN login_person IS NOT NULL THEN login_person"]
    rule_cases = ["WHEN login_person IS NOT NULL THEN 'login'"]
    for index, rule in enumerate(rules):
        condition = f"{rule}_person IS NOT NULL"
        earlier = [f"{stronger}_conflict" for stronger in rules[:index]]
        if settings.conflict_stops and earlier:
            condition += " AND NOT (" + " OR ".join(earlier) + ")"
        person_cases.append(f"WHEN {condition} THEN {rule}_person")
        rule_cases.append(f"WHEN {condition} THEN '{rule}'")
    return f"""
        CREATE TEMP TABLE {quote(scratch["decided"])} AS
        WITH flagged AS (SELECT w.* {flags} FROM {quote(scratch["events"])} w {joins})
        SELECT *, CASE {" ".join(person_cases)} END AS person_id,
            CASE {" ".join(rule_cases)} END AS rule
        FROM flagged"""


def _report(store: AnalyticStore, decided: str, settings: StitchSettings) -> StitchReport:
    table = quote(decided)
    total, anonymous, attributed = store.execute(
        "SELECT count(*), count(*) FILTER (anonymous), "
        f"count(*) FILTER (anonymous AND person_id IS NOT NULL) FROM {table}"
    )[0]
    by_rule = dict.fromkeys(("login", *settings.rules), 0)
    for rule, count in store.execute(
        f"SELECT rule, count(*) FROM {table} WHERE rule IS NOT NULL GROUP BY rule"
    ):
        by_rule[str(rule)] = int(count)
    conflicts = dict.fromkeys(settings.rules, 0)
    if settings.rules:
        counted = ", ".join(
            f"count(DISTINCT {rule}_key) FILTER ({rule}_conflict)" for rule in settings.rules
        )
        row = store.execute(f"SELECT {counted} FROM {table} WHERE person_id IS NULL")[0]
        conflicts = {rule: int(n) for rule, n in zip(settings.rules, row, strict=True)}
    return StitchReport(
        events=int(total),
        anonymous_events=int(anonymous),
        attributed_anonymous=int(attributed),
        share_attributed=attributed / anonymous if anonymous else 0.0,
        by_rule=by_rule,
        conflicts=sum(conflicts.values()),
        conflicts_by_rule=conflicts,
        settings=settings.to_dict(),
    )


@contextmanager
def _registered(store: AnalyticStore, **frames: pd.DataFrame) -> Iterator[dict[str, str]]:
    """Frames visible to SQL under names of their own, for as long as the block runs."""
    tag = uuid.uuid4().hex[:12]
    names = {key: f"_stitch_{key}_{tag}" for key in frames}
    for key, frame in frames.items():
        store.connection.register(names[key], frame)
    try:
        yield names
    finally:
        for name in names.values():
            store.connection.unregister(name)


def evaluate_stitching(
    store: AnalyticStore,
    event_truth: pd.DataFrame,
    record_truth: pd.DataFrame,
    *,
    person_map: str = "person_map",
    stitched: str = "stitched_events",
    events: str = "events",
) -> dict[str, float]:
    """How right the stitching of anonymous events is, against known true persons.

    ``event_truth`` (event_id, person_id) and ``record_truth`` (source_system, source_id,
    person_id) hold true persons. A resolved person stands for the true person most of its
    records belong to (ties: the smallest id), so a resolver's merge errors count against the
    stitching only where they change who an event lands on. ``precision`` is right / attributed
    anonymous events; ``recall`` is right / anonymous events whose true person has any record
    (the others cannot be attributed by anyone). Undefined ratios are NaN.
    """
    truth = event_truth[["event_id", "person_id"]].astype("string")
    records = record_truth[["source_system", "source_id", "person_id"]].astype("string")
    per_rule = ", ".join(
        f"count(*) FILTER (rule = '{rule}') AS attributed_{rule}, "
        f"count(*) FILTER (rule = '{rule}' AND given = true_person) AS right_{rule}"
        for rule in WEAK_RULES
    )
    with _registered(store, event_truth=truth, record_truth=records) as name:
        row = store.frame(
            f"""
            WITH votes AS (
                SELECT m.person_id AS resolved, t.person_id AS true_person, count(*) AS n
                FROM {quote(person_map)} m JOIN {quote(name["record_truth"])} t
                    ON t.source_system = m.source_system AND t.source_id = m.source_id
                GROUP BY ALL
            ),
            majority AS (
                SELECT resolved, true_person FROM votes
                QUALIFY row_number() OVER (
                    PARTITION BY resolved ORDER BY n DESC, true_person) = 1
            ),
            anonymous AS (
                SELECT e.event_id, t.person_id AS true_person, s.rule, m.true_person AS given,
                    t.person_id IN (SELECT person_id FROM {quote(name["record_truth"])})
                        AS reachable
                FROM {quote(events)} e
                LEFT JOIN {quote(name["event_truth"])} t ON t.event_id = e.event_id
                LEFT JOIN {quote(stitched)} s ON s.event_id = e.event_id
                LEFT JOIN majority m ON m.resolved = s.person_id
                WHERE {_blank_is_null("customer_ref")} IS NULL
            )
            SELECT count(*) AS anonymous_events,
                count(rule) AS attributed_anonymous,
                count(*) FILTER (reachable) AS reachable_anonymous,
                count(*) FILTER (given = true_person) AS right_anonymous,
                {per_rule}
            FROM anonymous"""
        ).iloc[0]
    counts = {str(key): int(value) for key, value in row.items()}
    metrics: dict[str, float] = {
        "anonymous_events": float(counts["anonymous_events"]),
        "attributed_anonymous": float(counts["attributed_anonymous"]),
        "attributed_share": _ratio(counts["attributed_anonymous"], counts["anonymous_events"]),
        "precision": _ratio(counts["right_anonymous"], counts["attributed_anonymous"]),
        "recall": _ratio(counts["right_anonymous"], counts["reachable_anonymous"]),
        "reachable_anonymous": float(counts["reachable_anonymous"]),
    }
    for rule in WEAK_RULES:
        metrics[f"attributed_{rule}"] = float(counts[f"attributed_{rule}"])
        metrics[f"precision_{rule}"] = _ratio(counts[f"right_{rule}"], counts[f"attributed_{rule}"])
    return metrics


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan
