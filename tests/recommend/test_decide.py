"""Decisions: the two-stage recommender's lists through the business rules, never short."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.decide import decide
from shelfwise.recommend.overrides import Overrides
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.rules import RulePolicy
from shelfwise.recommend.two_stage import TwoStageRecommender

SMALL = {"ranker_trees": 30, "ranker_leaves": 7}


@pytest.fixture(scope="module")
def model(planted_log: Callable[[int], pd.DataFrame]) -> TwoStageRecommender:
    return TwoStageRecommender(RecommenderSettings(**SMALL)).fit(planted_log(0))


def _catalogue(model: TwoStageRecommender, **changes: object) -> Catalogue:
    skus = model.items_
    products = pd.DataFrame(
        {
            "sku": skus,
            "title": [f"Product {s}" for s in skus],
            "category": [s[0] + s[1:2] for s in skus],  # s0.., x0.. : ten categories
            "department": [s[0] for s in skus],
            "price": np.linspace(1.0, 10.0, len(skus)),
            "cost": np.linspace(0.5, 5.0, len(skus)),
        }
    )
    return Catalogue.from_frame(products)


def test_rules_remove_out_of_stock_and_blocked_and_still_fill_k(model: TwoStageRecommender) -> None:
    catalogue = _catalogue(model)
    plain = decide(model, ["p00"], 4, catalogue).recommendations
    staples = {"s00", "s01", "s02", "s03"}
    assert set(plain["sku"]) == staples
    catalogue.update_stock("s00", 0.0)
    decision = decide(
        model, ["p00", "stranger"], 4, catalogue, overrides=Overrides(blocks=("s01",))
    )
    lists = decision.recommendations
    p00 = lists[lists["person_id"] == "p00"]
    assert len(p00) == 4
    assert not {"s00", "s01"} & set(p00["sku"])
    assert {"s02", "s03"} <= set(p00["sku"])
    assert len(lists[lists["person_id"] == "stranger"]) == 4
    rules = set(decision.removed.loc[decision.removed["person_id"] == "p00", "rule"])
    assert {"out_of_stock", "blocked"} <= rules
    assert lists["explanation"].str.len().min() > 0


def test_discovery_scope_and_explanations(
    model: TwoStageRecommender, planted_log: Callable[[int], pd.DataFrame]
) -> None:
    catalogue = _catalogue(model)
    policy = RulePolicy(scope="discovery")
    lists = decide(model, ["p00"], 5, catalogue, policy).recommendations
    log = planted_log(0)
    bought = set(log.loc[log["person_id"] == "p00", "sku"])
    assert len(lists) == 5
    assert not set(lists["sku"]) & bought
    again = decide(model, ["p00"], 3, catalogue, RulePolicy(scope="buy_again")).recommendations
    assert again["explanation"].str.contains("every").any()  # "You buy this about every week"


def test_pins_are_placed(model: TwoStageRecommender) -> None:
    catalogue = _catalogue(model)
    lists = decide(
        model, ["p00"], 4, catalogue, overrides=Overrides(pins={"x05": 1})
    ).recommendations
    assert lists["sku"].iloc[0] == "x05"
    assert len(lists) == 4


def test_cold_start_uses_recent_skus_then_category_then_segment(
    planted_log: Callable[[int], pd.DataFrame],
) -> None:
    from shelfwise.recommend.cold_start import Context

    log = planted_log(0)
    log["segment"] = np.where(log["person_id"].str[1:].astype(int) % 6 == 0, "g0", "other")
    model = TwoStageRecommender(RecommenderSettings(**SMALL)).fit(log)
    catalogue = _catalogue(model)
    contexts = {
        "new-shopper": Context(recent=("s00",)),
        "browser": Context(category="s1"),
        "member": Context(segment="g0"),
    }
    lists = decide(model, [*contexts, "anonymous"], 4, catalogue, contexts=contexts).recommendations
    by = {person: rows for person, rows in lists.groupby("person_id")}  # noqa: C416 (groupby has .keys)
    assert by["new-shopper"]["sku"].isin(["s01", "s02", "s03"]).sum() == 3  # its co-purchases
    assert by["new-shopper"]["explanation"].str.contains("Often bought with").any()
    assert by["browser"]["sku"].str.startswith("s1").all()  # the page's category
    assert set(by["member"]["sku"]) == {"s00", "s01", "s02", "s03"}  # the segment's staples
    assert len(by["anonymous"]) == 4


def test_a_known_person_on_a_category_page_sees_that_category_first(
    model: TwoStageRecommender, planted_log: Callable[[int], pd.DataFrame]
) -> None:
    """Their own ranked items of the page's category first, in the model's order; what they
    bought before is still known to the scopes; a page with nothing of theirs changes nothing."""
    from shelfwise.recommend.cold_start import Context

    catalogue = _catalogue(model)
    plain = decide(model, ["p00"], 6, catalogue).recommendations
    assert plain["sku"].str.startswith("s0").sum() == 4  # their staples lead
    deep = decide(model, ["p00"], 60, catalogue).recommendations
    theirs = [s for s in deep["sku"] if s.startswith("x1")]
    page = {"p00": Context(category="x1")}
    shown = decide(model, ["p00"], 6, catalogue, contexts=page).recommendations
    assert list(shown["sku"]) == theirs[:6]
    assert list(shown["rank"]) == [1, 2, 3, 4, 5, 6]
    log = planted_log(0)
    bought = set(log.loc[log["person_id"] == "p00", "sku"])
    new = decide(model, ["p00"], 6, catalogue, RulePolicy(scope="discovery"), contexts=page)
    fresh = sorted(s for s in model.items_ if s.startswith("x1") and s not in bought)
    assert sorted(new.recommendations["sku"].iloc[: len(fresh)]) == fresh  # x1's 5 unbought
    assert not set(new.recommendations["sku"]) & bought
    nowhere = decide(model, ["p00"], 6, catalogue, contexts={"p00": Context(category="zz")})
    assert list(nowhere.recommendations["sku"]) == list(plain["sku"])


def test_a_pages_best_sellers_follow_a_known_persons_list_with_what_they_bought(
    model: TwoStageRecommender, planted_log: Callable[[int], pd.DataFrame]
) -> None:
    from shelfwise.recommend.cold_start import Context, page_candidates

    log = planted_log(0)
    bought = set(log.loc[log["person_id"] == "p00", "sku"])
    catalogue = _catalogue(model)
    catalogue.category[np.char.startswith(catalogue.skus, "s")] = None  # as real catalogues have
    rows = page_candidates(model, {"p00": "x1", "p01": "nothing"}, 100, catalogue)
    assert set(rows["person_id"]) == {"p00"}  # a category with no sku gives nothing
    assert rows["sku"].str.startswith("x1").all()
    assert len(rows) == 10
    assert rows["score"].isna().all()  # ordered by the rules' priority, then as given
    assert list(rows["rank"]) == list(range(101, 111))
    assert (rows["source"] == "context_popularity").all()
    assert list(rows["bought_before"]) == [s in bought for s in rows["sku"]]
    stranger = decide(model, ["new"], 3, catalogue, contexts={"new": Context(category="x1")})
    assert stranger.recommendations["sku"].str.startswith("x1").all()


def test_cross_sell_puts_the_basket_complements_first_for_a_known_person(
    model: TwoStageRecommender, planted_log: Callable[[int], pd.DataFrame]
) -> None:
    """p00 (taste group 0) has group 2's staple s08 in the basket, which they never bought:
    the cross-sell list is s08's co-purchase complements outside its category, in p00's own
    order, each explained by it; without the basket in the context none was."""
    from shelfwise.recommend.cold_start import Context, basket_candidates

    log = planted_log(0)
    assert "s08" not in set(log.loc[log["person_id"] == "p00", "sku"])
    catalogue = _catalogue(model)
    basket = {"p00": Context(recent=("s08",))}
    complements = set(basket_candidates(model, {"p00": ("s08",)}, 100)["sku"])
    assert {"s09", "s10", "s11"} <= complements  # bought with it by group 2
    policy = RulePolicy(scope="cross_sell")
    lists = decide(model, ["p00"], 4, catalogue, policy, basket=("s08",), contexts=basket)
    shown = lists.recommendations
    assert len(shown) == 4
    assert set(shown["sku"]) <= complements
    assert (shown["explanation"] == "Often bought with Product s08").all()
    assert not shown["sku"].str.startswith("s0").any()  # the basket's category: not cross-sell
    plain = decide(model, ["p00"], 4, catalogue, policy, basket=("s08",)).recommendations
    assert not plain["explanation"].str.contains("s08").any()  # the context is what did it
    everything = decide(model, ["p00"], 4, catalogue, basket=("s08",), contexts=basket)
    assert not everything.recommendations["explanation"].str.contains("s08").any()  # scope all


def test_up_sell_offers_the_basket_categorys_dearer_best_sellers(
    model: TwoStageRecommender,
) -> None:
    """Up-sell with s04 in the basket (category s0, prices rising with the sku): the basket
    adds its category's best sellers, anchored on it, and the list is dearer items of s0."""
    from shelfwise.recommend.cold_start import Context, basket_candidates

    catalogue = _catalogue(model)
    added = basket_candidates(model, {"p00": ("s04",)}, 100, catalogue, "up_sell")
    assert set(added["sku"]) == {f"s0{i}" for i in range(10)}  # s04 too: the rules remove it
    assert (added["anchor_sku"] == "s04").all()
    assert (added["source"] == "step_up").all()
    assert added["score"].isna().all()
    policy = RulePolicy(scope="up_sell")
    context = {"p00": Context(recent=("s04",))}
    lists = decide(model, ["p00"], 4, catalogue, policy, basket=("s04",), contexts=context)
    shown = lists.recommendations["sku"]
    assert len(shown) == 4
    assert set(shown) <= {"s05", "s06", "s07", "s08", "s09"}
    assert (lists.recommendations["source"] == "step_up").all()  # their own rows re-anchored
    assert (lists.recommendations["explanation"] == "A step up from Product s04").all()


def test_the_skus_categories_are_looked_up_once_per_model_and_catalogue(
    model: TwoStageRecommender,
) -> None:
    from shelfwise.recommend.cold_start import categories_of

    catalogue = _catalogue(model)
    first = categories_of(model, catalogue)
    assert list(first[:3]) == [s[:2] for s in model.items_[:3]]
    assert categories_of(model, catalogue) is first  # the service's warm-up makes it once
    other = _catalogue(model)
    other.category[:] = None
    assert categories_of(model, other) is not first
    assert all(c is None for c in categories_of(model, other))
