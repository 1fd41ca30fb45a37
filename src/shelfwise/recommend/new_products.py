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
from shelfwise.recommend.content import SKU_COLUMNS, ContentRecommender
from shelfwise.recommend.matrix import rows_of, top_k

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
    ranked: pd.DataFrame,
    content: ContentRecommender,
    new: NDArray[np.str_],
    slots: int,
    every: int,
    k: int,
    index: VectorIndex[Any] | None = None,
) -> pd.DataFrame:
    """``ranked`` (the ranker's lists, best first within each person) with up to ``slots`` new
    skus per person at ranks ``every``, ``2 * every``, ..., each list cut back to ``k``.
    ``index``: an ANN index over the new skus' content vectors (ids: content codes), searched
    instead of scoring every new sku."""
    persons = pd.unique(ranked["person_id"].to_numpy(dtype=str))
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
    parts = []
    for i, person in enumerate(people):
        keep = chosen[i] >= 0
        if not keep.any():
            continue
        picked = chosen[i][keep]
        bought = content.history_[rows[i]].indices
        anchors: list[str | None] = [None] * len(picked)
        if len(bought):
            nearest = (content.item_vectors_[bought] @ content.item_vectors_[picked].T).argmax(0)
            anchors = [str(s) for s in content.items_[bought[nearest]]]
        parts.append(
            pd.DataFrame(
                {
                    "person_id": person,
                    "sku": content.items_[picked],
                    "score": values[i][keep].astype(np.float64),
                    "source": SOURCE,
                    "bought_before": False,
                    "repurchase_days": np.nan,
                    "anchor_sku": pd.Series(anchors, dtype="string"),
                    "_place": every * np.arange(1, int(keep.sum()) + 1) - 0.5,
                }
            )
        )
    if not parts:
        return ranked
    ordered = ranked.assign(_place=ranked.groupby("person_id", sort=False).cumcount() + 1.0)
    out = pd.concat([ordered, *parts], ignore_index=True)
    out = out.sort_values(["person_id", "_place"], kind="stable")
    out = out.groupby("person_id", sort=False).head(k).reset_index(drop=True)
    return _scored_in_place(out).drop(columns="_place")


def _scored_in_place(out: pd.DataFrame) -> pd.DataFrame:
    """Each new sku's score set between the ranker's scores above and below its place (its
    content similarity is on another scale), so that rules ordering by score keep it there."""
    new = out["source"].eq(SOURCE)
    ranked_score = out["score"].where(~new)
    by_person = ranked_score.groupby(out["person_id"], sort=False)
    above, below = by_person.ffill(), by_person.bfill()
    between = np.where(
        above.notna() & below.notna(),
        (above + below) / 2,
        np.where(above.notna(), above - 1e-6, below + 1e-6),
    )
    return out.assign(score=np.where(new, between, out["score"]))
