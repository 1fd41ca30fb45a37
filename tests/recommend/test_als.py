"""Implicit ALS: exact on the normal equations, right on a planted structure, and on real data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.recommend import PopularityRecommender, PopularitySettings
from shelfwise.recommend.als import ALSRecommender, ALSSettings, least_squares_cg

DAY = pd.Timestamp("2024-05-01")


def _planted(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three tastes: persons of group g buy skus of group g. Group 0 is the largest, so its
    skus are the most popular with everyone; two purchases per person are held out."""
    rng = np.random.default_rng(seed)
    rows = []
    for person, group in enumerate(np.repeat([0, 1, 2], [40, 25, 15])):
        mine = [f"s{group}{i:02d}" for i in range(15) if rng.random() < 0.6]
        noise = [f"s{g}{i:02d}" for g in range(3) for i in range(15) if rng.random() < 0.03]
        rows += [(f"p{person:02d}", sku, int(rng.integers(1, 4))) for sku in mine + noise]
    frame = pd.DataFrame(rows, columns=["person_id", "sku", "weight"]).drop_duplicates(
        ["person_id", "sku"]
    )
    frame["occurred_at"] = DAY
    held = frame.groupby("person_id").sample(n=2, random_state=seed)
    return frame.drop(held.index), held[["person_id", "sku"]]


def _exact(confidence: sp.csr_matrix, fixed: np.ndarray, regularization: float) -> np.ndarray:
    """Each row's normal equations, written out in full and solved."""
    dense = confidence.toarray().astype(np.float64)
    out = []
    for row in dense:
        weight = np.where(row > 0, row, 1.0)
        system = fixed.T @ (weight[:, None] * fixed) + regularization * np.eye(fixed.shape[1])
        out.append(np.linalg.solve(system, fixed.T @ (weight * (row > 0))))
    return np.array(out)


def test_conjugate_gradient_solves_the_normal_equations() -> None:
    rng = np.random.default_rng(3)
    confidence = sp.random(50, 30, density=0.2, random_state=4, format="csr", dtype=np.float32)
    confidence.data = 1.0 + 5.0 * confidence.data
    keep = np.ones(50, dtype=np.float32)
    keep[7] = 0.0  # a row without interactions solves to the origin
    confidence = sp.csr_matrix(sp.diags(keep) @ confidence)
    confidence.eliminate_zeros()
    fixed = rng.standard_normal((30, 4)).astype(np.float32)
    start = rng.standard_normal((50, 4)).astype(np.float32)
    got = least_squares_cg(confidence, fixed, start, 0.5, steps=8)
    np.testing.assert_allclose(got, _exact(confidence, fixed, 0.5), rtol=1e-3, atol=1e-4)
    assert np.abs(got[7]).max() < 1e-6
    nothing = least_squares_cg(sp.csr_matrix((3, 30), dtype=np.float32), fixed, start[:3], 0.5, 3)
    assert not nothing.any()


def test_planted_tastes_are_recovered_better_than_popularity() -> None:
    train, held = _planted()
    settings = ALSSettings(factors=6, regularization=0.5, alpha=2.0, exclude_seen=True)
    als = ALSRecommender(settings).fit(train).evaluate(held).metrics
    popular = PopularityRecommender(PopularitySettings(exclude_seen=True)).fit(train)
    baseline = popular.evaluate(held).metrics
    assert als["recall@20"] > 0.9
    assert als["ndcg@10"] > baseline["ndcg@10"] + 0.2


def test_factors_are_float32_and_fixed_by_the_seed() -> None:
    train, _ = _planted()
    first = ALSRecommender(ALSSettings(factors=4, iterations=3)).fit(train)
    again = ALSRecommender(ALSSettings(factors=4, iterations=3)).fit(train)
    other = ALSRecommender(ALSSettings(factors=4, iterations=3, seed=1)).fit(train)
    assert first.item_factors_.dtype == first.user_factors_.dtype == np.float32
    assert first.user_factors_.shape == (len(first.users_), 4)
    assert first.item_factors_.shape == (len(first.items_), 4)
    np.testing.assert_array_equal(first.item_factors_, again.item_factors_)
    assert not np.allclose(first.item_factors_, other.item_factors_)


def test_confidence_is_log_or_linear_in_the_count() -> None:
    counts = sp.csr_matrix(np.array([[0.0, 1.0, 3.0]]))
    log = ALSRecommender(ALSSettings(alpha=2.0, epsilon=0.5))._confidence(counts)
    linear = ALSRecommender(ALSSettings(alpha=2.0, confidence="linear"))._confidence(counts)
    assert log.toarray()[0].tolist() == pytest.approx([0, 1 + 2 * np.log(3), 1 + 2 * np.log(7)])
    assert linear.toarray()[0].tolist() == pytest.approx([0, 3, 7])


def test_a_person_folded_in_lands_where_training_put_them() -> None:
    train, _ = _planted()
    model = ALSRecommender(ALSSettings(factors=6, regularization=0.5, iterations=25)).fit(train)
    folded = model.embed_history(model.history_)
    assert folded.dtype == np.float32
    cosine = np.sum(folded * model.user_factors_, axis=1) / (
        np.linalg.norm(folded, axis=1) * np.linalg.norm(model.user_factors_, axis=1)
    )
    assert cosine.min() > 0.99
    empty = model.embed_history(sp.csr_matrix((2, len(model.items_))))
    assert not empty.any()
    with pytest.raises(ValueError, match="one column per sku"):
        model.embed_history(sp.csr_matrix((1, 3)))


def test_save_and_load_give_identical_recommendations(tmp_path: Path) -> None:
    train, _ = _planted()
    settings = ALSSettings(factors=5, iterations=4, confidence="linear", exclude_seen=True)
    model = ALSRecommender(settings).fit(train)
    loaded = ALSRecommender.load(model.save(tmp_path / "als"))
    assert loaded.settings == settings
    people = ["p00", "p41", "p79", "stranger"]
    pd.testing.assert_frame_equal(loaded.recommend(people, 7), model.recommend(people, 7))
    np.testing.assert_array_equal(loaded.item_factors_, model.item_factors_)


def test_settings_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="factors"):
        ALSSettings(factors=0)
    with pytest.raises(ValueError, match="confidence"):
        ALSSettings(confidence="square")
    with pytest.raises(ValueError, match="regularization"):
        ALSSettings(regularization=0.0)


@pytest.mark.data
def test_complete_journey_beats_the_reference(
    cj_next4w: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    """cj-next4w with the defaults: BENCHMARKS.md's ALS scores 0.215 (all), 0.0351 (discovery)."""
    train, every, new = cj_next4w
    model = ALSRecommender().fit(train)
    assert model.evaluate(every).metrics["ndcg@10"] > 0.21
    model.settings = replace(model.settings, exclude_seen=True)
    assert model.evaluate(new).metrics["ndcg@10"] > 0.042
