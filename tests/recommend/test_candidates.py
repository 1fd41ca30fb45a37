"""The candidate stage: its shortcuts (sparse scores, a linear model's moments, a bounded top-k)
give what the dense rows give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.recommend import generators
from shelfwise.recommend.als import ALSRecommender, ALSSettings
from shelfwise.recommend.buy_again import BuyAgainRecommender, BuyAgainSettings
from shelfwise.recommend.candidates import CandidateStage, Source
from shelfwise.recommend.matrix import Interactions, row_entries, top_k
from shelfwise.recommend.recommender_settings import RecommenderSettings

PERSONS, SKUS = 12, 3_000  # wide enough for top_k's sampled bound
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _reference_top_k(scores: np.ndarray, k: int) -> list[list[int]]:
    """Each row's finite columns by (-score, column), the first k."""
    return [
        [int(c) for c in np.lexsort((np.arange(len(row)), -row)) if np.isfinite(row[c])][:k]
        for row in scores
    ]


@pytest.mark.parametrize("k", [1, 5, 60, 400])
def test_top_k_of_wide_rows_with_ties_and_gaps_is_the_full_sort(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = np.round(rng.standard_normal((7, SKUS)), 1).astype(np.float32)  # many ties
    scores[1, rng.random(SKUS) < 0.97] = -np.inf  # mostly no candidate: the bound is -inf
    scores[2] = -np.inf
    scores[3, : SKUS - 3] = -np.inf  # fewer candidates than k
    scores[4] = 0.5  # one tie across the row
    scores[5, rng.random(SKUS) < 0.5] = np.nan
    scores[6, ::16] += 10.0  # the sample holds the best: its bound has fewer than k above it
    items, values = top_k(scores, k)
    for row, expected in enumerate(_reference_top_k(scores, k)):
        assert items[row, : len(expected)].tolist() == expected
        assert (items[row, len(expected) :] == -1).all()
        np.testing.assert_array_equal(values[row, : len(expected)], scores[row, expected])


def test_row_entries_gather_what_scipy_rows_hold() -> None:
    matrix = sp.random(20, 30, density=0.2, random_state=1, format="csr")
    rows = np.array([3, 0, 3, 19, 7])
    owner, at = row_entries(matrix.indptr, rows)
    picked = matrix[rows]
    assert owner.tolist() == np.repeat(np.arange(len(rows)), np.diff(picked.indptr)).tolist()
    assert matrix.indices[at].tolist() == picked.indices.tolist()


def test_als_moments_are_those_of_the_dense_scores() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "person_id": [f"p{p:02d}" for p in rng.integers(0, 30, 600)],
            "sku": [f"s{s:03d}" for s in rng.integers(0, 200, 600)],
            "occurred_at": T0,
        }
    )
    model = ALSRecommender(ALSSettings(factors=8, iterations=3)).fit(frame)
    rows = np.arange(30)
    dense = model.scores(rows).astype(np.float64)
    moments = model.score_moments(rows)
    assert moments is not None
    np.testing.assert_allclose(moments[0], dense.mean(axis=1), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(moments[1], dense.std(axis=1), rtol=1e-5)
    items = rng.integers(0, len(model.items_), 30)
    np.testing.assert_allclose(
        model.pair_scores(rows, items), dense[rows, items], rtol=1e-5, atol=1e-9
    )
    model.item_factors_ = model.item_factors_.copy()
    model.item_factors_[5, 0] = np.nan
    assert model.score_moments(rows) is None  # some scores are not finite: read the dense rows


def _buy_again(skus: int) -> BuyAgainRecommender:
    """Each person bought a few skus; every sku was bought by someone."""
    rng = np.random.default_rng(1)
    person = np.concatenate([np.arange(skus) % PERSONS, rng.integers(0, PERSONS, 200)])
    sku = np.concatenate([np.arange(skus), rng.integers(0, skus, 200)])
    frame = pd.DataFrame(
        {
            "person_id": [f"p{p:02d}" for p in person],
            "sku": [f"s{s:05d}" for s in sku],
            "occurred_at": T0 + pd.to_timedelta(rng.integers(0, 60, len(sku)), unit="D"),
        }
    )
    return BuyAgainRecommender(BuyAgainSettings()).fit_interactions(Interactions.from_frame(frame))


def _sparse(scores: np.ndarray) -> sp.csr_matrix:
    """The finite scores (zeros too) as CSR, each row's entries in a shuffled order."""
    rng = np.random.default_rng(2)
    rows, columns = np.nonzero(np.isfinite(scores))
    order = np.lexsort((rng.random(len(rows)), rows))
    indptr = np.searchsorted(rows, np.arange(len(scores) + 1))
    return sp.csr_matrix(
        (scores[rows[order], columns[order]], columns[order], indptr), shape=scores.shape
    )


def _candidate_scores() -> np.ndarray:
    rng = np.random.default_rng(3)
    scores = np.round(rng.standard_normal((PERSONS, SKUS)), 1).astype(np.float32)
    scores[rng.random(scores.shape) < 0.9] = -np.inf
    scores[0] = -np.inf
    scores[0, [5, 70, 900]] = 0.1  # equal scores: a float32 sum of them rounds
    scores[1] = -np.inf  # no candidate
    scores[2, 10:] = -np.inf  # fewer candidates than the quota
    scores[3, 40] = 0.0  # a stored zero is a score
    return scores


def _wide_scores() -> np.ndarray:
    """Every sku scored (as EASE scores), some tying."""
    rng = np.random.default_rng(4)
    return np.round(rng.standard_normal((PERSONS, SKUS)), 3).astype(np.float32)


def _stage(buy_again: BuyAgainRecommender, scores: np.ndarray, *, sparse: bool) -> CandidateStage:
    def dense(rows: np.ndarray) -> np.ndarray:
        return scores[rows].copy()

    def stored(rows: np.ndarray) -> sp.csr_matrix:
        return _sparse(scores)[rows]

    hooks = {"sparse": stored} if sparse else {}
    wide = _wide_scores()
    sources = [
        Source("again", 30, dense, **hooks),  # type: ignore[arg-type]
        Source("novel", 25, dense, novel=True, **hooks),  # type: ignore[arg-type]
        Source("everything", 20, lambda rows: wide[rows].copy(), novel=True),
    ]
    return CandidateStage(sources, buy_again, SKUS, batch=5)


def test_sparse_scores_give_what_the_dense_rows_give() -> None:
    buy_again = _buy_again(SKUS)
    scores = _candidate_scores()
    rows = np.arange(PERSONS)[::-1]
    fast = _stage(buy_again, scores, sparse=True).generate(rows)
    dense = _stage(buy_again, scores, sparse=False).generate(rows)
    pd.testing.assert_frame_equal(fast, dense, check_exact=True)
    for row in (0, 2, 3):
        one = np.array([row])
        pd.testing.assert_frame_equal(
            _stage(buy_again, scores, sparse=True).generate(one),
            _stage(buy_again, scores, sparse=False).generate(one),
            check_exact=True,
        )


def test_the_stage_proposes_each_sources_best_and_standardises_over_the_row() -> None:
    buy_again = _buy_again(SKUS)
    scores = _candidate_scores()
    wide = _wide_scores()
    frame = _stage(buy_again, scores, sparse=True).generate(np.arange(PERSONS))
    # every candidate was proposed by a source (a short list's padding is no candidate)
    assert frame.filter(like="_rank").notna().any(axis=1).all()
    seen = buy_again.history_.toarray() > 0
    for row in range(PERSONS):
        mine = frame[frame["row"] == row].set_index("item")
        for name, row_scores, novel, quota in (
            ("again", scores[row], False, 30),
            ("novel", scores[row], True, 25),
            ("everything", wide[row], True, 20),
        ):
            candidates = np.where(seen[row], -np.inf, row_scores) if novel else row_scores
            best = _reference_top_k(candidates[None, :], quota)[0]
            ranked = mine[f"{name}_rank"].dropna().sort_values()
            assert ranked.index.tolist() == best
            assert ranked.tolist() == list(range(1, len(best) + 1))
            values = row_scores[np.isfinite(row_scores)].astype(np.float64)
            if len(values) < 2 or values.std() == 0:  # what is left is the sum's rounding
                continue
            z = (row_scores[mine.index] - values.mean()) / values.std()
            expected = np.where(np.isfinite(row_scores[mine.index]), z, -np.inf)
            np.testing.assert_allclose(mine[f"{name}_z"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scope", ["all", "discovery"])
def test_served_stage_matches_the_dense_stage(
    planted_log: Callable[[int], pd.DataFrame], scope: str
) -> None:
    settings = RecommenderSettings(scope=scope)
    data = generators.interactions(generators.prepare(planted_log(0)))
    models = generators.fit_models(data, settings)
    stage = generators.stage_of(models, settings, generators.ann_index(models, "embedded"))
    dense = CandidateStage(
        [replace(source, sparse=None, linear=None) for source in stage.sources],
        stage.buy_again,
        stage.n_items,
    )
    rows = np.arange(len(data.users))
    for asked in (rows, rows[7:8]):
        fast, slow = stage.generate(asked), dense.generate(asked)
        # ALS's standardised scores come from its factors' moments: equal up to rounding.
        pd.testing.assert_frame_equal(fast.drop(columns="als_z"), slow.drop(columns="als_z"))
        np.testing.assert_allclose(fast["als_z"], slow["als_z"], rtol=1e-5, atol=1e-5)
