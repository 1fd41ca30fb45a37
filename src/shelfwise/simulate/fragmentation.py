"""Scattering true persons over source systems: the customer_records an identity linker sees.

Every record knows its person (``truth``) and every corruption applied to it (``noise``), so a
linker's mistakes can be traced to the noise that caused them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shelfwise.simulate._frames import (
    SECONDS_PER_DAY,
    contract_frame,
    masked,
    numbered,
    objects,
    random_times,
    seconds,
    to_ns,
)
from shelfwise.simulate.corruption import corrupt
from shelfwise.simulate.people import EMAIL_DOMAINS, simulate_people
from shelfwise.simulate.sources import (
    ADDRESS_FIELDS,
    PERSON_FIELDS,
    FragmentationConfig,
    SourceSystem,
)

NOISE_COLUMNS = ("source_system", "source_id", "column", "kind")
TRUTH_COLUMNS = ("source_system", "source_id", "person_id")
_MEAN_DAYS_TO_UPDATE = 90.0


@dataclass(frozen=True)
class FragmentedCustomers:
    """Customer records of many systems, who each one really is, and what corrupted it.

    ``records`` is a ``customer_records`` contract frame; ``truth`` maps (source_system,
    source_id) to person_id; ``noise`` has one row per corruption (source_system, source_id,
    column, kind), kind being a rate name of :class:`FragmentationConfig`.
    """

    records: pd.DataFrame
    truth: pd.DataFrame
    noise: pd.DataFrame


def fragment_customers(
    people: pd.DataFrame, seed: int, config: FragmentationConfig | None = None
) -> FragmentedCustomers:
    """Write each person into a random subset of source systems, with realistic noise.

    A person has an account in each system with that system's ``presence`` probability (at
    least one account: a person with none is given one, drawn by presence), and a second,
    duplicate account there with probability ``config.duplicate``.
    """
    config = config or FragmentationConfig()
    rng = np.random.default_rng(seed)
    people = people.reset_index(drop=True)
    presence = np.array([s.presence for s in config.systems])
    member = rng.random((len(people), presence.size)) < presence
    alone = np.flatnonzero(~member.any(axis=1))
    member[alone, rng.choice(presence.size, size=alone.size, p=presence / presence.sum())] = True
    person, system = np.nonzero(member)
    twice = rng.random(person.size) < config.duplicate
    person = np.concatenate([person, person[twice]])
    system = np.concatenate([system, system[twice]])
    duplicate = np.concatenate([np.zeros(twice.size, bool), np.ones(int(twice.sum()), bool)])
    window = (pd.Timestamp(config.start), pd.Timestamp(config.end))
    return _write(people, person, system, duplicate, rng, config, window, {}, set())


def new_records(
    people: pd.DataFrame,
    existing: FragmentedCustomers,
    seed: int,
    *,
    share: float = 0.01,
    brand_new_share: float = 0.2,
    config: FragmentationConfig | None = None,
) -> FragmentedCustomers:
    """Fresh records arriving after ``existing``: ``share`` of its count, for incremental linking.

    ``brand_new_share`` of them belong to persons not in ``people`` (ids ``new-<seed>-<n>``,
    one record each); the others are new accounts of existing persons (a second account where
    they already have one). Source ids continue each system's numbering, so none repeats an
    existing one, and the records were all created after the latest existing update.
    """
    config = config or FragmentationConfig()
    rng = np.random.default_rng(seed)
    people = people.reset_index(drop=True)
    total = max(1, round(share * len(existing.records)))
    fresh = total if people.empty else round(total * brand_new_share)
    known_ids = {*people["person_id"].dropna(), *existing.truth["person_id"].dropna()}
    newcomers = _newcomers(people, known_ids, seed, fresh, rng)
    everyone = pd.concat([people, newcomers], ignore_index=True)
    person = np.concatenate(
        [rng.choice(len(people), size=total - fresh), len(people) + np.arange(fresh)]
    )
    presence = np.array([s.presence for s in config.systems])
    system = rng.choice(presence.size, size=total, p=presence / presence.sum())
    known = existing.truth.assign(
        system=existing.truth["source_system"].map(
            {s.name: i for i, s in enumerate(config.systems)}
        )
    )
    had = set(zip(known["person_id"], known["system"], strict=True))
    ids = everyone["person_id"].to_numpy()
    duplicate = np.array([(ids[p], s) in had for p, s in zip(person, system, strict=True)])
    numbers = existing.records["source_id"].str.extract(r"(\d+)$", expand=False).astype("Int64")
    start = {
        str(k): int(v) for k, v in numbers.groupby(existing.records["source_system"]).max().items()
    }
    updated = existing.records["updated_at"]
    latest = pd.Timestamp(updated.max() if len(updated) else config.end) + pd.Timedelta(seconds=1)
    taken = set(existing.records["loyalty_id"].dropna())
    window = (latest, latest + pd.Timedelta(days=30))
    return _write(everyone, person, system, duplicate, rng, config, window, start, taken)


def _newcomers(
    people: pd.DataFrame, known_ids: set[str], seed: int, size: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Persons unseen so far, none of whose identifiers belongs to an existing person."""
    ids = [f"new-{seed}-{i:06d}" for i in range(size)]
    if set(ids) & known_ids:
        raise ValueError(f"persons new-{seed}-<n> exist already: pass another seed")
    newcomers = simulate_people(ids, int(rng.integers(2**32)))
    # A brand-new person's mailbox must not be an existing person's (digits keep it apart).
    clash = newcomers["email"].isin(set(people["email"].dropna()))
    newcomers.loc[clash, "email"] = newcomers.loc[clash, "email"].str.replace("@", "7@", n=1)
    return newcomers


