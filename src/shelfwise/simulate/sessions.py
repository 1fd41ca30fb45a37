"""Browsing sessions of the simulated persons: the events an identity stitcher sees.

A session is one device. Some sessions are logged in from the start, some log in part-way (the
events before the login are anonymous but share the session, the device and the cookie: the
signal that stitches them), and some never log in. A cookie (``anonymous_id``) lives on a device
across sessions until it is cleared. Shop kiosks and the shops' Wi-Fi are in many persons'
sessions: traps for a stitcher that trusts a device or an IP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shelfwise.simulate._frames import (
    contract_frame,
    hex_ids,
    masked,
    numbered,
    objects,
    random_times,
    to_ns,
)
from shelfwise.simulate.fragmentation import FragmentedCustomers
from shelfwise.simulate.sources import KIOSK_DEVICE_IDS, SHOP_WIFI_IPS, ZERO_IP

BROWSE_EVENTS = ("view", "click", "search", "add_to_cart", "remove_from_cart")
BROWSE_WEIGHTS = (0.48, 0.2, 0.12, 0.15, 0.05)
SEARCH_TERMS = (
    "milk", "bread", "eggs", "coffee", "organic bananas", "cheddar", "pasta", "yogurt",
    "chicken breast", "cereal", "orange juice", "frozen pizza", "diapers", "shampoo",
)  # fmt: skip
# Mobile carriers' address blocks (apart from the home broadband blocks).
CARRIER_IP_BLOCKS = (166, 172, 208)


@dataclass(frozen=True)
class SessionConfig:
    """Shares that shape sessions; every one is a probability per session unless named per event.

    ``partial_login`` of the sessions that can log in (the person has an account in that
    system) log in part-way; others are logged in throughout or never, in the proportion that
    brings the share of anonymous events to the caller's ``anonymous_share``.
    """

    partial_login: float = 0.3
    kiosk: float = 0.04
    shop_wifi: float = 0.06
    zero_ip: float = 0.02
    mobile_network: float = 0.3
    cookie_reset: float = 0.15
    app_on_phone: float = 0.7
    mean_events: float = 6.0
    preferred: float = 0.7
    purchase: float = 0.3
    seconds_between_events: float = 40.0
    start: str = "2016-01-01"
    end: str = "2018-01-01"
    shop_wifi_ips: tuple[str, ...] = SHOP_WIFI_IPS
    kiosk_device_ids: tuple[str, ...] = KIOSK_DEVICE_IDS


@dataclass(frozen=True)
class SimulatedSessions:
    """``events`` is an ``events`` contract frame; ``truth`` maps each event_id to its person."""

    events: pd.DataFrame
    truth: pd.DataFrame


def simulate_sessions(
    people: pd.DataFrame,
    customers: FragmentedCustomers,
    seed: int,
    *,
    sessions_per_person: float = 4.0,
    anonymous_share: float = 0.63,
    skus: Sequence[str] | None = None,
    preferred_skus: Mapping[str, Sequence[str]] | None = None,
    prices: Mapping[str, float] | None = None,
    config: SessionConfig | None = None,
) -> SimulatedSessions:
    """Sessions of ``people`` on the web shop and the loyalty app, about ``sessions_per_person``
    each (more for some persons than others), with ``anonymous_share`` of events anonymous.

    The share is met as nearly as the accounts allow: a session whose person has no account in
    its system cannot log in, which puts a floor under it (about 0.28 with the default
    fragmentation).

    Logged-in events carry the ``customer_ref`` of the person's web_shop or loyalty_app record
    in ``customers``. Product events draw their sku from ``preferred_skus[person_id]`` (when
    given) with probability ``config.preferred``, else from ``skus`` (default: ``SKU-00001`` ..
    ``SKU-00200``); ``prices`` (optional) gives each sku's price.
    """
    config = config or SessionConfig()
    if not 0.0 <= anonymous_share <= 1.0:
        raise ValueError("anonymous_share must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    people = people.reset_index(drop=True)
    catalogue = np.array(
        list(skus) if skus is not None else [f"SKU-{i:05d}" for i in range(1, 201)], dtype=object
    )
    activity = rng.gamma(2.0, 0.5, size=len(people))
    person = np.repeat(np.arange(len(people)), rng.poisson(sessions_per_person * activity))
    s = _sessions(people, customers, person, rng, config)
    browse = 1 + rng.geometric(1.0 / config.mean_events, size=person.size)
    login_at = _logins(s["account"], browse, anonymous_share, rng, config)
    return _events(
        people, person, s, browse, login_at, catalogue, preferred_skus, prices, rng, config
    )


def _sessions(
    people: pd.DataFrame,
    customers: FragmentedCustomers,
    person: np.ndarray,
    rng: np.random.Generator,
    config: SessionConfig,
) -> dict[str, np.ndarray]:
    n = person.size
    devices = people["device_ids"].to_numpy()[person]
    which = (rng.random(n) * np.array([len(d) for d in devices])).astype(np.int64)
    kiosk = rng.random(n) < config.kiosk
    kiosks = np.array(config.kiosk_device_ids, dtype=object)
    device = np.array([d[i] for d, i in zip(devices, which.tolist(), strict=True)], dtype=object)
    device[kiosk] = kiosks[rng.integers(kiosks.size, size=int(kiosk.sum()))]
    refs = _accounts(people, customers)
    on_phone = (which == 0) & ~kiosk
    # On their phone, app users mostly open the app; the web shop takes every other session.
    prefer_app = rng.random(n) < config.app_on_phone
    system = np.full(n, "web_shop", dtype=object)
    account = np.full(n, None, dtype=object)
    draw = rng.random(n)
    for i, p in enumerate(person.tolist()):
        app, web = refs.get((p, "loyalty_app"), []), refs.get((p, "web_shop"), [])
        options = web
        if on_phone[i] and app and (prefer_app[i] or not web):
            system[i], options = "loyalty_app", app
        if options:
            account[i] = options[int(draw[i] * len(options))]
    start = random_times(rng, n, pd.Timestamp(config.start), pd.Timestamp(config.end))
    return {
        "device": device,
        "kiosk": kiosk,
        "system": system,
        "account": account,
        "start": start,
        "ip": _ips(people, person, kiosk, on_phone, rng, config),
        "anonymous_id": _cookies(person, device, kiosk, start, rng, config.cookie_reset),
        "session_id": hex_ids(rng, n),
    }


def _accounts(
    people: pd.DataFrame, customers: FragmentedCustomers
) -> dict[tuple[int, str], list[str]]:
    """(person row, system) -> the person's source ids there (duplicate accounts included)."""
    position = pd.Series(np.arange(len(people)), index=people["person_id"].astype(str))
    truth = customers.truth[customers.truth["source_system"].isin(["web_shop", "loyalty_app"])]
    refs: dict[tuple[int, str], list[str]] = {}
    for system, source_id, person_id in truth.itertuples(index=False):
        row = position.get(str(person_id))
        if row is not None:
            refs.setdefault((int(row), str(system)), []).append(str(source_id))
    return refs


