"""One sentence per recommendation, from where it came from and what the catalogue calls it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.explain import explain, explain_one, humanise_interval


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue(
        ["bread", "butter", "jam", "pills", "notitle"],
        title=["Sourdough loaf", "Salted butter", "Strawberry jam", "Vitamin D", None],
        category=["bakery", "dairy", "spreads", "vitamins", "misc"],
        sensitive_category=[None, None, None, "health", None],
    )


@pytest.mark.parametrize(
    ("days", "phrase"),
    [
        (0.6, "about every day"),
        (1.4, "about every day"),
        (2.0, "every 2 days"),
        (9.0, "every 9 days"),
        (10.4, "every 10 days"),
        (10.5, "about every 2 weeks"),
        (14.0, "about every 2 weeks"),
        (21.0, "about every 3 weeks"),
        (30.0, "about every month"),
        (45.0, "about every month"),
        (61.0, "about every 2 months"),
        (182.0, "about every 6 months"),
        (365.0, "about every year"),
        (800.0, "about every 2 years"),
    ],
)
def test_humanise_interval(days: float, phrase: str) -> None:
    assert humanise_interval(days) == phrase


def test_humanise_interval_refuses_what_is_not_an_interval() -> None:
    for days in (0.0, -3.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="days must be a positive number"):
            humanise_interval(days)


def test_one_sentence_per_source() -> None:
    assert explain_one("buy_again", repurchase_days=14) == "You buy this about every 2 weeks"
    assert explain_one("buy_again", repurchase_days=9) == "You buy this every 9 days"
    assert explain_one("buy_again") == "You bought this before"
    assert explain_one("co_purchase", anchor="Bread") == "Often bought with Bread"
    assert explain_one("co_view", anchor="Bread") == "Often viewed with Bread"
    assert explain_one("content", anchor="Bread") == "Similar to Bread"
    assert explain_one("item_knn", anchor="Bread") == "Similar to Bread"
    assert explain_one("item_knn") == "Similar to items you like"
    assert explain_one("trending", category="dairy") == "Popular in dairy right now"
    assert explain_one("trending") == "Popular right now"
    assert explain_one("segment_popularity") == "Popular with customers like you"
    assert explain_one("popularity") == "A customer favourite"
    assert explain_one("popularity_fallback") == "A customer favourite"
    assert explain_one("context_popularity", category="dairy") == "A favourite in dairy"
    assert explain_one("step_up", anchor="Bread") == "A step up from Bread"
    assert explain_one("ease") == "Recommended for you"
    assert explain_one("als") == "Recommended for you"
    assert explain_one("pinned") == "Featured"
    assert explain_one("a_generator_added_later") == "Recommended for you"


def test_explain_reads_titles_categories_and_intervals(catalogue: Catalogue) -> None:
    frame = pd.DataFrame(
        {
            "sku": ["butter", "jam", "butter", "jam", "pills", "butter", "jam"],
            "source": [
                "co_purchase",
                "content",
                "buy_again",
                "trending",
                "buy_again",
                "co_purchase",
                "item_knn",
            ],
            "anchor_sku": ["bread", "unknown-sku", None, None, None, "notitle", np.nan],
            "repurchase_days": [np.nan, np.nan, 30.0, np.nan, 7.0, np.nan, np.nan],
        },
        index=[10, 11, 12, 13, 14, 15, 16],
    )
    sentences = explain(frame, catalogue)
    assert sentences.to_dict() == {
        10: "Often bought with Sourdough loaf",
        11: "Similar to unknown-sku",  # no title: the sku itself
        12: "You buy this about every month",
        13: "Popular in spreads right now",
        14: "Recommended for you",  # sensitive: nothing about the customer's habits
        15: "Often bought with notitle",
        16: "Similar to items you like",
    }
    assert explain(frame, catalogue).equals(sentences)  # deterministic


def test_explain_needs_only_sku_and_source(catalogue: Catalogue) -> None:
    frame = pd.DataFrame({"sku": ["bread"], "source": ["buy_again"]})
    assert explain(frame, catalogue).tolist() == ["You bought this before"]
    with pytest.raises(ValueError, match=r"missing columns \['source'\]"):
        explain(frame[["sku"]], catalogue)