def _write(
    people: pd.DataFrame,
    person: np.ndarray,
    system: np.ndarray,
    duplicate: np.ndarray,
    rng: np.random.Generator,
    config: FragmentationConfig,
    window: tuple[pd.Timestamp, pd.Timestamp],
    start: dict[str, int],
    taken_loyalty: set[str],
) -> FragmentedCustomers:
    """Records for (person, system) pairs, numbered per system after ``start``."""
    n = person.size
    systems = config.systems
    keeps = {f: np.array([f in s.fields for s in systems])[system] for f in PERSON_FIELDS}
    cells = _TrueValues(people, person, rng).cells(
        system, systems, duplicate, taken_loyalty, config.duplicate_new_email
    )
    created, updated = _times(rng, n, window)
    log: list[tuple[int, str, str]] = []
    _move(cells, keeps, created, updated, people, person, rng, config, window, log)
    corrupt(cells, keeps, people, person, system, rng, config, log)
    names = np.array([s.name for s in systems], dtype=object)[system]
    source_id = np.empty(n, dtype=object)
    for i, spec in enumerate(systems):
        rows = np.flatnonzero(system == i)
        first = int(start.get(spec.name, 0)) + 1
        numbers = first + rng.permutation(rows.size)
        source_id[rows] = numbered(spec.id_prefix, numbers, spec.id_digits)
    values = {f: masked(keeps[f], cells[f]) for f in PERSON_FIELDS}
    order = np.lexsort((source_id, system))
    records = contract_frame(
        "customer_records",
        {
            "source_system": names[order],
            "source_id": source_id[order],
            **{f: v[order] for f, v in values.items()},
            "date_of_birth": pd.to_datetime(values["date_of_birth"][order]),
            "created_at": to_ns(created[order]),
            "updated_at": to_ns(updated[order]),
        },
        n,
    )
    truth = pd.DataFrame(
        {
            "source_system": names[order],
            "source_id": source_id[order],
            "person_id": people["person_id"].to_numpy()[person][order],
        },
        dtype="string",
    )
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    rows = np.array([r for r, _, _ in log], dtype=np.int64)
    listed = np.argsort(rank[rows], kind="stable")
    noise = pd.DataFrame(
        {
            "source_system": names[rows][listed],
            "source_id": source_id[rows][listed],
            "column": np.array([c for _, c, _ in log], dtype=object)[listed],
            "kind": np.array([k for _, _, k in log], dtype=object)[listed],
        },
        dtype="string",
    )
    return FragmentedCustomers(records, truth, noise)