def _ips(
    people: pd.DataFrame,
    person: np.ndarray,
    kiosk: np.ndarray,
    on_phone: np.ndarray,
    rng: np.random.Generator,
    config: SessionConfig,
) -> np.ndarray:
    n = person.size
    ip: np.ndarray = objects(people["home_ip"])[person]
    draw = rng.random(n)
    wifi = np.array(config.shop_wifi_ips, dtype=object)
    at_shop = kiosk | (draw < config.shop_wifi)
    ip[at_shop] = wifi[rng.integers(wifi.size, size=int(at_shop.sum()))]
    zero = ~at_shop & (draw < config.shop_wifi + config.zero_ip)
    ip[zero] = ZERO_IP
    away = ~at_shop & ~zero & on_phone & (rng.random(n) < config.mobile_network)
    octets = rng.integers(0, 256, size=(int(away.sum()), 3)).astype(str).astype(object)
    block = rng.choice(np.array(CARRIER_IP_BLOCKS), size=int(away.sum())).astype(str)
    ip[away] = block.astype(object) + "." + octets[:, 0] + "." + octets[:, 1] + "." + octets[:, 2]
    return ip


def _cookies(
    person: np.ndarray,
    device: np.ndarray,
    kiosk: np.ndarray,
    start: np.ndarray,
    rng: np.random.Generator,
    reset: float,
) -> np.ndarray:
    """A cookie lives on a device until cleared; kiosks clear theirs after every session."""
    order = np.lexsort((start, device, person))
    same_device = np.zeros(person.size, dtype=bool)
    same_device[1:] = (person[order][1:] == person[order][:-1]) & (
        device[order][1:] == device[order][:-1]
    )
    fresh = ~same_device | kiosk[order] | (rng.random(person.size) < reset)
    cookie = np.cumsum(fresh) - 1
    ids = hex_ids(rng, int(fresh.sum()), digits=32)
    anonymous_id = np.empty(person.size, dtype=object)
    anonymous_id[order] = ids[cookie]
    return anonymous_id


