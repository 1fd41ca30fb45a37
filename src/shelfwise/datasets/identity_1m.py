"""identity-1m: the deterministic synthetic dedupe table of BENCHMARKS.md's identity protocols.

FEBRL's files stop at 5,000 records, too few to time a linker at the scale of a retailer's
customer base. identity-1m keeps FEBRL's shape, vocabulary and kinds of error and scales them
to a million rows. It is built, never shipped: :func:`build_identity_1m` with the same
``rows`` and ``seed`` gives the same bytes on any machine (numpy's PCG64 stream, no hashing of
Python objects, no dependence on dict or set order), so this docstring is the protocol.

Recipe (``rows`` = R, ``seed`` = s; every draw comes from one ``numpy.random.default_rng(s)``
in the order written here):

1. **Pool.** The ``rec-<N>-org`` records of febrl1, febrl2, febrl3 and febrl4a (one per rec
   number and file; 11,500 people), in that file order.
2. **Originals.** R - R//3 persons ``rec-<i>-org``, i = 0, 1, ... Each field is copied from a
   pool record picked uniformly at random, so every value keeps its empirical frequency
   (missing values included): given_name and surname independently; a *street* tuple
   (street_number, address_1, address_2) from one record and a *locality* tuple (suburb,
   postcode, state) from another; date_of_birth from another, shifted by a uniform
   -15..+15 days (the pool's 9,730 birthdays would otherwise put ~70 people on each);
   soc_sec_id a fresh 7-digit number, distinct across persons. Street and locality are two
   tuples, not one, because 11,500 addresses shared by 667,000 people would put 58 strangers
   in every house (FEBRL draws its address fields independently anyway).
3. **Hard cases.** Common names: 3% of persons take a given name and a surname drawn from
   the pool's 20 most frequent of each (ties by value). Households: the first persons, up to
   2% of them, are grouped in households of 2, 3 or 4 (probabilities 0.6, 0.25, 0.15); every
   member takes the surname, street and locality of the household's first person and keeps
   its own given name and date of birth: same surname and address, a different person.
4. **Duplicate counts.** R//3 duplicates over the originals: counts 1-5 with Zipf weights
   1/k, drawn until they sum to R//3 (the last one cut), given to originals in a random order.
   The k-th duplicate of original i is ``rec-<i>-dup-<k>`` (k from 0), so
   :func:`shelfwise.datasets.identity.febrl_entity_id` gives the truth.
5. **Corruptions.** Each duplicate copies its original and gets 1, 2 or 3 modifications
   (:data:`MODIFICATIONS_PER_RECORD`), applied in rounds. In a round the field is drawn with
   the weights of :data:`FIELD_WEIGHTS` among the fields that are still present, then the kind
   of error with :data:`KIND_WEIGHTS`. Kinds: ``typo`` (insert, delete, keyboard-neighbour
   substitution, transposition of two different adjacent characters, with :data:`TYPO_OPS`),
   ``ocr`` (one look-alike letter, :data:`OCR`), ``phonetic`` (one spelling rule,
   :data:`PHONETIC`), ``missing``, ``swap`` (given name and surname exchanged),
   ``abbreviation`` (street type shortened, :data:`ABBREVIATIONS`), ``digits`` (one digit
   substituted or two adjacent ones transposed, :data:`DIGIT_OPS`; a street number has a digit
   substituted, added or dropped, :data:`STREET_NUMBER_OPS`),
   ``day_month_swap`` (YYYYMMDD to YYYYDDMM, often an invalid date as in FEBRL) and
   ``substitute`` (another state). A kind that cannot apply to a value (no rule matches, the
   names are equal, day equals month) falls back to ``typo`` (``digits`` for digit fields).
   Every modification changes the value it is applied to (two may, rarely, undo each other).
6. **Rows.** Originals then duplicates, shuffled by one permutation; every column a pandas
   ``string``, a missing value ``<NA>``; columns exactly ``FEBRL_COLUMNS``.

The corruption level was calibrated on R = 100,000 so that the Splink reference
(:mod:`shelfwise.bench.identity_reference`) lands inside the 0.96-0.985 pairwise F1 band (it
scores 0.975: precision 0.968, lost mostly on households; recall 0.983, lost on duplicates
corrupted in several fields; 0.976 at R = 1,000,000): a table that every linker solves says
nothing about which one is better. With 10% of persons in households precision fell to 0.86,
so households are kept rare, as hard cases should be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.datasets.identity import FEBRL_COLUMNS, FebrlName, load_febrl

__all__ = ["FIELD_WEIGHTS", "KIND_WEIGHTS", "MODIFICATIONS_PER_RECORD", "build_identity_1m"]

Values = NDArray[np.object_]  # str, or None where missing

POOL_FILES: tuple[FebrlName, ...] = ("febrl1", "febrl2", "febrl3", "febrl4a")
STREET = ("street_number", "address_1", "address_2")
LOCALITY = ("suburb", "postcode", "state")
DOB_SHIFT_DAYS = 15
COMMON_NAME_SHARE, COMMON_NAMES = 0.03, 20
HOUSEHOLD_SHARE, HOUSEHOLD_SIZES = 0.02, {2: 0.6, 3: 0.25, 4: 0.15}
DUPLICATE_COUNTS = {k: 1 / k for k in range(1, 6)}
MODIFICATIONS_PER_RECORD = {1: 0.5, 2: 0.3, 3: 0.2}
FIELD_WEIGHTS = {
    "given_name": 0.18, "surname": 0.18, "street_number": 0.07, "address_1": 0.10,
    "address_2": 0.06, "suburb": 0.10, "postcode": 0.08, "state": 0.04, "date_of_birth": 0.11,
    "soc_sec_id": 0.08,
}  # fmt: skip
_NAME_KINDS = {"typo": 0.55, "ocr": 0.10, "phonetic": 0.15, "missing": 0.10, "swap": 0.10}
KIND_WEIGHTS: dict[str, dict[str, float]] = {
    "given_name": _NAME_KINDS,
    "surname": _NAME_KINDS,
    "street_number": {"digits": 0.75, "missing": 0.25},
    "address_1": {"typo": 0.50, "ocr": 0.10, "abbreviation": 0.25, "missing": 0.15},
    "address_2": {"typo": 0.50, "ocr": 0.10, "missing": 0.40},
    "suburb": {"typo": 0.60, "ocr": 0.10, "phonetic": 0.15, "missing": 0.15},
    "postcode": {"digits": 0.90, "missing": 0.10},
    "state": {"substitute": 0.50, "missing": 0.50},
    "date_of_birth": {"digits": 0.55, "day_month_swap": 0.30, "missing": 0.15},
    "soc_sec_id": {"digits": 0.85, "missing": 0.15},
}
DIGIT_FIELDS = ("street_number", "postcode", "date_of_birth", "soc_sec_id")
TYPO_OPS = {"insert": 0.25, "delete": 0.25, "substitute": 0.35, "transpose": 0.15}
DIGIT_OPS = {"insert": 0.0, "delete": 0.0, "substitute": 0.7, "transpose": 0.3}
STREET_NUMBER_OPS = {"insert": 0.2, "delete": 0.2, "substitute": 0.6, "transpose": 0.0}
STATES = ("act", "nsw", "nt", "qld", "sa", "tas", "vic", "wa")
OCR = {
    "a": "o", "b": "h", "c": "e", "e": "c", "g": "q", "h": "b", "i": "l", "l": "i", "m": "n",
    "n": "m", "o": "a", "q": "g", "u": "v", "v": "u",
}  # fmt: skip
PHONETIC = (
    ("ph", "f"), ("f", "ph"), ("ck", "k"), ("c", "k"), ("k", "c"), ("ie", "y"), ("y", "ie"),
    ("ee", "ea"), ("ou", "ow"), ("th", "t"), ("z", "s"), ("s", "z"), ("ll", "l"), ("tt", "t"),
    ("nn", "n"), ("ai", "ay"), ("ey", "y"), ("w", "v"),
)  # fmt: skip
ABBREVIATIONS = {
    "street": "st", "crescent": "cres", "place": "pl", "circuit": "cct", "avenue": "ave",
    "close": "cl", "drive": "dr", "court": "ct", "road": "rd", "terrace": "tce",
    "square": "sq", "highway": "hwy", "grove": "gr", "lane": "ln", "parkway": "pkwy",
}  # fmt: skip
KEYBOARD_NEIGHBOURS = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj",
    "i": "uojk", "o": "ipkl", "p": "ol", "a": "qwsz", "s": "weadzx", "d": "erfsxc",
    "f": "rtgdcv", "g": "tyhfvb", "h": "yujgbn", "j": "uikhnm", "k": "ioljm", "l": "opk",
    "z": "asx", "x": "sdzc", "c": "dfxv", "v": "fgcb", "b": "ghvn", "n": "hjbm", "m": "jkn",
}  # fmt: skip


def _neighbour_table() -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    """KEYBOARD_NEIGHBOURS as arrays: row ``letter - 'a'`` lists its neighbours' code points."""
    table = np.zeros((26, 8), np.uint32)
    counts = np.zeros(26, np.int64)
    for letter, near in KEYBOARD_NEIGHBOURS.items():
        table[ord(letter) - 97, : len(near)] = [ord(c) for c in near]
        counts[ord(letter) - 97] = len(near)
    return table, counts


