"""What a request carries through :class:`~shelfwise.serve.tenant.TenantRuntime`, how a
decision's frames become the response's items, and the best-seller lists of the fallbacks."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.explain import explain_one
from shelfwise.recommend.generators import popularity_order
from shelfwise.recommend.rules import RulePolicy, shown
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.schemas import RecommendationRequest

CHAMPION = "champion"
POPULAR_DEPTH = 500  # best sellers kept for the popularity fallback


@dataclass
class Plan:
    """One request on its way through :class:`TenantRuntime`."""

    request: RecommendationRequest
    request_id: str
    served: Served
    key: str
    started: float
    budget: float = 0.0
    body: dict[str, Any] | None = None  # answered already (from the cache)
    future: Future[Any] | None = None  # the model's decision, under way
    shared: bool = False  # the future is another request's, for the same key: never cancel it
    fault: str | None = None  # what kept the model from answering


@dataclass(frozen=True)
class Served:
    """The model a request uses, with the registry version it came from and its variant."""

    model: TwoStageRecommender | None
    version: str | None
    variant: str = CHAMPION
    facts: Mapping[str, Any] = field(default_factory=dict)  # load seconds, artefact bytes


def cache_key(request: RecommendationRequest, served: Served, rules: int = 0) -> str:
    """The request's key in the response cache: its variant, model version and revision of
    the merchandising rules name it, so that an answer made under others is never read."""
    return json.dumps([served.variant, served.version, rules, request.model_dump(mode="json")])


def listed_frames(
    recommendations: pd.DataFrame, removed: pd.DataFrame, *, request: RecommendationRequest
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A decision's frames for one person as the response's items and the audit's removals."""
    gone = [
        {"sku": str(sku), "rule": str(rule)}
        for sku, rule in zip(removed["sku"], removed["rule"], strict=True)
    ]
    return without(_items(recommendations), request)[: request.k], gone


def _items(frame: pd.DataFrame) -> list[dict[str, Any]]:
    score = frame["score"].astype(float)
    return [
        {
            "sku": str(sku),
            "rank": int(rank),
            "score": None if not np.isfinite(value) else float(value),
            "source": str(source),
            "explanation": str(explanation),
        }
        for sku, rank, value, source, explanation in zip(
            frame["sku"], frame["rank"], score, frame["source"], frame["explanation"], strict=True
        )
    ]


def excluded_by(request: RecommendationRequest, blocked: Collection[str] = ()) -> set[str]:
    """Skus no answer to ``request`` may name: its filters', its basket's and the
    merchandisers' ``blocked`` (the model's rules remove them as ``blocked`` and ``in_basket``;
    the fallbacks here)."""
    return set(request.filters.exclude_skus) | set(request.context.basket) | set(blocked)


def without(
    items: list[dict[str, Any]], request: RecommendationRequest, blocked: Collection[str] = ()
) -> list[dict[str, Any]]:
    """The items the request allows (:func:`excluded_by`), ranks renumbered."""
    excluded = excluded_by(request, blocked)
    kept = [dict(item) for item in items if item["sku"] not in excluded]
    for rank, item in enumerate(kept, start=1):
        item["rank"] = rank
    return kept


def listed(
    catalogue: Catalogue,
    skus: np.ndarray[Any, Any],
    source: str,
    request: RecommendationRequest,
    rows: np.ndarray[Any, Any] | None = None,
    blocked: Collection[str] = (),
    policy: RulePolicy | None = None,
) -> list[dict[str, Any]]:
    """The first ``k`` of ``skus`` that the policy's rules on the item alone keep (in stock,
    not of a sensitive or excluded category: :func:`~shelfwise.recommend.rules.item_rules`)
    and the request allows (:func:`excluded_by`), as items; a sku the catalogue does not know
    is kept.
    ``rows``: the skus' rows in the catalogue (:meth:`Catalogue.index`), where a list served
    again and again looks them up once: on a catalogue of a million, looking up 500 skus took
    a third of the event loop's time at 200 shed requests a second."""
    rows = catalogue.index(skus) if rows is None else rows
    kept = shown(catalogue, policy or RulePolicy(), rows)
    excluded = excluded_by(request, blocked)
    chosen: list[str] = []
    for sku in np.asarray(skus)[kept]:
        if len(chosen) == request.k:
            break
        if str(sku) not in excluded:
            chosen.append(str(sku))
    explanation = explain_one(source)
    return [
        {"sku": s, "rank": rank, "score": None, "source": source, "explanation": explanation}
        for rank, s in enumerate(chosen, start=1)
    ]


def best_sellers(catalogue: Catalogue, model: TwoStageRecommender | None) -> np.ndarray[Any, Any]:
    """The model's best sellers (the catalogue's, by units sold, without a model)."""
    if model is not None:
        order = popularity_order(model.models_["popularity"])[:POPULAR_DEPTH]
        return np.asarray(model.items_[order], dtype=str)
    sold = np.nan_to_num(catalogue.units_sold, nan=0.0)
    return np.asarray(catalogue.skus[np.argsort(-sold, kind="stable")[:POPULAR_DEPTH]])