def _logins(
    account: np.ndarray,
    browse: np.ndarray,
    anonymous_share: float,
    rng: np.random.Generator,
    config: SessionConfig,
) -> np.ndarray:
    """Position of the login among a session's events: 0 first, k after k anonymous events,
    -1 never.

    Logged-in sessions are made anonymous until ``anonymous_share`` of events are; below the
    share that sessions without an account already make, partial logins become whole ones.
    """
    n = account.size
    can = np.array([a is not None for a in account], dtype=bool)
    login_at = np.full(n, -1, dtype=np.int64)
    partial = can & (browse >= 2) & (rng.random(n) < config.partial_login)
    login_at[partial] = 1 + (rng.random(int(partial.sum())) * (browse[partial] - 1)).astype(int)
    whole = np.flatnonzero(can & ~partial)
    login_at[whole] = 0
    total = browse.sum() + partial.sum() + whole.size
    anonymous = browse[~can].sum() + login_at[partial].sum()
    needed = anonymous_share * total - anonymous
    # Whole logins first, partial ones only if that is not enough.
    shuffled = np.concatenate([rng.permutation(whole), rng.permutation(np.flatnonzero(partial))])
    # A session made anonymous adds its identified browse events and loses its login event:
    # after k of them, anonymous + gained_k >= share * (total - k) is the stopping rule.
    gain = browse[shuffled] - login_at[shuffled]
    gained = np.cumsum(gain) + anonymous_share * np.arange(1, shuffled.size + 1)
    take = int(np.searchsorted(gained, needed)) + 1 if needed > 0 else 0
    login_at[shuffled[:take]] = -1
    if needed < 0:
        # Logging in at the start of a partial session removes its anonymous prefix.
        earlier = rng.permutation(np.flatnonzero(partial))
        removed = np.cumsum(login_at[earlier])
        login_at[earlier[: int(np.searchsorted(removed, -needed)) + 1]] = 0
    return login_at


