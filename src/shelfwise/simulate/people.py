"""True persons: who each customer really is, before any source system writes them down.

Names come from Faker's en_US name lists (with their frequencies), drawn by numpy so that a
100k-person call stays vectorised and the seed alone decides every value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shelfwise.simulate._frames import hex_ids, json_records, masked
from shelfwise.simulate.noise import NICKNAMES, STREET_SUFFIXES

REFERENCE_DATE = pd.Timestamp("2017-01-01")
EMAIL_DOMAINS: dict[str, float] = {
    "gmail.com": 0.42,
    "yahoo.com": 0.17,
    "hotmail.com": 0.10,
    "outlook.com": 0.08,
    "aol.com": 0.07,
    "icloud.com": 0.07,
    "comcast.net": 0.09,
}
# First octets of address blocks that US broadband providers hand to homes.
HOME_IP_BLOCKS = (24, 50, 67, 68, 69, 71, 73, 75, 76, 96, 97, 98, 99, 107, 108, 173, 174)
_AGE_BAND = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)|\+)\s*$")

PEOPLE_COLUMNS = (
    "person_id", "household_id", "sex", "first_name", "nickname", "last_name",
    "date_of_birth", "email", "mobile", "landline", "address_line", "city", "state",
    "postcode", "country", "previous_address_line", "previous_city", "previous_state",
    "previous_postcode", "loyalty_id", "device_ids", "home_ip", "attributes",
)  # fmt: skip


@dataclass(frozen=True)
class PeopleConfig:
    """Shares that shape the simulated population.

    ``household_share`` of persons live with one or two others: they share the address, the
    home IP, often the last name, the landline (``household_landline_share``) and sometimes a
    family tablet (``family_device_share``).
    """

    nicknameable_share: float = 0.35
    household_share: float = 0.12
    household_shared_last_name: float = 0.7
    household_landline_share: float = 0.8
    single_landline_share: float = 0.15
    family_device_share: float = 0.3
    extra_device_probability: float = 0.35
    apartment_share: float = 0.15
    same_city_move_share: float = 0.7


def simulate_people(
    person_ids: Sequence[str],
    seed: int,
    *,
    attributes: pd.DataFrame | None = None,
    config: PeopleConfig | None = None,
) -> pd.DataFrame:
    """One true person per id, with the identifiers source systems later write down.

    ``attributes`` (optional) has a ``person_id`` column, or is indexed by person id; its other
    columns become each person's ``attributes`` JSON, and an ``age`` column of bands such as
    ``"45-54"`` or ``"65+"`` bounds the date of birth (ages on 2017-01-01).

    Columns: :data:`PEOPLE_COLUMNS`. ``mobile`` and ``landline`` are +1 E.164 numbers;
    ``device_ids`` is a tuple whose first device is the person's phone (where the loyalty app
    runs); ``previous_*`` is the address the person lived at before.
    """
    config = config or PeopleConfig()
    ids = pd.Series(list(person_ids), dtype="string")
    if ids.isna().any() or ids.duplicated().any():
        raise ValueError("person_ids must be distinct and not missing")
    rng = np.random.default_rng(seed)
    n = len(ids)
    household = _households(rng, n, config.household_share)
    n_households = int(household.max()) + 1 if n else 0
    sex = np.where(rng.random(n) < 0.5, "F", "M").astype(object)
    first, nickname = _given_names(rng, sex, config.nicknameable_share)
    last = _last_names(rng, n, household, config.household_shared_last_name)
    extra = _attributes(ids, attributes)
    dob = _dates_of_birth(rng, n, extra.get("age"))
    email = _emails(rng, first, last)
    numbers = _phone_numbers(rng, n + n_households)
    has_landline = rng.random(n_households) < np.where(
        np.bincount(household, minlength=n_households) > 1,
        config.household_landline_share,
        config.single_landline_share,
    )
    landline = masked(has_landline, numbers[n:])[household]
    cities = _city_pool(rng, max(40, n // 50))
    home = _addresses(rng, n_households, cities, config.apartment_share)
    before = _addresses(rng, n, cities, config.apartment_share)
    stay = rng.random(n) < config.same_city_move_share
    for part in ("city", "state", "postcode"):
        before[part] = np.where(stay, home[part][household], before[part])
    loyalty = 400_000_000_000 + rng.choice(99_999_999_999, size=n, replace=False)
    frame = pd.DataFrame(
        {
            "person_id": ids,
            "household_id": pd.Series(_household_ids(rng, household), dtype="string"),
            "sex": sex,
            "first_name": first,
            "nickname": nickname,
            "last_name": last,
            "date_of_birth": dob,
            "email": email,
            "mobile": numbers[:n],
            "landline": landline,
            "address_line": home["address_line"][household],
            "city": home["city"][household],
            "state": home["state"][household],
            "postcode": home["postcode"][household],
            "country": "US",
            "previous_address_line": before["address_line"],
            "previous_city": before["city"],
            "previous_state": before["state"],
            "previous_postcode": before["postcode"],
            "loyalty_id": loyalty.astype(str).astype(object),
            "device_ids": _devices(rng, household, config),
            "home_ip": _ips(rng, n_households)[household],
            "attributes": json_records(extra.drop(columns="person_id")),
        }
    )
    for column in PEOPLE_COLUMNS:
        if column not in ("date_of_birth", "device_ids"):
            frame[column] = frame[column].astype("string")
    return frame


def _households(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """Household number per person: groups of 2-3 over ``share`` of persons, others alone."""
    order = rng.permutation(n)
    grouped = round(share * n)
    sizes = rng.choice([2, 3], size=grouped // 2 + 1, p=[0.75, 0.25])
    sizes = sizes[np.cumsum(sizes) <= grouped]
    n_grouped = int(sizes.sum())
    household = np.empty(n, dtype=np.int64)
    household[order[:n_grouped]] = np.repeat(np.arange(sizes.size), sizes)
    household[order[n_grouped:]] = sizes.size + np.arange(n - n_grouped)
    return household


def _household_ids(rng: np.random.Generator, household: np.ndarray) -> np.ndarray:
    labels = rng.permutation(int(household.max()) + 1 if household.size else 0)
    return np.array([f"HH{labels[h]:07d}" for h in household], dtype=object)


def _weighted(names: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    values = np.array(list(names), dtype=object)
    weights = np.array(list(names.values()), dtype=float)
    return values, weights / weights.sum()


def _given_names(
    rng: np.random.Generator, sex: np.ndarray, nicknameable: float
) -> tuple[np.ndarray, np.ndarray]:
    from faker.providers.person.en_US import Provider

    first = np.empty(sex.size, dtype=object)
    nickname = np.full(sex.size, None, dtype=object)
    for code, pool in (("F", Provider.first_names_female), ("M", Provider.first_names_male)):
        rows = np.flatnonzero(sex == code)
        values, weights = _weighted(pool)
        first[rows] = rng.choice(values, size=rows.size, p=weights)
        formal = [name for name, (s, _) in NICKNAMES.items() if s == code]
        chosen = rows[rng.random(rows.size) < nicknameable]
        first[chosen] = rng.choice(np.array(formal, dtype=object), size=chosen.size)
        for row in chosen:
            options = NICKNAMES[first[row]][1]
            nickname[row] = options[int(rng.integers(len(options)))]
    return first, nickname


def _last_names(
    rng: np.random.Generator, n: int, household: np.ndarray, shared: float
) -> np.ndarray:
    from faker.providers.person.en_US import Provider

    values, weights = _weighted(Provider.last_names)
    own = rng.choice(values, size=n, p=weights)
    head = np.full(int(household.max()) + 1 if n else 0, -1)
    head[household[::-1]] = np.arange(n)[::-1]
    return np.where(rng.random(n) < shared, own[head[household]], own)


def _attributes(ids: pd.Series, attributes: pd.DataFrame | None) -> pd.DataFrame:
    if attributes is None:
        return pd.DataFrame({"person_id": ids})
    given = attributes if "person_id" in attributes else attributes.rename_axis("person_id")
    given = given.reset_index() if "person_id" not in given else given.copy()
    given["person_id"] = given["person_id"].astype("string")
    if given["person_id"].duplicated().any():
        raise ValueError("attributes: person_id repeats")
    return pd.DataFrame({"person_id": ids}).merge(given, on="person_id", how="left")


def _dates_of_birth(rng: np.random.Generator, n: int, bands: pd.Series | None) -> np.ndarray:
    """Birth dates whose age on :data:`REFERENCE_DATE` lies in each person's band."""
    low = np.full(n, -1)
    high = np.full(n, -1)
    if bands is not None:
        for i, band in enumerate(bands.astype("string").fillna("")):
            match = _AGE_BAND.match(band)
            if match:
                low[i] = int(match[1])
                high[i] = int(match[2]) + 1 if match[2] else 90
    unknown = low < 0
    low = np.where(unknown, 18 + rng.integers(0, 9, size=n) * 7, low)
    high = np.where(unknown, low + 7, high)
    # Born from (year - high)-01-02 to (year - low)-01-01: aged low .. high-1 on January 1st.
    year = REFERENCE_DATE.year
    earliest = _january_first(year - high) + np.timedelta64(1, "D")
    latest = _january_first(year - low)
    span = (latest - earliest).astype(np.int64)
    days = (rng.random(n) * (span + 1)).astype(np.int64)
    born: np.ndarray = (earliest + days.astype("timedelta64[D]")).astype("datetime64[ns]")
    return born


