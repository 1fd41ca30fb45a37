"""Persons the recommender never saw: context first, then what they do, then popularity.

A request may say something of a person the model does not know (a new customer, an anonymous
session): the skus they acted on since (``recent``: views, the basket), the category of the
page, their segment. :func:`cold_candidates` turns that into a ranked list in the shape of
:meth:`TwoStageRecommender.ranked`:

1. ``recent`` skus -> their complements by co-purchase (or, without that generator, EASE's
   item-to-item weights), each anchored on the recent sku that proposed it; recent skus
   nobody has bought yet (new products) -> the products nearest them by content (when the
   recommender was given the catalogue), new ones included;
2. a page ``category`` -> the category's best sellers (source ``context_popularity``); a
   known person shown a category page gets them after their own list (:func:`page_candidates`),
   and the rules put the page's category first; a known person's basket on a cross-sell
   surface -> its complements after their own list (:func:`basket_candidates`), which the
   cross-sell scope puts first; on an up-sell surface -> the best sellers of its categories;
3. a ``segment`` -> that segment's best sellers, learned when the training log had a
   ``segment`` column (source ``segment_popularity``);
4. nothing known -> global popularity, as for anyone the other stages leave short.

New products reach known persons' lists through :mod:`shelfwise.recommend.new_products`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.content import ContentRecommender
from shelfwise.recommend.item_knn import ItemKNNRecommender
from shelfwise.recommend.matrix import rows_of, top_k
from shelfwise.recommend.two_stage import TwoStageRecommender

# model -> (catalogue, its skus, their categories), for the category pages and up-sell
_CATEGORIES: WeakKeyDictionary[
    TwoStageRecommender, tuple[Catalogue, NDArray[np.str_], NDArray[np.object_]]
] = WeakKeyDictionary()
STEP_UP = "step_up"  # an up-sell's candidate: its basket sku's category, read "a step up"
COLUMNS = ("person_id", "sku", "score", "source", "bought_before", "repurchase_days", "anchor_sku")


@dataclass(frozen=True)
class Context:
    """What a request tells of a person: recent skus, the page's category, their segment."""

    recent: Sequence[str] = ()
    category: str | None = None
    segment: str | None = None


def cold_candidates(
    model: TwoStageRecommender,
    contexts: Mapping[str, Context],
    depth: int,
    catalogue: Catalogue | None = None,
) -> pd.DataFrame:
    """Ranked candidates for each person of ``contexts`` from what their context gives."""
    parts = []
    for person, context in contexts.items():
        part = _from_recent(model, person, context.recent, depth)
        if part.empty:
            part = _from_content(model, person, context.recent, depth)
        if part.empty and context.category is not None and catalogue is not None:
            part = _from_category(model, person, context.category, depth, catalogue)
        if part.empty and context.segment is not None:
            part = _from_segment(model, person, context.segment, depth)
        if not part.empty:
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(parts, ignore_index=True)


def page_candidates(
    model: TwoStageRecommender, pages: Mapping[str, str], depth: int, catalogue: Catalogue
) -> pd.DataFrame:
    """For persons the model knows, shown a category page (``pages``: person -> category):
    the category's best sellers, after their own list (ranks from ``depth + 1``, no score:
    the rules order them by priority, then keep this order), with what they bought before."""
    found = {p: _from_category(model, p, c, depth, catalogue) for p, c in pages.items()}
    return _after_their_list(model, found, depth)


def basket_candidates(
    model: TwoStageRecommender,
    baskets: Mapping[str, Sequence[str]],
    depth: int,
    catalogue: Catalogue | None = None,
    scope: str = "cross_sell",
) -> pd.DataFrame:
    """For persons the model knows, with a basket on a cross-sell or up-sell surface
    (``baskets``: person -> skus), after their own list (ranks from ``depth + 1``, no score),
    each anchored on the basket sku that proposed it: under ``cross_sell`` the basket's
    complements by co-purchase, which the scope puts first; under ``up_sell`` the best sellers
    of each basket sku's category (``catalogue`` gives it), of which the scope keeps the dearer.
    Their own list rarely holds either: its candidates come from what they bought, and a
    basket is often new to them."""
    found = {
        person: (
            _same_category(model, person, basket, depth, catalogue)
            if scope == "up_sell"
            else _from_recent(model, person, basket, depth)
        )
        for person, basket in baskets.items()
    }
    return _after_their_list(model, found, depth)


def _after_their_list(
    model: TwoStageRecommender, found: Mapping[str, pd.DataFrame], depth: int
) -> pd.DataFrame:
    """Each person's found candidates placed after their own list: ranks from ``depth + 1``,
    no score (the rules order them by priority, then keep this order), with what they bought
    before."""
    parts = []
    for person, part in found.items():
        if part.empty:
            continue
        row = rows_of(model.users_, np.asarray([person], dtype=str))[0]
        if row >= 0:
            bought = model.items_[model.history_[row].indices]
            part["bought_before"] = np.isin(part["sku"].to_numpy(dtype=str), bought)
        part["score"] = np.nan
        part["rank"] = depth + 1 + np.arange(len(part))
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*COLUMNS, "rank"])
    return pd.concat(parts, ignore_index=True)


