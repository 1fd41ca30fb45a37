"""Why a customer sees an item, in one short sentence built from where it came from.

The candidate generator that proposed an item (its ``source``), the item in the customer's
history or basket that led to it (``anchor_sku``) and, for buy-again, the customer's usual
interval between purchases (``repurchase_days``) make the sentence; the catalogue gives the
anchor's title and the item's category. The same row always reads the same way.

Items in a sensitive category (health, finance, age-restricted, adult) get the neutral
"Recommended for you": a sentence about someone's purchase rhythm or basket is not something
to print next to such an item.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.recommend.catalogue import Catalogue

NEUTRAL = "Recommended for you"
PINNED = "Featured"
DAYS_PER_WEEK = 7.0
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25


def _nearest(value: float) -> int:
    """Round half up (Python's round() goes to the even number: 2.5 would read "2")."""
    return math.floor(value + 0.5)


def humanise_interval(days: float) -> str:
    """A purchase interval as people say it: "every day", "every 9 days", "about every 2
    weeks", "about every month", "about every 3 months", "about every year"."""
    if not math.isfinite(days) or days <= 0:
        raise ValueError(f"days must be a positive number, got {days!r}")
    if days < 1.5:
        return "about every day"
    if days < 10.5:
        return f"every {_nearest(days)} days"
    if days < 3.5 * DAYS_PER_WEEK:
        return f"about every {_nearest(days / DAYS_PER_WEEK)} weeks"
    if days < 1.5 * DAYS_PER_MONTH:
        return "about every month"
    if days < 11.5 * DAYS_PER_MONTH:
        return f"about every {_nearest(days / DAYS_PER_MONTH)} months"
    if days < 1.5 * DAYS_PER_YEAR:
        return "about every year"
    return f"about every {_nearest(days / DAYS_PER_YEAR)} years"


def explain_one(
    source: str,
    *,
    anchor: str | None = None,
    repurchase_days: float | None = None,
    category: str | None = None,
) -> str:
    """The sentence for one item; ``anchor`` is the anchor's display name (title or sku)."""
    if source == "buy_again":
        if repurchase_days is None or not math.isfinite(repurchase_days) or repurchase_days <= 0:
            return "You bought this before"
        return f"You buy this {humanise_interval(repurchase_days)}"
    if source == "co_purchase":
        return f"Often bought with {anchor}" if anchor else "Often bought together"
    if source == "co_view":
        return f"Often viewed with {anchor}" if anchor else "Often viewed together"
    if source == "new_product":
        return f"New, and similar to {anchor}" if anchor else "New, and like what you buy"
    if source in ("content", "item_knn"):
        return f"Similar to {anchor}" if anchor else "Similar to items you like"
    if source == "trending":
        return f"Popular in {category} right now" if category else "Popular right now"
    if source == "step_up":  # up-sell: its basket sku's category, dearer than it
        return f"A step up from {anchor}" if anchor else "A step up"
    if source == "context_popularity":  # the best sellers of the page's category
        return f"A favourite in {category}" if category else "A customer favourite"
    if source == "segment_popularity":
        return "Popular with customers like you"
    if source in ("popularity", "popularity_fallback"):  # the fill of a short list, too
        return "A customer favourite"
    if source == "pinned":
        return PINNED
    return NEUTRAL  # ease, als and any generator added later


def explain(frame: pd.DataFrame, catalogue: Catalogue) -> pd.Series:
    """One sentence per row of ``frame`` (``sku``, ``source``; ``anchor_sku`` and
    ``repurchase_days`` where present), indexed like ``frame``."""
    missing = [c for c in ("sku", "source") if c not in frame.columns]
    if missing:
        raise ValueError(f"frame: missing columns {missing}")
    n = len(frame)
    anchors = (
        objects(frame["anchor_sku"])
        if "anchor_sku" in frame.columns
        else np.full(n, None, dtype=object)
    )
    days = (
        pd.to_numeric(frame["repurchase_days"], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        if "repurchase_days" in frame.columns
        else np.full(n, np.nan)
    )
    return pd.Series(
        sentences(
            frame["sku"].to_numpy(dtype=object),
            frame["source"].to_numpy(dtype=object),
            anchors,
            days,
            catalogue,
        ),
        index=frame.index,
        dtype=object,
        name="explanation",
    )


def sentences(
    skus: NDArray[np.object_],
    sources: NDArray[np.object_],
    anchors: NDArray[np.object_],
    repurchase_days: NDArray[np.float64],
    catalogue: Catalogue,
) -> list[str]:
    """:func:`explain` over arrays (anchors None where there is none, days NaN)."""
    item = catalogue.index(list(skus))
    anchor_titles = _picked(catalogue.title, catalogue.index(list(anchors)))
    out = []
    for source, anchor, title, interval, category, sensitive in zip(
        sources,
        anchors,
        anchor_titles,
        repurchase_days,
        _picked(catalogue.category, item),
        _picked(catalogue.sensitive_category, item),
        strict=True,
    ):
        if sensitive is not None and source != "pinned":
            out.append(NEUTRAL)
            continue
        shown = title if title is not None else (None if anchor is None else str(anchor))
        out.append(
            explain_one(str(source), anchor=shown, repurchase_days=interval, category=category)
        )
    return out


def _picked(values: NDArray[np.object_], rows: NDArray[np.int64]) -> NDArray[np.object_]:
    """The catalogue's facts at ``rows``; None where the catalogue does not know the sku."""
    picked = values[np.maximum(rows, 0)]
    picked[rows < 0] = None  # fancy indexing made a copy: the catalogue is untouched
    return picked


def objects(column: pd.Series) -> NDArray[np.object_]:
    """A column's values as Python objects, None where missing (NaN, NA, None)."""
    values = np.array(column.to_numpy(dtype=object), dtype=object)  # a copy of our own
    values[pd.isna(values)] = None
    return values
