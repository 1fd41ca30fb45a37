"""Evaluation protocols: every split rule and track rule on tiny logs worked out by hand, and
the exact counts BENCHMARKS.md states on the real datasets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend.protocols import (
    RankingSplit,
    TrackRule,
    bring_your_own,
    cj_next4w,
    evaluate_track,
    ml100k_msr,
    stratified_by_item,
)

LOG2_3 = math.log2(3)


def frame(rows: str) -> pd.DataFrame:
    """``"A x 1, A y 2"`` -> person_id, sku and occurred_at (n days into 2024)."""
    parsed = [row.split() for row in rows.split(",")]
    return pd.DataFrame(
        {
            "person_id": [person for person, _, _ in parsed],
            "sku": [sku for _, sku, _ in parsed],
            "occurred_at": pd.Timestamp("2024-01-01")
            + pd.to_timedelta([int(day) for *_, day in parsed], unit="D"),
        }
    )


def lists(rows: dict[str, list[str]]) -> pd.DataFrame:
    """Ranked lists as a recommendations frame, ranks from 1 in the order given."""
    return pd.DataFrame(
        [(user, sku, rank) for user, skus in rows.items() for rank, sku in enumerate(skus, 1)],
        columns=["person_id", "sku", "rank"],
    )


def pairs(targets: pd.DataFrame) -> list[tuple[str, str]]:
    return list(targets[["person_id", "sku"]].itertuples(index=False, name=None))


# Train: A bought x and y, B bought x, C bought w and z. Test: A buys x again, z (new to A,
# twice) and v (new to everyone); B buys x again; C buys nothing and is not evaluated.
TRAIN = frame("A x 1, A y 2, B x 1, C w 3, C z 4")
TEST = frame("A x 10, A z 11, A v 12, A z 13, B x 10")
RULES: dict[str, TrackRule] = {"all": "keep-seen", "discovery": "discovery", "new": "drop-seen"}
RECOMMENDATIONS = lists({"A": ["x", "z", "y", "w"], "B": ["x", "w"], "C": ["x"]})


@pytest.fixture
def split() -> RankingSplit:
    return RankingSplit.from_frames("tiny", TRAIN, TEST, RULES)


def test_a_split_from_frames(split: RankingSplit) -> None:
    assert list(split.catalogue) == ["w", "x", "y", "z"]
    assert list(split.users) == ["A", "B"]
    assert split.tracks == ("all", "discovery", "new")
    # Targets are distinct pairs, including v that no model can know.
    assert pairs(split.targets["all"]) == [("A", "v"), ("A", "x"), ("A", "z"), ("B", "x")]
    assert pairs(split.targets["new"]) == pairs(split.targets["all"])
    # Discovery drops what each user had in train, then B, left without a target.
    assert pairs(split.targets["discovery"]) == [("A", "v"), ("A", "z")]
    assert list(split.users_of("discovery")) == ["A"]
    assert list(split.seen_in_train(frame("A x 0, A z 0, C z 0, D x 0, A q 0"))) == [
        True,
        False,
        True,
        False,
        False,
    ]


def test_the_all_track_keeps_repeats(split: RankingSplit) -> None:
    metrics = evaluate_track(RECOMMENDATIONS, split, "all")
    ndcg_a = (1 + 1 / LOG2_3) / (1 + 1 / LOG2_3 + 1 / 2)  # hits at 1 and 2 of 3 targets
    assert metrics == pytest.approx(
        {
            "ndcg@10": (ndcg_a + 1) / 2,
            "recall@20": (2 / 3 + 1) / 2,
            "map@12": ((1 + 1) / 3 + 1) / 2,
            "hr@10": 1.0,
            "coverage@10": 4 / 4,  # C's list does not count: C is not evaluated
        }
    )


def test_discovery_removes_train_items_from_lists_and_targets(split: RankingSplit) -> None:
    # A's list loses x and y and becomes z, w: a hit at rank 1 of targets {v, z}. B is dropped.
    metrics = evaluate_track(RECOMMENDATIONS, split, "discovery")
    assert metrics == pytest.approx(
        {
            "ndcg@10": 1 / (1 + 1 / LOG2_3),
            "recall@20": 1 / 2,
            "map@12": 1 / 2,
            "hr@10": 1.0,
            "coverage@10": 2 / 4,
        }
    )
    # Ranks close up before the cut: z moved from rank 2 to rank 1.
    assert evaluate_track(RECOMMENDATIONS, split, "discovery", k=1, metrics=["hr@1"]) == {
        "hr@1": 1.0
    }


def test_drop_seen_removes_train_items_from_the_lists_only(split: RankingSplit) -> None:
    # A: z, w against {v, x, z}; B: w against {x}, which it may no longer be shown.
    metrics = evaluate_track(RECOMMENDATIONS, split, "new", metrics=["ndcg@10", "hr@10"])
    assert metrics == pytest.approx({"ndcg@10": (1 / (1 + 1 / LOG2_3 + 1 / 2)) / 2, "hr@10": 0.5})


def test_evaluate_track_refuses_mistakes(split: RankingSplit) -> None:
    with pytest.raises(ValueError, match="has no track 'repeat'"):
        evaluate_track(RECOMMENDATIONS, split, "repeat")
    with pytest.raises(ValueError, match=r"1 recommended rows name skus outside .* \['v'\]"):
        evaluate_track(lists({"A": ["v"]}), split, "all")
    with pytest.raises(ValueError, match="look 20 deep, but lists are cut at k=10"):
        evaluate_track(RECOMMENDATIONS, split, "all", k=10)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['rank'\]"):
        evaluate_track(RECOMMENDATIONS.drop(columns="rank"), split, "all")


# The Microsoft Recommenders stratified split.
def test_stratified_split_keeps_round_three_quarters_of_each_item() -> None:
    counts = {"a": 1, "b": 2, "c": 4, "d": 6, "e": 10}  # 0.75, 1.5, 3, 4.5, 7.5 rounded
    items = pd.Series([item for item, n in counts.items() for _ in range(n)]).sample(
        frac=1, random_state=0
    )
    in_train = stratified_by_item(items)
    assert items[in_train].value_counts().sort_index().to_dict() == {
        "a": 1,
        "b": 2,
        "c": 3,
        "d": 4,  # halves go to the even number
        "e": 8,
    }


def test_stratified_split_is_the_benchmarks_procedure_step_by_step() -> None:
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"item": rng.integers(0, 40, 2_000)})
    # BENCHMARKS.md: numpy seed 42, one U(0,1) per rating in order, sort by (item, random),
    # the first round(0.75 count) of each item to train.
    np.random.seed(42)
    data["random"] = np.random.rand(len(data))
    ordered = data.sort_values(["item", "random"])
    position = ordered.groupby("item").cumcount() + 1
    count = ordered.groupby("item")["item"].transform("count")
    expected = (position <= np.round(0.75 * count)).sort_index().to_numpy()
    np.random.seed(0)  # the split must not depend on, nor touch, the global state
    assert np.array_equal(stratified_by_item(data["item"]), expected)
    assert np.random.rand() == np.random.RandomState(0).rand()


# Bring your own data.
def write(path: Path, rows: Sequence[tuple[object, ...]], columns: list[str]) -> Path:
    table = pd.DataFrame(rows, columns=columns)
    if path.suffix == ".parquet":
        table.to_parquet(path)
    else:
        table.to_csv(path, index=False)
    return path


LAST_PER_USER = [
    ("u1", "a", "2024-01-01", 1),
    ("u1", "b", "2024-01-02", 1),
    ("u1", "c", "2024-01-03", 1),
    ("u1", "d", "2024-01-03", 1),
    ("u2", "a", "2024-01-05", 1),  # one moment only: no training row, not evaluated
    ("u3", "b", "2024-01-01", 1),
    ("u3", "b", "2024-01-04", 1),
]


def test_last_per_user_holds_out_each_users_last_moment(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", LAST_PER_USER, ["customer", "product", "ts", "store"])
    split = bring_your_own(path, "customer", "product", "ts")
    assert split.protocol == "bring-your-own:last-per-user"
    assert pairs(split.train) == [("u1", "a"), ("u1", "b"), ("u3", "b")]
    assert list(split.train.columns) == ["person_id", "sku", "occurred_at"]
    assert list(split.catalogue) == ["a", "b"]
    assert list(split.users) == ["u1", "u3"]
    assert split.rules == {"default": "keep-seen"}
    assert pairs(split.targets["default"]) == [("u1", "c"), ("u1", "d"), ("u3", "b")]
    # Validation applies the rule again to train: u1's last training moment holds out b.
    validation = split.validation
    assert validation is not None
    assert validation.validation is None
    assert pairs(validation.train) == [("u1", "a")]
    assert list(validation.users) == ["u1"]
    assert pairs(validation.targets["default"]) == [("u1", "b")]
    flagged = bring_your_own(path, "customer", "product", "ts", exclude_seen=True)
    assert flagged.rules == {"default": "drop-seen"}


GLOBAL = [
    ("u1", "a", "2024-01-01", 1),
    ("u1", "b", "2024-01-05", 5),
    ("u1", "c", "2024-01-09", 9),
    ("u2", "a", "2024-01-02", 2),
    ("u2", "c", "2024-01-06", 6),
    ("u3", "d", "2024-01-10", 10),  # only in the test: not evaluated
]


@pytest.mark.parametrize(
    ("suffix", "time", "test_from"),
    [
        (".parquet", "when", pd.Timestamp("2024-01-08")),
        (".parquet", "when", "2024-01-08T01:00+01:00"),  # the same instant in UTC
        (".csv", "when", "2024-01-08"),
        (".csv", "day", 8),
        (".csv", "day", "8"),
    ],
)
def test_global_split_holds_out_everything_from_a_moment(
    tmp_path: Path, suffix: str, time: str, test_from: object
) -> None:
    rows = [(u, i, pd.Timestamp(t) if suffix == ".parquet" else t, d) for u, i, t, d in GLOBAL]
    path = write(tmp_path / f"log{suffix}", rows, ["user", "item", "when", "day"])
    split = bring_your_own(path, "user", "item", time, "global", test_from)  # type: ignore[arg-type]
    assert pairs(split.train) == [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c")]
    assert list(split.catalogue) == ["a", "b", "c"]
    assert list(split.users) == ["u1"]
    assert pairs(split.targets["default"]) == [("u1", "c")]
    # The test spans 2 days (8 to 10): validation holds out the 2 days before the 8th.
    validation = split.validation
    assert validation is not None
    assert pairs(validation.train) == [("u1", "a"), ("u1", "b"), ("u2", "a")]
    assert pairs(validation.targets["default"]) == [("u2", "c")]


def test_numeric_times_are_unix_seconds(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", [("u", "a", 0), ("u", "b", 86_400)], ["u", "i", "t"])
    split = bring_your_own(path, "u", "i", "t")
    assert split.train["occurred_at"].tolist() == [pd.Timestamp("1970-01-01")]


def test_bring_your_own_explains_what_is_wrong(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", GLOBAL, ["user", "item", "when", "day"])
    with pytest.raises(ValueError, match=r"cannot read '\.json'; give a CSV or Parquet file"):
        bring_your_own(tmp_path / "log.json", "user", "item", "when")
    with pytest.raises(
        ValueError, match=r"no column\(s\) \['customer'\]; it has \['user', 'item', 'when', 'day'\]"
    ):
        bring_your_own(path, "customer", "item", "when")
    with pytest.raises(
        ValueError, match=r"needs test_from \(--test-from\).*'day' runs from 1\.0 to 10\.0"
    ):
        bring_your_own(path, "user", "item", "day", "global")
    with pytest.raises(ValueError, match="'when' runs from 2024-01-01 00:00:00 to 2024-01-10"):
        bring_your_own(path, "user", "item", "when", "global")
    with pytest.raises(ValueError, match="test_from applies to split='global' only"):
        bring_your_own(path, "user", "item", "when", test_from="2024-01-08")
    with pytest.raises(ValueError, match="is not a number, and 'day' holds numbers"):
        bring_your_own(path, "user", "item", "day", "global", "2024-01-08")
    with pytest.raises(ValueError, match="is not a time, and 'when' holds times"):
        bring_your_own(path, "user", "item", "when", "global", 8)
    with pytest.raises(ValueError, match="leaves no rows in the test"):
        bring_your_own(path, "user", "item", "when", "global", "2025-01-01")
    with pytest.raises(ValueError, match="split must be one of"):
        bring_your_own(path, "user", "item", "when", "random")  # type: ignore[arg-type]
    bad = [("u", "a", "2024-01-01"), ("u", "b", "soon"), ("u", "c", None), ("u", "d", "later")]
    bad_path = write(tmp_path / "bad.csv", bad, ["user", "item", "when"])
    with pytest.raises(
        ValueError, match=r"'when': 3 of 4 rows are missing or cannot be read as times"
    ):
        bring_your_own(bad_path, "user", "item", "when")


# The benchmark protocols on the real datasets.
@pytest.mark.data
def test_cj_next4w_counts(datasets_dir: Path) -> None:
    split = cj_next4w(datasets_dir)
    assert split.protocol == "cj-next4w"
    assert len(split.users) == 2_009
    assert len(split.catalogue) == 65_821
    assert len(split.train) == 1_355_054  # every line of weeks 1-49, quantity 0 included
    assert list(split.train.columns) == ["person_id", "sku", "occurred_at", "weight", "order_id"]
    assert split.tracks == ("all", "discovery")
    assert len(split.targets["all"]) == 100_659
    assert len(split.users_of("discovery")) == 1_982
    assert np.array_equal(split.catalogue, np.sort(split.train["sku"].unique().astype(str)))
    validation = split.validation
    assert validation is not None
    assert (len(validation.users), len(validation.catalogue)) == (2_017, 63_185)
    assert len(validation.train) == 1_241_584
    # Weeks turn at local midnight; the timestamps are 4-5 hours ahead (UTC).
    assert validation.train["occurred_at"].max() < pd.Timestamp("2017-11-06 05:00")


@pytest.mark.data
def test_ml100k_msr_counts(datasets_dir: Path) -> None:
    split = ml100k_msr(datasets_dir)
    assert len(split.train) == 75_066
    assert len(split.targets["default"]) == 24_934
    assert (len(split.users), len(split.catalogue)) == (943, 1_682)
    assert split.rules == {"default": "drop-seen"}
    validation = split.validation
    assert validation is not None
    assert (len(validation.train), len(validation.targets["default"])) == (56_371, 18_695)


@pytest.mark.data
def test_bring_your_own_reproduces_cj_next4w(datasets_dir: Path) -> None:
    # Week 50 starts on Monday 2017-12-04 at local midnight, 05:00 in the file's timestamps.
    transactions = datasets_dir / "dunnhumby_complete_journey" / "transactions.parquet"
    split = bring_your_own(
        transactions, "household_id", "product_id", "transaction_timestamp", "global",
        "2017-12-04 05:00",
    )  # fmt: skip
    reference = cj_next4w(datasets_dir)
    assert np.array_equal(split.users, reference.users)
    assert np.array_equal(split.catalogue, reference.catalogue)
    assert pairs(split.targets["default"]) == pairs(reference.targets["all"])
