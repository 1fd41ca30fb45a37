"""The two-stage recommender as a lifecycle family: trained on a window, judged on the next.

Training reads the purchases of resolved persons in the window (start, end], the feature
store's point-in-time frames and the products table, as the quickstart's stage does. Judging
a model on (start, end] recommends 20 items to a fixed sample of the persons who bought in the
window and had bought before it (so every version is judged on the same persons, and on
persons it could know), and scores NDCG@10, the recommender's primary metric, against what
they bought. The champion is judged as it serves: with what it learned when it was trained.

Its segments are persons' ordering frequency (frequent, occasional), the segment a
recommendation request names in its context.

The scope is sensitive where the serving rules allow a sensitive category to be shown
(:attr:`RulePolicy.allowed_sensitive`) and the catalogue holds one: otherwise the rules remove
those items from every list, whatever the model ranks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shelfwise.evaluation.ranking import ranking_metrics
from shelfwise.features.store import FeatureStore
from shelfwise.lifecycle.segments import segment_model
from shelfwise.models.base import Estimator, Evaluation
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.rules import RulePolicy
from shelfwise.recommend.stage import (
    EVALUATED_PERSONS,
    EXPERIMENT,
    MODEL_NAME,
    PRODUCTS_SQL,
    QUICKSTART,
    purchase_log,
)
from shelfwise.recommend.store_features import store_features
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.workspace import Workspace

LIST_LENGTH = 20
SEGMENT = "segment"


class RecommenderFamily:
    model_name = MODEL_NAME
    experiment = EXPERIMENT

    segment_column = SEGMENT
    overall_model: str | None = None

    def __init__(
        self,
        workspace: Workspace,
        settings: RecommenderSettings | None = None,
        policy: RulePolicy | None = None,
        persons: int = EVALUATED_PERSONS,
        store: FeatureStore | None = None,
        segment: str | None = None,
        log: pd.DataFrame | None = None,
    ) -> None:
        """``segment``: the model of one segment of persons (its own registered model, whose
        rival is the overall recommender); ``log``: the purchases already read."""
        self.workspace = workspace
        self.settings = settings or QUICKSTART
        self.policy = policy or RulePolicy()
        self.persons = persons
        self._store = store
        self.products = workspace.analytic.frame(PRODUCTS_SQL)
        if log is None:
            log = purchase_log(workspace)
            if log.empty:
                raise ValueError("recommender: no resolved person has an order line; run identity")
            log["occurred_at"] = pd.to_datetime(log["occurred_at"])
            log[SEGMENT] = person_segments(log).reindex(log["person_id"]).to_numpy()
        if segment is not None:
            log = log[log[SEGMENT] == segment]
            if log.empty:
                raise ValueError(f"recommender: no person in {SEGMENT} {segment!r}")
            self.model_name = segment_model(MODEL_NAME, SEGMENT, segment)
            self.overall_model = MODEL_NAME
        self.log = log
        when = log["occurred_at"]
        self.when = when.dt.tz_convert("UTC").dt.tz_localize(None) if when.dt.tz else when

    def segments(self) -> list[str]:
        """The purchase-frequency segments that hold persons."""
        return sorted(set(self.log[SEGMENT].astype(str)))

    def for_segment(self, level: str) -> RecommenderFamily:
        return RecommenderFamily(
            self.workspace,
            self.settings,
            self.policy,
            self.persons,
            self._store,
            segment=level,
            log=self.log,
        )

    @property
    def store(self) -> FeatureStore:
        if self._store is None:
            self._store = FeatureStore(self.workspace)
        return self._store

    def latest(self) -> pd.Timestamp:
        """The time of the newest purchase."""
        return pd.Timestamp(self.when.max())

    def sensitive_scope(self) -> list[str]:
        allowed = set(self.policy.allowed_sensitive)
        if not allowed:
            return []
        found = self.workspace.analytic.frame(
            "SELECT DISTINCT sensitive_category FROM products WHERE sensitive_category IS NOT NULL"
        )
        return sorted(allowed & set(found["sensitive_category"].astype(str)))

    def train(self, start: pd.Timestamp, end: pd.Timestamp) -> Estimator[Any]:
        window = self.window(start, end)
        if window.empty:
            raise ValueError(f"recommender: no purchase between {start} and {end} to train on")
        model = TwoStageRecommender(
            self.settings, features=store_features(self.store), products=self.products
        )
        return model.fit(window)

    def score(self, model: Estimator[Any], start: pd.Timestamp, end: pd.Timestamp) -> Evaluation:
        if not isinstance(model, TwoStageRecommender):
            raise TypeError(f"the recommender family scores two-stage recommenders, not {model}")
        if model.features is None and model.feature_versions:  # loaded from the registry
            model.features = store_features(self.store)
        targets = self.targets(start, end)
        buyers = pd.Series(targets["person_id"].unique())
        ranked = model.recommend(buyers, LIST_LENGTH)
        metrics = ranking_metrics(ranked, targets, catalogue_size=len(model.items_))
        metrics["evaluated_persons"] = float(len(buyers))
        return Evaluation(metrics, "ndcg@10", True)

    def inputs(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """What the model reads about the purchases in (start, end], one row per line: the
        product's department, category and brand, the basket's size, the hour and weekday;
        with the person's segment."""
        lines = self.window(start, end)
        facts = self.products.set_index("sku").reindex(lines["sku"])
        when = self.when[lines.index]
        return pd.DataFrame(
            {
                "department": facts["department"].astype(str).to_numpy(),
                "category": facts["category"].astype(str).to_numpy(),
                "brand": facts["brand"].astype(str).to_numpy(),
                "basket_lines": lines.groupby("order_id")["sku"]
                .transform("size")
                .astype(float)
                .to_numpy(),
                "hour": when.dt.hour.astype(float).to_numpy(),
                "weekday": when.dt.dayofweek.astype(str).to_numpy(),
                SEGMENT: lines[SEGMENT].astype(str).to_numpy(),
            }
        )

    def window(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """The purchase lines in (start, end]."""
        return self.log[(self.when > _naive(start)) & (self.when <= _naive(end))]

    def targets(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """person_id, sku bought in (start, end] by a fixed sample of the persons who bought
        there and before ``start``."""
        before = set(self.log.loc[self.when <= _naive(start), "person_id"])
        inside = self.window(start, end)
        known = pd.Series(sorted(set(inside["person_id"]) & before), dtype=object)
        if known.empty:
            raise ValueError(f"recommender: nobody known before {start} bought until {end}")
        chosen = known.sample(n=min(self.persons, len(known)), random_state=0)
        return inside.loc[inside["person_id"].isin(chosen), ["person_id", "sku"]]


def person_segments(log: pd.DataFrame) -> pd.Series:
    """Each person's segment by how often they order: ``frequent`` at or above the median
    person's orders a month (over the weeks they have been a customer, at least four), else
    ``occasional``: two halves, whatever the shop's rhythm."""
    when = pd.to_datetime(log["occurred_at"])
    orders = (
        log.assign(when=when)
        .groupby("person_id")
        .agg(orders=("order_id", "nunique"), first=("when", "min"))
    )
    months = ((when.max() - orders["first"]).dt.days / 30.0).clip(lower=28 / 30.0)
    rate = orders["orders"] / months
    frequent = rate >= rate.median()
    labels = np.where(frequent.to_numpy(), "frequent", "occasional")
    return pd.Series(labels, index=orders.index, name=SEGMENT)


def _naive(moment: pd.Timestamp) -> pd.Timestamp:
    """Times compared as naive UTC (the lifecycle's windows are naive UTC)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
