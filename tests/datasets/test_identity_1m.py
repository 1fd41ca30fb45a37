"""identity-1m built small: its shape, its truth, its determinism and its corruption mix."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pandas as pd
import pytest

from shelfwise.datasets.identity import FEBRL_COLUMNS, febrl_entity_id
from shelfwise.datasets.identity_1m import (
    FIELD_WEIGHTS,
    KIND_WEIGHTS,
    MODIFICATIONS_PER_RECORD,
    build_identity_1m,
)

pytestmark = pytest.mark.data

# sha256 of build_identity_1m(rows=3_000, seed=0).to_csv(index=False). It changes only when
# the recipe does, and then every published identity-1m figure must be measured again.
DIGEST_3000 = "6aac98aa29df95c4cd0f94cbc6e1e4e481df84ab4bc48944d75aa2d17444fd0d"


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


@pytest.fixture(scope="module")
def table(datasets_dir: Path) -> pd.DataFrame:
    return build_identity_1m(datasets_dir, rows=30_000)


@pytest.fixture(scope="module")
def pairs(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each duplicate beside its original, row for row."""
    entity = febrl_entity_id(table["rec_id"]).to_numpy()
    is_original = table["rec_id"].str.endswith("-org").to_numpy(dtype=bool)
    originals = table[is_original].set_index(entity[is_original])
    duplicates = table[~is_original].reset_index(drop=True)
    return originals.loc[entity[~is_original]].reset_index(drop=True), duplicates


def test_shape_truth_and_types(table: pd.DataFrame) -> None:
    assert tuple(table.columns) == FEBRL_COLUMNS
    assert all(isinstance(dtype, pd.StringDtype) for dtype in table.dtypes)
    assert len(table) == 30_000
    assert table["rec_id"].is_unique
    is_duplicate = table["rec_id"].str.contains("-dup-")
    assert is_duplicate.sum() == 10_000
    # Every duplicate's entity has its original; 1-5 duplicates each, fewer as k grows (Zipf).
    entity = febrl_entity_id(table["rec_id"])
    assert set(entity[is_duplicate]) <= set(entity[~is_duplicate])
    per_entity = entity[is_duplicate].value_counts().value_counts().sort_index()
    assert list(per_entity.index) == [1, 2, 3, 4, 5]
    assert per_entity.is_monotonic_decreasing
    originals = table[~is_duplicate]
    assert originals["soc_sec_id"].is_unique
    assert originals["soc_sec_id"].str.fullmatch(r"[1-9]\d{6}").all()
    dob = originals["date_of_birth"].dropna()
    assert pd.to_datetime(dob, format="%Y%m%d", errors="coerce").notna().all()


@pytest.mark.parametrize("rows", [1, 2, 1_001, 3_000])
def test_duplicates_are_a_third(datasets_dir: Path, rows: int) -> None:
    frame = build_identity_1m(datasets_dir, rows=rows)
    assert len(frame) == rows
    assert frame["rec_id"].str.contains("-dup-").sum() == rows // 3


def test_same_arguments_same_bytes(datasets_dir: Path) -> None:
    started = time.perf_counter()
    first = build_identity_1m(datasets_dir, rows=3_000)
    assert time.perf_counter() - started < 5
    assert _digest(first) == _digest(build_identity_1m(datasets_dir, rows=3_000))
    assert _digest(first) == DIGEST_3000
    assert _digest(build_identity_1m(datasets_dir, rows=3_000, seed=1)) != DIGEST_3000


def _changed(before: pd.Series, after: pd.Series) -> pd.Series:
    both_missing = before.isna() & after.isna()
    return ~((before == after).fillna(False) | both_missing)


def test_every_duplicate_is_corrupted_as_documented(
    pairs: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    originals, duplicates = pairs
    fields = list(FIELD_WEIGHTS)
    changed = pd.DataFrame({f: _changed(originals[f], duplicates[f]) for f in fields})
    per_record = changed.sum(axis=1)
    # 1-3 modifications; a name swap touches two fields; two modifications rarely cancel.
    assert (per_record >= 1).mean() > 0.995
    assert per_record.max() <= 4
    mean_modifications = sum(k * p for k, p in MODIFICATIONS_PER_RECORD.items())
    assert per_record.mean() == pytest.approx(mean_modifications, abs=0.15)
    # Which fields change follows FIELD_WEIGHTS.
    observed = changed.sum() / changed.sum().sum()
    for field, weight in FIELD_WEIGHTS.items():
        assert observed[field] == pytest.approx(weight, abs=0.02), field
    # Values made missing: weight x P(missing) x modifications per record, roughly.
    for field in fields:
        made_missing = (originals[field].notna() & duplicates[field].isna()).mean()
        expected = FIELD_WEIGHTS[field] * KIND_WEIGHTS[field]["missing"] * mean_modifications
        assert made_missing == pytest.approx(expected, rel=0.35, abs=0.003), field


def test_kinds_of_error_are_present(pairs: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    originals, duplicates = pairs
    swapped = (originals["given_name"] == duplicates["surname"]) & (
        originals["surname"] == duplicates["given_name"]
    )
    assert 0.02 < swapped.fillna(False).mean() < 0.07
    abbreviated = duplicates["address_1"].str.endswith(" st") & originals["address_1"].str.endswith(
        " street"
    )
    assert abbreviated.fillna(False).sum() > 50
    day_month = (
        originals["date_of_birth"].str.slice(0, 4)
        + originals["date_of_birth"].str.slice(6, 8)
        + originals["date_of_birth"].str.slice(4, 6)
    ) == duplicates["date_of_birth"]
    assert day_month.fillna(False).sum() > 50
    # Duplicated dobs keep eight digits, and some are no longer real dates, as in FEBRL.
    dob = duplicates["date_of_birth"].dropna()
    assert dob.str.fullmatch(r"\d{8}").all()
    assert pd.to_datetime(dob, format="%Y%m%d", errors="coerce").isna().sum() > 20


def test_households_and_common_names_make_hard_pairs(table: pd.DataFrame) -> None:
    originals = table[table["rec_id"].str.endswith("-org")]
    address = ["surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state"]
    shared = originals.groupby(address, dropna=False)["rec_id"].transform("size") > 1
    assert shared.mean() == pytest.approx(0.02, abs=0.004)
    names = originals.groupby(["given_name", "surname"])["rec_id"].size()
    assert names.max() >= 5  # a common name is carried by several different people
