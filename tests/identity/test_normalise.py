"""The normaliser: known answers, one SQL for single values and frames, and the simulator's noise.

Every known answer is checked twice, through the single-value API and through ``prepare`` on
a frame of all the examples, so the two can never drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from shelfwise.identity import _vocabulary
from shelfwise.identity.normalise import (
    LINKAGE_COLUMNS,
    EmailProviderRule,
    NormaliseSettings,
    canonical_given_name,
    normalise_address,
    normalise_country,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_postcode,
    normalise_record,
    prepare,
    prepare_sql,
    register_functions,
)
from shelfwise.simulate import FragmentedCustomers, fragment_customers, simulate_people
from shelfwise.simulate.noise import NICKNAMES, PHONE_FORMATS, format_phone

KEY = ["source_system", "source_id"]
SAM = "samantha|samuel"

EMAILS = [
    ("John.Smith@Gmail.com", "johnsmith@gmail.com"),
    ("j.o.h.n.smith+shop@googlemail.com", "johnsmith@gmail.com"),
    (" mary_k+news@Outlook.com ", "mary_k@outlook.com"),
    ("Mary.K@outlook.com", "mary.k@outlook.com"),
    ("bob+deals@yahoo.com", "bob@yahoo.com"),
    ("bob-deals@yahoo.com", "bob-deals@yahoo.com"),
    ("jane@me.com", "jane@icloud.com"),
    ("j.doe+x@comcast.net", "j.doe@comcast.net"),
    ("jo hn@aol.com", "john@aol.com"),
    ("jo\thn\u00a0@aol.com", "john@aol.com"),
    ("test@test.com", None),
    ("noemail@example.com", None),
    ("NONE@none.com", None),
    ("TEST+1@gmail.com", None),
    ("anyone@mailinator.com", None),
    ("xxxx@gmail.com", None),
    ("not-an-email", None),
    ("a@b", None),
    ("x@@y.com", None),
    ("john@host.test", None),
    ("   ", None),
]
PHONES = [
    ("(312) 555-0199", "+13125550199"),
    ("312-555-0199", "+13125550199"),
    ("312.555.0199", "+13125550199"),
    ("3125550199", "+13125550199"),
    ("1-312-555-0199", "+13125550199"),
    ("+13125550199", "+13125550199"),
    ("+1 (312) 555 0199", "+13125550199"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+61 2 9374 4000", "+61293744000"),
    ("312-555-0199 ext. 7", "+13125550199"),
    ("000-000-0000", None),
    ("555-555-5555", None),
    ("123-456-7890", None),
    ("555-0199", None),
    ("call me", None),
]
NAMES = [
    ("  Mary-Jane  O'Brien ", "mary jane obrien"),
    ("ZOË", "zoe"),
    ("Mary\u00a0 Ann\t", "mary ann"),
    ("José", "jose"),
    ("Straße", "strasse"),
    ("O’Neil", "oneil"),
    ("Jo3hn", "john"),
    ("Dr. John Smith Jr.", "john smith"),
    ("Mr", None),
    ("", None),
]
GIVEN_NAMES = [
    ("Bill", "william"),
    ("Will", "william"),
    ("Billy", "william"),
    ("Bob", "robert"),
    ("Rob", "robert"),
    ("  PEGGY ", "margaret"),
    ("Liz", "elizabeth"),
    ("Beth", "elizabeth"),
    ("Stephen", "steven"),
    ("William", "william"),
    ("Zed", "zed"),
    ("Chris", "christian|christina|christine|christopher"),
    ("Sam", SAM),
    ("Pat", "patricia|patrick"),
]
ADDRESSES = [
    ("123 Main Street", "123 main st"),
    ("123 Main St.", "123 main st"),
    ("123 MAIN ST, Apt #4", "123 main st apt 4"),
    ("123 Main Street Apartment 4", "123 main st apt 4"),
    ("123 Main St Unit 4", "123 main st apt 4"),
    ("123 Main St Suite 4", "123 main st apt 4"),
    ("123 Main St # 4", "123 main st apt 4"),
    ("9 North Oak Avenue", "9 n oak ave"),
    ("9 N. Oak Ave", "9 n oak ave"),
    ("1 Saint James Place", "1 st james pl"),
    ("45 Elm Boulevard", "45 elm blvd"),
    ("7 Lake Shore Drive", "7 lk shr dr"),
    ("1 2 3 4 5 6 7 8 9 North Street", "1 2 3 4 5 6 7 8 9 n st"),
    (" ", None),
]
POSTCODES = [
    ("60614-1234", "60614"),
    ("606141234", "60614"),
    ("60614", "60614"),
    ("2000", "2000"),
    ("sw1a 1aa", "SW1A1AA"),
    ("", None),
]
COUNTRIES = [
    ("USA", "US"),
    ("United States", "US"),
    ("U.S.", "US"),
    ("us", "US"),
    ("United States of America", "US"),
    ("Australia", "AU"),
    ("AUS", "AU"),
    ("UK", "GB"),
    ("United Kingdom", "GB"),
    ("Great Britain", "GB"),
    ("Canada", "CA"),
    ("España", "ES"),
    ("United\u00a0States", "US"),
    ("Narnia", "NARNIA"),
    ("", None),
]
# column -> (single-value function, examples); the record column is the linkage column.
FIELDS: dict[str, tuple[Callable[[str | None], str | None], list[Any]]] = {
    "email": (normalise_email, EMAILS),
    "phone": (normalise_phone, PHONES),
    "first_name": (normalise_name, NAMES),
    "address_line": (normalise_address, ADDRESSES),
    "postcode": (normalise_postcode, POSTCODES),
    "country": (normalise_country, COUNTRIES),
}
CASES = [(column, raw, want) for column, (_, cases) in FIELDS.items() for raw, want in cases]


@pytest.fixture(scope="module")
def linkage_of_examples() -> pd.DataFrame:
    """Every example as one record of a frame, normalised by ``prepare``."""
    rows = [
        {"source_system": "examples", "source_id": f"{column}-{i}", column: raw}
        for i, (column, raw, _) in enumerate(CASES)
    ]
    rows += [
        {"source_system": "names", "source_id": str(i), "first_name": raw}
        for i, (raw, _) in enumerate(GIVEN_NAMES)
    ]
    frame = pd.DataFrame(rows, columns=[*KEY, *FIELDS]).astype("string")
    with duckdb.connect() as connection:
        connection.register("examples", frame)
        out: pd.DataFrame = prepare(connection, "examples", NormaliseSettings()).df()
    return out.set_index("unique_id")


@pytest.mark.parametrize(("column", "raw", "want"), CASES)
def test_single_values_and_frames_agree_on_known_answers(
    column: str, raw: str, want: str | None, linkage_of_examples: pd.DataFrame
) -> None:
    single = FIELDS[column][0]
    i = CASES.index((column, raw, want))
    batch = linkage_of_examples.at[f"examples:{column}-{i}", column]
    assert single(raw) == want
    assert (None if batch is None or batch is pd.NA else batch) == want


@pytest.mark.parametrize(("raw", "want"), GIVEN_NAMES)
def test_given_names_canonical(raw: str, want: str, linkage_of_examples: pd.DataFrame) -> None:
    i = GIVEN_NAMES.index((raw, want))
    assert canonical_given_name(raw) == want
    assert linkage_of_examples.loc[f"names:{i}", "given_name_canonical"] == want


def test_missing_values_stay_missing() -> None:
    for single, _ in FIELDS.values():
        assert single(None) is None
    assert canonical_given_name(None) is None


@pytest.mark.parametrize(
    ("record", "want", "nulled"),
    [
        ({"loyalty_id": "4000 1234-5678"}, {"loyalty_id": "400012345678"}, []),
        ({"loyalty_id": "0000-0000"}, {"loyalty_id": None}, ["loyalty_id:placeholder"]),
        ({"loyalty_id": "N/A"}, {"loyalty_id": None}, ["loyalty_id:invalid"]),
        ({"date_of_birth": dt.date(1985, 3, 12)}, {"date_of_birth": "1985-03-12"}, []),
        ({"date_of_birth": "1970-01-01"}, {"date_of_birth": None}, ["date_of_birth:placeholder"]),
        ({"date_of_birth": pd.Timestamp("1900-01-01")}, {}, ["date_of_birth:placeholder"]),
        ({"device_id": " 5F0C2E9A81B34D67 "}, {"device_id": "5f0c2e9a81b34d67"}, []),
        ({"device_id": "00000000-0000-0000-0000-000000000000"}, {}, ["device_id:placeholder"]),
        ({"device_id": "Unknown"}, {"device_id": None}, ["device_id:placeholder"]),
        ({"ip": " 73.012.001.009 "}, {"ip": "73.12.1.9"}, []),
        ({"ip": "172.32.0.1"}, {"ip": "172.32.0.1"}, []),
        ({"ip": "2001:4860::8888"}, {"ip": "2001:4860::8888"}, []),
        *(
            ({"ip": ip}, {"ip": None}, ["ip:blocked"])
            for ip in ("0.0.0.0", "10.1.2.3", "192.168.0.1", "100.64.1.1", "172.16.5.4", "::1")
        ),
        ({"ip": "fe80::1"}, {"ip": None}, ["ip:blocked"]),
        ({"ip": "999.1.1.1"}, {"ip": None}, ["ip:invalid"]),
        ({"email": "none@none.com", "phone": "x"}, {}, ["email:placeholder", "phone:invalid"]),
        ({"full_name": "Evans, Alex"}, {"first_name": "alex", "last_name": "evans"}, []),
        ({"full_name": "Mary Ann Smith"}, {"first_name": "mary", "last_name": "smith"}, []),
        ({"full_name": "Cher"}, {"first_name": "cher", "last_name": None}, []),
        ({"first_name": "Bob", "full_name": "X Y"}, {"first_name": "bob", "last_name": None}, []),
        ({"address_line": "12b Oak Road"}, {"street_number": "12"}, []),
        ({"address_line": "PO Box 7"}, {"street_number": None}, []),
        ({"city": "St. Louis"}, {"city": "st louis"}, []),
        ({"city": "Saint\u2003 Louis"}, {"city": "st louis"}, []),
        ({"city": "Zürich €"}, {"city": "zurich"}, []),
        ({"phone": "\t(312)\u00a0555-0199 "}, {"phone": "+13125550199"}, []),
    ],
)
def test_records(record: dict[str, Any], want: dict[str, Any], nulled: list[str]) -> None:
    row = normalise_record({"source_system": "crm", "source_id": "7", **record})
    assert list(row) == list(LINKAGE_COLUMNS)
    assert row["unique_id"] == "crm:7"
    assert {k: row[k] for k in want} == want
    assert row["nulled"] == nulled


def test_settings_change_the_rules() -> None:
    assert normalise_phone("020 7946 0958", NormaliseSettings(default_region="GB")) == (
        "+442079460958"
    )
    assert normalise_phone("(02) 9374 4000", NormaliseSettings(default_region="AU")) == (
        "+61293744000"
    )
    assert normalise_email(
        "j.doe+x@comcast.net", NormaliseSettings(plus_tags_everywhere=False)
    ) == ("j.doe+x@comcast.net")
    rules = (EmailProviderRule("corp.co", "corp.co", True, True),)
    custom = NormaliseSettings(email_providers=rules, placeholder_domains=())
    assert normalise_email("a.b+c@corp.co", custom) == "ab@corp.co"
    assert normalise_record({"ip": "10.1.2.3"}, NormaliseSettings(block_private_ips=False))[
        "ip"
    ] == ("10.1.2.3")


def test_settings_round_trip_through_json() -> None:
    settings = NormaliseSettings(
        default_region="AU",
        plus_tags_everywhere=False,
        attribute_columns=("soc_sec_id", "state"),
        blocked_ips=("0.0.0.0",),
    )
    again = NormaliseSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    assert NormaliseSettings.from_dict(NormaliseSettings().to_dict()) == NormaliseSettings()
    assert isinstance(again.email_providers[0], EmailProviderRule)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"default_region": "XX"}, "default_region"),
        ({"attribute_columns": ("email",)}, "attribute_columns"),
        ({"attribute_columns": ("no such key",)}, "attribute_columns"),
    ],
)
def test_settings_refuse_what_they_cannot_use(change: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        NormaliseSettings(**change)
    with pytest.raises(ValueError, match="unknown settings"):
        NormaliseSettings.from_dict({"no_such_setting": 1})


def test_a_frame_with_few_columns_gets_every_linkage_column() -> None:
    frame = pd.DataFrame({"source_system": ["a"], "source_id": ["1"], "email": ["Xavier@Y.org"]})
    with duckdb.connect() as connection:
        connection.register("few", frame)
        register_functions(connection, NormaliseSettings())
        register_functions(connection, NormaliseSettings())  # idempotent
        sql = prepare_sql("few", NormaliseSettings(attribute_columns=("tier",)), frame.columns)
        out = connection.sql(sql).df()
    assert list(out.columns) == [*LINKAGE_COLUMNS, "tier"]
    assert out.loc[0, "email"] == "xavier@y.org"
    assert out.loc[0, "nulled"].tolist() == []


def test_phone_shortcut_agrees_with_phonenumbers() -> None:
    """The SQL shortcut for plain national numbers gives what the phonenumbers UDF gives."""
    mobiles = simulate_people([f"p{i}" for i in range(300)], seed=11)["mobile"]
    written = [format_phone(m, layout) for m in mobiles for layout in PHONE_FORMATS]
    written += [raw for raw, _ in PHONES] + ["1312555019", "+1 312 555 019", "+99 123"]
    frame = pd.DataFrame({"source_system": "p", "source_id": range(len(written)), "phone": written})
    settings = NormaliseSettings()
    with duckdb.connect() as connection:
        connection.register("phones", frame.astype({"source_id": "string"}))
        out = prepare(connection, "phones", settings).df()
        udf = connection.sql("SELECT shelfwise_phone_e164(phone, 'US') FROM phones").fetchall()
    by_udf = dict(zip(frame["source_id"].astype(str), (r[0] for r in udf), strict=True))
    placeholder = out["nulled"].map(lambda n: "phone:placeholder" in n)
    for source_id, phone in out.loc[~placeholder, ["source_id", "phone"]].itertuples(index=False):
        assert (None if pd.isna(phone) else phone) == by_udf[source_id]


# --- On the simulator: the noise it logs is the noise the normaliser undoes --------------


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return simulate_people([f"p{i:05d}" for i in range(3_000)], seed=5)


@pytest.fixture(scope="module")
def world(people: pd.DataFrame) -> FragmentedCustomers:
    return fragment_customers(people, seed=5)


@pytest.fixture(scope="module")
def linked(world: FragmentedCustomers, people: pd.DataFrame) -> pd.DataFrame:
    """Each normalised record beside its person's true values."""
    with duckdb.connect() as connection:
        connection.register("records", world.records)
        out: pd.DataFrame = prepare(connection, "records", NormaliseSettings()).df()
    truth = people[["person_id", "email", "mobile", "first_name"]].add_prefix("true_")
    linked = out.merge(world.truth, on=KEY)
    return linked.merge(truth, left_on="person_id", right_on="true_person_id")


