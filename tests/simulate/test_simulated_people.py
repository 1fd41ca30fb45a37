"""True persons: distinct identifiers, households that share, birth dates inside age bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from shelfwise.simulate import FragmentationConfig, PeopleConfig, simulate_people
from shelfwise.simulate.people import PEOPLE_COLUMNS


def test_one_person_per_id_with_the_documented_columns(people: pd.DataFrame) -> None:
    assert tuple(people.columns) == PEOPLE_COLUMNS
    assert len(people) == 2_469
    assert people["person_id"].is_unique
    for column in ("first_name", "last_name", "email", "mobile", "address_line", "postcode"):
        assert people[column].notna().all(), column
    assert people["date_of_birth"].dtype == "datetime64[ns]"


def test_personal_identifiers_are_distinct(people: pd.DataFrame) -> None:
    for column in ("email", "mobile", "loyalty_id"):
        assert people[column].is_unique, column
    assert people["mobile"].str.fullmatch(r"\+1[2-9]\d{2}[2-9]\d{6}").all()
    assert people["postcode"].str.fullmatch(r"\d{5}").all()
    phones = people["device_ids"].map(lambda d: d[0])
    assert phones.is_unique


def test_households_share_address_landline_and_home_ip(people: pd.DataFrame) -> None:
    size = people.groupby("household_id")["person_id"].transform("size")
    assert 0.08 < (size > 1).mean() < 0.16
    shared = people[size > 1].groupby("household_id")
    for column in ("address_line", "postcode", "home_ip", "landline"):
        assert (shared[column].nunique(dropna=False) == 1).all(), column
    assert people.loc[size > 1, "landline"].notna().mean() > 0.6
    # The landline is a household's, never one person's alone across households.
    landlines = people.dropna(subset=["landline"]).groupby("landline")["household_id"].nunique()
    assert (landlines == 1).all()


def test_nicknames_belong_to_their_given_names(people: pd.DataFrame) -> None:
    from shelfwise.simulate.noise import NICKNAMES

    with_nickname = people.dropna(subset=["nickname"])
    assert 0.25 < len(with_nickname) / len(people) < 0.45
    for first, nickname in with_nickname[["first_name", "nickname"]].itertuples(index=False):
        assert nickname in NICKNAMES[first][1]


def test_birth_dates_fall_in_the_age_band_of_the_attributes() -> None:
    ids = [str(i) for i in range(600)]
    bands = np.array(["19-24", "25-34", "35-44", "45-54", "55-64", "65+"], dtype=object)
    attributes = pd.DataFrame(
        {"person_id": ids, "age": bands[np.arange(600) % 6], "income": "50-74K"}
    )
    people = simulate_people(ids, seed=3, attributes=attributes)
    born = people["date_of_birth"]
    reference = pd.Timestamp("2017-01-01")
    age = reference.year - born.dt.year - (born.dt.strftime("%m%d") > "0101").astype(int)
    low = attributes["age"].str.extract(r"^(\d+)")[0].astype(int)
    high = attributes["age"].str.extract(r"-(\d+)$")[0].astype(float).fillna(89)
    assert ((age >= low) & (age <= high)).all()
    assert people["attributes"].str.contains('"income":"50-74K"').all()


def test_attributes_may_be_indexed_by_person_id() -> None:
    attributes = pd.DataFrame({"age": ["45-54", "65+"]}, index=pd.Index(["a", "b"]))
    people = simulate_people(["a", "b", "c"], seed=1, attributes=attributes)
    assert people["attributes"].isna().tolist() == [False, False, True]


def test_same_seed_same_people_other_seed_other_people() -> None:
    ids = [str(i) for i in range(300)]
    assert_frame_equal(simulate_people(ids, seed=5), simulate_people(ids, seed=5))
    assert not simulate_people(ids, seed=5).equals(simulate_people(ids, seed=6))


def test_repeated_or_missing_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct"):
        simulate_people(["1", "1"], seed=0)


def test_a_large_population_keeps_identifiers_distinct(large_people: pd.DataFrame) -> None:
    assert large_people["email"].is_unique
    assert large_people["mobile"].is_unique
    shared = FragmentationConfig()
    assert not large_people["home_ip"].isin([*shared.shop_wifi_ips, "0.0.0.0"]).any()
    config = PeopleConfig()
    alone = large_people.groupby("household_id")["person_id"].transform("size") == 1
    assert abs((~alone).mean() - config.household_share) < 0.01
