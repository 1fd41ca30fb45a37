"""New products: skus nobody has bought yet, given places in the lists by what they are.

A product without sales has no co-purchase neighbours, no EASE weights and no ALS factors, so
the candidate stage cannot propose it and the re-ranker has nothing to learn it from. When the
recommender is given the product catalogue it also fits a
:class:`~shelfwise.recommend.content.ContentRecommender` on it, and calls new:

- the catalogue's skus that nobody in the log bought and that were launched within
  ``new_product_days`` of the log's end (a catalogue without launch dates has none: a product
  unsold for a year is not new, it is dead stock);
- every product embedded after training with ``TwoStageRecommender.add_products`` that the log
  does not know.

:func:`place` gives each list ``slots`` places, every ``every``-th (ranks 5, 10, ... by
default), to the new skus nearest (cosine of content vectors, above 0) to what the person
bought, each anchored on the bought sku nearest to it, so the explanation can say "similar to
X". A person with nothing near keeps the ranker's list. A placed sku's score lies between the
ranker's scores around its place, so the business rules, which order by score, keep it there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.recommend.ann import VectorIndex, open_index
from shelfwise.recommend.candidates import Columns, take_rows
from shelfwise.recommend.content import SKU_COLUMNS, ContentRecommender
from shelfwise.recommend.matrix import group_positions, rows_of, top_k

SOURCE = "new_product"


def launched_unsold(
    content: ContentRecommender,
    catalogue: pd.DataFrame,
    sold: NDArray[np.str_],
    latest_day: float,
    days: float,
) -> NDArray[np.str_]:
    """The catalogue's skus absent from ``sold`` and launched within ``days`` of
    ``latest_day`` (days since the epoch); none where the catalogue has no ``launch_date``."""
    if "launch_date" not in catalogue.columns:
        return np.array([], dtype=str)
    sku = next(c for c in SKU_COLUMNS if c in catalogue.columns)
    launched = pd.to_datetime(catalogue["launch_date"], utc=True, errors="coerce")
    age = latest_day - launched.astype("int64").to_numpy() / 86_400e9
    recent = launched.notna().to_numpy() & (age <= days)
    skus = np.unique(catalogue.loc[recent, sku].astype(str).to_numpy())
    return np.setdiff1d(skus[np.isin(skus, content.items_)], sold).astype(str)


def index_of(
    content: ContentRecommender, new: NDArray[np.str_], ann_url: str, minimum: int
) -> VectorIndex[Any] | None:
    """An ANN index over the new skus' content vectors (ids: content codes) once there are
    ``minimum`` of them: placing new products scores a person against each one, 15 ms a
    request for a million; below it the exact product is cheaper and exact. None for fewer,
    or ``ann_url`` "none". The default search width: on the bench's million (many sharing one
    vector), ef 800 finds the best new product for 92% of persons, ef 128 for 53%."""
    if len(new) < minimum or ann_url == "none":
        return None
    codes = rows_of(content.items_, new)
    codes = codes[codes >= 0]
    return open_index(None if ann_url == "embedded" else ann_url).build(
        content.item_vectors_[codes], codes
    )


def place(
    ranked: Columns,
    content: ContentRecommender,
    new: NDArray[np.str_],
    slots: int,
    every: int,
    k: int,
    index: VectorIndex[Any] | None = None,
) -> Columns:
    """``ranked`` (the ranker's lists as columns, best first within each person) with up to
    ``slots`` new skus per person at ranks ``every``, ``2 * every``, ..., each list cut back
    to ``k``. ``index``: an ANN index over the new skus' content vectors (ids: content codes),
    searched instead of scoring every new sku."""
    persons = pd.unique(ranked["person_id"]).astype(str)
    rows = rows_of(content.users_, persons)
    known = rows >= 0
    if not slots or not len(new) or not known.any():
        return ranked
    people, rows = persons[known], rows[known]
    if index is not None:  # its ids are the new skus' content codes: none to look up
        found, values = index.search(content.user_vectors_[rows], slots)
        chosen = np.where((found >= 0) & (values > 0), found, -1)
    else:
        codes = rows_of(content.items_, new)
        codes = codes[codes >= 0]
        scores = content.user_vectors_[rows] @ content.item_vectors_[codes].T
        scores = np.where(scores > 0, scores, -np.inf).astype(np.float32)
        positions, values = top_k(scores, slots)
        chosen = np.where(positions >= 0, codes[np.maximum(positions, 0)], -1)
    keep = chosen >= 0
    if not keep.any():
        return ranked
    who, slot = np.nonzero(keep)  # person by person, slot by slot
    picked = chosen[who, slot]
    placed = {
        "person_id": people[who].astype(object),
        "sku": content.items_[picked].astype(object),
        "score": values[who, slot].astype(np.float64),
        "source": np.full(len(who), SOURCE, dtype=object),
        "bought_before": np.zeros(len(who), dtype=bool),
        "repurchase_days": np.full(len(who), np.nan),
        "anchor_sku": np.asarray(_anchors(content, rows[who], picked), dtype=object),
    }
    out = {name: np.concatenate([ranked[name], placed[name]]) for name in placed}
    # Places: the ranker's rows 1, 2, ...; the j-th new sku of a list just before every * j.
    place = np.concatenate(
        [
            _cumcount(ranked["person_id"]) + 1.0,
            every * np.cumsum(keep, axis=1)[who, slot] - 0.5,
        ]
    )
    person = pd.factorize(out["person_id"], sort=True)[0]
    order = np.lexsort((place, person))
    person = person[order]
    kept = group_positions(person) < k
    out = take_rows(out, order[kept])
    out["score"] = _scored_in_place(out, person[kept])
    return out


def _cumcount(keys: NDArray[Any]) -> NDArray[np.int64]:
    """Each row's position among the earlier rows of its key (``groupby().cumcount()``)."""
    codes = pd.factorize(keys)[0]
    order = np.argsort(codes, kind="stable")
    out = np.empty(len(keys), dtype=np.int64)
    out[order] = group_positions(codes[order])
    return out


def _anchors(
    content: ContentRecommender, rows: NDArray[np.int64], picked: NDArray[np.int64]
) -> list[str | None]:
    """Per (person row, new sku code), the sku the person bought nearest to it (None: the
    person bought nothing)."""
    anchors: list[str | None] = [None] * len(picked)
    for row in np.unique(rows):
        at = np.flatnonzero(rows == row)
        bought = content.history_[row].indices
        if len(bought):
            vectors = content.item_vectors_
            nearest = (vectors[bought] @ vectors[picked[at]].T).argmax(0)
            for i, sku in zip(at, content.items_[bought[nearest]], strict=True):
                anchors[i] = str(sku)
    return anchors


def _scored_in_place(out: Columns, person: NDArray[np.int64]) -> NDArray[np.float64]:
    """The scores of ``out`` with each new sku's set between the ranker's scores above and
    below its place (its content similarity is on another scale), so that rules ordering by
    score keep it there. ``out`` is grouped by ``person`` (a code per row, ascending)."""
    new = out["source"] == SOURCE
    score = out["score"].astype(np.float64)
    n = len(score)
    at = np.arange(n)
    first = np.searchsorted(person, person, side="left")  # where each row's person begins
    end = np.searchsorted(person, person, side="right")  # and the row after it ends
    ranked = ~new & ~np.isnan(score)
    up = np.maximum.accumulate(np.where(ranked, at, -1)) if n else at
    down = np.minimum.accumulate(np.where(ranked, at, n)[::-1])[::-1] if n else at
    has_up, has_down = up >= first, down < end
    above = np.where(has_up, score[np.clip(up, 0, None)], np.nan)
    below = np.where(has_down, score[np.clip(down, None, n - 1)], np.nan)
    between = np.where(
        has_up & has_down,
        (above + below) / 2,
        np.where(has_up, above - 1e-6, below + 1e-6),
    )
    scored: NDArray[np.float64] = np.where(new, between, score)
    return scored
