"""Aggregates over time with small known answers, and the online fold against the full history."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from shelfwise.data.store import AnalyticStore
from shelfwise.features.definitions import Aggregate as A
from shelfwise.features.definitions import FeatureSet
from shelfwise.features.offline import OfflineFeatures
from shelfwise.features.states import states_sql

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2024-01-01")


def toy_set(*aggregates: A, gap: float | None = None) -> FeatureSet:
    return FeatureSet(
        name="toy", entity="person", stream="SELECT * FROM toy", aggregates=aggregates,
        session_gap_minutes=gap,
    )  # fmt: skip


def frame_at(
    rows: pd.DataFrame, feature_set: FeatureSet, moments: list[pd.Timestamp]
) -> pd.DataFrame:
    store = AnalyticStore("duckdb:///:memory:")
    store.connection.register("toy_rows", rows)
    store.execute("CREATE TABLE toy AS SELECT * FROM toy_rows")
    labels = pd.DataFrame({"person_id": "p", "as_of": moments})
    frame = OfflineFeatures(store, [feature_set], cross=()).frame(labels)
    store.close()
    return frame


def test_counts_and_sums_use_only_rows_strictly_before_the_moment() -> None:
    rows = pd.DataFrame({
        "person_id": "p", "value": [1.0, 2.0, 4.0, 8.0],
        "event_at": [T0, T0 + DAY, T0 + DAY, T0 + 3 * DAY],  # two rows share a moment
    })  # fmt: skip
    feature_set = toy_set(
        A("n", "count"), A("total", "sum", "value"), A("big", "count", where="value > 3")
    )
    frame = frame_at(
        rows, feature_set, [T0, T0 + DAY, T0 + DAY + pd.Timedelta(seconds=1), T0 + 9 * DAY]
    )
    assert frame["n"].tolist() == [0.0, 1.0, 3.0, 4.0]
    assert frame["total"].tolist() == [0.0, 1.0, 7.0, 15.0]
    assert frame["big"].tolist() == [0.0, 0.0, 1.0, 2.0]
    assert frame["toy_missing"].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_decayed_sums_halve_each_half_life_even_over_a_thousand_half_lives() -> None:
    moments = [T0 + k * 37 * DAY for k in range(60)]  # 2,183 days: past 8 epochs of 256 days
    rows = pd.DataFrame({"person_id": "p", "value": np.arange(1.0, 61.0), "event_at": moments})
    feature_set = toy_set(A("decayed", "decayed", "value", half_life_days=1.0))
    asked = [T0 + 2 * DAY, moments[-1] + pd.Timedelta(hours=12), moments[30] + 3 * DAY]
    frame = frame_at(rows, feature_set, asked)
    seconds = (rows["event_at"] - T0).dt.total_seconds().to_numpy()
    for moment, got in zip(asked, frame["decayed"], strict=True):
        age = (moment - T0).total_seconds() - seconds
        expected = float(np.sum(rows["value"].to_numpy()[age > 0] * 0.5 ** (age[age > 0] / 86_400)))
        assert got == pytest.approx(expected, rel=1e-12)
    assert frame["decayed"].iloc[0] == pytest.approx(0.25)


def test_windows_cover_the_days_before_the_moment_and_no_more() -> None:
    rows = pd.DataFrame({
        "person_id": "p", "value": 1.0,
        "event_at": [T0, T0 + 3 * DAY, T0 + 7 * DAY, T0 + 7 * DAY + pd.Timedelta(hours=1)],
    })  # fmt: skip
    feature_set = toy_set(A("week", "window", window_days=7.0))
    frame = frame_at(
        rows,
        feature_set,
        [T0 + 7 * DAY, T0 + 7 * DAY + pd.Timedelta(seconds=1), T0 + 10 * DAY, T0 + 30 * DAY],
    )
    # [t - 7d, t): at day 7 the row of day 0 is still in; at day 10 only days 3..7 count.
    assert frame["week"].tolist() == [2.0, 2.0, 3.0, 0.0]


def test_sessions_end_after_the_inactivity_gap() -> None:
    minute = pd.Timedelta(minutes=1)
    rows = pd.DataFrame({
        "person_id": "p", "kind": ["view", "view", "cart", "view", "view"],
        "event_at": [T0, T0 + 5 * minute, T0 + 20 * minute, T0 + 90 * minute, T0 + 95 * minute],
    })  # fmt: skip
    feature_set = toy_set(
        A("events", "session"), A("carts", "session", where="kind = 'cart'"),
        A("seconds", "session_seconds"), A("sessions", "sessions"), gap=30.0,
    )  # fmt: skip
    asked = [T0 + 21 * minute, T0 + 60 * minute, T0 + 96 * minute]
    frame = frame_at(rows, feature_set, asked)
    assert frame["events"].tolist() == [3.0, 0.0, 2.0]  # the first session ended at minute 50
    assert frame["carts"].tolist() == [1.0, 0.0, 0.0]
    assert frame["seconds"].tolist() == [21 * 60.0, 0.0, 6 * 60.0]
    assert frame["sessions"].tolist() == [1.0, 1.0, 2.0]


def test_first_last_latest_and_active_rows() -> None:
    rows = pd.DataFrame({
        "person_id": "p", "value": [5.0, None, 3.0], "event_at": [T0, T0 + DAY, T0 + 2 * DAY],
        "until": [T0 + 10 * DAY, T0 + 4 * DAY, T0 + 3 * DAY],
    })  # fmt: skip
    feature_set = toy_set(
        A("first", "first"), A("last", "last"), A("latest", "latest", "value"),
        A("largest", "max", "value"), A("running", "active", "value", until="until"),
    )  # fmt: skip
    frame = frame_at(rows, feature_set, [T0, T0 + 2 * DAY + pd.Timedelta(hours=12), T0 + 5 * DAY])
    assert math.isnan(frame["first"].iloc[0])
    assert math.isnan(frame["latest"].iloc[0])
    assert frame["first"].tolist()[1:] == [2.5, 5.0]
    assert frame["last"].tolist()[1:] == [0.5, 3.0]
    assert frame["latest"].tolist()[1:] == [3.0, 3.0]  # a NULL value does not replace 5 then 3
    assert frame["largest"].tolist()[1:] == [5.0, 5.0]
    # The latest row with a value (3.0) runs until day 3.
    assert frame["running"].tolist() == [0.0, 3.0, 0.0]


EXACT_UNDER_LATE_ROWS = (
    A("n", "count"),
    A("total", "sum", "value"),
    A("decayed", "decayed", "value", half_life_days=2.0),
    A("first", "first"),
    A("last", "last"),
    A("largest", "max", "value"),
)


@pytest.mark.parametrize("late", [False, True])
def test_folding_new_rows_into_a_stored_state_equals_the_whole_history(late: bool) -> None:
    rng = np.random.default_rng(7)
    n = 400
    rows = pd.DataFrame({
        "person_id": [f"p{i}" for i in rng.integers(0, 20, n)],
        "value": rng.integers(0, 10, n).astype(float),
        "kind": rng.choice(["view", "cart"], n),
        "event_at": T0 + pd.to_timedelta(np.sort(rng.integers(0, 40 * 86_400, n)), unit="s"),
    })  # fmt: skip
    aggregates = EXACT_UNDER_LATE_ROWS
    if not late:
        aggregates += (
            A("latest", "latest", "value"), A("in_session", "session"),
            A("carts", "session", where="kind = 'cart'"), A("seconds", "session_seconds"),
            A("sessions", "sessions"),
        )  # fmt: skip
    feature_set = toy_set(*aggregates, gap=600.0 if not late else None)
    cut = T0 + 25 * DAY
    before, after = rows[rows["event_at"] < cut], rows[rows["event_at"] >= cut]
    if late:  # a quarter of the old rows arrive only now
        moved = before.sample(frac=0.25, random_state=1)
        before, after = before.drop(moved.index), pd.concat([after, moved])
    connection = duckdb.connect()
    for name, frame in (("everything", rows), ("earlier", before), ("later", after)):
        connection.register(name, frame)
    whole = connection.execute(states_sql(feature_set, "everything", latest_only=True)).df()
    prior = connection.execute(states_sql(feature_set, "earlier", latest_only=True)).df()
    connection.register("prior", prior[["person_id", *feature_set.state_columns]])
    folded = connection.execute(
        states_sql(feature_set, "later", prior="prior", latest_only=True)
    ).df()
    merged = whole.merge(folded, on="person_id", suffixes=("_whole", "_folded"))
    assert len(merged) == whole["person_id"].nunique() == 20
    for column in feature_set.state_columns:
        np.testing.assert_allclose(
            merged[f"{column}_folded"].to_numpy(float), merged[f"{column}_whole"].to_numpy(float),
            rtol=1e-12, err_msg=column,
        )  # fmt: skip
