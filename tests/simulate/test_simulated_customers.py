"""Customer records scattered over source systems: truth, noise rates and garbage identifiers."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from shelfwise.simulate import (
    FragmentationConfig,
    FragmentedCustomers,
    fragment_customers,
    new_records,
)

CONFIG = FragmentationConfig()
ContractCheck = Callable[[pd.DataFrame, str], None]


def kept(records: pd.DataFrame, field: str) -> pd.Series:
    """Whether each record's system keeps ``field``."""
    keeping = [s.name for s in CONFIG.systems if field in s.fields]
    return records["source_system"].isin(keeping)


def with_truth(customers: FragmentedCustomers, people: pd.DataFrame) -> pd.DataFrame:
    return customers.records.merge(
        customers.truth, on=["source_system", "source_id"], validate="1:1"
    ).merge(people, on="person_id", suffixes=("", "_true"), validate="m:1")


def normalised(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().str.replace(r"\s+", " ", regex=True)


def within(observed: float, expected: float, n: int, *, sigmas: float = 5.0) -> bool:
    """An observed share is within ``sigmas`` binomial standard errors of the expected one."""
    spread = (expected * (1 - expected) / n) ** 0.5
    return bool(abs(observed - expected) <= sigmas * spread + 1e-9)


def test_records_are_customer_records(
    customers: FragmentedCustomers, assert_contract: ContractCheck
) -> None:
    assert_contract(customers.records, "customer_records")
    assert tuple(customers.truth.columns) == ("source_system", "source_id", "person_id")
    assert set(customers.records["source_system"]) == {s.name for s in CONFIG.systems}


def test_truth_covers_every_record_and_every_person(
    customers: FragmentedCustomers, people: pd.DataFrame
) -> None:
    keys = ["source_system", "source_id"]
    merged = customers.records[keys].merge(customers.truth, on=keys, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    assert set(customers.truth["person_id"]) == set(people["person_id"])
    assert customers.truth["person_id"].notna().all()


def test_each_system_keeps_only_its_own_fields(customers: FragmentedCustomers) -> None:
    records = customers.records
    for field in ("email", "phone", "first_name", "full_name", "address_line", "device_id", "ip"):
        assert records.loc[~kept(records, field), field].isna().all(), field
    web = records[records["source_system"] == "web_shop"]
    assert web["email"].notna().mean() > 0.9
    support = records[records["source_system"] == "support"]
    assert support["full_name"].notna().mean() > 0.9
    assert support["phone"].str.fullmatch(r"\(\d{3}\) \d{3}-\d{4}").mean() > 0.6


def test_times_are_plausible_and_ordered(customers: FragmentedCustomers) -> None:
    records = customers.records
    assert (records["updated_at"] >= records["created_at"]).all()
    assert records["created_at"].min() >= pd.Timestamp("2016-01-01")
    assert records["updated_at"].max() < pd.Timestamp("2018-01-01")


def test_some_persons_have_two_accounts_in_one_system(
    large_customers: FragmentedCustomers,
) -> None:
    truth = large_customers.truth
    pairs = truth.groupby(["person_id", "source_system"]).size()
    share = (pairs - 1).sum() / len(pairs)
    assert within(share, CONFIG.duplicate, len(pairs))


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("typo", CONFIG.text_noise_fields),
        ("street_abbreviation", ("address_line",)),
        ("email_variant", ("email",)),
        ("placeholder_email", ("email",)),
        ("kiosk_device", ("device_id",)),
        ("shop_wifi_ip", ("ip",)),
        ("zero_ip", ("ip",)),
        ("other_phone_format", ("phone",)),
        ("case_variant", (*CONFIG.text_noise_fields, "email", "country")),
        ("whitespace", (*CONFIG.text_noise_fields, "email")),
        ("moved", ("address_line",)),
        ("missing", ("email", "phone", "first_name", "date_of_birth", "device_id", "ip")),
    ],
)
def test_each_noise_kind_hits_its_configured_share_of_cells(
    large_customers: FragmentedCustomers, kind: str, fields: tuple[str, ...]
) -> None:
    records, noise = large_customers.records, large_customers.noise
    eligible = sum(int(kept(records, field).sum()) for field in fields)
    applied = int(((noise["kind"] == kind) & noise["column"].isin(fields)).sum())
    assert within(applied / eligible, getattr(CONFIG, kind), eligible), (kind, applied, eligible)


