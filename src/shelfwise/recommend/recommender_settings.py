"""The two-stage recommender's settings: what each stage does, with their checked ranges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shelfwise.models.settings import Constraints, EstimatorSettings, Interval, Options
from shelfwise.recommend.ranker import RankerSettings


@dataclass(frozen=True)
class RecommenderSettings(EstimatorSettings):
    """What each stage does. Quotas are candidates per person per source.

    The ranker's defaults as measured on CJ's validation windows (features as of week 49,
    scored on weeks 50-53): four label windows rather than two (+0.002 NDCG@10 on ``all``,
    +0.004 on ``discovery``), and 15 leaves learning at 0.03 for 400 trees rather than 63
    leaves at 0.06 for 250 (+0.003 on ``all``, +0.006 on ``discovery``, whose few positives
    the larger trees overfit).
    """

    scope: str = "all"
    label_split: str = "time"
    label_share: float = 0.25
    label_days: float = 28.0
    label_windows: int = 4
    half_life_days: float = 90.0
    trending_half_life_days: float = 14.0
    ease_l2: float = 500.0
    # EASE's rating-order weighting (see shelfwise.recommend.ease; None: plain EASE)
    ease_order_floor: float | None = None
    ease_order_scale: float = 10.0
    buy_again_quota: int = 150
    ease_quota: int = 60
    popularity_quota: int = 40
    trending_quota: int = 20
    co_purchase_quota: int = 40
    als_quota: int = 40
    als_factors: int = 64
    ann_url: str = "embedded"
    # ALS proposes through the embedded ANN index from this many skus; below it, its exact
    # scores, as its training windows take them. Measured on the Complete Journey's 65,803
    # sold skus x 64: the HNSW bands answer a query of 240 in 2.7-5 ms, the exact product in
    # 1.3 ms alone and 0.45-0.85 ms a person in batches of 32 and 8.
    ann_min_items: int = 200_000
    ranker_objective: str = "lambdarank"
    ranker_trees: int = 400
    ranker_learning_rate: float = 0.03
    ranker_leaves: int = 15
    ranker_colsample: float = 0.5
    negative_share: float = 0.3
    new_product_slots: int = 1
    new_product_every: int = 5
    new_product_days: float = 90.0
    seed: int = 0

    constraints: ClassVar[Constraints] = {
        "scope": (Options(("all", "discovery")),),
        "label_split": (Options(("time", "random")),),
        "label_share": (Interval(0, 1, closed="neither"),),
        "label_days": (Interval(1, None),),
        "label_windows": (Interval(1, 8, integer=True),),
        "half_life_days": (Interval(0, None, closed="neither"),),
        "trending_half_life_days": (Interval(0, None, closed="neither"),),
        "ease_l2": (Interval(0, None, closed="neither"),),
        "ease_order_floor": (None, Interval(0, 1)),
        "ease_order_scale": (Interval(0, None, closed="neither"),),
        "buy_again_quota": (Interval(0, None, integer=True),),
        "ease_quota": (Interval(0, None, integer=True),),
        "popularity_quota": (Interval(0, None, integer=True),),
        "trending_quota": (Interval(0, None, integer=True),),
        "co_purchase_quota": (Interval(0, None, integer=True),),
        "als_quota": (Interval(0, None, integer=True),),
        "als_factors": (Interval(1, None, integer=True),),
        "ann_url": (str,),
        "ann_min_items": (Interval(0, None, integer=True),),
        "ranker_objective": (Options(("lambdarank", "binary")),),
        "ranker_trees": (Interval(1, None, integer=True),),
        "ranker_learning_rate": (Interval(0, 1, closed="right"),),
        "ranker_leaves": (Interval(2, None, integer=True),),
        "ranker_colsample": (Interval(0, 1, closed="right"),),
        "negative_share": (Interval(0, 1, closed="right"),),
        "new_product_slots": (Interval(0, None, integer=True),),
        "new_product_every": (Interval(1, None, integer=True),),
        "new_product_days": (Interval(0, None),),
        "seed": (int,),
    }

    @property
    def ranker(self) -> RankerSettings:
        return RankerSettings(
            objective=self.ranker_objective,
            trees=self.ranker_trees,
            learning_rate=self.ranker_learning_rate,
            leaves=self.ranker_leaves,
            colsample=self.ranker_colsample,
            seed=self.seed,
        )
