"""MMR, the category cap and intra-list diversity, held to hand computations and a plain loop."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.diversity import intra_list_diversity, mmr_select

# A and B share a category; C shares only their department; D shares nothing.
HIERARCHY = {"A": ("d1", "x"), "B": ("d1", "x"), "C": ("d1", "y"), "D": ("d2", "z")}


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue(
        list(HIERARCHY),
        department=[d for d, _ in HIERARCHY.values()],
        category=[c for _, c in HIERARCHY.values()],
    )


def choose(catalogue: Catalogue, relevance: list[float], **options: Any) -> list[str]:
    """One person's list over the skus A, B, C, D (in that column order)."""
    items = catalogue.index(list("ABCD"))[None, :]
    selection = mmr_select(np.array([relevance]), items, catalogue, **options)
    return [catalogue.skus[items[0, c]] for c in selection.columns[0] if c >= 0]


def test_mmr_on_four_items_by_hand(catalogue: Catalogue) -> None:
    relevance = [1.0, 0.9, 0.6, 0.5]
    assert choose(catalogue, relevance, k=4) == ["A", "B", "C", "D"]
    # diversity .5, score = .5 relevance - .5 max similarity to the chosen:
    # 1: A .5. 2: B .45 - .5, C .3 - .25, D .25 - 0: D. 3: B -.05, C .05: C. 4: B.
    assert choose(catalogue, relevance, k=4, diversity=0.5) == ["A", "D", "C", "B"]
    # diversity .2, .8 relevance - .2 similarity: 2: B .72 - .2 = .52 beats D .4;
    # 3: C .48 - .1 = .38 loses to D .4; 4: C.
    assert choose(catalogue, relevance, k=4, diversity=0.2) == ["A", "B", "D", "C"]
    assert choose(catalogue, relevance, k=2, diversity=0.5) == ["A", "D"]
    assert choose(catalogue, relevance, k=6, diversity=0.5) == ["A", "D", "C", "B"]


def test_category_cap_and_priority(catalogue: Catalogue) -> None:
    items = catalogue.index(list("ABCD"))[None, :]
    capped = mmr_select(np.array([[1.0, 0.9, 0.6, 0.5]]), items, catalogue, k=4, max_per_category=1)
    assert capped.columns.tolist() == [[0, 2, 3, -1]]  # the list comes out short
    assert capped.capped.tolist() == [[False, True, False, False]]
    first = mmr_select(
        np.array([[1.0, 0.9, 0.6, 0.5]]), items, catalogue, k=2, priority=np.array([[0, 0, 0, 1]])
    )
    assert first.columns.tolist() == [[3, 0]]