def _normalised(column: str, values: pd.Series) -> pd.Series:
    """``values`` as source ``column``, normalised in one query (single values agree, above)."""
    frame = pd.DataFrame({"source_system": "v", "source_id": range(len(values)), column: values})
    with duckdb.connect() as connection:
        connection.register("values", frame.astype("string"))
        out = prepare(connection, "values", NormaliseSettings()).df()
    linkage = {"first_name": "given_name_canonical"}.get(column, column)
    by_id = out.set_index(out["source_id"].astype(int))[linkage]
    return pd.Series(by_id.sort_index().to_numpy(), index=values.index)


def _noised_only(world: FragmentedCustomers, columns: set[str], kinds: set[str]) -> pd.DataFrame:
    """Keys of records whose noise on ``columns`` is of ``kinds`` only (and some of it)."""
    noise = world.noise[world.noise["column"].isin(columns)]
    kinds_of = noise.groupby(KEY)["kind"].agg(set)
    chosen = kinds_of[kinds_of.map(lambda k: bool(k & kinds) and k <= kinds)]
    return chosen.reset_index()[KEY]


def test_email_variants_normalise_to_the_true_mailbox(
    world: FragmentedCustomers, linked: pd.DataFrame
) -> None:
    # A person's second account in one system often has a mailbox of its own (not noise).
    second = linked.duplicated(["person_id", "source_system"], keep=False)
    chosen = _noised_only(world, {"email"}, {"email_variant", "case_variant", "whitespace"})
    records = linked[~second].merge(chosen, on=KEY)
    assert len(records) > 500
    want = _normalised("email", records["true_email"])
    assert (records["email"] == want).all(), records.loc[records["email"] != want, ["email"]]


