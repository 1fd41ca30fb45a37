"""The two-stage recommender on a planted log: it learns, never returns an empty list, saves."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.two_stage import FALLBACK, TwoStageRecommender

SMALL = {"ranker_trees": 30, "ranker_leaves": 7, "label_windows": 2}


@pytest.fixture(scope="module")
def log(planted_log: Callable[[int], pd.DataFrame]) -> pd.DataFrame:
    return planted_log(0)


@pytest.fixture(scope="module")
def model(log: pd.DataFrame) -> TwoStageRecommender:
    return TwoStageRecommender(RecommenderSettings(**SMALL)).fit(log)


def test_learns_each_persons_staples(model: TwoStageRecommender) -> None:
    ranked = model.recommend(["p00", "p07"], 4)
    assert set(ranked.loc[ranked["person_id"] == "p00", "sku"]) == {"s00", "s01", "s02", "s03"}
    assert set(ranked.loc[ranked["person_id"] == "p07", "sku"]) == {"s04", "s05", "s06", "s07"}
    assert ranked["rank"].tolist() == [1, 2, 3, 4, 1, 2, 3, 4]
    report = model.fit_report_
    assert len(report["windows"]) == 2
    assert report["ranker_features"] >= 10
    assert all(w["candidate_recall"] > 0.9 for w in report["windows"])


def test_lists_are_never_empty_and_fallbacks_are_marked(model: TwoStageRecommender) -> None:
    ranked = model.recommend(["stranger", "p00"], 40)
    stranger = ranked[ranked["person_id"] == "stranger"]
    assert len(stranger) == 40
    assert set(stranger["source"]) == {FALLBACK}
    known = ranked[ranked["person_id"] == "p00"]
    assert len(known) == 40
    assert known["sku"].is_unique
    assert ranked["person_id"].tolist()[0] == "stranger"  # persons come back in the asked order


def test_discovery_never_proposes_what_the_person_bought(log: pd.DataFrame) -> None:
    model = TwoStageRecommender(RecommenderSettings(scope="discovery", **SMALL)).fit(log)
    ranked = model.recommend(["p00", "p01"], 10)
    bought = set(zip(log["person_id"], log["sku"], strict=True))
    assert not any(
        (p, s) in bought for p, s in zip(ranked["person_id"], ranked["sku"], strict=True)
    )
    assert len(ranked) == 20


def test_beats_its_own_retrieval_stage_on_the_next_weeks(
    planted_log: Callable[[int], pd.DataFrame],
) -> None:
    log = planted_log(3)
    cut = log["occurred_at"].min() + pd.Timedelta(days=13 * 7)
    train, test = log[log["occurred_at"] < cut], log[log["occurred_at"] >= cut]
    model = TwoStageRecommender(RecommenderSettings(**SMALL)).fit(train)
    full = model.evaluate(test)
    from shelfwise.evaluation.ranking import ranking_metrics

    retrieval = ranking_metrics(
        model.retrieval_only(test["person_id"].unique(), 20),
        test[["person_id", "sku"]],
        catalogue_size=len(model.items_),
    )
    assert full.metrics["ndcg@10"] > retrieval["ndcg@10"]


def test_round_trips_through_save_and_load(model: TwoStageRecommender, tmp_path: Path) -> None:
    folder = model.save(tmp_path / "recommender")
    loaded = TwoStageRecommender.load(folder)
    persons = ["p00", "p07", "p31", "stranger"]  # p07: pairs two sources rank alike
    pd.testing.assert_frame_equal(loaded.recommend(persons, 8), model.recommend(persons, 8))
    # the generators' shared purchase history is stored once, and loads as copies of its own
    links = json.loads((folder / "links.json").read_text())
    assert links["ease.history_indices"] == "history_indices"
    with np.load(folder / "arrays.npz") as stored:
        assert "ease.history_indices" not in stored.files
    ease = loaded.models_["ease"]
    assert not np.shares_memory(ease.history_.indices, loaded.history_.indices)


def test_a_requests_columns_are_scored_as_their_frame_and_a_list_alone_as_in_a_batch(
    model: TwoStageRecommender,
) -> None:
    """Serving reads candidates as columns, training as a frame: the same scores (a nullable
    column's NA is NaN to the trees), and one person's list is the one a batch gives them."""
    columns = model.candidate_columns(np.array([0, 5, 9]))
    name = model.ranker_.numeric[0]
    values = columns[name].astype(np.float64)
    values[0] = np.nan
    columns = {**columns, name: values}
    frame = pd.DataFrame(columns)
    frame[name] = pd.array([None, *values[1:].tolist()], dtype="Float64")
    scores = model.ranker_.predict(columns)
    assert len(scores) == len(values)
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores, model.ranker_.predict(frame))
    persons = ["p00", "p07", "p31"]
    batch = model.ranked(persons, 8)
    for person in persons:
        alone = model.ranked([person], 8)
        mine = batch[batch["person_id"] == person].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone, mine)


def test_als_proposes_through_its_index_from_ann_min_items_with_the_exact_lists(
    log: pd.DataFrame, model: TwoStageRecommender, tmp_path: Path
) -> None:
    """Under ``ann_min_items`` skus ALS's proposals are its exact scores; from there through
    the HNSW index, which on a catalogue this small finds the same, and saves with the model."""
    assert model.index_ is None  # the planted catalogue is far under the default
    indexed = TwoStageRecommender(RecommenderSettings(**SMALL, ann_min_items=0)).fit(log)
    assert indexed.index_ is not None
    assert indexed.index_.backend == "hnsw"
    persons = ["p00", "p07", "p31", "stranger"]
    pd.testing.assert_frame_equal(indexed.recommend(persons, 8), model.recommend(persons, 8))
    loaded = TwoStageRecommender.load(indexed.save(tmp_path / "indexed"))
    assert loaded.index_ is not None
    assert len(loaded.index_) == len(indexed.index_)
    pd.testing.assert_frame_equal(loaded.recommend(persons, 8), model.recommend(persons, 8))


def test_clear_errors(log: pd.DataFrame, model: TwoStageRecommender) -> None:
    with pytest.raises(ValueError, match="k must be a positive integer"):
        model.recommend(["p00"], 0)
    short = log[log["occurred_at"] < log["occurred_at"].min() + pd.Timedelta(days=20)]
    with pytest.raises(ValueError, match="spans too little time"):
        TwoStageRecommender(RecommenderSettings(label_days=28.0, **SMALL)).fit(short)
    with pytest.raises(ValueError, match="lacks required column"):
        TwoStageRecommender().fit(log.drop(columns="sku"))
