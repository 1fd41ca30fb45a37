"""`shelfwise bench recommend`: the two-stage recommender against the references, same run.

Protocols (../shared/BENCHMARKS.md): ``cj-next4w`` (tracks ``all`` and ``discovery``),
``ml100k-msr`` (one track), and bring-your-own (``--interactions FILE --user-col ...``). On
each track shelfwise fits :class:`~shelfwise.recommend.two_stage.TwoStageRecommender` on the
training split (scope ``all`` where repeats count, ``discovery`` where seen skus are dropped),
ranks 20 skus for every evaluated user and is scored by the protocol; ``shelfwise_retrieval``
is its own first stage alone. The references are tuned on the validation split. Figures: fit
seconds and the seconds to score every evaluated user.

Smoke mode keeps 150 users of the split (their whole logs), one grid value per reference and a
small ranker, so the tests run the whole path in seconds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shelfwise.bench import BenchOptions, progress
from shelfwise.bench.recommend_reference import DEPTH, REFERENCES, run_reference
from shelfwise.evaluation.beyond_accuracy import metrics_by_segment, novelty_at_k
from shelfwise.recommend.protocols import (
    RankingSplit,
    bring_your_own,
    cj_demographics,
    cj_next4w,
    evaluate_track,
    ml100k_msr,
)
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.two_stage import FeatureProvider, TwoStageRecommender

if TYPE_CHECKING:
    from shelfwise.workspace import Workspace

PROTOCOLS = ("cj-next4w", "ml100k-msr", "byo")
SMOKE_USERS = 150
# A log of 75,000 ratings: random label splits (its test is one), six of them, every negative,
# a small ranker learning slowly (measured on ml100k-msr: 0.482 against 0.477 with 4 x 15 leaves).
SMALL_LOG = {
    "label_split": "random",
    "label_windows": 6,
    "negative_share": 1.0,
    "ranker_leaves": 7,
    "ranker_trees": 300,
    "ranker_learning_rate": 0.03,
}
# MovieLens users rate in sessions: EASE weighs pairs of movies rated close together more
# (shelfwise.recommend.ease), with the floor, scale and ridge chosen on the validation split
# (docs/accuracy-experiments.md: 0.2787 there against plain EASE's 0.2679).
RATING_ORDER = {"ease_order_floor": 0.3, "ease_order_scale": 10.0, "ease_l2": 350.0}


def _split(options: BenchOptions) -> RankingSplit:
    protocol = options.protocol or ("byo" if "interactions" in options.extra else "cj-next4w")
    if protocol == "cj-next4w":
        return cj_next4w(options.datasets)
    if protocol == "ml100k-msr":
        return ml100k_msr(options.datasets)
    if protocol == "byo":
        extra = options.extra
        missing = [
            f"--{name.replace('_', '-')}"
            for name in ("interactions", "user_col", "item_col", "time_col")
            if not extra.get(name)
        ]
        if missing:
            raise ValueError(f"bring-your-own needs {', '.join(missing)}")
        return bring_your_own(
            extra["interactions"],
            extra["user_col"],
            extra["item_col"],
            extra["time_col"],
            split=extra.get("split", "last-per-user"),  # type: ignore[arg-type]
            test_from=extra.get("test_from"),
            exclude_seen=extra.get("exclude_seen") == "true",
        )
    raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def _settings(
    split: RankingSplit, track: str, smoke: bool, tuned: dict[str, Any]
) -> RecommenderSettings:
    """Scope by the track's rule; MovieLens' random split is mirrored by random label splits
    (several, on its small log, with a smaller ranker); EASE's ridge and buy-again's half-life
    as the references' tuning found them on the validation split."""
    scope = "all" if split.rules[track] == "keep-seen" else "discovery"
    values: dict[str, Any] = {"scope": scope}
    if tuned.get("ease") is not None:
        values["ease_l2"] = float(tuned["ease"])
    if tuned.get("buy_again") is not None:
        values["half_life_days"] = float(tuned["buy_again"])
    if split.protocol == "ml100k-msr":
        values.update(SMALL_LOG, **RATING_ORDER)
    if smoke:
        values.update(ranker_trees=20, ranker_leaves=15)
    return RecommenderSettings(**values)