def test_nicknames_household_landlines_and_transposed_dates_hit_their_share(
    large_customers: FragmentedCustomers, large_people: pd.DataFrame
) -> None:
    rows = with_truth(large_customers, large_people)
    noise = large_customers.noise["kind"].value_counts()
    named = (kept(rows, "first_name") | kept(rows, "full_name")) & rows["nickname"].notna()
    assert within(noise["nickname"] / named.sum(), CONFIG.nickname, int(named.sum()))
    landline = kept(rows, "phone") & rows["landline"].notna()
    share = noise["household_landline"] / landline.sum()
    assert within(share, CONFIG.household_landline, int(landline.sum()))
    born = rows["date_of_birth_true"]
    swappable = kept(rows, "date_of_birth") & (born.dt.day <= 12) & (born.dt.day != born.dt.month)
    share = noise["date_transposed"] / swappable.sum()
    assert within(share, CONFIG.date_transposed, int(swappable.sum()))


def test_the_data_shows_the_noise_the_log_claims(
    large_customers: FragmentedCustomers, large_people: pd.DataFrame
) -> None:
    rows = with_truth(large_customers, large_people)
    # Typos: a normalised last name differs from the true one about as often as the rate says.
    named = rows.dropna(subset=["last_name"])
    named = named[named["last_name"] != ""]
    differs = normalised(named["last_name"]) != normalised(named["last_name_true"])
    assert within(differs.mean(), CONFIG.typo, len(named))
    # Nicknames survive in the data unless a typo later hit them.
    first = rows[kept(rows, "first_name") & rows["nickname"].notna()].dropna(subset=["first_name"])
    first = first[first["first_name"] != ""]
    as_nickname = normalised(first["first_name"]) == normalised(first["nickname"])
    assert within(as_nickname.mean(), CONFIG.nickname * (1 - CONFIG.typo), len(first))
    # Moved records hold the previous address and are older than the move.
    moved = large_customers.noise.query("kind == 'moved'")[["source_system", "source_id"]]
    old = rows.merge(moved, on=["source_system", "source_id"])
    assert (old["updated_at"] < pd.Timestamp(CONFIG.moved_before)).all()
    present = old["postcode"].notna() & (old["postcode"] != "")
    assert (old.loc[present, "postcode"] == old.loc[present, "previous_postcode"]).all()


def test_garbage_identifiers_are_shared_by_many_persons(
    large_customers: FragmentedCustomers, large_people: pd.DataFrame
) -> None:
    rows = with_truth(large_customers, large_people)
    email = normalised(rows["email"].fillna(""))
    for placeholder in CONFIG.placeholder_emails:
        assert rows.loc[email == placeholder, "person_id"].nunique() > 20, placeholder
    present = rows["email"].notna() & (rows["email"] != "")
    placeholder_share = email[present].isin(CONFIG.placeholder_emails).mean()
    assert within(placeholder_share, CONFIG.placeholder_email, int(present.sum()))
    for ip in (*CONFIG.shop_wifi_ips, "0.0.0.0"):
        assert rows.loc[rows["ip"] == ip, "person_id"].nunique() > 20, ip
    for device in CONFIG.kiosk_device_ids:
        assert rows.loc[rows["device_id"] == device, "person_id"].nunique() > 20, device
    assert (rows["email"] == "").any()
    assert (rows["first_name"] == "").any()