_NEIGHBOURS, _NEIGHBOUR_COUNTS = _neighbour_table()


# --- persons ---------------------------------------------------------------------------


def _pool(datasets_dir: Path | str | None) -> dict[str, Values]:
    frames = []
    for name in POOL_FILES:
        records = load_febrl(name, datasets_dir)
        originals = records[records["rec_id"].str.endswith("-org").fillna(False)]
        frames.append(originals.drop_duplicates("rec_id"))
    pool = pd.concat(frames, ignore_index=True)
    return {
        c: pool[c].astype(object).where(pool[c].notna(), None).to_numpy() for c in FEBRL_COLUMNS
    }


def _most_frequent(values: Values, top: int) -> Values:
    counts = pd.Series(values).dropna().value_counts().rename_axis("value").reset_index()
    ranked = counts.sort_values(["count", "value"], ascending=[False, True])
    return ranked["value"].to_numpy(dtype=object)[:top]


def _shift_dates(dates: Values, rng: np.random.Generator) -> Values:
    shift = pd.to_timedelta(rng.integers(-DOB_SHIFT_DAYS, DOB_SHIFT_DAYS + 1, len(dates)), "D")
    parsed = pd.to_datetime(pd.Series(dates, dtype=object), format="%Y%m%d")
    shifted = (parsed + shift).dt.strftime("%Y%m%d")
    return shifted.astype(object).where(shifted.notna(), None).to_numpy()


