"""Which generators the recommender runs, fitted on one encoded log, and their sources.

Every generator is a :class:`~shelfwise.recommend.matrix.MatrixRecommender` fitted with
``fit_interactions`` on the same :class:`~shelfwise.recommend.matrix.Interactions`, so they
share persons and skus; :func:`build_stage` fits them and wraps each as a candidate
:class:`~shelfwise.recommend.candidates.Source` with its quota from the settings, and
:func:`restore` brings a saved one back by its family name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.models.persistence import family_class
from shelfwise.models.settings import EstimatorSettings
from shelfwise.recommend.als import ALSRecommender, ALSSettings
from shelfwise.recommend.ann import VectorIndex, open_index
from shelfwise.recommend.buy_again import BuyAgainRecommender, BuyAgainSettings
from shelfwise.recommend.candidates import CandidateStage, Proposer, Source
from shelfwise.recommend.ease import EaseRecommender, EaseSettings
from shelfwise.recommend.item_knn import ItemKNNRecommender, ItemKNNSettings
from shelfwise.recommend.matrix import Interactions, MatrixRecommender
from shelfwise.recommend.popular import PopularSettings, TrendingRecommender

if TYPE_CHECKING:
    from shelfwise.recommend.recommender_settings import RecommenderSettings

LOG_COLUMNS = ("person_id", "sku", "occurred_at", "order_id", "weight", "segment")


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The log with string ids and UTC times, only the columns the generators read."""
    log = frame[[c for c in LOG_COLUMNS if c in frame.columns]].copy()
    log["person_id"] = log["person_id"].astype(str)
    log["sku"] = log["sku"].astype(str)
    log["occurred_at"] = pd.to_datetime(log["occurred_at"], utc=True)
    return log.reset_index(drop=True)


def interactions(log: pd.DataFrame) -> Interactions:
    return Interactions.from_frame(log)


# The sources in the order the stage weighs them: a pair two sources rank equally is credited
# to the earlier (its explanation and anchor). Fixed here, not by the models' order, which a
# loaded model has sorted by name.
SOURCES = ("buy_again", "popularity", "trending", "ease", "co_purchase", "als")


def fit_models(
    data: Interactions, settings: RecommenderSettings
) -> dict[str, MatrixRecommender[Any]]:
    """Every generator the settings ask for, fitted on ``data``."""
    models: dict[str, MatrixRecommender[Any]] = {
        "buy_again": BuyAgainRecommender(BuyAgainSettings(half_life_days=settings.half_life_days)),
        "popularity": TrendingRecommender(PopularSettings(half_life_days=None)),
    }
    if settings.trending_quota:
        models["trending"] = TrendingRecommender(
            PopularSettings(half_life_days=settings.trending_half_life_days)
        )
    if settings.ease_quota:
        models["ease"] = EaseRecommender(
            EaseSettings(
                l2=settings.ease_l2,
                order_floor=settings.ease_order_floor,
                order_scale=settings.ease_order_scale,
            )
        )
    if settings.co_purchase_quota:
        models["co_purchase"] = ItemKNNRecommender(
            ItemKNNSettings(neighbours=100, by="basket", popularity_penalty=0.3)
        )
    if settings.als_quota:
        models["als"] = ALSRecommender(ALSSettings(factors=settings.als_factors))
    for model in models.values():
        model.fit_interactions(data)
    return models


def stage_of(
    models: dict[str, MatrixRecommender[Any]],
    settings: RecommenderSettings,
    index: VectorIndex[Any] | None = None,
) -> CandidateStage:
    """The candidate stage over fitted generators, with the settings' quotas; ALS proposes
    through ``index`` (built on its sku factors) when one is given."""
    buy_again = models["buy_again"]
    assert isinstance(buy_again, BuyAgainRecommender)
    discovery = settings.scope == "discovery"
    quotas = {
        "buy_again": 0 if discovery else settings.buy_again_quota,
        "ease": settings.ease_quota,
        "popularity": settings.popularity_quota,
        "trending": settings.trending_quota,
        "co_purchase": settings.co_purchase_quota,
        "als": settings.als_quota,
    }
    sources = [
        Source(
            name,
            quotas[name],
            model._score,
            novel=name != "buy_again",
            anchors=model.anchors if isinstance(model, ItemKNNRecommender) else None,
            propose=_ann_proposer(model, index) if name == "als" and index is not None else None,
            sparse=(
                model.sparse_scores
                if isinstance(model, BuyAgainRecommender | ItemKNNRecommender)
                else None
            ),
            linear=model if isinstance(model, ALSRecommender) else None,
        )
        for name, model in ((name, models[name]) for name in SOURCES if name in models)
        if quotas[name] or name == "buy_again"
    ]
    return CandidateStage(sources, buy_again, len(buy_again.items_))


def ann_index(
    models: dict[str, MatrixRecommender[Any]], url: str, min_items: int = 0
) -> VectorIndex[Any] | None:
    """The ANN index over ALS's sku factors. None: no ALS, ``url`` "none", or the embedded
    index over fewer than ``min_items`` skus, where the exact scores cost less (a shared index
    at another ``url`` is built whatever its size)."""
    als = models.get("als")
    if url == "none" or not isinstance(als, ALSRecommender):
        return None
    if url == "embedded" and len(als.item_factors_) < min_items:
        return None
    return open_index(None if url == "embedded" else url).build(als.item_factors_)


def _ann_proposer(model: MatrixRecommender[Any], index: VectorIndex[Any]) -> Proposer:
    assert isinstance(model, ALSRecommender)
    factors = model.user_factors_

    def propose(rows: NDArray[np.int64], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        return index.search(factors[rows], k)

    return propose


def build_stage(
    data: Interactions, settings: RecommenderSettings
) -> tuple[dict[str, MatrixRecommender[Any]], CandidateStage]:
    models = fit_models(data, settings)
    return models, stage_of(models, settings)


def restore(saved: dict[str, Any], arrays: dict[str, Any]) -> MatrixRecommender[Any]:
    """A generator from what the recommender saved of it (family, settings, state, arrays)."""
    cls = family_class(saved["family"])
    settings_type: type[EstimatorSettings] = cls.settings_type
    model = cls(settings_type.from_dict(saved["settings"]))
    assert isinstance(model, MatrixRecommender)
    model._restore(arrays, saved["state"])
    model.fitted_at_ = pd.Timestamp.now(tz="UTC").to_pydatetime()
    model.fit_seconds_ = 0.0
    model.training_data_ = {}
    model.feature_versions_ = {}
    return model


def popularity_order(model: MatrixRecommender[Any]) -> np.ndarray[Any, Any]:
    """Sku codes from the most popular down (ties to the smaller sku)."""
    scores = model._score(np.zeros(1, dtype=np.int64))[0]
    return np.argsort(-scores, kind="stable")