def _january_first(years: np.ndarray) -> np.ndarray:
    return (years - 1970).astype("datetime64[Y]").astype("datetime64[D]")


def _emails(rng: np.random.Generator, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    letters = {name: re.sub(r"[^a-z]", "", name.lower()) for name in {*first, *last}}
    f = np.array([letters[name] for name in first], dtype=object)
    s = np.array([letters[name] for name in last], dtype=object)
    k = rng.integers(1, 99, size=first.size).astype(str).astype(object)
    initial = np.array([name[:1] for name in f], dtype=object)
    patterns = (f + "." + s, f + s, initial + s, f + "_" + s, f + "." + s + k, f + s + k)
    local = np.choose(rng.integers(0, len(patterns), size=first.size), patterns)
    domains, weights = _weighted(EMAIL_DOMAINS)
    email = pd.Series(local + "@" + rng.choice(domains, size=first.size, p=weights))
    while (repeated := email.duplicated()).any():
        suffix = rng.integers(100, 999, size=int(repeated.sum())).astype(str)
        parts = email[repeated].str.split("@", n=1, expand=True)
        email[repeated] = parts[0] + suffix + "@" + parts[1]
    return email.to_numpy(dtype=object)


def _phone_numbers(rng: np.random.Generator, size: int) -> np.ndarray:
    """Distinct +1 numbers with valid-looking area codes and exchanges (no N11, no 555)."""
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < size:
        k = size - chosen.size + 16
        area = rng.integers(2, 10, k) * 100 + rng.integers(0, 9, k) * 10 + rng.integers(0, 10, k)
        exchange = rng.integers(200, 1000, k)
        ok = (area % 100 != 11) & (exchange % 100 != 11) & (exchange != 555)
        number = (area * 10_000_000 + exchange * 10_000 + rng.integers(0, 10_000, k))[ok]
        chosen = pd.unique(np.concatenate([chosen, number]))
    return np.array([f"+1{n}" for n in chosen[:size].tolist()], dtype=object)


def _city_pool(rng: np.random.Generator, size: int) -> pd.DataFrame:
    from faker.providers.address.en_US import Provider as Address
    from faker.providers.person.en_US import Provider as Person

    states = [s for s in Address.states_postcode if s in Address.states_abbr]
    state = rng.choice(np.array(states, dtype=object), size=size)
    low = np.array([Address.states_postcode[s][0] for s in state])
    high = np.array([Address.states_postcode[s][1] for s in state])
    base = low + (rng.random(size) * np.maximum(high - low - 30, 1)).astype(np.int64)
    prefix = rng.choice(np.array(Address.city_prefixes, dtype=object), size=size)
    suffix = rng.choice(np.array(Address.city_suffixes, dtype=object), size=size)
    stem = rng.choice(np.array(list(Person.last_names), dtype=object), size=size)
    with_prefix = rng.random(size) < 0.35
    name = np.where(with_prefix, prefix + " " + stem, stem + suffix)
    return pd.DataFrame({"city": name, "state": state, "zip_base": base})


def _addresses(
    rng: np.random.Generator, size: int, cities: pd.DataFrame, apartment_share: float
) -> dict[str, np.ndarray]:
    from faker.providers.person.en_US import Provider as Person

    city = rng.integers(0, len(cities), size=size)
    street = rng.choice(np.array(list(Person.last_names)[:400], dtype=object), size=size)
    suffix = rng.choice(np.array(list(STREET_SUFFIXES), dtype=object), size=size)
    number = np.exp(rng.uniform(0, np.log(9999), size=size)).astype(np.int64) + 1
    line = number.astype(str).astype(object) + " " + street + " " + suffix
    apartment = " Apt " + rng.integers(1, 40, size=size).astype(str).astype(object)
    lines = np.where(rng.random(size) < apartment_share, line + apartment, line)
    zips = (cities["zip_base"].to_numpy()[city] + rng.integers(0, 30, size=size)).tolist()
    return {
        "address_line": lines,
        "city": cities["city"].to_numpy()[city],
        "state": cities["state"].to_numpy()[city],
        "postcode": np.array([f"{z:05d}" for z in zips], dtype=object),
    }


def _devices(rng: np.random.Generator, household: np.ndarray, config: PeopleConfig) -> pd.Series:
    n = household.size
    count = 1 + rng.binomial(2, config.extra_device_probability, size=n)
    n_households = int(household.max()) + 1 if n else 0
    ids = hex_ids(rng, int(count.sum()) + n_households)
    starts = np.cumsum(count) - count
    family = ids[int(count.sum()) :]
    members = np.bincount(household, minlength=n_households)
    shares = (rng.random(n_households) < config.family_device_share) & (members > 1)
    shared = masked(shares, family)[household].tolist()
    ids = ids.tolist()
    devices = [
        (*ids[s : s + c], f) if f is not None else tuple(ids[s : s + c])
        for s, c, f in zip(starts.tolist(), count.tolist(), shared, strict=True)
    ]
    return pd.Series(devices, dtype=object)


def _ips(rng: np.random.Generator, size: int) -> np.ndarray:
    chosen = np.empty(0, dtype=object)
    while chosen.size < size:
        k = size - chosen.size + 8
        parts = [
            rng.choice(np.array(HOME_IP_BLOCKS), size=k),
            rng.integers(0, 256, size=k),
            rng.integers(0, 256, size=k),
            rng.integers(1, 255, size=k),
        ]
        text = [p.astype(str).astype(object) for p in parts]
        fresh = text[0] + "." + text[1] + "." + text[2] + "." + text[3]
        chosen = pd.unique(np.concatenate([chosen, fresh]))
    return np.asarray(chosen[:size], dtype=object)
