"""The recommender stage on the simulated shop: feature-store features, tracked, registered."""

from __future__ import annotations

import pandas as pd
import pytest

from shelfwise.features.store import FeatureStore
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.stage import MODEL_NAME, purchase_log, train_recommender
from shelfwise.recommend.store_features import store_features
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.workspace import Workspace

SMALL = RecommenderSettings(label_days=21.0, ranker_trees=30, ranker_leaves=7)


def test_stage_trains_on_store_features_and_registers(shop_workspace: Workspace) -> None:
    messages: list[str] = []
    summary, checks, seconds = train_recommender(shop_workspace, messages.append, SMALL)
    assert summary["ranker_features"] >= 80  # source scores + the feature store's sets
    assert {"person_attributes", "product", "person_product"} <= set(summary["feature_sets"])
    assert checks["recommender: registered"]["ok"]
    assert summary["backtest"]["persons"] > 0
    assert seconds["fit"] > 0
    tracker = shop_workspace.tracker
    assert tracker.get_alias_version(MODEL_NAME, "champion") == summary["version"]
    loaded = tracker.load_estimator(f"models:/{MODEL_NAME}/{summary['version']}")
    assert isinstance(loaded, TwoStageRecommender)
    assert "content" in loaded.models_  # the products table, embedded for new products
    log = purchase_log(shop_workspace)
    sold = set(log.loc[log["occurred_at"] <= summary["trained_until"], "sku"])
    assert summary["new_products"] == len(loaded.new_skus_)
    assert not sold & set(loaded.new_skus_)
    versions = FeatureStore(shop_workspace).versions()
    assert all(versions[name] == v for name, v in loaded.feature_versions.items())
    person = str(purchase_log(shop_workspace)["person_id"].iloc[0])
    with pytest.raises(ValueError, match="give it a feature provider"):
        loaded.recommend([person], 5)
    loaded.features = store_features(FeatureStore(shop_workspace))
    assert len(loaded.recommend([person, "nobody"], 5)) == 10


def test_online_features_serve_what_offline_trained(shop_workspace: Workspace) -> None:
    store = FeatureStore(shop_workspace, online_url="memory://")
    log = purchase_log(shop_workspace)
    model = TwoStageRecommender(SMALL, features=store_features(store)).fit(log)
    store.materialise()
    model.features = store_features(store, online=True)
    person = str(log["person_id"].iloc[-1])
    online = model.recommend([person], 5)
    assert len(online) == 5
    assert online["score"].notna().all()
    assert isinstance(online, pd.DataFrame)
    # the serving fast path (feature columns, no frames) ranks exactly as the frame path
    persons = log["person_id"].drop_duplicates().astype(str).head(8).tolist()
    fast = model.ranked(persons, 20)
    provider = model.features
    assert provider.columns is not None
    provider.columns = lambda *keys: None  # type: ignore[method-assign]
    framed = model.ranked(persons, 20)
    pd.testing.assert_frame_equal(fast, framed, rtol=1e-6)


def test_a_second_run_on_the_same_purchases_keeps_the_champion(shop_workspace: Workspace) -> None:
    first, _, _ = train_recommender(shop_workspace, lambda _: None, SMALL)
    again, checks, seconds = train_recommender(shop_workspace, lambda _: None, SMALL)
    assert again["run"] == "unchanged"
    assert again["version"] == first["version"]
    assert "fit" not in seconds
    assert checks["recommender: registered"]["ok"]