def _store_provider(options: BenchOptions, folder: Path) -> tuple[FeatureProvider, Workspace]:
    """The feature store over The Complete Journey as the retailer recorded it: its contract
    tables, each household one person by its loyalty card, and no simulated browsing (the
    quickstart's simulated sessions look at each household's favourite products of the whole
    year, which would tell the ranker about the test weeks). ``--workspace DIR`` keeps this
    workspace in DIR and reuses it on the next run."""
    from shelfwise.bench.features import bench_settings
    from shelfwise.features.store import FeatureStore
    from shelfwise.quickstart import QuickstartReport, _load_complete_journey
    from shelfwise.recommend.store_features import store_features
    from shelfwise.workspace import Workspace

    kept = options.extra.get("workspace")
    root = Path(kept) if kept else folder / "workspace"
    workspace = Workspace(bench_settings(root))
    workspace.init()
    report = QuickstartReport(workspace=str(root))
    progress(f"loading The Complete Journey into {root} (skipped where already loaded)")
    _load_complete_journey(workspace, report, reload=False, progress=progress)
    analytic = workspace.analytic
    analytic.execute(
        """CREATE OR REPLACE VIEW person_map AS
        SELECT source_system, source_id, source_id AS person_id FROM customer_records
        WHERE source_system = 'loyalty_card'"""
    )
    analytic.execute(
        "CREATE TABLE IF NOT EXISTS stitched_events (event_id VARCHAR, person_id VARCHAR)"
    )
    events = analytic.frame("SELECT count(*) AS n FROM events")["n"].iloc[0]
    if events:
        raise ValueError(f"{root} holds {events:,} events: the benchmark needs purchases alone")
    return store_features(FeatureStore(workspace)), workspace


def _ours(
    split: RankingSplit,
    track: str,
    smoke: bool,
    features: FeatureProvider | None,
    tuned: dict[str, Any],
    demographics: dict[str, pd.Series] | None = None,
) -> dict[str, dict[str, Any]]:
    settings = _settings(split, track, smoke, tuned)
    model = TwoStageRecommender(settings, features=features)
    started = time.perf_counter()
    model.fit(split.train)
    fit_seconds = time.perf_counter() - started
    users = split.users_of(track)
    started = time.perf_counter()
    lists = model.recommend(users, DEPTH)
    score_seconds = time.perf_counter() - started
    ours: dict[str, Any] = dict(evaluate_track(lists, split, track))
    ours.update(
        fit_seconds=round(fit_seconds, 2),
        score_seconds=round(score_seconds, 2),
        users=len(users),
        candidates_per_user=round(_candidates(model, users), 1),
        ranker_features=model.fit_report_["ranker_features"],
        feature_sets=len(model.feature_versions),
    )
    retrieval = evaluate_track(model.retrieval_only(users, DEPTH), split, track)
    ours["novelty@10"] = round(novelty_at_k(lists, split.train, 10), 3)
    ours["ann"] = _ann_figures(model, users)
    ours["by_activity"] = _by_segment(lists, split, track, _by_activity(split))
    for name, segments in (demographics or {}).items():
        ours[f"by_{name}"] = _by_segment(lists, split, track, segments)
    progress(f"{track}: shelfwise ndcg@10 {ours['ndcg@10']:.4f} (fit {fit_seconds:.0f}s)")
    importance = list(model.ranker_.importance())[:10]
    return {"shelfwise": ours, "shelfwise_retrieval": retrieval, "_importance": {"top": importance}}


def _ann_figures(model: TwoStageRecommender, users: np.ndarray[Any, Any]) -> dict[str, Any]:
    """The ANN index over ALS's sku factors held against exact search, queried by every
    evaluated user's factors: recall@200, its build and query seconds beside exact search's.
    The serving index where the model has one; else (a catalogue under ``ann_min_items``,
    which serving scores exactly) the embedded index built here on the same factors."""
    from shelfwise.recommend.als import ALSRecommender
    from shelfwise.recommend.ann import ExactIndex, open_index

    als, index = model.models_.get("als"), model.index_
    if not isinstance(als, ALSRecommender):
        return {"index": None}
    served = "index" if index is not None else "exact"
    if index is None:
        index = open_index(None).build(als.item_factors_)
    rows = np.asarray(model.users_.searchsorted(users), dtype=np.int64)
    rows = rows[
        (rows < len(model.users_)) & (model.users_[rows.clip(0, len(model.users_) - 1)] == users)
    ]
    queries = als.user_factors_[rows]
    k = min(200, len(als.item_factors_))
    started = time.perf_counter()
    found, _ = index.search(queries, k)
    seconds = time.perf_counter() - started
    exact = ExactIndex().build(als.item_factors_)
    started = time.perf_counter()
    truth, _ = exact.search(queries, k)
    exact_seconds = time.perf_counter() - started
    hits = [np.intersect1d(a[a >= 0], b[b >= 0]).size for a, b in zip(found, truth, strict=True)]
    return {
        "backend": index.backend,
        "served": served,
        f"recall@{k}": round(float(np.mean(hits)) / k, 4),
        "items": len(als.item_factors_),
        "queries": len(queries),
        "dim": int(als.item_factors_.shape[1]),
        "build_seconds": round(index.build_seconds_ or 0.0, 2),
        "query_seconds": round(seconds, 3),
        "exact_query_seconds": round(exact_seconds, 3),
    }


