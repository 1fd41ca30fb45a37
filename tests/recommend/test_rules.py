"""The business rules on a seven-sku catalogue whose every answer can be read off by hand."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.overrides import Overrides
from shelfwise.recommend.rules import (
    OUTPUT_COLUMNS,
    RULES,
    RulePolicy,
    _normalise,
    apply_rules,
    shown,
)

# sku: (title, department, category, price, cost, sensitive_category)
PRODUCTS = {
    "a1": ("Apples", "fresh", "fruit", 2.0, 1.0, None),  # margin rate 0.5; out of stock
    "a2": ("Pears", "fresh", "fruit", 3.0, 2.7, None),  # margin rate 0.1; 3 in stock
    "b1": ("Bread", "bakery", "bread", 1.5, 0.5, None),  # 2/3; 5 in stock
    "b2": ("Brioche", "bakery", "bread", 4.0, 2.0, None),  # 0.5; stock unknown
    "c1": ("Cheddar", "dairy", "cheese", 5.0, None, None),  # margin unknown
    "h1": ("Vitamins", "health", "vitamins", 8.0, 4.0, "health"),
    "m1": ("Milk", "dairy", "milk", 1.0, 0.8, None),  # 0.2
}
DAY1, DAY2 = pd.Timestamp("2024-06-01", tz="UTC"), pd.Timestamp("2024-06-02", tz="UTC")


@pytest.fixture
def catalogue() -> Catalogue:
    products = pd.DataFrame(
        [(sku, *facts) for sku, facts in PRODUCTS.items()],
        columns=["sku", "title", "department", "category", "price", "cost", "sensitive_category"],
    )
    inventory = pd.DataFrame(
        {
            "store_id": ["s1", "s1", "s1", "s2", "s1"],
            "sku": ["a1", "a1", "a2", "a2", "b1"],
            "snapshot_at": [DAY1, DAY2, DAY1, DAY1, DAY2],
            "on_hand": [7.0, 0.0, 2.0, 1.0, 5.0],
        }
    )
    return Catalogue.from_frame(products, inventory)


def candidates(scores: Mapping[str, float], person: str = "p", **columns: Any) -> pd.DataFrame:
    frame = pd.DataFrame({"person_id": person, "sku": list(scores), "score": list(scores.values())})
    return frame.assign(source="als", **columns)


def top(result_frame: pd.DataFrame, person: str = "p") -> list[str]:
    return list(result_frame.loc[result_frame["person_id"] == person, "sku"])


EVERYTHING = {"a1": 7, "a2": 6, "b1": 5, "b2": 4, "c1": 3, "h1": 2, "m1": 1}


# --- the catalogue -----------------------------------------------------------------------------


def test_catalogue_sums_the_latest_snapshot_of_each_store(catalogue: Catalogue) -> None:
    facts = catalogue.facts(["a1", "a2", "b1", "b2", "zz"]).set_index("sku")
    assert facts["on_hand"].tolist()[:3] == [0.0, 3.0, 5.0]  # a1: DAY2's 0 replaced DAY1's 7
    assert np.isnan(facts["on_hand"]["b2"])  # never reported: unknown, not zero
    assert facts.loc["zz"].isna().all()  # a sku the catalogue lacks
    assert facts.loc["a2", "margin"] == pytest.approx(0.3)
    assert facts.loc["a2", "margin_rate"] == pytest.approx(0.1)
    assert math.isnan(catalogue.facts(["c1"])["margin_rate"][0])  # cost unknown
    assert list(catalogue.index(["m1", "nope", "a1"])) == [6, -1, 0]


def test_catalogue_index_of_a_few_skus_equals_the_indexed_lookup(catalogue: Catalogue) -> None:
    """A short list is looked up sku by sku (a served list's stock check); the answer is the
    same as through an index of the skus, unknown, missing and non-string skus included."""
    asked: list[object] = ["m1", "nope", "a1", None, 7, "b2", float("nan"), "m1"]
    one_by_one = catalogue.index(asked)
    indexed = catalogue.index(np.asarray(asked, dtype=object))
    assert one_by_one.dtype == np.int64
    assert one_by_one.tolist() == indexed.tolist()
    assert one_by_one.tolist()[:3] == [6, -1, 0]


def test_catalogue_updates_in_place(catalogue: Catalogue) -> None:
    row = catalogue.index(["a2"])[0]
    assert catalogue.update_stock("a2", 4.0, store_id="s2", at=DAY2)
    assert catalogue.on_hand[row] == 6.0  # s1 still has 2
    assert not catalogue.update_stock("a2", 0.0, store_id="s2", at=DAY1)  # late event
    assert catalogue.on_hand[row] == 6.0
    assert catalogue.update_stock("a2", 1.0, store_id="s9")  # a new store
    assert catalogue.on_hand[row] == 7.0
    catalogue.update_stock("a2", 10.0)  # a chain-wide total replaces the stores
    assert catalogue.on_hand[row] == 10.0
    catalogue.update_stock("a2", 3.0, store_id="s1")
    assert catalogue.on_hand[row] == 3.0
    catalogue.update_price("c1", 6.0, cost=3.0)
    assert catalogue.margin_rate[catalogue.index(["c1"])[0]] == pytest.approx(0.5)
    with pytest.raises(KeyError, match="not in the catalogue"):
        catalogue.update_stock("zz", 1.0)
    with pytest.raises(ValueError, match="on_hand"):
        catalogue.update_stock("a2", -1.0)


def test_catalogue_turnover_from_sales() -> None:
    products = pd.DataFrame({"sku": ["x", "y", "z"], "price": [1.0, 1.0, 1.0]})
    inventory = pd.DataFrame({"sku": ["x", "y"], "on_hand": [3.0, 0.0]})
    sales = pd.DataFrame({"sku": ["x", "x", "y", "q"], "quantity": [2.0, 6.0, 1.0, 5.0]})
    turnover = Catalogue.from_frame(products, inventory, sales).turnover
    assert turnover[:2].tolist() == [2.0, 1.0]  # 8 / (3 + 1), 1 / (0 + 1)
    assert math.isnan(turnover[2])  # stock unknown
    with pytest.raises(ValueError, match="repeated"):
        Catalogue.from_frame(pd.DataFrame({"sku": ["x", "x"]}))
    with pytest.raises(ValueError, match=r"missing columns \['on_hand'\]"):
        Catalogue.from_frame(products, pd.DataFrame({"sku": ["x"]}))


# --- hard rules --------------------------------------------------------------------------------


def test_default_policy_removes_out_of_stock_and_sensitive_only(catalogue: Catalogue) -> None:
    result = apply_rules(candidates(EVERYTHING), catalogue, RulePolicy(), k=10)
    assert top(result.recommendations) == ["a2", "b1", "b2", "c1", "m1"]
    assert list(result.recommendations.columns) == list(OUTPUT_COLUMNS)
    assert result.recommendations["rank"].tolist() == [1, 2, 3, 4, 5]
    assert result.counts() == dict.fromkeys(RULES, 0) | {"out_of_stock": 1, "sensitive_category": 1}
    removed = result.removed.set_index("sku")["rule"].astype(str).to_dict()
    assert removed == {"a1": "out_of_stock", "h1": "sensitive_category"}


def test_each_rule_can_be_relaxed_or_tightened(catalogue: Catalogue) -> None:
    relaxed = RulePolicy(exclude_out_of_stock=False, allowed_sensitive=("health",))
    assert len(apply_rules(candidates(EVERYTHING), catalogue, relaxed, k=10).recommendations) == 7
    margins = apply_rules(candidates(EVERYTHING), catalogue, RulePolicy(min_margin_rate=0.3), k=10)
    # a2 (0.1) and m1 (0.2) are known to be too low; c1's margin is unknown and stays.
    assert top(margins.recommendations) == ["b1", "b2", "c1"]
    assert set(margins.removed.loc[margins.removed["rule"] == "below_margin", "sku"]) == {
        "a2",
        "m1",
    }


def test_excluded_categories_match_a_department_or_a_category(catalogue: Catalogue) -> None:
    policy = RulePolicy(excluded_categories=("bakery", "milk"))  # a department, a category
    overrides = Overrides(pins={"b2": 1})  # pinned or not, an excluded item never shows
    result = apply_rules(candidates(EVERYTHING), catalogue, policy, k=10, overrides=overrides)
    assert top(result.recommendations) == ["a2", "c1"]
    removed = result.removed.set_index("sku")["rule"].astype(str).to_dict()
    assert removed == {
        "a1": "out_of_stock",
        "h1": "sensitive_category",
        "b1": "excluded_category",
        "b2": "excluded_category",
        "m1": "excluded_category",
    }
    # What the fallbacks read: the rules on the item alone, over catalogue rows.
    rows = catalogue.index(list(PRODUCTS))
    kept = dict(zip(PRODUCTS, shown(catalogue, policy, rows), strict=True))
    assert [sku for sku, keep in kept.items() if keep] == ["a2", "c1"]
    assert shown(catalogue, RulePolicy(), rows).sum() == 5  # a1 out of stock, h1 sensitive
    assert shown(catalogue, policy, np.array([-1])).tolist() == [True]  # not in the catalogue


def test_unknown_skus_duplicates_and_basket_items_never_appear(catalogue: Catalogue) -> None:
    frame = pd.concat(
        [candidates({"b1": 0.2, "zz": 0.9, "b2": 0.5, "m1": 0.4}), candidates({"b1": 0.8})]
    )
    result = apply_rules(frame, catalogue, RulePolicy(), k=10, basket=["m1"])
    out = result.recommendations
    assert top(out) == ["b1", "b2"]
    assert out["score"].tolist() == [0.8, 0.5]  # the best-scored copy of b1 stays
    counts = result.counts()
    assert (counts["not_in_catalogue"], counts["duplicate"], counts["in_basket"]) == (1, 1, 1)


def test_blocked_out_of_stock_and_sensitive_pins_never_appear(catalogue: Catalogue) -> None:
    overrides = Overrides(pins={"a1": 1, "h1": 2, "b2": 1}, blocks=("b2",))
    result = apply_rules(candidates({"b1": 1.0}), catalogue, RulePolicy(), k=3, overrides=overrides)
    assert top(result.recommendations) == ["b1"]
    removed = result.removed.set_index("sku")
    assert removed["rule"].astype(str).to_dict() == {
        "a1": "out_of_stock",
        "h1": "sensitive_category",
        "b2": "blocked",
    }
    assert removed["pinned"].all()


# --- scopes ------------------------------------------------------------------------------------


def test_discovery_and_buy_again_split_on_bought_before(catalogue: Catalogue) -> None:
    frame = candidates({"a2": 3, "b1": 2, "m1": 1}, bought_before=[True, False, True])
    discovery = apply_rules(frame, catalogue, RulePolicy(scope="discovery"), k=5)
    buy_again = apply_rules(frame, catalogue, RulePolicy(scope="buy_again"), k=5)
    assert top(discovery.recommendations) == ["b1"]
    assert top(buy_again.recommendations) == ["a2", "m1"]
    assert discovery.counts()["scope"] == 2
    with pytest.raises(ValueError, match=r"missing columns \['bought_before'\]"):
        apply_rules(candidates({"a2": 1}), catalogue, RulePolicy(scope="discovery"), k=5)


def test_cross_sell_complements_the_basket_anchored_first(catalogue: Catalogue) -> None:
    # Basket: bread. Bread is out (same category); anchored on the basket's b1, m1 comes first.
    frame = candidates(
        {"a2": 0.9, "b2": 0.8, "c1": 0.7, "m1": 0.1},
        anchor_sku=[None, "b1", "a2", "b1"],
    )
    policy = RulePolicy(scope="cross_sell")
    result = apply_rules(frame, catalogue, policy, k=5, basket=["b1"])
    assert top(result.recommendations) == ["m1", "a2", "c1"]
    assert result.removed["sku"].tolist() == ["b2"]
    # Nothing in the basket: nothing to complement, the caller falls back.
    assert apply_rules(frame, catalogue, policy, k=5).recommendations.empty


def test_up_sell_is_the_same_category_at_a_higher_price(catalogue: Catalogue) -> None:
    frame = candidates(
        {"b2": 0.9, "a2": 0.8, "b1": 0.7, "c1": 0.6, "a1": 0.5},
        anchor_sku=[None, "a1", None, "m1", None],
    )
    policy = RulePolicy(scope="up_sell", exclude_out_of_stock=False)
    result = apply_rules(frame, catalogue, policy, k=5, basket={"p": ["b1"]})
    # b2 (4.0) is dearer than the basket's b1 (1.5); a2 (3.0) than its anchor a1 (2.0).
    # c1 is another category than its anchor m1; a1 has no reference at all.
    assert top(result.recommendations) == ["b2", "a2"]
    assert set(result.removed["sku"]) == {"b1", "c1", "a1"}
    assert result.removed.set_index("sku").loc["b1", "rule"] == "in_basket"


# --- the objective -----------------------------------------------------------------------------


def test_objective_weights_change_the_order(catalogue: Catalogue) -> None:
    # Relevance b1 > a2 > c1 > b2; prices c1 5.0 > b2 4.0 > a2 3.0 > b1 1.5.
    frame = candidates({"b1": 0.9, "a2": 0.8, "c1": 0.5, "b2": 0.4})
    by_relevance = apply_rules(frame, catalogue, RulePolicy(), k=4).recommendations
    assert top(by_relevance) == ["b1", "a2", "c1", "b2"]
    assert by_relevance["objective"].tolist() == pytest.approx([1.0, 0.8, 0.2, 0.0])
    revenue = RulePolicy(relevance=0.0, revenue=1.0)
    assert top(apply_rules(frame, catalogue, revenue, k=4).recommendations) == [
        "c1",
        "b2",
        "a2",
        "b1",
    ]
    # Equal weights, min-max: b1 (1 + 0) / 2 = 0.5, a2 (0.8 + 1.5 / 3.5) / 2 = 0.614,
    # c1 (0.2 + 1) / 2 = 0.6, b2 (0 + 2.5 / 3.5) / 2 = 0.357.
    mixed = apply_rules(frame, catalogue, RulePolicy(revenue=1.0), k=4).recommendations
    assert top(mixed) == ["a2", "c1", "b1", "b2"]
    assert mixed["objective"].tolist() == pytest.approx([0.6143, 0.6, 0.5, 0.3571], abs=1e-4)
    # Margin: b1 1.0, a2 0.3, b2 2.0, c1 unknown (scores nothing).
    margin = RulePolicy(relevance=0.0, margin=1.0)
    assert top(apply_rules(frame, catalogue, margin, k=4).recommendations)[:3] == [
        "b2",
        "b1",
        "a2",
    ]
    # Ranks instead of min-max: b1 (1 + 0) / 2, a2 (2/3 + 1/3) / 2, c1 (1/3 + 1) / 2, ...
    ranked = RulePolicy(revenue=1.0, normalise="rank")
    out = apply_rules(frame, catalogue, ranked, k=4).recommendations
    assert top(out) == ["c1", "b1", "a2", "b2"]
    assert out["objective"].tolist() == pytest.approx([2 / 3, 0.5, 0.5, 1 / 3])


def test_turnover_prefers_what_moves() -> None:
    products = pd.DataFrame({"sku": ["x", "y"], "price": [1.0, 1.0]})
    inventory = pd.DataFrame({"sku": ["x", "y"], "on_hand": [9.0, 1.0]})
    sales = pd.DataFrame({"sku": ["x", "y"], "quantity": [10.0, 10.0]})
    catalogue = Catalogue.from_frame(products, inventory, sales)
    frame = candidates({"x": 0.6, "y": 0.5})
    policy = RulePolicy(relevance=1.0, turnover=2.0)
    assert top(apply_rules(frame, catalogue, policy, k=2).recommendations) == ["y", "x"]


# --- diversity, caps and pins --------------------------------------------------------------


def test_category_cap_and_diversity(catalogue: Catalogue) -> None:
    # Objectives 1, .75, .5, .25, 0 (min-max of the scores).
    frame = candidates({"a2": 1.0, "b1": 0.75, "b2": 0.5, "c1": 0.25, "m1": 0.0})
    capped = apply_rules(frame, catalogue, RulePolicy(max_per_category=1), k=3)
    assert top(capped.recommendations) == ["a2", "b1", "c1"]
    assert capped.removed["sku"].tolist() == ["b2"]
    assert capped.counts()["max_per_category"] == 1
    # MMR, diversity .4: .6 x objective - .4 x closest similarity. After a2, b1: b2 (bread,
    # as b1) .3 - .4 = -.1 loses to c1 .15. Then b2 -.1 beats m1 (dairy, as c1) 0 - .2.
    diverse = apply_rules(frame, catalogue, RulePolicy(diversity=0.4), k=5)
    assert top(diverse.recommendations) == ["a2", "b1", "c1", "b2", "m1"]
    plain = apply_rules(frame, catalogue, RulePolicy(), k=5)
    assert top(plain.recommendations) == ["a2", "b1", "b2", "c1", "m1"]


def test_diversity_by_embeddings(catalogue: Catalogue) -> None:
    # Pears and bread point the same way: by embeddings bread is a repeat, by category not.
    catalogue.set_embeddings(["a2", "b1", "c1"], [[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    frame = candidates({"a2": 1.0, "b1": 0.5, "c1": 0.0})
    by_category = RulePolicy(diversity=0.5)
    by_embedding = RulePolicy(diversity=0.5, similarity="embedding")
    assert top(apply_rules(frame, catalogue, by_category, k=3).recommendations) == [
        "a2",
        "b1",
        "c1",
    ]
    assert top(apply_rules(frame, catalogue, by_embedding, k=3).recommendations) == [
        "a2",
        "c1",
        "b1",
    ]


def test_pins_take_their_positions_after_diversity(catalogue: Catalogue) -> None:
    frame = candidates({"a2": 0.9, "b1": 0.8, "b2": 0.7, "c1": 0.6})
    overrides = Overrides(pins={"c1": 1, "m1": 3})
    out = apply_rules(frame, catalogue, RulePolicy(), k=4, overrides=overrides).recommendations
    assert top(out) == ["c1", "a2", "m1", "b1"]
    assert out["source"].tolist() == ["als", "als", "pinned", "als"]
    assert out["explanation"][2] == "Featured"
    assert math.isnan(out["score"][2])


def test_colliding_and_distant_pins(catalogue: Catalogue) -> None:
    frame = candidates({"a2": 0.9, "b1": 0.8})
    overrides = Overrides(pins={"c1": 2, "m1": 2, "b2": 9})
    result = apply_rules(frame, catalogue, RulePolicy(), k=4, overrides=overrides)
    # Both pinned at 2: c1 (the smaller sku) takes 2, m1 moves to 3. b2 at 9 is beyond k.
    assert top(result.recommendations) == ["a2", "c1", "m1", "b1"]
    assert result.removed.set_index("sku").loc["b2", "rule"] == "pin_beyond_k"
    # A short list closes up: a pin at 4 of a one-item list is second.
    short = Overrides(pins={"m1": 4})
    one = apply_rules(candidates({"a2": 1.0}), catalogue, RulePolicy(), k=5, overrides=short)
    assert top(one.recommendations) == ["a2", "m1"]


def test_person_overrides_and_json_round_trip(catalogue: Catalogue) -> None:
    frame = pd.concat([candidates({"a2": 0.9, "b1": 0.8}, p) for p in ("p", "q")])
    overrides = Overrides(
        pins={"m1": 1},
        person_pins={"q": {"m1": 2}},
        person_blocks={"p": ("b1",)},
    )
    assert Overrides.from_json(overrides.to_json()) == overrides
    out = apply_rules(frame, catalogue, RulePolicy(), k=3, overrides=overrides).recommendations
    assert top(out, "p") == ["m1", "a2"]
    assert top(out, "q") == ["a2", "m1", "b1"]
    with pytest.raises(ValueError, match="position from 1"):
        Overrides(pins={"m1": 0})
    with pytest.raises(ValueError, match="unknown fields"):
        Overrides.from_dict({"pin": {}})


# --- shapes and errors -------------------------------------------------------------------------


def test_empty_and_short_results(catalogue: Catalogue) -> None:
    empty = apply_rules(candidates({}), catalogue, RulePolicy(), k=5)
    assert empty.recommendations.empty
    assert list(empty.recommendations.columns) == list(OUTPUT_COLUMNS)
    assert empty.counts() == dict.fromkeys(RULES, 0)
    frame = pd.concat([candidates({"a1": 1.0}, "p"), candidates({"b1": 0.5, "m1": 0.7}, "q")])
    out = apply_rules(frame, catalogue, RulePolicy(), k=5).recommendations
    assert out["person_id"].tolist() == ["q", "q"]  # p's only item is out of stock
    assert top(out, "q") == ["m1", "b1"]


def test_missing_scores_rank_last(catalogue: Catalogue) -> None:
    frame = candidates({"a2": np.nan, "b1": 0.2, "m1": 0.1})
    out = apply_rules(frame, catalogue, RulePolicy(), k=3).recommendations
    assert top(out) == ["b1", "m1", "a2"]
    assert out["objective"].tolist() == [1.0, 0.0, 0.0]


def test_many_persons_match_one_at_a_time(catalogue: Catalogue) -> None:
    rng = np.random.default_rng(7)
    skus = np.array(list(PRODUCTS))
    frames = [
        candidates({s: float(v) for s, v in zip(skus, rng.random(len(skus)), strict=True)}, p)
        for p in ("p0", "p1", "p2")
    ]
    policy = RulePolicy(diversity=0.3, revenue=0.5, max_per_category=1)
    together = apply_rules(
        pd.concat(frames), catalogue, policy, k=4, overrides=Overrides(pins={"b2": 2})
    )
    for person, frame in zip(("p0", "p1", "p2"), frames, strict=True):
        alone = apply_rules(frame, catalogue, policy, k=4, overrides=Overrides(pins={"b2": 2}))
        assert top(together.recommendations, person) == top(alone.recommendations, person)


def test_bad_input_is_named(catalogue: Catalogue) -> None:
    frame = candidates({"a2": 1.0})
    with pytest.raises(ValueError, match=r"missing columns \['score', 'source'\]"):
        apply_rules(frame[["person_id", "sku"]], catalogue, RulePolicy(), k=3)
    with pytest.raises(ValueError, match="score must be finite"):
        apply_rules(frame.assign(score=np.inf), catalogue, RulePolicy(), k=3)
    with pytest.raises(ValueError, match="score must be numeric"):
        apply_rules(frame.assign(score="high"), catalogue, RulePolicy(), k=3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        apply_rules(frame, catalogue, RulePolicy(), k=0)
    with pytest.raises(ValueError, match="basket"):
        apply_rules(frame, catalogue, RulePolicy(), k=3, basket="a2")
    with pytest.raises(ValueError, match=r"RulePolicy\.revenue=-1\.0: expected a number in \[0"):
        RulePolicy(revenue=-1.0)
    with pytest.raises(ValueError, match="at least one objective weight"):
        RulePolicy(relevance=0.0)
    with pytest.raises(ValueError, match="finite"):
        RulePolicy(margin=math.inf)
    with pytest.raises(ValueError, match=r"RulePolicy\.scope='upsell'"):
        RulePolicy(scope="upsell")
    with pytest.raises(ValueError, match=r"\['pharmacy'\] not among"):
        RulePolicy(allowed_sensitive=("pharmacy",))
    with pytest.raises(ValueError, match=r"excluded_categories: expected department or category"):
        RulePolicy(excluded_categories=("fuel", 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"needs catalogue\.set_embeddings"):
        apply_rules(frame, catalogue, RulePolicy(diversity=0.2, similarity="embedding"), k=3)


def test_policy_round_trips() -> None:
    policy = RulePolicy(
        allowed_sensitive=("health",),
        excluded_categories=("fuel",),
        scope="up_sell",
        margin=0.5,
        diversity=0.2,
    )
    assert RulePolicy.from_dict(policy.to_dict()) == policy


def test_minmax_normalisation_is_per_person_and_passes_missing_values_over() -> None:
    values = np.array([1.0, 3.0, np.nan, 5.0, 5.0, np.nan, 2.0])
    person = np.array([0, 0, 0, 1, 1, 2, 0])
    # person 0 spans 1..3; person 1 has one value (all equal: 1); person 2 none (unknown: 0)
    np.testing.assert_allclose(
        _normalise(values, person, "minmax"), [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.5]
    )
