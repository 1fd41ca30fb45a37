"""Sessions: anonymous share, partial logins that can be stitched, shared devices and IPs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pandas.testing import assert_frame_equal

from shelfwise.simulate import (
    FragmentationConfig,
    FragmentedCustomers,
    SimulatedSessions,
    simulate_sessions,
)

ContractCheck = Callable[[pd.DataFrame, str], None]
SHARED = FragmentationConfig()


def with_truth(sessions: SimulatedSessions) -> pd.DataFrame:
    return sessions.events.merge(sessions.truth, on="event_id", validate="1:1")


def test_events_are_contract_events(
    sessions: SimulatedSessions, assert_contract: ContractCheck
) -> None:
    assert_contract(sessions.events, "events")
    events = sessions.events
    assert events["session_id"].notna().all()
    assert events["anonymous_id"].notna().all()
    product = events["event_type"].isin(["view", "add_to_cart", "remove_from_cart", "purchase"])
    assert events.loc[product, "sku"].notna().all()
    assert events["context"].notna().all()
    assert events["occurred_at"].is_monotonic_increasing


def test_truth_covers_every_event(sessions: SimulatedSessions, people: pd.DataFrame) -> None:
    merged = sessions.events[["event_id"]].merge(
        sessions.truth, on="event_id", how="outer", indicator=True
    )
    assert (merged["_merge"] == "both").all()
    assert sessions.truth["person_id"].isin(people["person_id"]).all()


def test_anonymous_events_are_the_configured_share(
    sessions: SimulatedSessions, people: pd.DataFrame, customers: FragmentedCustomers
) -> None:
    assert abs(sessions.events["customer_ref"].isna().mean() - 0.63) < 0.01
    fewer = simulate_sessions(people.head(800), customers, seed=2, anonymous_share=0.4)
    assert abs(fewer.events["customer_ref"].isna().mean() - 0.4) < 0.015


def test_a_session_is_one_person_on_one_device(sessions: SimulatedSessions) -> None:
    per_session = (
        with_truth(sessions)
        .groupby("session_id")
        .agg(
            persons=("person_id", "nunique"),
            devices=("device_id", "nunique"),
            cookies=("anonymous_id", "nunique"),
            refs=("customer_ref", "nunique"),
            systems=("source_system", "nunique"),
        )
    )
    assert (per_session == 1).drop(columns="refs").all().all()
    assert (per_session["refs"] <= 1).all()


def test_logged_in_events_name_the_persons_own_account(
    sessions: SimulatedSessions, customers: FragmentedCustomers
) -> None:
    events = with_truth(sessions).dropna(subset=["customer_ref"])
    accounts = customers.truth.rename(
        columns={"source_id": "customer_ref", "person_id": "account_person"}
    )
    linked = events.merge(accounts, on=["source_system", "customer_ref"], validate="m:1")
    assert len(linked) == len(events)
    assert (linked["person_id"] == linked["account_person"]).all()
    assert set(events["source_system"]) == {"web_shop", "loyalty_app"}


def test_partial_logins_leave_anonymous_events_before_the_login(
    sessions: SimulatedSessions,
) -> None:
    events = sessions.events
    known = events["customer_ref"].notna().groupby(events["session_id"]).agg(["any", "all"])
    partial = known.index[known["any"] & ~known["all"]]
    assert len(partial) > 0.1 * len(known)
    for _, session in events[events["session_id"].isin(partial[:200])].groupby("session_id"):
        identified = session["customer_ref"].notna().to_numpy()
        first = int(np.argmax(identified))
        assert session["event_type"].iloc[first] == "login"
        assert not identified[:first].any()
        assert identified[first:].all()
    never = known.index[~known["any"]]
    assert len(never) > 0.3 * len(known)


def test_devices_and_cookies_recur_across_sessions(sessions: SimulatedSessions) -> None:
    events = with_truth(sessions)
    personal = events[~events["device_id"].isin(SHARED.kiosk_device_ids)]
    per_device = personal.groupby("device_id")["session_id"].nunique()
    assert (per_device > 1).mean() > 0.3
    per_cookie = personal.groupby("anonymous_id")["session_id"].nunique()
    assert (per_cookie > 1).any()
    assert (personal.groupby("anonymous_id")["person_id"].nunique() == 1).all()


def test_kiosks_and_shop_wifi_are_in_many_persons_sessions(sessions: SimulatedSessions) -> None:
    events = with_truth(sessions)
    for device in SHARED.kiosk_device_ids:
        assert events.loc[events["device_id"] == device, "person_id"].nunique() > 20
    for ip in (*SHARED.shop_wifi_ips, "0.0.0.0"):
        assert events.loc[events["ip"] == ip, "person_id"].nunique() > 20
    kiosk = events[events["device_id"].isin(SHARED.kiosk_device_ids)]
    assert kiosk["ip"].isin(SHARED.shop_wifi_ips).all()
    assert (kiosk.groupby("anonymous_id")["session_id"].nunique() == 1).all()


def test_preferred_skus_shape_behaviour(
    people: pd.DataFrame, customers: FragmentedCustomers
) -> None:
    sample = people.head(300)
    catalogue = [f"P{i:04d}" for i in range(500)]
    preferred = {p: catalogue[i % 50 : i % 50 + 3] for i, p in enumerate(sample["person_id"])}
    prices = {sku: 1.0 + i / 100 for i, sku in enumerate(catalogue)}
    result = simulate_sessions(
        sample, customers, seed=4, skus=catalogue, preferred_skus=preferred, prices=prices
    )
    events = with_truth(result).dropna(subset=["sku"])
    assert events["sku"].isin(catalogue).all()
    liked = [sku in preferred[p] for sku, p in events[["sku", "person_id"]].itertuples(index=False)]
    assert np.mean(liked) > 0.6
    assert (events["price"] == events["sku"].map(prices)).all()


def test_same_seed_same_events_other_seed_other_events(
    people: pd.DataFrame, customers: FragmentedCustomers
) -> None:
    sample = people.head(300)
    first = simulate_sessions(sample, customers, seed=5)
    again = simulate_sessions(sample, customers, seed=5)
    assert_frame_equal(first.events, again.events)
    assert_frame_equal(first.truth, again.truth)
    assert not first.events.equals(simulate_sessions(sample, customers, seed=6).events)