def _same_category(
    model: TwoStageRecommender,
    person: str,
    basket: Sequence[str],
    depth: int,
    catalogue: Catalogue | None,
) -> pd.DataFrame:
    if catalogue is None:
        return pd.DataFrame()
    rows = catalogue.index(list(basket))
    parts = []
    for sku, row in zip(basket, rows, strict=True):
        category = catalogue.category[row] if row >= 0 else None
        if category is None or pd.isna(category):
            continue
        part = _from_category(model, person, str(category), depth, catalogue)
        if not part.empty:
            anchors = pd.Series([sku] * len(part), dtype="string")
            parts.append(part.assign(anchor_sku=anchors, source=STEP_UP))
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).drop_duplicates("sku").reset_index(drop=True)


def _frame(
    person: str,
    skus: NDArray[np.str_],
    scores: NDArray[np.floating],
    source: str,
    anchors: Sequence[str | None] | None = None,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": person,
            "sku": skus,
            "score": np.asarray(scores, dtype=np.float64),
            "source": source,
            "bought_before": False,
            "repurchase_days": np.nan,
            "anchor_sku": pd.Series(
                list(anchors) if anchors is not None else [pd.NA] * len(skus), dtype="string"
            ),
        }
    )


def _from_recent(
    model: TwoStageRecommender, person: str, recent: Sequence[str], depth: int
) -> pd.DataFrame:
    codes = rows_of(model.items_, np.asarray(list(recent), dtype=str))
    codes = codes[codes >= 0]
    if not len(codes):
        return pd.DataFrame()
    co_purchase = model.models_.get("co_purchase")
    if isinstance(co_purchase, ItemKNNRecommender):
        scores = co_purchase.score_basket([codes.tolist()])
        source = "co_purchase"
    else:
        ease = model.models_["ease"]
        weights = getattr(ease, "weights_", None)
        if getattr(ease, "method_", "") != "direct" or weights is None:
            return pd.DataFrame()
        scores = np.asarray(weights[codes].sum(axis=0, keepdims=True), dtype=np.float32)
        scores[0, codes] = -np.inf
        source = "ease"
    items, values = top_k(scores, depth)
    keep = items[0] >= 0
    chosen = items[0][keep]
    anchors: list[str | None] = []
    if isinstance(co_purchase, ItemKNNRecommender):
        similarity = co_purchase.similarity_[codes][:, chosen].toarray()
        best = similarity.argmax(axis=0)
        anchors = [str(model.items_[codes[b]]) for b in best]
    return _frame(person, model.items_[chosen], values[0][keep], source, anchors or None)


def _from_content(
    model: TwoStageRecommender, person: str, recent: Sequence[str], depth: int
) -> pd.DataFrame:
    content = model.models_.get("content")
    if not isinstance(content, ContentRecommender):
        return pd.DataFrame()
    codes = rows_of(content.items_, np.asarray(list(recent), dtype=str))
    codes = codes[codes >= 0]
    if not len(codes):
        return pd.DataFrame()
    similarity = content.item_vectors_[codes] @ content.item_vectors_.T  # recent x skus
    scores = similarity.max(axis=0, keepdims=True)
    scores[0, codes] = -np.inf
    scores[scores <= 0] = -np.inf
    items, values = top_k(scores.astype(np.float32), depth)
    keep = items[0] >= 0
    chosen = items[0][keep]
    anchors = [str(a) for a in content.items_[codes[similarity[:, chosen].argmax(axis=0)]]]
    return _frame(person, content.items_[chosen], values[0][keep], "content", anchors)


def _from_category(
    model: TwoStageRecommender, person: str, category: str, depth: int, catalogue: Catalogue
) -> pd.DataFrame:
    inside = categories_of(model, catalogue) == category  # a sku without one is in none
    if not inside.any():
        return pd.DataFrame()
    popularity = model.models_["popularity"]._score(np.zeros(1, dtype=np.int64))[0]
    scores = np.where(inside, popularity, -np.inf).astype(np.float32)[None, :]
    items, values = top_k(scores, depth)
    keep = items[0] >= 0
    return _frame(person, model.items_[items[0][keep]], values[0][keep], "context_popularity")


def categories_of(model: TwoStageRecommender, catalogue: Catalogue) -> NDArray[np.object_]:
    """The category of each of the model's skus in ``catalogue`` (None where it has none),
    looked up once per model and catalogue, whose skus and categories are fixed (stock and
    prices change): the facts of CJ's 92,000 skus took 135 ms a request."""
    cached = _CATEGORIES.get(model)
    if cached is None or cached[0] is not catalogue or cached[1] is not model.items_:
        rows = catalogue.index(model.items_)
        known = rows >= 0
        categories = np.full(len(rows), None, dtype=object)
        categories[known] = catalogue.category[rows[known]]
        cached = (catalogue, model.items_, categories)
        _CATEGORIES[model] = cached
    return cached[2]


def _from_segment(
    model: TwoStageRecommender, person: str, segment: str, depth: int
) -> pd.DataFrame:
    top = model.segment_top(segment)
    if top is None:
        return pd.DataFrame()
    chosen = top[top >= 0][:depth]
    scores = -np.arange(len(chosen), dtype=np.float64)
    return _frame(person, model.items_[chosen], scores, "segment_popularity")
