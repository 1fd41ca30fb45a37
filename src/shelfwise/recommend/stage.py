"""The quickstart's recommender stage: train on the workspace, backtest, track and register.

The purchase log is every order line of a resolved person (identity resolution's
``person_map``). The last ``HOLDOUT_DAYS`` are held out: the two-stage recommender is trained
on what came before (the re-ranker reading the feature store's point-in-time frame, the
content model the products table, for products nobody bought yet), and
judged on the persons who bought in the holdout against its own retrieval stage and plain
popularity. The run goes to MLflow and the model is registered as a version of
``recommender``; the first version becomes the champion (the lifecycle governs later ones).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from shelfwise.evaluation.ranking import ranking_metrics
from shelfwise.features.retail import RESOLVED
from shelfwise.features.store import FeatureStore
from shelfwise.lifecycle.contract import TRAINED_UNTIL
from shelfwise.models.base import Evaluation
from shelfwise.recommend.popularity import PopularityRecommender
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.store_features import store_features
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.workspace import Workspace

HOLDOUT_DAYS = 28
MODEL_NAME = "recommender"
ACTOR = "quickstart"
EXPERIMENT = "recommender"
FINGERPRINT_TAG = "shelfwise.recommender.data"
SUMMARY_TAG = "shelfwise.recommender.summary"
EVALUATED_PERSONS = 500  # judged on a fixed sample of the holdout's buyers, to stay quick
# One labelled window and a smaller ranker keep the quickstart to minutes on two cores; the
# lifecycle's scheduled retraining runs the full settings.
QUICKSTART = RecommenderSettings(label_windows=1, ranker_trees=150, ranker_learning_rate=0.08)

PURCHASES_SQL = f"""
WITH resolved AS ({RESOLVED})
SELECT r.person_id, l.sku, o.ordered_at AS occurred_at, o.order_id
FROM orders o JOIN order_lines l USING (order_id)
JOIN resolved r ON r.source_system = o.source_system AND r.source_id = o.customer_ref
ORDER BY o.ordered_at, o.order_id, l.sku"""


PRODUCTS_SQL = """SELECT sku, title, description, department, category, subcategory, brand,
manufacturer, size, launch_date FROM products ORDER BY sku"""


def purchase_log(workspace: Workspace) -> pd.DataFrame:
    """person_id, sku, occurred_at, order_id of every resolved person's order lines."""
    return workspace.analytic.frame(PURCHASES_SQL)


