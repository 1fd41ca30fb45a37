"""Feature definitions: versions that follow the definition, formulas that stay arithmetic."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from shelfwise.features.definitions import (
    Aggregate,
    Derived,
    FeatureSet,
    FeatureVersionError,
    check_versions,
)
from shelfwise.features.retail import RETAIL_FEATURE_SETS

BASE = FeatureSet(
    name="toy",
    entity="person",
    stream="SELECT * FROM fs_orders",
    aggregates=(Aggregate("orders", "count"), Aggregate("spend", "sum", "basket_value")),
    derived=(Derived("basket", "spend / orders", math.nan),),
    description="a toy",
)


def test_the_version_follows_the_definition_not_its_prose() -> None:
    assert BASE.version == dataclasses.replace(BASE, description="other words").version
    assert BASE.version == dataclasses.replace(BASE, freshness_target_seconds=5.0).version
    changed = dataclasses.replace(
        BASE,
        aggregates=(
            Aggregate("orders", "count", where="x > 1"),
            Aggregate("spend", "sum", "basket_value"),
        ),
    )
    assert changed.version != BASE.version
    assert dataclasses.replace(BASE, stream="SELECT * FROM fs_orders WHERE 1 = 1").version != (
        BASE.version
    )


def test_the_retail_sets_have_80_plus_features_and_distinct_names() -> None:
    names = [n for s in RETAIL_FEATURE_SETS for n in s.feature_names]
    assert len(names) == len(set(names))
    assert len(names) >= 80
    assert len({s.version for s in RETAIL_FEATURE_SETS}) == len(RETAIL_FEATURE_SETS)


def test_derived_formulas_are_arithmetic_with_documented_defaults() -> None:
    derived = Derived("ratio", "a / b", default=-1.0)
    out = derived.evaluate({"a": np.array([1.0, 1.0, np.nan]), "b": np.array([2.0, 0.0, 1.0])})
    assert out.tolist() == [0.5, -1.0, -1.0]
    assert Derived("c", "coalesce(a, b)").evaluate(
        {"a": np.array([np.nan, 3.0]), "b": np.array([7.0, 7.0])}
    ).tolist() == [7.0, 3.0]
    for bad in ("__import__('os')", "a.real", "a[0]", "'text'", "open(a)", "lambda: 1"):
        with pytest.raises(ValueError, match="formula"):
            Derived("bad", bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"streaming": True, "aggregates": (Aggregate("w", "window", window_days=7.0),)}, "batch"),
        ({"aggregates": (Aggregate("s", "session"),)}, "session_gap_minutes"),
        ({"aggregates": (Aggregate("a", "count"), Aggregate("a", "sum", "x"))}, "twice"),
        ({"derived": (Derived("d", "nope / 2"),)}, "unknown inputs"),
    ],
)
def test_inconsistent_sets_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(BASE, **change)  # type: ignore[arg-type]


def test_aggregate_parameters_belong_to_their_kind() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        Aggregate("d", "decayed")
    with pytest.raises(ValueError, match="half_life_days"):
        Aggregate("d", "sum", half_life_days=3.0)
    with pytest.raises(ValueError, match="window_days"):
        Aggregate("w", "window", window_days=0.0)
    with pytest.raises(ValueError, match="feature name"):
        Aggregate("Bad Name", "count")


def test_versions_of_another_definition_are_refused_with_their_names() -> None:
    check_versions({"a": "1"}, {"a": "1", "b": "2"}, where="here")
    with pytest.raises(FeatureVersionError, match="a: version 2, trained on 1"):
        check_versions({"a": "1"}, {"a": "2"}, where="here")
    with pytest.raises(FeatureVersionError, match="b: missing"):
        check_versions({"a": "1", "b": "1"}, {"a": "1"}, where="here")
    with pytest.raises(FeatureVersionError, match="no feature versions"):
        check_versions({"a": "1"}, {}, where="here")


def test_the_public_surface_imports_every_name_it_lists() -> None:
    import shelfwise.features as features

    assert set(features.__all__) == set(features._EXPORTS)
    for name in features.__all__:
        assert getattr(features, name) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        _ = features.nothing_here  # type: ignore[attr-defined]