def test_embeddings_replace_the_hierarchy(catalogue: Catalogue) -> None:
    # A and B point the same way, C across: C is the diverse choice, D (no vector) is neutral.
    catalogue.set_embeddings(["A", "B", "C"], [[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    relevance = [1.0, 0.9, 0.5, 0.0]
    chosen = choose(catalogue, relevance, k=3, diversity=0.5, similarity="embedding")
    assert chosen == ["A", "C", "D"]  # B: .45 - .5; C: .25 - 0; then D 0 - 0 beats B


def _naive_mmr(
    relevance: list[float],
    categories: list[int],
    departments: list[int],
    k: int,
    d: float,
    cap: int,
) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < k:
        best, best_score = -1, -np.inf
        for i, rel in enumerate(relevance):
            if i in chosen or sum(categories[j] == categories[i] for j in chosen) >= cap:
                continue
            similar = [
                1.0
                if categories[j] == categories[i]
                else 0.5
                if departments[j] == departments[i]
                else 0.0
                for j in chosen
            ]
            score = (1 - d) * rel - d * max(similar, default=0.0)
            if score > best_score:
                best, best_score = i, score
        if best < 0:
            break
        chosen.append(best)
    return chosen


def test_vectorised_mmr_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(3)
    skus = [f"s{i:02d}" for i in range(30)]
    departments, categories = rng.integers(0, 3, 30), rng.integers(0, 6, 30)
    catalogue = Catalogue(skus, department=departments.astype(str), category=categories.astype(str))
    persons, width, k = 25, 12, 6
    items = np.stack([rng.permutation(30)[:width] for _ in range(persons)])
    items[rng.random(items.shape) < 0.2] = -1  # padding: persons with fewer candidates
    relevance = np.sort(rng.random((persons, width)), axis=1)[:, ::-1].copy()
    selection = mmr_select(relevance, items, catalogue, k=k, diversity=0.35, max_per_category=2)
    category_code, department_code = catalogue.category_code, catalogue.department_code
    for p in range(persons):
        kept = np.flatnonzero(items[p] >= 0)
        rows = items[p, kept]
        expected = _naive_mmr(
            list(relevance[p, kept]),
            list(category_code[rows]),
            list(department_code[rows]),
            k,
            0.35,
            2,
        )
        got = [c for c in selection.columns[p] if c >= 0]
        assert got == [int(kept[i]) for i in expected]


def test_intra_list_diversity_by_hand(catalogue: Catalogue) -> None:
    lists = pd.DataFrame(
        {"person_id": ["p", "p", "p", "q", "q", "r"], "sku": ["A", "B", "C", "A", "D", "A"]}
    )
    # p: similarities AB 1, AC .5, BC .5: dissimilarity 1/3. q: 1. r: no pairs, left out.
    assert intra_list_diversity(lists, catalogue) == pytest.approx((1 / 3 + 1) / 2)
    assert intra_list_diversity(lists[lists["person_id"] == "r"], catalogue) == 0.0
    catalogue.set_embeddings(list("ABCD"), [[1, 0], [1, 1], [0, 1], [-1, 0]])
    # p: cos AB .707, AC 0, BC .707; q: cos AD -1, dissimilarity 2.
    expected = ((1 - 0.7071) + 1 + (1 - 0.7071)) / 3
    assert intra_list_diversity(lists, catalogue, similarity="embedding") == pytest.approx(
        (expected + 2) / 2, abs=1e-4
    )


def test_intra_list_diversity_matches_pairs_one_by_one() -> None:
    rng = np.random.default_rng(5)
    skus = [f"s{i}" for i in range(12)]
    department = np.array(["d1", "d2", None], dtype=object)[rng.integers(0, 3, 12)]
    category = np.array(["x", "y", None], dtype=object)[rng.integers(0, 3, 12)]
    catalogue = Catalogue(skus, department=department, category=category)
    lists = pd.DataFrame(
        {"person_id": np.repeat(["p", "q", "r"], 5), "sku": rng.choice([*skus, "unknown"], 15)}
    )
    rows = catalogue.index(lists["sku"])
    cat = np.where(rows >= 0, catalogue.category_code[rows], -1)
    dep = np.where(rows >= 0, catalogue.department_code[rows], -1)
    per_list = []
    for _, block in lists.groupby("person_id"):
        pairs = itertools.combinations(block.index, 2)
        similar = [
            1.0
            if cat[i] >= 0 and cat[i] == cat[j]
            else 0.5
            if dep[i] >= 0 and dep[i] == dep[j]
            else 0.0
            for i, j in pairs
        ]
        per_list.append(1 - np.mean(similar))
    assert intra_list_diversity(lists, catalogue) == pytest.approx(np.mean(per_list))


def test_bad_input_is_named(catalogue: Catalogue) -> None:
    items = catalogue.index(list("ABCD"))[None, :]
    relevance = np.ones((1, 4))
    with pytest.raises(ValueError, match="diversity must be in"):
        mmr_select(relevance, items, catalogue, k=2, diversity=1.5)
    with pytest.raises(ValueError, match="max_per_category must be at least 1"):
        mmr_select(relevance, items, catalogue, k=2, max_per_category=0)
    with pytest.raises(ValueError, match="same"):
        mmr_select(np.ones((1, 3)), items, catalogue, k=2)
    with pytest.raises(ValueError, match="set_embeddings"):
        mmr_select(relevance, items, catalogue, k=2, similarity="embedding")
    with pytest.raises(ValueError, match=r"missing columns \['sku'\]"):
        intra_list_diversity(pd.DataFrame({"person_id": ["p"]}), catalogue)
