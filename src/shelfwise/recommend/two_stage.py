"""The recommender: candidate generators, then a LightGBM re-ranker, then fallbacks.

``fit(frame)`` takes a purchase (or interaction) log of ``person_id``, ``sku``,
``occurred_at`` (``order_id`` and ``weight`` where known) and trains in two steps:

1. **The ranker's examples.** For each of ``label_windows`` cut-offs (the last
   ``label_days`` of the log, the ``label_days`` before them, ...) the generators are fitted on
   what happened before the cut-off, propose candidates for every person active on both sides,
   and each candidate is labelled 1 if the person bought it within ``label_days`` after. The
   features of a candidate are its sources' scores and ranks, buy-again's facts about the pair,
   and, when a feature provider is given (the feature store's point-in-time frame), every
   person, product and person x product feature as of the cut-off. Negatives are thus the
   candidates the first stage really proposes, not random skus.
2. **Serving.** The generators are refitted on the whole log; ``recommend`` proposes, scores
   and orders with the ranker, and fills any list that comes out short from popularity (a
   person never seen gets popularity alone), so no list is ever empty while the catalogue has
   skus to give.

``scope="discovery"`` trains and serves for skus the person never bought: buy-again proposes
nothing, every candidate is new, and so is every positive label.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.features.definitions import FEATURE_VERSIONS, check_versions
from shelfwise.models.base import Column, Evaluation, LearnedArrays, gain_shares
from shelfwise.recommend import generators, new_products
from shelfwise.recommend.als import ALSRecommender
from shelfwise.recommend.ann import VectorIndex, VectorsOf, index_arrays, index_from_arrays
from shelfwise.recommend.candidates import CandidateStage, Columns, take_rows
from shelfwise.recommend.content import ContentRecommender
from shelfwise.recommend.matrix import (
    DEFAULT_K,
    SECONDS_PER_DAY,
    MatrixRecommender,
    evaluate_lists,
    group_positions,
    rows_of,
    top_k,
)
from shelfwise.recommend.ranker import Ranker
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.tracing import span

# rows (person_id, sku, as_of) -> the same rows' features, in the same order.
FeatureProvider = Callable[[pd.DataFrame], pd.DataFrame]
SEGMENT_DEPTH = 200  # best sellers kept per segment
FALLBACK = "popularity_fallback"
NEW_INDEX_MIN = 20_000  # new products from which they are placed through an ANN index
ALS_INDEX_PREFIX, NEW_INDEX_PREFIX = "ann/", "new_ann/"  # their files among the arrays


class TwoStageRecommender(MatrixRecommender[Any]):
    """Candidates from every generator, re-ranked by LightGBM, filled from popularity."""

    family = "recommender"
    settings_type = RecommenderSettings
    fetches_features = True
    limitations = (
        "Learns from purchases alone: a person with no purchase gets their context's and "
        "segment's candidates, then popularity.",
        "Ranks what its candidate generators propose: an item none of them proposes is never "
        "ranked (new products get one place through the content model).",
        "Judged offline on the following weeks' purchases (ndcg@10): an offline gain is a "
        "hypothesis for an A/B test, not a measured uplift.",
    )
    output_schema = (
        Column("person_id", "string"),
        Column("sku", "string"),
        Column("score", "double"),
        Column("rank", "long"),
        Column("source", "string"),
    )

    stage_: CandidateStage
    index_: VectorIndex[Any] | None  # over ALS's sku factors, for its proposals
    models_: dict[str, MatrixRecommender[Any]]
    ranker_: Ranker
    new_skus_: NDArray[np.str_]  # products nobody bought yet, placed by content similarity
    new_index_: VectorIndex[Any] | None  # over their content vectors, when there are many
    provider_features_: list[str]
    fit_report_: dict[str, Any]

    def __init__(
        self,
        settings: RecommenderSettings | None = None,
        features: FeatureProvider | None = None,
        products: pd.DataFrame | None = None,
    ) -> None:
        """``features``: the feature store's provider; ``products``: the product catalogue
        (the contract's ``products`` table), for content embeddings of new products."""
        super().__init__(settings)
        self.features = features
        self.products = products
        self._training = False

    # Training.
    def _fit(self, frame: pd.DataFrame) -> None:
        self._training = True
        try:
            self._train(frame)
        finally:
            self._training = False

    def _train(self, frame: pd.DataFrame) -> None:
        started = time.perf_counter()
        log = generators.prepare(frame)
        examples = []
        report: dict[str, Any] = {"windows": []}
        for window, (past, future, cutoff) in enumerate(self._label_splits(log), start=1):
            if past.empty or future.empty:
                continue
            labelled, facts = self._examples(past, future, cutoff, group_offset=window)
            examples.append(labelled)
            report["windows"].append(facts)
        if not examples:
            raise ValueError(
                f"the log spans too little time to label the ranker: it needs more than "
                f"{self.settings.label_days:g} days of history before the last "
                f"{self.settings.label_days:g} days"
            )
        training = pd.concat(examples, ignore_index=True)
        numeric = [c for c in training.columns if c not in _NOT_FEATURES]
        mark = time.perf_counter()
        self.ranker_ = Ranker(self.settings.ranker).fit(training, numeric, label="label")
        report["ranker_seconds"] = round(time.perf_counter() - mark, 2)
        report["ranker_rows"] = len(training)
        report["ranker_features"] = len(numeric)
        mark = time.perf_counter()
        self._learn_segments(log)
        super()._fit(log)
        report["serving_fit_seconds"] = round(time.perf_counter() - mark, 2)
        report["seconds"] = round(time.perf_counter() - started, 2)
        self.fit_report_ = report

    def _label_splits(
        self, log: pd.DataFrame
    ) -> list[tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]]:
        """(past, future, cut-off) per labelled window: the last ``label_days`` windows of the
        log ("time"), or, for logs whose test is a random holdout (MovieLens' stratified
        split), ``label_windows`` random holdouts of ``label_share`` of each sku's rows."""
        latest = log["occurred_at"].max()
        if self.settings.label_split == "random":
            out = []
            for window in range(self.settings.label_windows):
                rng = np.random.default_rng(self.settings.seed + window)
                draw = pd.Series(rng.random(len(log)), index=log.index)
                order = draw.groupby(log["sku"]).rank(method="first")
                size = log.groupby("sku")["sku"].transform("size")
                held = (order > np.round((1 - self.settings.label_share) * size)).to_numpy()
                out.append((log[~held], log[held], latest))
            return out
        span = pd.Timedelta(days=self.settings.label_days)
        out = []
        for window in range(self.settings.label_windows, 0, -1):
            cutoff = latest - window * span + pd.Timedelta(microseconds=1)
            past = log[log["occurred_at"] < cutoff]
            future = log[(log["occurred_at"] >= cutoff) & (log["occurred_at"] < cutoff + span)]
            out.append((past, future, cutoff))
        return out

    def _learn_segments(self, log: pd.DataFrame) -> None:
        """Each segment's best sellers (when the log has a ``segment`` column), for persons
        the model has not seen but whose segment a request names."""
        self.segments_ = np.array([], dtype=str)
        self.segment_top_ = np.empty((0, SEGMENT_DEPTH), dtype=np.int64)
        if "segment" not in log.columns:
            return
        items = np.unique(log["sku"].to_numpy(dtype=str))
        known = log[log["segment"].notna()]
        self.segments_ = np.unique(known["segment"].to_numpy(dtype=str))
        segment = rows_of(self.segments_, known["segment"].to_numpy(dtype=str))
        item = rows_of(items, known["sku"].to_numpy(str))
        counts = np.zeros((len(self.segments_), len(items)), dtype=np.float32)
        np.add.at(counts, (segment, item), 1.0)
        self.segment_top_ = top_k(counts, SEGMENT_DEPTH)[0]

    def segment_top(self, segment: str) -> NDArray[np.int64] | None:
        """The segment's best-selling sku codes (None: a segment the log never named)."""
        row = rows_of(getattr(self, "segments_", np.array([], dtype=str)), np.array([segment]))[0]
        return None if row < 0 else self.segment_top_[row]

    def _fit_matrix(self, data: Any) -> None:
        """The serving generators; ALS proposes through the ANN index once its catalogue is
        large enough (``ann_min_items``; the labelled windows take its exact top-k: the index
        finds 99% of them and is built once, here)."""
        s = self.settings
        self.models_ = generators.fit_models(data, s)
        self.index_ = generators.ann_index(self.models_, s.ann_url, s.ann_min_items)
        self.stage_ = generators.stage_of(self.models_, s, self.index_)
        self.new_skus_ = np.array([], dtype=str)
        if self.products is not None:
            content = ContentRecommender(catalogue=self.products).fit_interactions(data)
            self.models_["content"] = content
            self.new_skus_ = new_products.launched_unsold(
                content,
                self.products,
                data.items,
                data.latest_day,
                self.settings.new_product_days,
            )
        self._index_new_products()

    def _index_new_products(self) -> None:
        content = self.models_.get("content")
        self.new_index_ = (
            new_products.index_of(content, self.new_skus_, self.settings.ann_url, NEW_INDEX_MIN)
            if isinstance(content, ContentRecommender)
            else None
        )

    def add_products(self, frame: pd.DataFrame) -> NDArray[np.str_]:
        """Embed products that arrived after training (rows as the catalogue's) so that lists
        can place them at once; returns the skus the log does not know, now new products."""
        self.check_fitted()
        content = self.models_.get("content")
        if not isinstance(content, ContentRecommender):
            raise ValueError(
                "this recommender has no content model: give it the product catalogue "
                "(TwoStageRecommender(products=...)) before it is fitted"
            )
        skus = content.add_products(frame)
        unknown = skus[rows_of(self.items_, skus) < 0]
        self.new_skus_ = np.union1d(self.new_skus_, unknown).astype(str)
        self._index_new_products()  # content codes moved: rebuilt, not added to
        return unknown

    def _examples(
        self, past: pd.DataFrame, future: pd.DataFrame, cutoff: pd.Timestamp, group_offset: int
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        data = generators.interactions(past)
        _, stage = generators.build_stage(data, self.settings)
        persons = np.intersect1d(data.users, future["person_id"].to_numpy(str))
        rows = rows_of(data.users, persons)
        as_of_day = _day(cutoff)
        candidates = self._restrict(stage.columns(rows, as_of_day))
        bought = future.drop_duplicates(["person_id", "sku"])
        targets = pd.MultiIndex.from_arrays([bought["person_id"], bought["sku"]])
        if self.settings.scope == "discovery":
            seen = pd.MultiIndex.from_arrays([past["person_id"], past["sku"]])
            new = ~targets.isin(seen)
            targets, bought = targets[new], bought[new]
        keys = pd.MultiIndex.from_arrays(
            [data.users[candidates["row"]], data.items[candidates["item"]]]
        )
        label = keys.isin(targets)
        positives = int(label.sum())
        if self.settings.negative_share < 1.0:
            # Every positive and a fixed share of the negatives, drawn before the features are
            # read: the ranker learns the same order from a third of the rows.
            rng = np.random.default_rng(self.settings.seed + group_offset)
            keep = label | (rng.random(len(label)) < self.settings.negative_share)
            candidates, label = take_rows(candidates, keep), label[keep]
        columns = self._feature_columns(candidates, data.users, data.items, cutoff)
        columns["label"] = label.astype(np.int8)
        columns["group"] = group_offset * 10_000_000 + candidates["row"]
        frame = pd.DataFrame(columns)
        in_persons = bought["person_id"].isin(persons)
        facts = {
            "cutoff": cutoff.isoformat(),
            "persons": len(persons),
            "candidates": len(keys),
            "positives": positives,
            "training_rows": len(frame),
            "candidate_recall": round(positives / max(int(np.count_nonzero(in_persons)), 1), 4),
        }
        return frame, facts

    def _restrict(self, candidates: Columns) -> Columns:
        if self.settings.scope == "discovery" and candidates:
            return take_rows(candidates, candidates["buy_again_days"] == 0)
        return candidates

    def _feature_columns(
        self,
        candidates: Columns,
        users: NDArray[np.str_],
        items: NDArray[np.str_],
        as_of: pd.Timestamp,
    ) -> Columns:
        """The candidates' columns with the feature store's beside them: what the ranker
        reads, in training and in serving alike (columns, not a frame: at a request's few
        hundred rows a frame's construction and column reads cost more than the trees)."""
        person_ids = users[candidates["row"]]
        skus = items[candidates["item"]]
        columns: Columns = {"person_id": person_ids, "sku": skus}
        for name, values in candidates.items():
            if name.endswith(("_score", "_z")):  # a source's -inf: no opinion, for the ranker
                values = np.where(np.isinf(values), np.nan, values)
            columns[name] = values
        if self.features is None:
            if not self._training and self.feature_versions:
                raise ValueError(
                    "this recommender was trained on feature-store features "
                    f"({', '.join(sorted(self.feature_versions))}); give it a feature provider "
                    "(recommender.features = store_features(store)) before it recommends"
                )
            return columns
        fast = None if self._training else getattr(self.features, "columns", None)
        served = fast(person_ids, skus, self.feature_versions) if fast is not None else None
        if served is not None:  # the serving fast path: the same features, no frames between
            for name, values in served.items():
                if name not in ("person_id", "sku", "as_of") and values.dtype.kind in "biuf":
                    columns[name] = values.astype(np.float32)
            return columns
        rows = pd.DataFrame({"person_id": person_ids, "sku": skus, "as_of": as_of})
        extra = self.features(rows)
        if len(extra) != len(rows):
            raise ValueError(
                f"the feature provider returned {len(extra)} rows for {len(rows)} candidates"
            )
        versions = dict(extra.attrs.get(FEATURE_VERSIONS, {}))
        if self._training:  # remember the versions it was trained on
            self.feature_versions_.update(versions)
        else:
            check_versions(self.feature_versions, versions, where="TwoStageRecommender.recommend")
        extra = extra.drop(columns=[c for c in extra.columns if c in rows.columns])
        numeric = extra.select_dtypes(include=["number", "bool"]).astype(np.float32)
        columns.update({name: numeric[name].to_numpy() for name in numeric.columns})
        return columns

    # Serving.
    def recommend(self, person_ids: Iterable[str], k: int = DEFAULT_K) -> pd.DataFrame:
        """Top ``k`` per person with the source that proposed each sku; never empty."""
        ranked = self.ranked(person_ids, k)
        return ranked[["person_id", "sku", "score", "rank", "source"]]

    def ranked(self, person_ids: Iterable[str], depth: int = DEFAULT_K) -> pd.DataFrame:
        """The ranker's best ``depth`` per person, filled from popularity, with what the
        business rules and explanations read: ``bought_before``, ``repurchase_days`` (the
        person's typical interval for the sku) and ``anchor_sku`` (none yet: item-to-item
        sources fill it)."""
        self.check_fitted()
        k = depth
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        ids = pd.Series(list(person_ids), dtype="string")
        if ids.isna().any():
            raise ValueError("person_ids: missing values")
        people = pd.unique(ids.to_numpy(dtype=str))
        rows = rows_of(self.users_, people)
        known = rows[rows >= 0]
        if not len(known):
            return self.fill(_no_ranked(), people, int(k))
        columns = self.candidate_columns(known)
        with span("ranking", candidates=len(columns["row"])):
            score = self.ranker_.predict(columns)
        ranked = self._best_ranked(columns, score, int(k))
        content = self.models_.get("content")
        if isinstance(content, ContentRecommender) and len(self.new_skus_):
            ranked = new_products.place(
                ranked,
                content,
                self.new_skus_,
                self.settings.new_product_slots,
                self.settings.new_product_every,
                int(k),
                index=self.new_index_,
            )
        return self.fill(ranked, people, int(k))

    def _best_ranked(self, columns: Columns, score: NDArray[Any], k: int) -> Columns:
        """Each person's ``k`` best-scored candidates (ties to the smaller sku), persons in
        the order of their rows (their ids' order), with the columns :meth:`ranked` returns."""
        person, item = columns["row"], columns["item"]  # codes sorted as the ids and skus
        order = np.lexsort((item, -score, person))
        at = order[group_positions(person[order]) < k]
        anchor = columns["anchor"][at]
        anchor_sku = np.full(len(at), None, dtype=object)
        anchor_sku[anchor >= 0] = self.items_[anchor[anchor >= 0]]
        return {
            "person_id": columns["person_id"][at].astype(object),
            "sku": columns["sku"][at].astype(object),
            "score": score[at].astype(np.float64),
            "source": columns["source"][at],
            "bought_before": columns["buy_again_days"][at] > 0,
            "repurchase_days": columns["buy_again_cycle"][at].astype(np.float64),
            "anchor_sku": anchor_sku,
        }

    def candidate_columns(self, rows: NDArray[np.int64]) -> Columns:
        """The first stage's candidates for the known persons at ``rows`` (indices into
        ``users_``), with every feature the ranker reads: what :meth:`ranked` scores."""
        as_of = pd.Timestamp(self.latest_day_ * SECONDS_PER_DAY, unit="s", tz="UTC")
        with span("retrieval", persons=len(rows)):
            candidates = self._restrict(self.stage_.columns(rows, self.latest_day_))
        with span("features", candidates=len(candidates.get("row", ()))):
            return self._feature_columns(candidates, self.users_, self.items_, as_of)

    def fill(self, ranked: Columns, people: NDArray[np.str_], k: int) -> pd.DataFrame:
        """Lists (columns as :func:`ranked_columns` gives) shorter than k completed from
        popularity (for discovery: skus never bought), as :meth:`ranked`'s frame."""
        order = self._popularity_order()
        position = {p: i for i, p in enumerate(people)}
        person, sku = ranked["person_id"], ranked["sku"]
        code = np.fromiter(
            (position.get(p, len(people)) for p in person), dtype=np.int64, count=len(person)
        )
        have = np.bincount(code, minlength=len(people) + 1)
        codes, extra = [code], []
        depth = k + 64
        for at in np.flatnonzero(have[: len(people)] < k):
            who = people[at]
            taken = set(sku[code == at])
            row = rows_of(self.users_, np.array([who]))[0]
            if self.settings.scope == "discovery" and row >= 0:
                seen = self.history_[row].indices
                taken |= set(self.items_[seen])
            chosen = [s for s in self.items_[order[: depth + len(taken)]] if s not in taken]
            skus = np.asarray(chosen[: k - int(have[at])], dtype=str)
            bought = np.zeros(len(skus), dtype=bool)
            if row >= 0:
                bought = np.isin(skus, self.items_[self.history_[row].indices])
            extra.append(
                {
                    "person_id": np.full(len(skus), who, dtype=object),
                    "sku": skus.astype(object),
                    "score": np.full(len(skus), np.nan),
                    "source": np.full(len(skus), FALLBACK, dtype=object),
                    "bought_before": bought,
                    "repurchase_days": np.full(len(skus), np.nan),
                    "anchor_sku": np.full(len(skus), None, dtype=object),
                }
            )
            codes.append(np.full(len(skus), at, dtype=np.int64))
        by_person = np.concatenate(codes)
        placed = np.argsort(by_person, kind="stable")
        out = {
            name: np.concatenate([ranked[name], *(e[name] for e in extra)])[placed]
            for name in _RANKED
        }
        return pd.DataFrame(
            {
                "person_id": out["person_id"].astype(object),
                "sku": out["sku"].astype(object),
                "score": out["score"].astype(np.float64),  # all NaN for strangers: numeric
                "rank": group_positions(by_person[placed]) + 1,
                "source": out["source"].astype(object),
                "bought_before": out["bought_before"].astype(bool),
                "repurchase_days": out["repurchase_days"].astype(np.float64),
                "anchor_sku": pd.Series(out["anchor_sku"], dtype="string"),
            }
        )

    def _popularity_order(self) -> NDArray[np.int64]:
        """Sku codes from the most popular down, sorted once per fitted popularity model (a
        sort of the catalogue per request cost 3 ms on CJ)."""
        popularity = self.models_["popularity"]
        cached = self.__dict__.get("_popularity_order_of")
        if cached is None or cached[0] is not popularity:
            cached = (popularity, generators.popularity_order(popularity))
            self.__dict__["_popularity_order_of"] = cached
        order: NDArray[np.int64] = cached[1]
        return order

    def feature_importance(self) -> dict[str, float]:
        """The re-ranker's gain per feature, as shares."""
        self.check_fitted()
        booster = self.ranker_.booster
        return {} if booster is None else gain_shares(booster)

    def retrieval_only(self, person_ids: Iterable[str], k: int = DEFAULT_K) -> pd.DataFrame:
        """The first stage alone (the baseline the ranker must beat): the sources' proposals
        interleaved by rank relative to quota, so each source fills its share of the list."""
        self.check_fitted()
        people = pd.unique(pd.Series(list(person_ids), dtype="string").to_numpy(dtype=str))
        rows = rows_of(self.users_, people)
        proposed = self.stage_.columns(rows[rows >= 0], self.latest_day_)
        candidates = pd.DataFrame(self._restrict(proposed))
        quotas = {s.name: max(s.quota, 1) for s in self.stage_.sources}
        share = np.full(len(candidates), np.inf)
        for name, quota in quotas.items():
            share = np.fmin(share, candidates[f"{name}_rank"].to_numpy() / quota)
        frame = pd.DataFrame(
            {
                "person_id": self.users_[candidates["row"].to_numpy()],
                "sku": self.items_[candidates["item"].to_numpy()],
                "score": -share,
                "source": candidates["source"],
                "bought_before": candidates["buy_again_days"].to_numpy() > 0,
                "repurchase_days": candidates["buy_again_cycle"].to_numpy(),
                "anchor_sku": pd.Series(pd.NA, index=candidates.index, dtype="string"),
            }
        )
        frame = frame.sort_values(["person_id", "score", "sku"], ascending=[True, False, True])
        best = frame.groupby("person_id", sort=False).head(k)
        filled = self.fill(ranked_columns(best), people, k)
        return filled[["person_id", "sku", "score", "rank", "source"]]

    def _score(self, rows: NDArray[np.int64]) -> NDArray[np.float32]:
        raise NotImplementedError("the two-stage recommender ranks candidates, not every sku")

    def _evaluate(self, frame: pd.DataFrame) -> Evaluation:
        metrics = evaluate_lists(self.recommend, frame, len(self.items_))
        return Evaluation(metrics, self.primary_metric, self.higher_is_better)

    # Persistence: each generator under its own prefix, the ranker as LightGBM text.
    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays, state = super()._learned()
        state["models"] = {}
        for name, model in self.models_.items():
            inner, inner_state = model._learned()
            arrays.update({f"{name}.{key}": value for key, value in inner.items()})
            state["models"][name] = {
                "family": model.family,
                "settings": model.settings.to_dict(),
                "state": inner_state,
            }
        ranker_arrays, ranker_state = self.ranker_.to_state()
        arrays.update(ranker_arrays)
        state.update(ranker_state)
        state["fit_report"] = self.fit_report_
        # The indexes without their vectors: ALS's factors and the content vectors are saved
        # with their models (at a million products, 232 of the artefact's 952 MB twice).
        arrays.update(index_arrays(self.index_, ALS_INDEX_PREFIX, without_vectors=True))
        arrays.update(index_arrays(self.new_index_, NEW_INDEX_PREFIX, without_vectors=True))
        arrays["segments"] = self.segments_
        arrays["segment_top"] = self.segment_top_
        arrays["new_skus"] = self.new_skus_
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        super()._restore(arrays, state)
        self.models_ = {}
        for name, saved in state["models"].items():
            prefix = f"{name}."
            inner = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            self.models_[name] = generators.restore(saved, inner)
        self.index_ = index_from_arrays(arrays, ALS_INDEX_PREFIX, self._vectors_of("als"))
        self.stage_ = generators.stage_of(self.models_, self.settings, self.index_)
        self.ranker_ = Ranker.from_state(arrays, state)
        self.fit_report_ = state.get("fit_report", {})
        self.segments_ = arrays["segments"]
        self.segment_top_ = arrays["segment_top"]
        self.new_skus_ = arrays.get("new_skus", np.array([], dtype=str))
        self.new_index_ = index_from_arrays(arrays, NEW_INDEX_PREFIX, self._vectors_of("content"))

    def _vectors_of(self, name: str) -> VectorsOf | None:
        """The vectors a generator's index was built on, by id (ALS's sku factors by sku
        code, the content vectors by content code), for an index saved without them."""
        model = self.models_.get(name)
        if isinstance(model, ALSRecommender):
            factors = model.item_factors_
            return lambda ids: factors[ids]
        if isinstance(model, ContentRecommender):
            vectors = model.item_vectors_
            return lambda ids: vectors[ids]
        return None


_RANKED = ("person_id", "sku", "score", "source", "bought_before", "repurchase_days", "anchor_sku")


def _no_ranked() -> Columns:
    """Empty ranked lists with their columns' types."""
    types: tuple[Any, ...] = (object, object, np.float64, object, bool, np.float64, object)
    return {name: np.empty(0, dtype=kind) for name, kind in zip(_RANKED, types, strict=True)}


def ranked_columns(frame: pd.DataFrame) -> Columns:
    """Ranked lists in a frame (``person_id``, ``sku``, ``score``, ``source``,
    ``bought_before``, ``repurchase_days``, ``anchor_sku``) as the columns :meth:`fill`
    reads."""
    return {
        name: frame[name].to_numpy(dtype=object if name == "anchor_sku" else None)
        for name in _RANKED
    }


_NOT_FEATURES = {"row", "item", "anchor", "person_id", "sku", "source", "label", "group"}


def _day(moment: pd.Timestamp) -> float:
    return float(moment.timestamp()) / SECONDS_PER_DAY