def _persons(pool: dict[str, Values], n: int, rng: np.random.Generator) -> dict[str, Values]:
    size = len(pool["rec_id"])

    def pick() -> NDArray[np.int64]:
        return rng.integers(0, size, n)

    persons = {"given_name": pool["given_name"][pick()], "surname": pool["surname"][pick()]}
    for group in (STREET, LOCALITY):
        rows = pick()
        persons.update({c: pool[c][rows] for c in group})
    persons["date_of_birth"] = _shift_dates(pool["date_of_birth"][pick()], rng)
    ids = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    persons["soc_sec_id"] = ids.astype(str).astype(object)

    common = np.flatnonzero(rng.random(n) < COMMON_NAME_SHARE)
    for column in ("given_name", "surname"):
        top = _most_frequent(pool[column], COMMON_NAMES)
        persons[column][common] = top[rng.integers(0, len(top), len(common))]

    sizes = rng.choice(list(HOUSEHOLD_SIZES), size=n, p=list(HOUSEHOLD_SIZES.values()))
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), HOUSEHOLD_SHARE * n, side="right")]
    heads = np.repeat(np.cumsum(sizes) - sizes, sizes)
    for column in ("surname", *STREET, *LOCALITY):
        persons[column][: len(heads)] = persons[column][heads]
    return persons


