"""A decision: the recommender's ranked candidates through the business rules, never empty.

:func:`decide` asks the two-stage recommender for a deep list (several times ``k``), applies
the :class:`~shelfwise.recommend.rules.RulePolicy` (stock, margin, sensitive categories,
scope, objective, diversity) and the human overrides, and explains each item. When the rules
leave a person fewer than ``k`` items, popularity fills in through the same rules (never an
item a rule removed), so a list is only short when the catalogue itself has nothing left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.cold_start import (
    Context,
    basket_candidates,
    cold_candidates,
    page_candidates,
)
from shelfwise.recommend.overrides import Overrides
from shelfwise.recommend.rules import Basket, RulePolicy, apply_rules
from shelfwise.recommend.two_stage import TwoStageRecommender, ranked_columns
from shelfwise.tracing import span

DEPTH_FACTOR = 5
MIN_DEPTH = 100
BASKET_SCOPES = ("cross_sell", "up_sell")  # scopes whose candidates a basket adds to


@dataclass(frozen=True)
class Decision:
    """The final lists and what every rule removed, for the decision audit."""

    recommendations: pd.DataFrame
    removed: pd.DataFrame
    policy: RulePolicy
    retried_persons: int  # persons whose list the rules cut short, asked again deeper


def decide(
    model: TwoStageRecommender,
    person_ids: Iterable[str],
    k: int,
    catalogue: Catalogue,
    policy: RulePolicy | None = None,
    *,
    basket: Basket = (),
    overrides: Overrides | None = None,
    contexts: Mapping[str, Context] | None = None,
) -> Decision:
    """Top ``k`` per person after the rules, with an explanation per item. ``contexts``
    tells what a request knows of persons the model never saw (see
    :mod:`shelfwise.recommend.cold_start`), and the category page a person is shown: its
    items come first in their list (their own ranked ones, then its best sellers)."""
    policy = policy or RulePolicy()
    people = list(dict.fromkeys(str(p) for p in person_ids))
    depth = max(DEPTH_FACTOR * k, MIN_DEPTH)
    pages = {p: c.category for p, c in (contexts or {}).items() if c.category is not None}
    lists, removed = [], []
    pending, retried = people, 0
    # Deeper lists (more popularity at the end) for whoever the rules leave short, until the
    # whole catalogue has been offered.
    while pending:
        ranked = _ranked(model, pending, depth, contexts or {}, catalogue, policy.scope)
        with span("rules", candidates=len(ranked)):
            result = apply_rules(
                ranked,
                catalogue,
                policy,
                k=k,
                basket=basket,
                overrides=overrides,
                pages=pages,
            )
        recommendations = result.recommendations
        have = Counter(recommendations["person_id"].to_numpy(dtype=object))
        short = [p for p in pending if have.get(p, 0) < k]
        final = short if depth >= len(model.items_) else []
        if len(final) == len(short):  # everyone is done: the usual case, nothing to pick
            lists.append(recommendations)
            removed.append(result.removed)
        else:
            done = set(pending) - set(short) | set(final)
            lists.append(recommendations[recommendations["person_id"].isin(done)])
            removed.append(result.removed[result.removed["person_id"].isin(done)])
        pending = [p for p in short if p not in final]
        retried += len(pending)
        depth = min(depth * 8, len(model.items_))
    if len(lists) == 1:  # one pass: the rules kept the persons in their order
        out, cut = lists[0].reset_index(drop=True), removed[0]
    else:
        order = {p: i for i, p in enumerate(people)}
        out = pd.concat(lists, ignore_index=True)
        out = out.assign(_order=out["person_id"].map(order)).sort_values(["_order", "rank"])
        out = out.drop(columns="_order").reset_index(drop=True)
        cut = pd.concat(removed, ignore_index=True)
    return Decision(
        recommendations=out,
        removed=cut.reset_index(drop=True),
        policy=policy,
        retried_persons=retried,
    )


def _ranked(
    model: TwoStageRecommender,
    persons: list[str],
    depth: int,
    contexts: Mapping[str, Context],
    catalogue: Catalogue,
    scope: str = "all",
) -> pd.DataFrame:
    """The model's lists for the persons it knows; the cold start's for those it does not but
    whose context says something; popularity fills every list to ``depth``. Under the
    cross-sell and up-sell scopes a known person's basket adds its complements, or its
    categories' best sellers, after their list."""
    known = set(model.users_[model.users_.searchsorted(persons).clip(0, len(model.users_) - 1)])
    cold = {p: contexts[p] for p in persons if p in contexts and p not in known}
    pages = {
        p: str(contexts[p].category)  # not None: filtered below
        for p in persons
        if p in contexts and p in known and contexts[p].category is not None
    }
    baskets = {
        p: contexts[p].recent
        for p in persons
        if scope in BASKET_SCOPES and p in contexts and p in known and contexts[p].recent
    }
    if not cold and not pages and not baskets:
        return model.ranked(persons, depth)
    warm = [p for p in persons if p not in cold]
    parts = [model.ranked(warm, depth)] if warm else []
    if baskets:  # a known person's basket on a cross- or up-sell surface: what it calls for
        parts[0], complements = _anchored_on_basket(
            parts[0], basket_candidates(model, baskets, depth, catalogue, scope)
        )
        parts.append(complements)
    if pages:  # a known person on a category page: that category's best sellers too
        parts.append(page_candidates(model, pages, depth, catalogue))
    if cold:
        candidates = cold_candidates(model, cold, depth, catalogue)
        people = np.asarray(list(cold), dtype=str)
        parts.append(model.fill(ranked_columns(candidates), people, depth))
    # Only the parts with rows: pandas will stop ignoring an empty one's dtypes.
    out = pd.concat([part for part in parts if len(part)] or parts[:1], ignore_index=True)
    order = {p: i for i, p in enumerate(persons)}
    return out.assign(_o=out["person_id"].map(order)).sort_values(["_o", "rank"]).drop(columns="_o")


def _anchored_on_basket(
    ranked: pd.DataFrame, complements: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the persons' own lists that the basket's candidates name take the basket sku as
    anchor and the candidates' source, keeping their score (the cross-sell scope puts them
    first, "often bought with" it; the up-sell scope prices them against it, "a step up from"
    it); the candidates their lists lack follow them."""
    own = ranked["person_id"].astype(str) + "\x00" + ranked["sku"].astype(str)
    offered = complements["person_id"].astype(str) + "\x00" + complements["sku"].astype(str)
    hit = own.isin(offered).to_numpy()
    if hit.any():
        found = complements.set_index(offered.to_numpy()).loc[pd.Index(own[hit])]
        ranked = ranked.copy()
        ranked.loc[hit, "anchor_sku"] = found["anchor_sku"].to_numpy()
        ranked.loc[hit, "source"] = found["source"].to_numpy()
    return ranked, complements[~offered.isin(own).to_numpy()]
