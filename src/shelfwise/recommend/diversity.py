"""Lists that are not ten flavours of the same yoghurt: MMR, category caps and their measure.

Maximal marginal relevance (Carbonell & Goldstein, 1998) builds each list greedily: the next
item maximises ``(1 - diversity) * relevance - diversity * max similarity to the items already
chosen``, so ``diversity=0`` keeps the relevance order and ``diversity=1`` only avoids repeats.
Two skus are similar by the catalogue's hierarchy (the same category 1.0, the same department
0.5, else 0) or by the cosine of their embeddings. ``max_per_category`` caps how many skus of
one category a list may hold, whatever the relevance.

Every person's candidates are one row of a (persons, candidates) matrix, columns best first,
so one greedy step chooses for every person at once: 2,000 persons x 200 candidates take a few
milliseconds per rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.recommend.catalogue import Catalogue

SAME_CATEGORY = 1.0
SAME_DEPARTMENT = 0.5
CHUNK_PERSONS = 256  # persons per greedy block: 256 x 200 candidates x 64 float32 dims is 13 MB

Similarity = Literal["category", "embedding"]


@dataclass(frozen=True)
class Selection:
    """What :func:`mmr_select` chose, as column positions of its input matrices.

    ``columns``: (persons, k), the column chosen at each rank, -1 past the end of a short list.
    ``capped``: (persons, candidates), candidates passed over because their category was full:
    not chosen, in a category holding ``max_per_category`` chosen items, and ranked above the
    last chosen column (anywhere, when the list came out shorter than k).
    """

    columns: NDArray[np.int64]
    capped: NDArray[np.bool_]


def _check_similarity(catalogue: Catalogue, similarity: str) -> None:
    if similarity not in ("category", "embedding"):
        raise ValueError(f"similarity must be 'category' or 'embedding', got {similarity!r}")
    if similarity == "embedding" and catalogue.embeddings is None:
        raise ValueError("similarity='embedding' needs catalogue embeddings: set_embeddings first")


def _hierarchy(catalogue: Catalogue, items: NDArray[np.int64]) -> tuple[NDArray[np.int64], ...]:
    """Category and department codes of catalogue rows; -1 for padding and unknown values."""
    known = items >= 0
    at = np.where(known, items, 0)
    category = np.where(known, catalogue.category_code[at], -1)
    department = np.where(known, catalogue.department_code[at], -1)
    return category, department


def mmr_select(
    relevance: NDArray[np.float64],
    items: NDArray[np.int64],
    catalogue: Catalogue,
    *,
    k: int,
    diversity: float = 0.0,
    max_per_category: int | None = None,
    similarity: Similarity = "category",
    priority: NDArray[np.int64] | None = None,
) -> Selection:
    """Choose up to ``k`` candidates per row of ``items`` (catalogue rows, -1 for padding).

    ``relevance`` has the shape of ``items``; columns should come best first, since ties go
    to the leftmost column. A higher ``priority`` (same shape, optional) is chosen before any
    lower one whatever the relevance; MMR and the cap work within and across priorities.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity!r}")
    if max_per_category is not None and max_per_category < 1:
        raise ValueError(f"max_per_category must be at least 1, got {max_per_category!r}")
    if relevance.shape != items.shape or (priority is not None and priority.shape != items.shape):
        raise ValueError("relevance, items and priority must have the same (persons, candidates)")
    _check_similarity(catalogue, similarity)
    persons, width = items.shape
    available = items >= 0
    base = np.where(available, (1.0 - diversity) * np.nan_to_num(relevance), 0.0)
    if priority is not None:
        # One priority step outweighs any difference MMR can make within a step.
        step = 2.0 * (float(np.abs(base).max(initial=0.0)) + 1.0) + 1.0
        base = base + step * priority
    depth = min(k, width)
    if diversity == 0.0 and max_per_category is None:
        order = np.argsort(np.where(available, -base, np.inf), axis=1, kind="stable")[:, :depth]
        taken = np.take_along_axis(available, order, axis=1)
        columns = np.full((persons, k), -1, dtype=np.int64)
        columns[:, :depth] = np.where(taken, order, -1)
        return Selection(columns, np.zeros(items.shape, dtype=bool))

    columns = np.full((persons, k), -1, dtype=np.int64)
    capped = np.zeros(items.shape, dtype=bool)
    for start in range(0, persons, CHUNK_PERSONS):
        block = slice(start, start + CHUNK_PERSONS)
        columns[block, :depth], capped[block] = _greedy(
            base[block],
            items[block],
            catalogue,
            depth=depth,
            diversity=diversity,
            cap=max_per_category,
            similarity=similarity,
        )
    return Selection(columns, capped)