class _TrueValues:
    """Each record's field values as its person really is, before any corruption."""

    def __init__(self, people: pd.DataFrame, person: np.ndarray, rng: np.random.Generator):
        self.people = people
        self.person = person
        self.rng = rng

    def column(self, name: str) -> np.ndarray:
        values: np.ndarray = objects(self.people[name])[self.person]
        return values

    def cells(
        self,
        system: np.ndarray,
        systems: tuple[SourceSystem, ...],
        duplicate: np.ndarray,
        taken_loyalty: set[str],
        new_email: float,
    ) -> dict[str, np.ndarray]:
        rng, n = self.rng, self.person.size
        cells = {f: self.column(f) for f in ("email", "first_name", "last_name", "loyalty_id")}
        cells |= {f: self.column(f) for f in ("address_line", "city", "postcode", "attributes")}
        cells["phone"] = self.column("mobile")
        cells["country"] = self.column("country")
        cells["date_of_birth"] = self.people["date_of_birth"].to_numpy()[self.person]
        cells["ip"] = self.column("home_ip")
        cells["full_name"] = np.full(n, None, dtype=object)
        # The loyalty app runs on the phone (the first device); the web shop on any of them.
        devices = self.people["device_ids"]
        count = devices.map(len).to_numpy()
        table = np.full((len(devices), int(count.max(initial=1))), None, dtype=object)
        for i, owned in enumerate(devices):
            table[i, : len(owned)] = owned
        app = np.array([s.name == "loyalty_app" for s in systems])[system]
        which = np.where(app, 0, (rng.random(n) * count[self.person]).astype(np.int64))
        cells["device_id"] = table[self.person, which]
        # A second account is often opened with another mailbox, and a second card is new.
        other = np.flatnonzero(duplicate & (rng.random(n) < new_email))
        cells["email"][other] = _other_emails(
            rng, cells["first_name"][other], cells["last_name"][other]
        )
        cards = np.flatnonzero(duplicate & app)
        cells["loyalty_id"][cards] = _new_cards(rng, cards.size, taken_loyalty)
        return cells


def _other_emails(rng: np.random.Generator, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """A second mailbox: four digits keep it apart from every person's own address."""
    domains = rng.choice(np.array(list(EMAIL_DOMAINS), dtype=object), size=first.size)
    digits = rng.integers(1000, 10_000, size=first.size).tolist()
    return np.array(
        [
            re.sub(r"[^a-z]", "", f"{f}{s}".lower()) + f"{k}@{d}"
            for f, s, k, d in zip(first, last, digits, domains, strict=True)
        ],
        dtype=object,
    )


def _new_cards(rng: np.random.Generator, size: int, taken: set[str]) -> np.ndarray:
    cards: list[str] = []
    while len(cards) < size:
        card = str(300_000_000_000 + int(rng.integers(99_999_999_999)))
        if card not in taken:
            taken.add(card)
            cards.append(card)
    return np.array(cards, dtype=object)


def _times(
    rng: np.random.Generator, n: int, window: tuple[pd.Timestamp, pd.Timestamp]
) -> tuple[np.ndarray, np.ndarray]:
    start, end = window
    created = random_times(rng, n, start, end)
    # Updated some weeks later; a record created near the end was updated before the end.
    left = (seconds(end) - created).astype(np.int64) - 1
    wait = rng.exponential(_MEAN_DAYS_TO_UPDATE * SECONDS_PER_DAY, size=n).astype(np.int64)
    wait = np.where(wait > left, (rng.random(n) * left).astype(np.int64), wait)
    return created, created + wait.astype("timedelta64[s]")


def _move(
    cells: dict[str, np.ndarray],
    keeps: dict[str, np.ndarray],
    created: np.ndarray,
    updated: np.ndarray,
    people: pd.DataFrame,
    person: np.ndarray,
    rng: np.random.Generator,
    config: FragmentationConfig,
    window: tuple[pd.Timestamp, pd.Timestamp],
    log: list[tuple[int, str, str]],
) -> None:
    """An older record still holds the address the person lived at before moving."""
    moved = np.flatnonzero(keeps["address_line"] & (rng.random(person.size) < config.moved))
    for field in ADDRESS_FIELDS:
        cells[field][moved] = people[f"previous_{field}"].to_numpy(dtype=object)[person[moved]]
    log.extend((int(r), "address_line", "moved") for r in moved)
    before = pd.Timestamp(config.moved_before)
    if before > window[0] + pd.Timedelta(days=60):
        created[moved], updated[moved] = _times(rng, moved.size, (window[0], before))