def _events(
    people: pd.DataFrame,
    person: np.ndarray,
    s: dict[str, np.ndarray],
    browse: np.ndarray,
    login_at: np.ndarray,
    catalogue: np.ndarray,
    preferred_skus: Mapping[str, Sequence[str]] | None,
    prices: Mapping[str, float] | None,
    rng: np.random.Generator,
    config: SessionConfig,
) -> SimulatedSessions:
    count = browse + (login_at >= 0)
    session = np.repeat(np.arange(person.size), count)
    first = (np.cumsum(count) - count).astype(np.int64)
    position = np.arange(session.size) - first[session]
    login = login_at[session]
    kind = rng.choice(np.array(BROWSE_EVENTS, dtype=object), size=session.size, p=BROWSE_WEIGHTS)
    kind[position == login] = "login"
    identified = (login >= 0) & (position >= login)
    sku = _skus(people, person[session], kind, catalogue, preferred_skus, rng, config)
    quantity = np.where(
        np.isin(kind, ("add_to_cart", "remove_from_cart")),
        1.0 + rng.poisson(0.4, session.size),
        np.nan,
    )
    _checkouts(kind, sku, quantity, session, position, count, rng, config.purchase)
    gap = 1 + rng.exponential(config.seconds_between_events, size=session.size).astype(np.int64)
    gap[first] = 0
    elapsed = np.cumsum(gap) - np.cumsum(gap)[first][session]
    occurred = s["start"][session] + elapsed.astype("timedelta64[s]")
    order = np.lexsort((position, s["session_id"][session], occurred))
    event_id = numbered("ev-", np.arange(1, session.size + 1), 10)
    price = np.array(
        [np.nan if k is None or prices is None else prices.get(k, np.nan) for k in sku], dtype=float
    )
    values = {
        "event_id": event_id,
        "occurred_at": to_ns(occurred[order]),
        "source_system": s["system"][session][order],
        "event_type": kind[order],
        "customer_ref": masked(identified, s["account"][session])[order],
        "anonymous_id": s["anonymous_id"][session][order],
        "session_id": s["session_id"][session][order],
        "device_id": s["device"][session][order],
        "ip": s["ip"][session][order],
        "sku": sku[order],
        "quantity": quantity[order],
        "price": price[order],
        "context": _contexts(kind, s["system"][session], position, rng)[order],
    }
    events = contract_frame("events", values, session.size)
    truth = pd.DataFrame(
        {"event_id": event_id, "person_id": people["person_id"].to_numpy()[person[session]][order]},
        dtype="string",
    )
    return SimulatedSessions(events, truth)


def _skus(
    people: pd.DataFrame,
    person: np.ndarray,
    kind: np.ndarray,
    catalogue: np.ndarray,
    preferred_skus: Mapping[str, Sequence[str]] | None,
    rng: np.random.Generator,
    config: SessionConfig,
) -> np.ndarray:
    """Product events mostly show what the person likes, otherwise anything in the catalogue."""
    product = np.isin(kind, ("view", "click", "add_to_cart", "remove_from_cart"))
    sku = np.full(kind.size, None, dtype=object)
    sku[product] = catalogue[rng.integers(catalogue.size, size=int(product.sum()))]
    if preferred_skus:
        favourites = [list(preferred_skus.get(str(p), ())) for p in people["person_id"].astype(str)]
        draw = rng.random(kind.size)
        for i in np.flatnonzero(product & (rng.random(kind.size) < config.preferred)):
            liked = favourites[person[i]]
            if liked:
                sku[i] = liked[int(draw[i] * len(liked))]
    return sku


def _checkouts(
    kind: np.ndarray,
    sku: np.ndarray,
    quantity: np.ndarray,
    session: np.ndarray,
    position: np.ndarray,
    count: np.ndarray,
    rng: np.random.Generator,
    purchase: float,
) -> None:
    """Some sessions that added to the cart end in buying the last item added."""
    added = np.flatnonzero(kind == "add_to_cart")
    last_added = pd.Series(added).groupby(session[added]).max()
    last_event = np.cumsum(count)[last_added.index.to_numpy()] - 1
    buys = (
        (last_added.to_numpy() < last_event)
        & (kind[last_event] != "login")
        & (rng.random(last_event.size) < purchase)
    )
    chosen, source = last_event[buys], last_added.to_numpy()[buys]
    kind[chosen] = "purchase"
    sku[chosen] = sku[source]
    quantity[chosen] = quantity[source]


def _contexts(
    kind: np.ndarray, system: np.ndarray, position: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    terms = [json.dumps({"query": t}) for t in SEARCH_TERMS]
    query = rng.integers(len(terms), size=kind.size)
    slot = rng.integers(1, 25, size=kind.size)
    pages = {
        "view": '{"page": "product"}',
        "add_to_cart": '{"page": "product"}',
        "remove_from_cart": '{"page": "cart"}',
        "purchase": '{"page": "checkout"}',
    }
    out = np.empty(kind.size, dtype=object)
    for i, (k, sys) in enumerate(zip(kind, system, strict=True)):
        if k == "search":
            out[i] = terms[query[i]]
        elif k == "click":
            out[i] = f'{{"page": "listing", "position": {slot[i]}}}'
        elif k == "login":
            out[i] = '{"method": "app"}' if sys == "loyalty_app" else '{"method": "password"}'
        else:
            out[i] = pages[k]
    return out