def test_placeholder_emails_are_nulled(world: FragmentedCustomers, linked: pd.DataFrame) -> None:
    placed = world.noise[world.noise["kind"] == "placeholder_email"][KEY]
    records = linked.merge(placed, on=KEY)
    assert len(records) > 100
    assert records["email"].isna().all()
    missing = world.noise[(world.noise["column"] == "email") & (world.noise["kind"] == "missing")]
    kept = records.merge(missing[KEY], on=KEY, how="left", indicator=True)["_merge"] == "left_only"
    assert records.loc[kept.to_numpy(), "nulled"].map(lambda n: "email:placeholder" in n).all()


def test_phone_layouts_normalise_to_the_true_mobile(
    world: FragmentedCustomers, linked: pd.DataFrame
) -> None:
    records = linked.merge(_noised_only(world, {"phone"}, {"other_phone_format"}), on=KEY)
    assert len(records) > 300
    assert (records["phone"] == records["true_mobile"]).all()


def test_nicknames_canonicalise_to_the_true_given_name(
    world: FragmentedCustomers, linked: pd.DataFrame
) -> None:
    names = {"first_name", "full_name"}
    records = linked.merge(_noised_only(world, names, {"nickname"}), on=KEY)
    clean = _noised_only(world, names, {"nickname", "case_variant", "whitespace"})
    records = records.merge(clean, on=KEY)
    want = _normalised("first_name", records["true_first_name"])
    got = records["given_name_canonical"]
    equal = got == want
    member = pd.Series([w in g.split("|") for g, w in zip(got, want, strict=True)])
    unambiguous = ~got.str.contains("|", regex=False).to_numpy()
    print(
        f"\nnickname records: {len(records)}; canonical equal: {equal.mean():.3f}; "
        f"of the {unambiguous.sum()} the table maps to one formal name: "
        f"{equal[unambiguous].mean():.3f}; true name in the group key: {member.mean():.3f}"
    )
    assert len(records) > 400
    assert equal[unambiguous].mean() >= 0.95
    assert member.mean() >= 0.95