def train_recommender(
    workspace: Workspace,
    progress: Callable[[str], None],
    settings: RecommenderSettings | None = None,
    store: FeatureStore | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, float]]:
    """Returns the stage's summary, its checks and its seconds. ``store``: a feature store
    whose states are built already (the feature stage's), else one is made."""
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    log = purchase_log(workspace)
    if log.empty:
        raise ValueError("recommender: no resolved person has an order line; run identity first")
    fingerprint = _fingerprint(log)
    tracker = workspace.tracker
    unchanged = workspace.tracker.unchanged_champion(
        MODEL_NAME, fingerprint, fingerprint_tag=FINGERPRINT_TAG, summary_tag=SUMMARY_TAG
    )
    if unchanged is not None:
        progress("the recommender's champion was trained on these same purchases: kept")
        return unchanged, _checks(unchanged), {"log": round(time.perf_counter() - mark, 2)}
    cut = pd.to_datetime(log["occurred_at"]).max() - pd.Timedelta(days=HOLDOUT_DAYS)
    train = log[pd.to_datetime(log["occurred_at"]) <= cut]
    holdout = log[pd.to_datetime(log["occurred_at"]) > cut]
    seconds["log"] = time.perf_counter() - mark

    store = store or FeatureStore(workspace)
    products = workspace.analytic.frame(PRODUCTS_SQL)
    model = TwoStageRecommender(
        settings or QUICKSTART, features=store_features(store), products=products
    )
    progress(f"training the recommender on {len(train):,} purchase lines (until {cut:%Y-%m-%d})")
    mark = time.perf_counter()
    model.fit(train)
    seconds["fit"] = time.perf_counter() - mark

    progress("backtesting it on the last four weeks")
    mark = time.perf_counter()
    buyers = pd.Series(pd.unique(holdout["person_id"]))
    buyers = buyers[buyers.isin(model.users_)].sample(
        n=min(EVALUATED_PERSONS, int(buyers.isin(model.users_).sum())), random_state=0
    )
    targets = holdout[holdout["person_id"].isin(buyers)][["person_id", "sku"]]
    catalogue = len(model.items_)
    ours = ranking_metrics(model.recommend(buyers, 20), targets, catalogue_size=catalogue)
    retrieval = ranking_metrics(model.retrieval_only(buyers, 20), targets, catalogue_size=catalogue)
    popular = PopularityRecommender().fit(train)
    baseline = ranking_metrics(popular.recommend(buyers, 20), targets, catalogue_size=catalogue)
    seconds["backtest"] = time.perf_counter() - mark

    metrics = {
        **ours,
        "retrieval_ndcg_at_10": retrieval["ndcg@10"],
        "popularity_ndcg_at_10": baseline["ndcg@10"],
        "evaluated_persons": float(len(buyers)),
    }
    mark = time.perf_counter()
    record = tracker.log_training(
        model,
        experiment=EXPERIMENT,
        metrics=Evaluation(metrics, "ndcg@10", True),
        dataset={
            "holdout_days": HOLDOUT_DAYS,
            "cut": cut.isoformat(),
            TRAINED_UNTIL: cut.isoformat(),
        },
        params={"ranker_features": model.fit_report_["ranker_features"]},
        tags={FINGERPRINT_TAG: fingerprint},
    )
    version = workspace.registry.register_first_champion(
        MODEL_NAME, record, actor=ACTOR, reason="trained by the quickstart on the workspace"
    )
    seconds["register"] = time.perf_counter() - mark

    summary = {
        "run": "trained",
        "model": MODEL_NAME,
        "version": version,
        "run_id": record.run_id,
        "trained_until": cut.isoformat(),
        "persons": len(model.users_),
        "skus": len(model.items_),
        "new_products": len(model.new_skus_),
        "ranker_features": model.fit_report_["ranker_features"],
        "feature_sets": sorted(model.feature_versions),
        "windows": model.fit_report_["windows"],
        "backtest": {
            "persons": len(buyers),
            "ndcg@10": round(ours["ndcg@10"], 4),
            "recall@20": round(ours["recall@20"], 4),
            "retrieval_ndcg@10": round(retrieval["ndcg@10"], 4),
            "popularity_ndcg@10": round(baseline["ndcg@10"], 4),
        },
    }
    tracker.client.set_tag(record.run_id, SUMMARY_TAG, json.dumps(summary, default=str))
    return summary, _checks(summary), {k: round(v, 2) for k, v in seconds.items()}


def _fingerprint(log: pd.DataFrame) -> str:
    """The purchases as the model saw them: lines, persons, skus and the latest time."""
    latest = pd.to_datetime(log["occurred_at"]).max()
    parts = (len(log), log["person_id"].nunique(), log["sku"].nunique(), latest.isoformat())
    return ":".join(str(p) for p in parts)


def _checks(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    backtest = summary["backtest"]
    return {
        "recommender: beats its retrieval stage and popularity on the last four weeks": {
            "ok": backtest["ndcg@10"]
            > max(backtest["retrieval_ndcg@10"], backtest["popularity_ndcg@10"]),
            "ndcg@10": backtest["ndcg@10"],
            "retrieval": backtest["retrieval_ndcg@10"],
            "popularity": backtest["popularity_ndcg@10"],
        },
        "recommender: registered": {"ok": bool(summary["version"]), "version": summary["version"]},
    }
