"""Identity-resolution datasets: FEBRL and Splink's fake_1000 (people), Abt-Buy (products).

Loaders return the files as their SOURCE.md describes them (every column a string, an empty
field missing); the ``*_true_*`` helpers give the ground truth the benchmarks score against;
the ``*_to_*`` functions map the records into the data contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple, get_args

import pandas as pd

from shelfwise.datasets._frames import contract_frame, join_present, json_records, read_csv_typed
from shelfwise.datasets.registry import dataset_file

FebrlName = Literal["febrl1", "febrl2", "febrl3", "febrl4a", "febrl4b"]
FEBRL_NAMES: tuple[str, ...] = get_args(FebrlName)
FEBRL_COLUMNS = (
    "rec_id",
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)
FAKE_1000_COLUMNS = ("unique_id", "first_name", "surname", "dob", "city", "email", "cluster")
ABT_COLUMNS = ("id", "name", "description", "price")
BUY_COLUMNS = ("id", "name", "description", "manufacturer", "price")
ABT_BUY_MATCH_COLUMNS = ("idAbt", "idBuy")

_FEBRL_REC_ID = r"^rec-(\d+)-(?:org|dup-\d+)$"


def _strings(columns: tuple[str, ...]) -> dict[str, str]:
    return dict.fromkeys(columns, "string")


# --- FEBRL -------------------------------------------------------------------------------


def load_febrl(name: FebrlName, datasets_dir: Path | str | None = None) -> pd.DataFrame:
    """One FEBRL file: febrl1 (1,000 rows), febrl2, febrl3, febrl4a, febrl4b (5,000 each).

    Every column is a string (postcodes, dates and ids keep their leading zeros); an empty
    field is missing. ``date_of_birth`` stays the raw ``YYYYMMDD`` text, corrupted on purpose
    in some records.
    """
    if name not in FEBRL_NAMES:
        raise ValueError(f"unknown FEBRL file {name!r}; expected one of {FEBRL_NAMES}")
    path = dataset_file("febrl", f"{name}.csv.gz", datasets_dir)
    return read_csv_typed(path, _strings(FEBRL_COLUMNS))


def febrl_entity_id(rec_id: pd.Series) -> pd.Series:
    """The true entity of each FEBRL record: ``rec-<N>-org`` and ``rec-<N>-dup-<k>`` give N."""
    entity = rec_id.astype("string").str.extract(_FEBRL_REC_ID, expand=False)
    bad = rec_id[entity.isna()]
    if len(bad):
        raise ValueError(f"{len(bad)} rec_id values are not rec-<N>-org/dup-<k>: {list(bad[:3])}")
    return entity.astype("int64").rename("entity_id")


def true_pairs_within(frame: pd.DataFrame, id_column: str, entity_column: str) -> pd.DataFrame:
    """Every unordered pair of records of one entity (dedupe truth), ``<id>_l < <id>_r``."""
    records = frame[[id_column, entity_column]]
    pairs = records.merge(records, on=entity_column, suffixes=("_l", "_r"))
    left, right = f"{id_column}_l", f"{id_column}_r"
    pairs = pairs[pairs[left] < pairs[right]]
    return pairs[[left, right]].sort_values([left, right]).reset_index(drop=True)


def febrl_true_pairs(records: pd.DataFrame) -> pd.DataFrame:
    """The true duplicate pairs of a FEBRL dedupe file (febrl1-3): ``rec_id_l``, ``rec_id_r``."""
    with_entity = records[["rec_id"]].assign(entity_id=febrl_entity_id(records["rec_id"]))
    return true_pairs_within(with_entity, "rec_id", "entity_id")


def febrl_true_links(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """The true links between two FEBRL files (febrl4a to febrl4b: 5,000 pairs).

    Columns ``rec_id_l`` (from ``left``) and ``rec_id_r`` (from ``right``).
    """
    lhs = left[["rec_id"]].assign(entity_id=febrl_entity_id(left["rec_id"]))
    rhs = right[["rec_id"]].assign(entity_id=febrl_entity_id(right["rec_id"]))
    links = lhs.merge(rhs, on="entity_id", suffixes=("_l", "_r"))
    return links[["rec_id_l", "rec_id_r"]].sort_values("rec_id_l").reset_index(drop=True)


def _parse_dob(raw: pd.Series, pattern: str, date_format: str) -> tuple[pd.Series, pd.Series]:
    """Parsed dates where ``raw`` is a valid date, and the raw text where it is not."""
    text = raw.astype("string")
    well_formed = text.str.fullmatch(pattern).fillna(False).astype(bool)
    parsed = pd.to_datetime(text.where(well_formed), format=date_format, errors="coerce")
    invalid_raw = text.where(parsed.isna())
    return parsed, invalid_raw


def febrl_to_customer_records(records: pd.DataFrame, source_system: str) -> pd.DataFrame:
    """FEBRL records as the contract's ``customer_records`` of one source system.

    ``source_id`` is ``rec_id``; given_name/surname are first/last name; street number,
    ``address_1`` and ``address_2`` make ``address_line``; suburb is the city; country is
    ``AU`` (FEBRL draws from Australian name and address tables). ``date_of_birth`` is parsed
    from ``YYYYMMDD`` where it is a real date; FEBRL corrupts some on purpose, and those stay
    null with the raw text kept as ``attributes.date_of_birth_raw``, beside ``state`` and
    ``soc_sec_id``.
    """
    dob, dob_raw = _parse_dob(records["date_of_birth"], r"\d{8}", "%Y%m%d")
    street = join_present([records["street_number"], records["address_1"]], " ")
    attributes = pd.DataFrame(
        {
            "state": records["state"],
            "soc_sec_id": records["soc_sec_id"],
            "date_of_birth_raw": dob_raw,
        }
    )
    values = {
        "source_system": source_system,
        "source_id": records["rec_id"],
        "first_name": records["given_name"],
        "last_name": records["surname"],
        "address_line": join_present([street, records["address_2"]], ", "),
        "city": records["suburb"],
        "postcode": records["postcode"],
        "country": "AU",
        "date_of_birth": dob,
        "attributes": json_records(attributes),
    }
    return contract_frame("customer_records", values, len(records))


# --- Splink fake_1000 --------------------------------------------------------------------


def load_splink_fake_1000(datasets_dir: Path | str | None = None) -> pd.DataFrame:
    """Splink's fake_1000: 1,000 people, ``cluster`` the true entity (181 of them).

    Every column is a string, an empty field missing; values are as generated (some names
    carry a trailing space, which is part of the noise).
    """
    path = dataset_file("splink_fake_1000", "fake_1000.csv.gz", datasets_dir)
    return read_csv_typed(path, _strings(FAKE_1000_COLUMNS))


def splink_fake_1000_true_pairs(records: pd.DataFrame) -> pd.DataFrame:
    """Every pair of records in one cluster: ``unique_id_l``, ``unique_id_r``."""
    return true_pairs_within(records, "unique_id", "cluster")


def splink_fake_1000_to_customer_records(
    records: pd.DataFrame, source_system: str = "splink_fake_1000"
) -> pd.DataFrame:
    """fake_1000 as ``customer_records``; ``cluster`` (the truth) is left out on purpose.

    ``dob`` is parsed from ``YYYY-MM-DD``; an invalid one stays null with its raw text in
    ``attributes.date_of_birth_raw``.
    """
    dob, dob_raw = _parse_dob(records["dob"], r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d")
    values = {
        "source_system": source_system,
        "source_id": records["unique_id"],
        "email": records["email"],
        "first_name": records["first_name"],
        "last_name": records["surname"],
        "city": records["city"],
        "date_of_birth": dob,
        "attributes": json_records(pd.DataFrame({"date_of_birth_raw": dob_raw})),
    }
    return contract_frame("customer_records", values, len(records))


# --- Abt-Buy -----------------------------------------------------------------------------


class AbtBuy(NamedTuple):
    """The two catalogues and the gold mapping (every other cross pair is a non-match)."""

    abt: pd.DataFrame
    buy: pd.DataFrame
    matches: pd.DataFrame


def load_abt_buy(datasets_dir: Path | str | None = None) -> AbtBuy:
    """Abt (1,081 offers), Buy (1,092) and their 1,097 true pairs (``idAbt``, ``idBuy``).

    Every column is a string, an empty field missing; prices stay as written (``$1,234.00``).
    """
    abt = read_csv_typed(dataset_file("abt_buy", "Abt.csv.gz", datasets_dir), _strings(ABT_COLUMNS))
    buy = read_csv_typed(dataset_file("abt_buy", "Buy.csv.gz", datasets_dir), _strings(BUY_COLUMNS))
    matches = read_csv_typed(
        dataset_file("abt_buy", "abt_buy_perfectMapping.csv.gz", datasets_dir),
        _strings(ABT_BUY_MATCH_COLUMNS),
    )
    return AbtBuy(abt, buy, matches)


def parse_price(text: pd.Series) -> pd.Series:
    """Prices written like ``$1,234.00`` as floats; anything unreadable is missing."""
    cleaned = text.astype("string").str.replace(r"[$,\s]", "", regex=True)
    return pd.to_numeric(cleaned, errors="coerce").astype("float64")


def abt_buy_to_products(abt: pd.DataFrame, buy: pd.DataFrame) -> pd.DataFrame:
    """Both catalogues as one ``products`` table: skus ``abt:<id>`` and ``buy:<id>``.

    name is the title; Buy's ``manufacturer`` (often written as a brand) is the manufacturer,
    with no brand guessed from it; the price is parsed from ``$1,234.00``. ``attributes``
    names the source catalogue and its id, so a match can be traced back to the gold mapping.
    """
    parts = []
    for catalogue, offers in (("abt", abt), ("buy", buy)):
        ids = offers["id"].astype("string")
        parts.append(
            pd.DataFrame(
                {
                    "sku": catalogue + ":" + ids,
                    "title": offers["name"],
                    "description": offers["description"],
                    "manufacturer": offers["manufacturer"]
                    if "manufacturer" in offers
                    else pd.Series(pd.NA, index=offers.index, dtype="string"),
                    "price": parse_price(offers["price"]),
                    "attributes": json_records(
                        pd.DataFrame({"catalogue": catalogue, "source_id": ids})
                    ),
                }
            )
        )
    both = pd.concat(parts, ignore_index=True)
    return contract_frame("products", {c: both[c] for c in both.columns}, len(both))