def _by_activity(split: RankingSplit) -> pd.Series:
    """Each user's third of the users by training interactions: light, regular, frequent."""
    counts = split.train.groupby("person_id", observed=True).size()
    thirds = pd.qcut(counts.rank(method="first"), 3, labels=["light", "regular", "frequent"])
    return pd.Series(thirds.astype(str).to_numpy(), index=counts.index.astype(str))


def _by_segment(
    lists: pd.DataFrame, split: RankingSplit, track: str, segments: pd.Series
) -> dict[str, Any]:
    """NDCG@10 and users per segment (users the mapping does not name: ``unknown``)."""
    by = metrics_by_segment(
        lists, split.targets[track], segments, catalogue_size=len(split.catalogue)
    )
    return {
        str(name): {"ndcg@10": round(m["ndcg@10"], 4), "users": int(m["users"])}
        for name, m in by.items()
    }


def _candidates(model: TwoStageRecommender, users: np.ndarray[Any, Any]) -> float:
    sample = users[:200]
    rows = np.asarray([r for r in model.users_.searchsorted(sample) if r < len(model.users_)])
    return len(model.stage_.generate(rows.astype(np.int64))) / max(len(rows), 1)


def _smoke(split: RankingSplit) -> RankingSplit:
    """The split restricted to a few users, validation included."""
    keep = split.users[:: max(len(split.users) // SMOKE_USERS, 1)][:SMOKE_USERS]

    def restrict(part: RankingSplit) -> RankingSplit:
        train = part.train[part.train["person_id"].isin(keep)]
        test = next(iter(part.targets.values()))
        test = test[test["person_id"].isin(keep)]
        validation = None if part.validation is None else restrict(part.validation)
        return RankingSplit.from_frames(part.protocol, train, test, part.rules, validation)

    return restrict(split)


def run(options: BenchOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shelfwise-bench-") as tmp:
        features, workspace = None, None
        complete_journey = options.protocol in (None, "cj-next4w")
        if complete_journey and not options.smoke and "interactions" not in options.extra:
            features, workspace = _store_provider(options, Path(tmp))
        try:
            return _run(options, features)
        finally:
            if workspace is not None:
                workspace.close()


def _run(options: BenchOptions, features: FeatureProvider | None) -> dict[str, Any]:
    split = _split(options)
    if options.smoke:
        split = _smoke(split)
    progress(
        f"{split.protocol}: {len(split.train):,} training rows, {len(split.users):,} users, "
        f"catalogue {len(split.catalogue):,}"
    )
    demographics = None
    if split.protocol == "cj-next4w":  # the households that gave them: age and income groups
        people = cj_demographics(options.datasets)
        demographics = {"age": people["age"], "income": people["income"]}
    tracks: dict[str, dict[str, Any]] = {}
    for track in split.tracks:
        results: dict[str, Any] = {}
        for reference in REFERENCES:
            if reference.repeat_tracks_only and split.rules[track] != "keep-seen":
                continue
            progress(f"{track}: reference {reference.name}")
            results[reference.name] = run_reference(
                reference, split, track, smoke=options.smoke, progress=progress
            )
        # shelfwise's generators take the references' values tuned on the validation split.
        tuned: dict[str, Any] = {
            name: results[name]["tuned"] for name in ("ease", "buy_again") if name in results
        }
        ours = _ours(split, track, options.smoke, features, tuned, demographics)
        importance = ours.pop("_importance")
        results = {**ours, **results}
        best = max(
            (name for name in results if not name.startswith("shelfwise")),
            key=lambda name: results[name]["ndcg@10"],
        )
        results["summary"] = {
            "best_reference": best,
            "lift_over_best": round(
                results["shelfwise"]["ndcg@10"] / max(results[best]["ndcg@10"], 1e-12) - 1, 4
            ),
            "ranker_top_features": importance["top"],
        }
        tracks[track] = results
    return {
        "protocol": split.protocol,
        "primary_metric": "ndcg@10",
        "higher_is_better": True,
        "tracks": tracks,
    }