def test_a_household_landline_appears_on_records_of_different_persons(
    customers: FragmentedCustomers, people: pd.DataFrame
) -> None:
    rows = with_truth(customers, people)
    digits = rows["phone"].str.replace(r"\D", "", regex=True).str[-10:]
    rows = rows.assign(digits=digits).dropna(subset=["digits"])
    rows = rows[rows["digits"].str.len() == 10]
    persons = rows.groupby("digits")["person_id"].nunique()
    shared = persons[persons > 1].index
    assert len(shared) > 0
    households = rows[rows["digits"].isin(shared)].groupby("digits")["household_id"].nunique()
    assert (households == 1).all()


def test_email_variants_are_the_same_mailbox(
    customers: FragmentedCustomers, people: pd.DataFrame
) -> None:
    variants = customers.noise.query("kind == 'email_variant'")[["source_system", "source_id"]]
    rows = with_truth(customers, people).merge(variants, on=["source_system", "source_id"])
    rows = rows[rows["email"].notna() & (rows["email"] != "")]
    rows = rows[~normalised(rows["email"]).isin(CONFIG.placeholder_emails)]

    def mailbox(email: str) -> str:
        local, _, domain = email.strip().lower().partition("@")
        local = local.split("+", 1)[0]
        return (local.replace(".", "") if domain == "gmail.com" else local) + "@" + domain

    original = rows["email_true"].map(mailbox)
    assert (rows["email"].map(mailbox) == original).mean() > 0.9


def test_same_seed_same_records_other_seed_other_records(people: pd.DataFrame) -> None:
    sample = people.head(400)
    first, again = fragment_customers(sample, seed=3), fragment_customers(sample, seed=3)
    assert_frame_equal(first.records, again.records)
    assert_frame_equal(first.truth, again.truth)
    assert_frame_equal(first.noise, again.noise)
    assert not first.records.equals(fragment_customers(sample, seed=4).records)


def test_new_records_continue_numbering_and_keep_existing_persons(
    customers: FragmentedCustomers, people: pd.DataFrame, assert_contract: ContractCheck
) -> None:
    before = customers.records.copy()
    fresh = new_records(people, customers, seed=9, share=0.01)
    assert_frame_equal(customers.records, before)
    assert_contract(fresh.records, "customer_records")
    assert len(fresh.records) == round(0.01 * len(customers.records))
    keys = ["source_system", "source_id"]
    assert fresh.records[keys].merge(customers.records[keys]).empty
    assert (fresh.records["created_at"] > customers.records["updated_at"].max()).all()
    assert (fresh.records["updated_at"] >= fresh.records["created_at"]).all()
    persons = fresh.truth["person_id"]
    brand_new = ~persons.isin(people["person_id"])
    assert brand_new.any()
    assert (~brand_new).any()
    assert persons[brand_new].str.fullmatch(r"new-9-\d{6}").all()
    merged = fresh.records[keys].merge(fresh.truth, on=keys, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    assert_frame_equal(fresh.records, new_records(people, customers, seed=9, share=0.01).records)


def test_systems_must_be_distinct_and_rates_probabilities() -> None:
    with pytest.raises(ValueError, match="typo"):
        FragmentationConfig(typo=1.5)
    with pytest.raises(ValueError, match="distinct"):
        FragmentationConfig(systems=(CONFIG.systems[0], CONFIG.systems[0]))


def test_new_records_refuse_to_reuse_newcomer_ids(
    customers: FragmentedCustomers, people: pd.DataFrame
) -> None:
    first = new_records(people, customers, seed=9)
    grown = FragmentedCustomers(
        pd.concat([customers.records, first.records], ignore_index=True),
        pd.concat([customers.truth, first.truth], ignore_index=True),
        pd.concat([customers.noise, first.noise], ignore_index=True),
    )
    with pytest.raises(ValueError, match="another seed"):
        new_records(people, grown, seed=9)
    second = new_records(people, grown, seed=10)
    keys = ["source_system", "source_id"]
    assert second.records[keys].merge(grown.records[keys]).empty