def _greedy(
    base: NDArray[np.float64],
    items: NDArray[np.int64],
    catalogue: Catalogue,
    *,
    depth: int,
    diversity: float,
    cap: int | None,
    similarity: Similarity,
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """MMR for one block of persons: ``depth`` greedy steps over all of them at once."""
    persons, width = items.shape
    rows = np.arange(persons)
    available = items >= 0
    category, department = _hierarchy(catalogue, items)
    vectors = None
    if similarity == "embedding" and diversity > 0:
        assert catalogue.embeddings is not None
        vectors = catalogue.embeddings[np.where(available, items, 0)]
        vectors[~available] = 0.0
    closest = np.zeros(items.shape)  # max similarity to the chosen items, 0 before the first
    in_category = np.zeros(items.shape, dtype=np.int64)  # chosen items sharing the category
    chosen = np.full((persons, depth), -1, dtype=np.int64)
    for rank in range(depth):
        eligible = available if cap is None else available & (in_category < cap)
        score = np.where(eligible, base - diversity * closest, -np.inf)
        pick = np.argmax(score, axis=1)
        ok = eligible[rows, pick]
        if not ok.any():
            break
        chosen[ok, rank] = pick[ok]
        available[rows[ok], pick[ok]] = False
        same = (category == category[rows, pick][:, None]) & (category >= 0) & ok[:, None]
        in_category += same
        if diversity > 0:
            if vectors is not None:
                near = np.einsum("pcd,pd->pc", vectors, vectors[rows, pick]).astype(np.float64)
            else:
                related = (department == department[rows, pick][:, None]) & (department >= 0)
                near = np.where(same, SAME_CATEGORY, np.where(related, SAME_DEPARTMENT, 0.0))
            closest = np.where(ok[:, None], np.maximum(closest, near), closest)
    capped = np.zeros(items.shape, dtype=bool)
    if cap is not None:
        full = (chosen >= 0).all(axis=1)
        last = np.where(full, chosen.max(axis=1, initial=-1), width)
        capped = available & (in_category >= cap) & (np.arange(width) < last[:, None])
    return chosen, capped


def intra_list_diversity(
    lists: pd.DataFrame, catalogue: Catalogue, *, similarity: Similarity = "category"
) -> float:
    """Mean over lists of the mean pairwise dissimilarity (1 - similarity) of their skus.

    ``lists`` has ``person_id`` and ``sku`` (one list per person). Similarity is the one MMR
    uses; a sku the catalogue does not know is similar to nothing. Lists with fewer than two
    skus have no pairs and are left out; with no pairs at all the answer is 0.0.
    """
    missing = [c for c in ("person_id", "sku") if c not in lists.columns]
    if missing:
        raise ValueError(f"lists: missing columns {missing}")
    _check_similarity(catalogue, similarity)
    owner, names = pd.factorize(lists["person_id"])
    size = np.bincount(owner, minlength=len(names)).astype(np.float64)
    pairs = size * (size - 1) / 2
    items = catalogue.index(lists["sku"])
    if similarity == "embedding":
        assert catalogue.embeddings is not None
        unit = np.where((items >= 0)[:, None], catalogue.embeddings[np.maximum(items, 0)], 0.0)
        summed = np.zeros((len(names), unit.shape[1]))
        np.add.at(summed, owner, unit)
        # Σ_{i<j} cos(i, j) = (|Σ v|² - Σ |v|²) / 2.
        norms = np.bincount(owner, weights=(unit**2).sum(axis=1), minlength=len(names))
        similar = ((summed**2).sum(axis=1) - norms) / 2
    else:
        category, department = _hierarchy(catalogue, items)
        same_category = _pairs_sharing(owner, len(names), category)
        same_department = _pairs_sharing(owner, len(names), department)
        both = _pairs_sharing(
            owner, len(names), np.where(department >= 0, category, -1), department
        )
        similar = SAME_CATEGORY * same_category + SAME_DEPARTMENT * (same_department - both)
    has_pairs = pairs > 0
    if not has_pairs.any():
        return 0.0
    return float(np.mean(1.0 - similar[has_pairs] / pairs[has_pairs]))


def _pairs_sharing(
    owner: NDArray[np.int64], lists: int, *codes: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Per list, the number of pairs of its rows that agree on every code (all known)."""
    known = np.all([code >= 0 for code in codes], axis=0)
    if not known.any():
        return np.zeros(lists)
    frame = pd.DataFrame({"owner": owner[known]} | {f"c{i}": c[known] for i, c in enumerate(codes)})
    counts = frame.groupby(list(frame.columns)).size()
    per_group = (counts * (counts - 1) / 2).groupby(level="owner").sum()
    out = np.zeros(lists)
    out[per_group.index.to_numpy(dtype=np.int64)] = per_group.to_numpy(dtype=np.float64)
    return out