def _duplicate_counts(
    n_originals: int, n_duplicates: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    counts = np.zeros(n_originals, np.int64)
    if n_duplicates == 0:
        return counts
    weights = np.array(list(DUPLICATE_COUNTS.values()))
    draws = rng.choice(list(DUPLICATE_COUNTS), size=n_duplicates, p=weights / weights.sum())
    total = np.cumsum(draws)
    last = int(np.searchsorted(total, n_duplicates))
    draws = draws[: last + 1].copy()
    draws[-1] -= total[last] - n_duplicates
    if len(draws) > n_originals:
        raise ValueError(f"{n_duplicates} duplicates do not fit over {n_originals} originals")
    counts[rng.permutation(n_originals)[: len(draws)]] = draws
    return counts


# --- corruptions -----------------------------------------------------------------------


def _chars(values: Values) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    """Strings as a code-point matrix with two spare columns (for an insertion), and lengths."""
    text = values.astype(str)
    length = np.char.str_len(text).astype(np.int64)
    width = int(length.max(initial=0)) + 2
    return text.astype(f"<U{width}").view(np.uint32).reshape(len(text), width).copy(), length


def _strings(chars: NDArray[np.uint32]) -> Values:
    width = chars.shape[1]
    return np.ascontiguousarray(chars).view(f"<U{width}").ravel().astype(object)


def _edit(
    values: Values, ops: Mapping[str, float], rng: np.random.Generator, digits: bool
) -> Values:
    """One insert, delete, substitution or transposition per value, at a random position."""
    chars, length = _chars(values)
    n, width = len(chars), int(chars.shape[1])
    ins, dele, sub, tra = range(4)
    op = rng.choice(4, size=n, p=list(ops.values()))
    op[(length < 2) & ((op == dele) | (op == tra))] = sub
    span = np.select([op == ins, op == tra], [length + 1, length - 1], length)
    pos = np.minimum((rng.random(n) * span).astype(np.int64), np.maximum(span - 1, 0))
    rows = np.arange(n)
    same = chars[rows, pos] == chars[rows, np.minimum(pos + 1, width - 1)]
    op[(op == tra) & same] = sub  # swapping two equal characters would change nothing
    col = np.arange(width)[None, :]
    p = pos[:, None]
    index = np.where((op[:, None] == ins) & (col > p), col - 1, col)
    index = np.where((op[:, None] == dele) & (col >= p), np.minimum(col + 1, width - 1), index)
    index = np.where((op[:, None] == tra) & (col == p), p + 1, index)
    index = np.where((op[:, None] == tra) & (col == p + 1), p, index)
    out = np.take_along_axis(chars, index, axis=1)
    out[op == dele, -1] = 0
    u = rng.random(n)
    old = chars[rows, pos].astype(np.int64)
    if digits:
        is_digit = (old >= 48) & (old <= 57)
        new = np.where(
            (op == sub) & is_digit,
            48 + (old - 48 + 1 + (u * 9).astype(np.int64)) % 10,
            48 + (u * 10).astype(np.int64),
        )
    else:
        letter = np.clip(old - 97, 0, 25)
        near = _NEIGHBOURS[letter, (u * _NEIGHBOUR_COUNTS[letter]).astype(np.int64)]
        is_letter = (old >= 97) & (old <= 122)
        new = np.where((op == sub) & is_letter, near, 97 + (u * 26).astype(np.int64))
    put = (op == sub) | (op == ins)
    out[rows[put], pos[put]] = new[put]
    return _strings(out)


def _ocr(values: Values, rng: np.random.Generator) -> tuple[Values, NDArray[np.bool_]]:
    chars, _ = _chars(values)
    lookup = np.zeros(128, np.uint32)
    for src, dst in OCR.items():
        lookup[ord(src)] = ord(dst)
    mapped = lookup[np.minimum(chars, 127)]
    eligible = mapped > 0
    pos = np.argmax(rng.random(chars.shape) * eligible, axis=1)
    rows = np.arange(len(chars))
    chars[rows, pos] = np.where(eligible[rows, pos], mapped[rows, pos], chars[rows, pos])
    found = np.asarray(eligible.any(axis=1), dtype=bool)
    return _strings(chars), found


def _phonetic(values: Values, rng: np.random.Generator) -> tuple[Values, NDArray[np.bool_]]:
    text = values.astype(str)
    matches = np.stack([np.char.find(text, pattern) >= 0 for pattern, _ in PHONETIC], axis=1)
    rule = np.argmax(rng.random(matches.shape) * matches, axis=1)
    out = values.copy()
    for r, (pattern, replacement) in enumerate(PHONETIC):
        rows = np.flatnonzero((rule == r) & matches[:, r])
        if len(rows):
            out[rows] = np.char.replace(text[rows], pattern, replacement, count=1).astype(object)
    found = np.asarray(matches.any(axis=1), dtype=bool)
    return out, found


def _abbreviate(values: Values) -> tuple[Values, NDArray[np.bool_]]:
    out = values.copy()
    done = np.zeros(len(values), bool)
    text = pd.Series(values.astype(str))
    for full, short in ABBREVIATIONS.items():
        rows = text.str.endswith(" " + full).to_numpy() & ~done
        out[rows] = (text[rows].str.slice(0, -len(full)) + short).to_numpy(dtype=object)
        done |= rows
    return out, done


def _day_month_swap(values: Values) -> tuple[Values, NDArray[np.bool_]]:
    chars, length = _chars(values)
    swapped = chars[:, [0, 1, 2, 3, 6, 7, 4, 5, *range(8, chars.shape[1])]]
    ok = (length == 8) & (chars[:, 4:6] != chars[:, 6:8]).any(axis=1)
    return np.where(ok, _strings(swapped), values), ok


def _other_state(values: Values, rng: np.random.Generator) -> Values:
    index = np.array([STATES.index(v) if v in STATES else 0 for v in values])
    step = 1 + (rng.random(len(values)) * (len(STATES) - 1)).astype(np.int64)
    return np.array(STATES, dtype=object)[(index + step) % len(STATES)]


def _swap_names(fields: dict[str, Values], rows: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Exchange given name and surname where both are present and differ; where it did."""
    given, surname = fields["given_name"][rows], fields["surname"][rows]
    ok = np.asarray(pd.notna(given) & pd.notna(surname) & (given != surname), dtype=bool)
    fields["given_name"][rows[ok]], fields["surname"][rows[ok]] = surname[ok], given[ok]
    return ok


RuledKind = Callable[[Values, np.random.Generator], tuple[Values, NDArray[np.bool_]]]
_RULED: dict[str, RuledKind] = {
    "ocr": _ocr,
    "phonetic": _phonetic,
    "abbreviation": lambda values, _: _abbreviate(values),
    "day_month_swap": lambda values, _: _day_month_swap(values),
}


def _apply(
    fields: dict[str, Values],
    field: str,
    kind: str,
    rows: NDArray[np.int64],
    rng: np.random.Generator,
) -> None:
    """One kind of error on ``field`` of ``rows``; where it cannot apply, a typo instead."""
    if not len(rows):
        return
    applied = np.zeros(len(rows), bool)
    if kind == "missing":
        fields[field][rows], applied[:] = None, True
    elif kind == "substitute":
        fields[field][rows], applied[:] = _other_state(fields[field][rows], rng), True
    elif kind == "swap":
        applied = _swap_names(fields, rows)
    elif kind in _RULED:
        new, applied = _RULED[kind](fields[field][rows], rng)
        fields[field][rows[applied]] = new[applied]
    stuck = rows[~applied]
    if len(stuck) and field in DIGIT_FIELDS:
        ops = STREET_NUMBER_OPS if field == "street_number" else DIGIT_OPS
        fields[field][stuck] = _edit(fields[field][stuck], ops, rng, digits=True)
    elif len(stuck):
        fields[field][stuck] = _edit(fields[field][stuck], TYPO_OPS, rng, digits=False)


def _corrupt(fields: dict[str, Values], rng: np.random.Generator) -> None:
    """Modify the duplicates in place: 1-3 rounds, one field and one kind per round."""
    names = list(FIELD_WEIGHTS)
    weights = np.array(list(FIELD_WEIGHTS.values()))
    n = len(fields[names[0]])
    rounds = rng.choice(
        list(MODIFICATIONS_PER_RECORD), size=n, p=list(MODIFICATIONS_PER_RECORD.values())
    )
    for r in range(max(MODIFICATIONS_PER_RECORD)):
        present = np.stack([pd.notna(fields[f]) for f in names], axis=1)
        cumulative = np.cumsum(present * weights, axis=1)
        active = (rounds > r) & (cumulative[:, -1] > 0)
        u = rng.random(n) * cumulative[:, -1]
        choice = (u[:, None] >= cumulative).sum(axis=1)
        for f, field in enumerate(names):
            rows = np.flatnonzero(active & (choice == f))
            kinds = KIND_WEIGHTS[field]
            picked = rng.choice(len(kinds), size=len(rows), p=list(kinds.values()))
            for k, kind in enumerate(kinds):
                _apply(fields, field, kind, rows[picked == k], rng)


# --- the table -------------------------------------------------------------------------


def build_identity_1m(
    datasets_dir: Path | str | None = None, *, rows: int = 1_000_000, seed: int = 0
) -> pd.DataFrame:
    """The identity-1m table (the module docstring is its recipe): ``rows`` FEBRL-shaped
    records, ``rows // 3`` of them corrupted duplicates, identical for the same arguments.

    ``datasets_dir`` is where the FEBRL files are read from (as for
    :func:`shelfwise.datasets.identity.load_febrl`). A million rows take about ten seconds
    on a shared 2-core machine, most of it in NumPy's string and character-matrix operations.
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    pool = _pool(datasets_dir)
    n_duplicates = rows // 3
    n_originals = rows - n_duplicates
    persons = _persons(pool, n_originals, rng)
    counts = _duplicate_counts(n_originals, n_duplicates, rng)
    source = np.repeat(np.arange(n_originals), counts)
    k = np.arange(n_duplicates) - np.repeat(np.cumsum(counts) - counts, counts)
    duplicates = {c: values[source] for c, values in persons.items()}
    _corrupt(duplicates, rng)

    ids = np.concatenate([np.arange(n_originals), source]).astype(str).astype(object)
    suffix = np.concatenate([np.full(n_originals, "org"), np.char.add("dup-", k.astype(str))])
    columns = {"rec_id": "rec-" + ids + "-" + suffix.astype(object)}
    for c in FEBRL_COLUMNS[1:]:
        columns[c] = np.concatenate([persons[c], duplicates[c]])
    order = rng.permutation(rows)
    frame = pd.DataFrame({c: pd.array(v[order], dtype="string") for c, v in columns.items()})
    return frame[list(FEBRL_COLUMNS)]
