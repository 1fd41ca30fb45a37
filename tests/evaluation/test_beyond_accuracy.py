"""Novelty, diversity, per-segment metrics and IPS against answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shelfwise.evaluation.beyond_accuracy import (
    intra_list_diversity_at_k,
    ips_estimate,
    metrics_by_segment,
    novelty_at_k,
)


def lists(rows: dict[str, list[str]]) -> pd.DataFrame:
    """Ranked lists as a recommendations frame, ranks from 1 in the order given."""
    return pd.DataFrame(
        [(user, sku, rank) for user, skus in rows.items() for rank, sku in enumerate(skus, 1)],
        columns=["person_id", "sku", "rank"],
    )


def test_novelty_is_the_self_information_of_training_shares() -> None:
    # Shares of the 8 training rows: a 4/8 (1 bit), b 2/8 (2 bits), c 2/8 (2 bits); z was never
    # seen and counts once: 1/8 (3 bits).
    train = pd.DataFrame({"sku": list("aaaabbcc")})
    recommendations = lists({"U1": ["a", "b"], "U2": ["c", "z", "a"]})
    assert novelty_at_k(recommendations, train, k=2) == pytest.approx((1.5 + 2.5) / 2)
    # Each list is averaged first: U2's three skus weigh as much as U1's two.
    assert novelty_at_k(recommendations, train, k=3) == pytest.approx((1.5 + 2.0) / 2)
    assert novelty_at_k(lists({}), train) == 0.0


def test_diversity_by_category_counts_the_pairs_that_differ() -> None:
    categories = pd.Series({"a": "fruit", "b": "fruit", "c": "veg", "d": "veg"})
    recommendations = lists({"U1": ["a", "b", "c"], "U2": ["a", "c", "b"], "U3": ["d"]})
    # U1: (a,b) same, (a,c) and (b,c) differ -> 2/3. U2 at k=2: (a,c) differ -> 1.
    # U3 has a single sku, so no pair, and is left out.
    at_two = intra_list_diversity_at_k(recommendations, k=2, categories=categories)
    assert at_two == pytest.approx((0 + 1) / 2)  # U1 at k=2 is (a, b): same category
    at_three = intra_list_diversity_at_k(recommendations, k=3, categories=categories)
    assert at_three == pytest.approx(2 / 3)


def test_diversity_by_embedding_is_one_minus_mean_cosine() -> None:
    embeddings = pd.DataFrame({"x": [1.0, 0.0, 2.0], "y": [0.0, 3.0, 2.0]}, index=["a", "b", "c"])
    recommendations = lists({"U1": ["a", "b", "c"], "U2": ["a", "c"]})
    # cos(a,b) = 0, cos(a,c) = cos(b,c) = 1/√2 (lengths do not matter).
    u1 = 1 - (0 + 2 / math.sqrt(2)) / 3
    u2 = 1 - 1 / math.sqrt(2)
    assert intra_list_diversity_at_k(recommendations, embeddings=embeddings) == pytest.approx(
        (u1 + u2) / 2
    )


def test_diversity_refuses_what_it_cannot_measure() -> None:
    recommendations = lists({"U1": ["a", "q"]})
    with pytest.raises(ValueError, match="exactly one"):
        intra_list_diversity_at_k(recommendations)
    with pytest.raises(ValueError, match=r"categories lacks 1 recommended sku\(s\), e.g. \['q'\]"):
        intra_list_diversity_at_k(recommendations, categories=pd.Series({"a": "fruit"}))
    zero = pd.DataFrame({"x": [1.0, 0.0]}, index=["a", "q"])
    with pytest.raises(ValueError, match="non-zero"):
        intra_list_diversity_at_k(recommendations, embeddings=zero)


def test_metrics_by_segment_keeps_every_user() -> None:
    recommendations = lists({"A": ["a", "x", "b", "y"], "B": ["a", "b"], "C": ["c"]})
    targets = pd.DataFrame({"person_id": ["A", "A", "A", "B", "C"], "sku": list("abczc")})
    segments = pd.Series({"A": "young", "B": "young", "D": "old"})  # C has none
    by_segment = metrics_by_segment(
        recommendations,
        targets,
        segments,
        catalogue_size=10,
        metrics=("recall@20", "hr@10", "coverage@10"),
    )
    assert list(by_segment) == ["unknown", "young"]  # "old" has no evaluated user
    assert by_segment["young"] == pytest.approx(
        {"users": 2, "recall@20": (2 / 3 + 0) / 2, "hr@10": 0.5, "coverage@10": 4 / 10}
    )
    assert by_segment["unknown"] == pytest.approx(
        {"users": 1, "recall@20": 1.0, "hr@10": 1.0, "coverage@10": 1 / 10}
    )


# Four logged rounds. The policy's top 2: U1 -> a, b; U2 -> b, a; nothing for U3.
LOGGED = pd.DataFrame(
    {
        "person_id": ["U1", "U1", "U2", "U3"],
        "sku": ["a", "c", "b", "a"],
        "reward": [1.0, 1.0, 0.0, 1.0],
        "propensity": [0.5, 0.25, 0.25, 1.0],
    }
)
POLICY = lists({"U1": ["a", "b"], "U2": ["b", "a"]})


def test_ips_and_self_normalised_ips_by_hand() -> None:
    # Chosen: rounds 0 and 2, weights 1/0.5 = 2 and 1/0.25 = 4; weight x reward = 2, 0, 0, 0.
    estimate = ips_estimate(LOGGED, POLICY, k=2, n_bootstrap=200)
    assert estimate["ips"] == pytest.approx(2 / 4)
    assert estimate["snips"] == pytest.approx(2 / 6)
    assert (estimate["rounds"], estimate["matched"]) == (4, 2)
    assert estimate["ips_low"] <= estimate["ips"] <= estimate["ips_high"]
    assert estimate["snips_low"] <= estimate["snips"] <= estimate["snips_high"]
    assert ips_estimate(LOGGED, POLICY, k=2, n_bootstrap=200) == estimate  # fixed seed
    # At k=1 U2's top item is still b, U1's still a: same rounds chosen.
    assert ips_estimate(LOGGED, POLICY, k=1, n_bootstrap=10)["ips"] == pytest.approx(0.5)


def test_ips_interval_collapses_when_every_round_weighs_the_same() -> None:
    logged = pd.DataFrame(
        {"person_id": ["U1"] * 5, "sku": ["a"] * 5, "reward": [1.0] * 5, "propensity": [0.5] * 5}
    )
    estimate = ips_estimate(logged, POLICY, k=1, n_bootstrap=50)
    assert (estimate["ips"], estimate["ips_low"], estimate["ips_high"]) == (2.0, 2.0, 2.0)
    assert (estimate["snips"], estimate["snips_low"], estimate["snips_high"]) == (1.0, 1.0, 1.0)


def test_ips_without_a_chosen_round_has_no_self_normalised_estimate() -> None:
    estimate = ips_estimate(LOGGED, lists({"U9": ["a"]}), k=1, n_bootstrap=20)
    assert estimate["ips"] == 0.0
    assert np.isnan(estimate["snips"])
    assert np.isnan(estimate["snips_low"])


def test_ips_refuses_impossible_propensities() -> None:
    with pytest.raises(ValueError, match=r"propensity must be in \(0, 1\]"):
        ips_estimate(LOGGED.assign(propensity=0.0), POLICY)
    with pytest.raises(ValueError, match="no rounds"):
        ips_estimate(LOGGED.iloc[:0], POLICY)