# --- The word lists ------------------------------------------------------------------------


def test_every_simulated_nickname_maps_to_its_formal_name() -> None:
    for formal, (_, nicknames) in NICKNAMES.items():
        for nickname in nicknames:
            assert formal.lower() in str(canonical_given_name(nickname)).split("|"), nickname


def test_the_nickname_table_keeps_formal_names_apart() -> None:
    pairs = dict(_vocabulary.nickname_pairs())
    assert len(pairs) >= 300
    formal = set(_vocabulary.FORMAL_VARIANTS)
    assert not formal & set(pairs), "a formal name is its own canonical form"
    for variant, canonical in pairs.items():
        if "|" in canonical:
            assert canonical.split("|") == sorted(_vocabulary.SHARED[variant])
        else:
            assert canonical in formal, variant


def test_the_normaliser_does_not_import_the_simulator() -> None:
    code = "import sys, shelfwise.identity.normalise; print('shelfwise.simulate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.data
def test_febrl_records_with_attribute_columns(datasets_dir: Path) -> None:
    from shelfwise.datasets.identity import febrl_to_customer_records, load_febrl

    records = febrl_to_customer_records(load_febrl("febrl4a", datasets_dir), "febrl4a")
    settings = NormaliseSettings(default_region="AU", attribute_columns=("soc_sec_id", "state"))
    with duckdb.connect() as connection:
        connection.register("febrl", records)
        out = prepare(connection, "febrl", settings).df()
    assert len(out) == 5_000
    assert list(out.columns) == [*LINKAGE_COLUMNS, "soc_sec_id", "state"]
    assert out["soc_sec_id"].notna().mean() > 0.95
    assert set(out["state"].dropna()) <= {"nsw", "vic", "qld", "sa", "wa", "tas", "act", "nt"}
    assert (out["country"] == "AU").all()
    assert out["unique_id"].is_unique
