"""The categorical encoder on small frames with known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shelfwise.features.encoding import CategoricalEncoder, ColumnPlan, EncoderSettings
from shelfwise.models.base import NotFittedError


def _column(*runs: tuple[object, int]) -> list[object]:
    """A column written as (value, times) runs."""
    return [value for value, times in runs for _ in range(times)]


def _encoder(**settings: int) -> CategoricalEncoder:
    return CategoricalEncoder(EncoderSettings(**settings))


@pytest.fixture
def basket() -> pd.DataFrame:
    """Ten basket lines: a low-cardinality ``store`` and a ``brand`` with a rare value."""
    return pd.DataFrame(
        {
            "basket_id": np.arange(10, 20),
            "store": _column(("north", 4), ("south", 4), (None, 2)),
            "spend": np.linspace(1.0, 10.0, 10),
            "brand": _column(("acme", 4), ("zest", 3), ("bolt", 1), (None, 2)),
            "promotion": [True, False] * 5,
        },
        index=pd.Index(list("abcdefghij"), name="line"),
    )


@pytest.mark.parametrize(("one_hot_max", "encoding"), [(3, "one_hot"), (2, "code")])
def test_the_encoding_follows_the_cardinality_threshold(one_hot_max: int, encoding: str) -> None:
    frame = pd.DataFrame({"sku": _column(("a", 3), ("b", 2), ("c", 1))})
    encoder = _encoder(one_hot_max=one_hot_max, min_frequency=1).fit(frame, ["sku"])
    assert encoder.plans_["sku"].encoding == encoding
    assert encoder.describe()[0]["cardinality"] == 3


def test_one_hot_columns_by_descending_count_then_value() -> None:
    frame = pd.DataFrame({"sku": ["c", "b", "a", "c", "b", "d", "d", "d"]})
    out = _encoder(min_frequency=1).fit_transform(frame, ["sku"])
    assert list(out.columns) == ["sku=d", "sku=b", "sku=c", "sku=a", "sku__missing"]
    assert (out.dtypes == np.float32).all()
    expected = np.zeros((8, 5), dtype=np.float32)
    expected[np.arange(8), [2, 1, 3, 2, 1, 0, 0, 0]] = 1.0
    np.testing.assert_array_equal(out.to_numpy(), expected)


def test_codes_by_descending_count_then_value() -> None:
    frame = pd.DataFrame({"sku": ["c", "b", "a", "c", "b", "d", "d", "d"]})
    out = _encoder(one_hot_max=0, min_frequency=1).fit_transform(frame, ["sku"])
    assert list(out.columns) == ["sku__code", "sku__frequency", "sku__missing"]
    assert out["sku__code"].tolist() == [2.0, 1.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0]
    assert out["sku__code"].dtype == np.float64
    assert out["sku__missing"].dtype == np.float32


def test_rare_values_fold_into_other(basket: pd.DataFrame) -> None:
    out = _encoder(min_frequency=2).fit_transform(basket, ["brand"])
    brand = ["brand=acme", "brand=zest", "brand=__other__", "brand__missing"]
    assert list(out.columns) == ["basket_id", "store", "spend", *brand, "promotion"]
    assert out.loc["h", brand].to_numpy().tolist() == [0.0, 0.0, 1.0, 0.0]  # "bolt", seen once
    assert out[brand].sum().tolist() == [4.0, 3.0, 1.0, 2.0]


def test_max_categories_folds_the_least_frequent() -> None:
    frame = pd.DataFrame({"sku": _column(("a", 3), ("c", 2), ("b", 2), ("d", 1))})
    encoder = _encoder(min_frequency=1, max_categories=2).fit(frame, ["sku"])
    plan = encoder.plans_["sku"]
    assert plan.values == ("a", "b")
    assert (plan.counts, plan.other_count) == ((3, 2), 3)
    assert encoder.describe()[0]["output_columns"] == [
        "sku=a",
        "sku=b",
        "sku=__other__",
        "sku__missing",
    ]


@pytest.mark.parametrize(
    ("one_hot_max", "min_frequency", "encoding"),
    [(2, 1, "code"), (2, 2, "code"), (3, 2, "one_hot")],
)
def test_other_counts_as_a_level_for_the_threshold(
    one_hot_max: int, min_frequency: int, encoding: str
) -> None:
    # With min_frequency=2, "c" folds and "__other__" joins "a" and "b" as a third level.
    frame = pd.DataFrame({"sku": _column(("a", 2), ("b", 2), ("c", 1))})
    encoder = _encoder(one_hot_max=one_hot_max, min_frequency=min_frequency)
    assert encoder.fit(frame, ["sku"]).plans_["sku"].encoding == encoding


def test_unseen_values_go_to_other_or_nowhere(basket: pd.DataFrame) -> None:
    serving = basket.iloc[:2].assign(store=["west", "north"], brand=["omni", "acme"])
    encoder = _encoder(min_frequency=2).fit(basket, ["store", "brand"])
    out = encoder.transform(serving)
    store = ["store=north", "store=south", "store__missing"]
    brand = ["brand=acme", "brand=zest", "brand=__other__"]
    # store folded nothing: an unseen store sets no column at all.
    assert out.loc[["a", "b"], store].to_numpy().tolist() == [[0, 0, 0], [1, 0, 0]]
    assert out.loc[["a", "b"], brand].to_numpy().tolist() == [[0, 0, 1], [1, 0, 0]]


def test_missing_values_are_a_category_with_an_indicator() -> None:
    frame = pd.DataFrame({"sku": ["a", None, np.nan, pd.NA, "  ", "", "a", "b"]})
    one_hot = _encoder(min_frequency=1).fit_transform(frame, ["sku"])
    assert one_hot["sku__missing"].tolist() == [0, 1, 1, 1, 1, 1, 0, 0]
    assert one_hot[["sku=a", "sku=b"]].sum(axis=1).tolist() == [1, 0, 0, 0, 0, 0, 1, 1]

    coded = _encoder(one_hot_max=0, min_frequency=1).fit_transform(frame, ["sku"])
    assert coded["sku__missing"].tolist() == [0, 1, 1, 1, 1, 1, 0, 0]
    assert coded["sku__code"].isna().tolist() == [False, True, True, True, True, True] + [False] * 2
    assert coded["sku__frequency"].tolist() == [
        0.25,
        0.625,
        0.625,
        0.625,
        0.625,
        0.625,
        0.25,
        0.125,
    ]


def test_frequencies_and_codes_are_exact() -> None:
    train = pd.DataFrame({"brand": _column(("acme", 4), ("zest", 3), ("bolt", 1), (None, 2))})
    encoder = _encoder(one_hot_max=0, min_frequency=2).fit(train, ["brand"])
    serving = pd.DataFrame({"brand": ["acme", "zest", "bolt", "omni", None]})
    out = encoder.transform(serving)
    np.testing.assert_array_equal(out["brand__code"], [0.0, 1.0, 2.0, 2.0, np.nan])
    assert out["brand__frequency"].tolist() == [0.4, 0.3, 0.1, 0.1, 0.2]
    assert out["brand__missing"].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_unseen_values_of_an_unfolded_column_have_no_share() -> None:
    train = pd.DataFrame({"brand": ["acme", "zest", "acme", "zest"]})
    encoder = _encoder(one_hot_max=0, min_frequency=1).fit(train, ["brand"])
    out = encoder.transform(pd.DataFrame({"brand": ["omni", None]}))
    np.testing.assert_array_equal(out["brand__code"], [2.0, np.nan])
    assert out["brand__frequency"].tolist() == [0.0, 0.0]


def test_values_are_compared_as_strings_and_whole_floats_as_integers() -> None:
    train = pd.DataFrame({"store": _column((7, 2), (12, 1), ("7", 1))})
    encoder = _encoder(min_frequency=1).fit(train, ["store"])
    assert encoder.plans_["store"].values == ("7", "12")
    # An integer column with a missing value arrives as floats at serving time.
    out = encoder.transform(pd.DataFrame({"store": [7.0, np.nan, 12.0, 7.5]}))
    assert out.to_numpy().tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0]]


def test_passthrough_columns_keep_their_order_values_and_index(basket: pd.DataFrame) -> None:
    out = _encoder(one_hot_max=2, min_frequency=2).fit_transform(basket, ["store", "brand"])
    assert list(out.columns) == [
        "basket_id",
        "store=north",
        "store=south",
        "store__missing",
        "spend",
        "brand__code",
        "brand__frequency",
        "brand__missing",
        "promotion",
    ]
    pd.testing.assert_index_equal(out.index, basket.index)
    for name in ("basket_id", "spend", "promotion"):
        pd.testing.assert_series_equal(out[name], basket[name])


def test_json_round_trip_gives_identical_output(basket: pd.DataFrame) -> None:
    encoder = _encoder(one_hot_max=2, min_frequency=2).fit(basket, ["brand", "store"])
    restored = CategoricalEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert restored.settings == encoder.settings
    assert restored.plans_ == encoder.plans_
    assert restored.describe() == encoder.describe()
    serving = basket.assign(brand=["omni", *basket["brand"].iloc[1:]])
    pd.testing.assert_frame_equal(restored.transform(serving), encoder.transform(serving))


def test_from_dict_refuses_inconsistent_plans(basket: pd.DataFrame) -> None:
    saved = _encoder().fit(basket, ["store"]).to_dict()
    saved["plans"][0]["counts"] = [4]
    with pytest.raises(ValueError, match="'store': values and counts"):
        CategoricalEncoder.from_dict(saved)
    with pytest.raises(ValueError, match="unknown keys"):
        CategoricalEncoder.from_dict({**saved, "extra": 1})


def test_output_is_deterministic_whatever_the_row_order(basket: pd.DataFrame) -> None:
    shuffled = basket.sample(frac=1.0, random_state=7)
    first = _encoder(one_hot_max=2, min_frequency=1).fit(basket, ["store", "brand"])
    second = _encoder(one_hot_max=2, min_frequency=1).fit(shuffled, ["store", "brand"])
    assert first.to_dict() == second.to_dict()
    pd.testing.assert_frame_equal(first.transform(basket), second.transform(basket))


def test_fit_names_the_absent_column(basket: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"\['region'\] not in the frame.*'basket_id', 'store'"):
        _encoder().fit(basket, ["store", "region"])


def test_transform_names_the_absent_column(basket: pd.DataFrame) -> None:
    encoder = _encoder().fit(basket, ["store", "brand"])
    with pytest.raises(ValueError, match=r"\['brand'\] not in the frame.*'basket_id', 'store'"):
        encoder.transform(basket.drop(columns="brand"))


def test_an_unfitted_encoder_refuses(basket: pd.DataFrame) -> None:
    encoder = CategoricalEncoder()
    with pytest.raises(NotFittedError, match="CategoricalEncoder is not fitted"):
        encoder.transform(basket)
    with pytest.raises(NotFittedError):
        encoder.to_dict()
    with pytest.raises(NotFittedError):
        encoder.describe()


def test_fit_refuses_bad_column_lists_and_reserved_values(basket: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match="not the string 'store'"):
        _encoder().fit(basket, "store")
    with pytest.raises(ValueError, match="more than once"):
        _encoder().fit(basket, ["store", "store"])
    with pytest.raises(ValueError, match="no rows"):
        _encoder().fit(basket.iloc[:0], ["store"])
    with pytest.raises(ValueError, match=r"reserved values \['__other__'\]"):
        _encoder().fit(pd.DataFrame({"sku": ["a", "__other__"]}), ["sku"])


def test_transform_refuses_clashing_output_columns() -> None:
    frame = pd.DataFrame({"sku": ["a", "b"], "sku=a": [1, 2]})
    encoder = _encoder(min_frequency=1).fit(frame, ["sku"])
    with pytest.raises(ValueError, match=r"clash: \['sku=a'\]"):
        encoder.transform(frame)


@pytest.mark.parametrize("field", ["one_hot_max", "min_frequency", "max_categories"])
def test_settings_limits_are_checked(field: str) -> None:
    with pytest.raises(ValueError, match=f"EncoderSettings.{field}=-1"):
        EncoderSettings(**{field: -1})
    settings = EncoderSettings(one_hot_max=4, min_frequency=2, max_categories=50)
    assert EncoderSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_plan_round_trip() -> None:
    plan = ColumnPlan("sku", "code", ("a", "b"), (3, 2), 1, 1, 7, 3)
    assert ColumnPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
