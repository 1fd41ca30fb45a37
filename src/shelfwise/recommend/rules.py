"""The business layer after the re-ranker: what may be shown, in what order, and why.

:func:`apply_rules` takes the scored candidates of one or many requests and returns, per person,
the final top-k list and a record of everything a rule took out, so that any decision can be
audited. In order:

1. Hard rules remove a candidate, pinned or not: a sku the catalogue does not know
   (``not_in_catalogue``: its sensitivity cannot be checked), a repeated (person, sku) beyond
   its best score (``duplicate``), ``blocked`` by an override, already ``in_basket``,
   ``out_of_stock`` (stock known to be 0), ``below_margin`` (margin rate known to be under
   ``min_margin_rate``), a ``sensitive_category`` the policy does not allow and an
   ``excluded_category`` (a department or category of things not to recommend: fuel, coupons,
   gift cards). Unknown stock or margin is not a reason to remove. The rules on the item alone
   (:func:`item_rules`) also keep the fallbacks' best sellers honest.
2. The ``scope`` keeps the candidates the surface asked for (pins are exempt): ``cross_sell``,
   items of categories none of the basket's items are in, those anchored on a basket item
   first (an empty basket has nothing to complement); ``up_sell``, items of a basket item's or
   their anchor's category with a higher price than it; ``discovery``, never bought before;
   ``buy_again``, bought before.
3. The objective, a weighted mean of per-person normalised relevance (the re-ranker's score),
   revenue (price), margin (unit margin) and turnover (recent units sold per unit in stock,
   so the weight favours what moves fast); unknown values score 0.
4. MMR diversity and the category cap choose the k best of the rest, a scope's first items
   first (and, where the scope orders nothing, the category of the page a person is shown).
5. Pins take their 1-based positions; what follows moves down and the list ends at k.

A rule's removals are recorded under the first rule that applies. A list may come out shorter
than k, or empty: the caller fills in from its fallback.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.data.contract.tables import SENSITIVE_CATEGORIES
from shelfwise.models.settings import Constraints, EstimatorSettings, Interval, Options
from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.diversity import mmr_select
from shelfwise.recommend.explain import objects, sentences
from shelfwise.recommend.matrix import group_positions
from shelfwise.recommend.overrides import Overrides
from shelfwise.recommend.pins import linked_pins, place_pins

SCOPES = ("all", "cross_sell", "up_sell", "discovery", "buy_again")
RULES = (
    "not_in_catalogue",
    "duplicate",
    "blocked",
    "in_basket",
    "out_of_stock",
    "below_margin",
    "sensitive_category",
    "excluded_category",
    "scope",
    "max_per_category",
    "pin_beyond_k",
)
OBJECTIVES = ("relevance", "revenue", "margin", "turnover")
REQUIRED_COLUMNS = ("person_id", "sku", "score", "source")
OUTPUT_COLUMNS = ("person_id", "sku", "rank", "score", "objective", "source", "explanation")
PINNED_SOURCE = "pinned"  # a pinned sku that was not among the person's candidates

Basket = Collection[str] | Mapping[str, Collection[str]]


@dataclass(frozen=True)
class RulePolicy(EstimatorSettings):
    """The merchandising policy of one surface (home page, basket, product page, e-mail).

    ``min_margin_rate``: leave out items whose (price - cost) / price is known to be lower
    (None: off). ``allowed_sensitive``: sensitive categories that may be shown (none by
    default). ``excluded_categories``: departments or categories (the catalogue's names, at
    either level) whose items are never shown: what the till sells but nobody should be
    recommended (fuel, coupons, gift cards). ``exclude_out_of_stock``: leave out items known to
    have no stock. ``scope``: one of :data:`SCOPES`. ``relevance``, ``revenue``, ``margin``,
    ``turnover``: non-negative weights of the objective, whose components are normalised per
    person (``normalise``: "minmax" to [0, 1], or "rank", the share of the person's candidates
    ranked below) so that weights compare. ``diversity``: MMR trade-off in [0, 1], 0 off.
    ``max_per_category``: at most that many items of one category (None: off).
    ``similarity``: "category" (hierarchy) or "embedding" (cosine of the catalogue's
    embeddings) for MMR.
    """

    min_margin_rate: float | None = None
    allowed_sensitive: tuple[str, ...] = ()
    excluded_categories: tuple[str, ...] = ()
    exclude_out_of_stock: bool = True
    scope: str = "all"
    relevance: float = 1.0
    revenue: float = 0.0
    margin: float = 0.0
    turnover: float = 0.0
    normalise: str = "minmax"
    diversity: float = 0.0
    max_per_category: int | None = None
    similarity: str = "category"

    constraints: ClassVar[Constraints] = {
        "min_margin_rate": (None, Interval(None, 1.0)),
        "allowed_sensitive": (tuple,),
        "excluded_categories": (tuple,),
        "exclude_out_of_stock": (bool,),
        "scope": (Options(SCOPES),),
        "relevance": (Interval(0, None),),
        "revenue": (Interval(0, None),),
        "margin": (Interval(0, None),),
        "turnover": (Interval(0, None),),
        "normalise": (Options(("minmax", "rank")),),
        "diversity": (Interval(0, 1),),
        "max_per_category": (None, Interval(1, None, integer=True)),
        "similarity": (Options(("category", "embedding")),),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.allowed_sensitive) - set(SENSITIVE_CATEGORIES))
        if unknown:
            raise ValueError(
                f"RulePolicy.allowed_sensitive: {unknown} not among {list(SENSITIVE_CATEGORIES)}"
            )
        names = self.excluded_categories
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError(
                f"RulePolicy.excluded_categories: expected department or category names, got "
                f"{list(names)!r}"
            )
        if not all(np.isfinite(list(self.weights.values()))):
            raise ValueError(f"RulePolicy: objective weights must be finite, got {self.weights}")
        if not any(self.weights.values()):
            raise ValueError(
                "RulePolicy: at least one objective weight (relevance, revenue, margin, "
                "turnover) must be positive"
            )

    @property
    def weights(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in OBJECTIVES}


@dataclass(frozen=True)
class RuleResult:
    """``recommendations``: one row per (person_id, rank), columns :data:`OUTPUT_COLUMNS`;
    ``removed``: one row per candidate a rule took out (``person_id``, ``sku``, ``rule``,
    ``pinned``); ``policy``: the policy applied."""

    recommendations: pd.DataFrame
    removed: pd.DataFrame
    policy: RulePolicy

    def counts(self) -> dict[str, int]:
        """Candidates removed per rule, every rule named (0: it ran and removed nothing)."""
        counted = self.removed["rule"].value_counts()
        return {rule: int(counted.get(rule, 0)) for rule in RULES}


@dataclass
class _Rows:
    """The candidates, then the pinned skus that were not candidates; one entry per row."""

    person: NDArray[np.int64]
    sku: NDArray[np.object_]
    item: NDArray[np.int64]  # catalogue row, -1 unknown
    score: NDArray[np.float64]
    source: NDArray[np.object_]
    anchor: NDArray[np.object_]
    repurchase_days: NDArray[np.float64]
    bought_before: NDArray[np.bool_]
    pin: NDArray[np.int64]  # the pinned position, 0 when not pinned


def apply_rules(
    candidates: pd.DataFrame,
    catalogue: Catalogue,
    policy: RulePolicy,
    *,
    k: int,
    basket: Basket = (),
    overrides: Overrides | None = None,
    pages: Mapping[str, str] | None = None,
) -> RuleResult:
    """The final top-``k`` of every person in ``candidates`` (see the module's steps).

    ``candidates``: ``person_id``, ``sku``, ``score`` (missing: the lowest relevance, as for a
    fallback's rows), ``source``, and where present
    ``anchor_sku``, ``repurchase_days``, ``bought_before`` (required by the discovery and
    buy_again scopes). ``basket``: the skus in the basket, for everyone, or a mapping
    person_id -> skus. ``pages``: person_id -> the category of the page they are shown; its
    items come first in their list (after the basket's complements under cross-sell).
    Persons come out in their order of first appearance, ranks from 1.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if isinstance(basket, str):
        raise ValueError(f"basket: expected a collection of skus, got the string {basket!r}")
    _check_candidates(candidates, policy)
    if policy.similarity == "embedding" and catalogue.embeddings is None:
        raise ValueError("RulePolicy.similarity='embedding' needs catalogue.set_embeddings first")
    overrides = overrides or Overrides()
    codes, names = pd.factorize(_texts(candidates["person_id"]))
    persons = np.asarray(names, dtype=object)
    rows = _rows(candidates, codes.astype(np.int64), persons, catalogue, overrides)
    stride = len(catalogue) + 1
    key = rows.person * stride + rows.item  # (person, sku) as one integer, for known skus
    known = rows.item >= 0
    item = np.maximum(rows.item, 0)
    pinned = rows.pin > 0
    everyone, own = (basket, {}) if not isinstance(basket, Mapping) else ((), basket)
    baskets = _per_person(everyone, own, persons, catalogue)
    blocks = _per_person(overrides.blocks, overrides.person_blocks, persons, catalogue)

    alive = np.ones(len(key), dtype=bool)
    removed: list[tuple[NDArray[np.int64], str]] = []

    def remove(mask: NDArray[np.bool_], rule: str) -> None:
        hit = alive & mask
        removed.append((np.flatnonzero(hit), rule))
        alive[hit] = False

    remove(~known, "not_in_catalogue")
    remove(~_best_of_each(key, rows.score), "duplicate")
    remove(np.isin(key, blocks[0] * stride + blocks[1]), "blocked")
    remove(np.isin(key, baskets[0] * stride + baskets[1]), "in_basket")
    for mask, rule in item_rules(catalogue, policy, item):
        remove(mask, rule)
    in_scope, priority = _scope(policy.scope, rows, catalogue, baskets)
    if pages and priority is None:
        priority = _on_page(pages, persons, rows, catalogue).astype(np.int64)
    remove(~pinned & ~in_scope, "scope")

    objective = _objective(rows, catalogue, policy, alive & (rows.source != PINNED_SOURCE))
    pool = np.flatnonzero(alive & ~pinned)
    chosen, capped = _choose(pool, rows, objective, priority, catalogue, policy, k, len(persons))
    remove(_mask(len(key), capped), "max_per_category")
    pins = np.flatnonzero(alive & pinned)
    final, beyond = place_pins(chosen, pins, rows.item, rows.pin, rows.person, k)
    remove(_mask(len(key), beyond), "pin_beyond_k")

    at = np.concatenate([np.zeros(0, np.int64)] + [i for i, _ in removed])
    rules = np.concatenate([np.zeros(0, object)] + [np.full(len(i), r, object) for i, r in removed])
    removed_frame = pd.DataFrame(
        {
            "person_id": persons[rows.person[at]].astype(str),
            "sku": rows.sku[at].astype(str),
            "rule": pd.Categorical(rules, categories=list(RULES)),
            "pinned": pinned[at],
        }
    )
    return RuleResult(_output(final, rows, persons, objective, catalogue), removed_frame, policy)


def item_rules(
    catalogue: Catalogue, policy: RulePolicy, item: NDArray[np.int64]
) -> list[tuple[NDArray[np.bool_], str]]:
    """The hard rules that read the item alone, in their order: (removed, rule) per rule the
    policy turns on, over the catalogue rows ``item``."""
    out = []
    if policy.exclude_out_of_stock:
        out.append((catalogue.on_hand[item] <= 0, "out_of_stock"))
    if policy.min_margin_rate is not None:
        out.append((catalogue.margin_rate[item] < policy.min_margin_rate, "below_margin"))
    out.append((catalogue.sensitive_beyond(policy.allowed_sensitive)[item], "sensitive_category"))
    if policy.excluded_categories:
        excluded = catalogue.in_categories(policy.excluded_categories)[item]
        out.append((excluded, "excluded_category"))
    return out


def shown(catalogue: Catalogue, policy: RulePolicy, item: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True for the catalogue rows ``item`` that no rule on the item alone removes, and for
    -1 (a sku the catalogue does not know: the fallbacks keep it)."""
    known = item >= 0
    removed = np.zeros(len(item), dtype=bool)
    for mask, _ in item_rules(catalogue, policy, np.where(known, item, 0)):
        removed |= mask
    return ~removed | ~known


def _check_candidates(candidates: pd.DataFrame, policy: RulePolicy) -> None:
    required = list(REQUIRED_COLUMNS)
    if policy.scope in ("discovery", "buy_again"):
        required.append("bought_before")
    missing = [c for c in required if c not in candidates.columns]
    if missing:
        raise ValueError(f"candidates: missing columns {missing}")
    for name in ("person_id", "sku", "source"):
        if candidates[name].isna().any():
            raise ValueError(f"candidates: {name} has missing values")
    if not pd.api.types.is_numeric_dtype(candidates["score"]):
        raise ValueError(f"candidates: score must be numeric, got {candidates['score'].dtype}")
    if np.isinf(candidates["score"].to_numpy(np.float64, na_value=np.nan)).any():
        raise ValueError("candidates: score must be finite (or missing: the lowest relevance)")


def _texts(column: pd.Series) -> NDArray[np.object_]:
    """Identifiers as text; the contract's are strings already, so usually no copy is made."""
    if column.dtype != object and not isinstance(column.dtype, pd.StringDtype):
        column = column.astype(str)
    return column.to_numpy(dtype=object)


def _mask(n: int, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def _column(frame: pd.DataFrame, name: str, default: Any, dtype: Any) -> NDArray[Any]:
    """A column as an array of ``dtype``, ``default`` where missing (or absent)."""
    if name not in frame.columns:
        return np.full(len(frame), default, dtype=dtype)
    values = frame[name]
    if dtype is object:
        return objects(values)
    if values.dtype == np.dtype(dtype):  # plain numpy: nothing missing to fill but NaN
        array = values.to_numpy()
        return np.where(np.isnan(array), default, array) if array.dtype.kind == "f" else array
    nullable: Any = "boolean" if dtype is bool else dtype
    return np.asarray(values.astype(nullable).fillna(default), dtype=dtype)


def _rows(
    candidates: pd.DataFrame,
    person: NDArray[np.int64],
    persons: NDArray[np.object_],
    catalogue: Catalogue,
    overrides: Overrides,
) -> _Rows:
    sku = _texts(candidates["sku"])
    item = catalogue.index(sku)
    pin, extra = linked_pins(person, item, persons, catalogue, overrides)
    n = len(extra)
    return _Rows(
        person=np.concatenate([person, extra["person"].to_numpy(np.int64)]),
        sku=np.concatenate([sku, extra["sku"].to_numpy(dtype=object)]),
        item=np.concatenate([item, extra["item"].to_numpy(np.int64)]),
        score=np.concatenate([candidates["score"].to_numpy(np.float64), np.full(n, np.nan)]),
        source=np.concatenate(
            [_column(candidates, "source", "", object), np.full(n, PINNED_SOURCE, object)]
        ),
        anchor=np.concatenate(
            [_column(candidates, "anchor_sku", None, object), np.full(n, None, object)]
        ),
        repurchase_days=np.concatenate(
            [_column(candidates, "repurchase_days", np.nan, np.float64), np.full(n, np.nan)]
        ),
        bought_before=np.concatenate(
            [_column(candidates, "bought_before", False, bool), np.zeros(n, dtype=bool)]
        ),
        pin=np.concatenate([pin, extra["position"].to_numpy(np.int64)]),
    )


def _per_person(
    everyone: Collection[str],
    own: Mapping[str, Collection[str]],
    persons: NDArray[np.object_],
    catalogue: Catalogue,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(person code, catalogue row) pairs of skus given for everyone and per person; skus the
    catalogue lacks, and persons absent from the candidates, are left out."""
    common = catalogue.index(list(everyone))
    common = common[common >= 0]
    person = [np.repeat(np.arange(len(persons), dtype=np.int64), len(common))]
    item = [np.tile(common, len(persons))]
    code = {person: i for i, person in enumerate(persons)}
    for who, theirs in own.items():
        if who in code:
            rows = catalogue.index(list(theirs))
            item.append(rows[rows >= 0])
            person.append(np.full(len(item[-1]), code[who], dtype=np.int64))
    return np.concatenate(person), np.concatenate(item)


def _best_of_each(key: NDArray[np.int64], score: NDArray[np.float64]) -> NDArray[np.bool_]:
    """True on the highest-scored row of each key (the first such row on ties)."""
    repeated = np.flatnonzero(pd.Series(key).duplicated(keep=False).to_numpy())
    order = repeated[np.lexsort((-np.nan_to_num(score[repeated], nan=-np.inf), key[repeated]))]
    first = np.ones(len(order), dtype=bool)  # lexsort is stable: the first best row wins
    first[1:] = key[order][1:] != key[order][:-1]
    best = np.ones(len(key), dtype=bool)
    best[order[~first]] = False
    return best


def _on_page(
    pages: Mapping[str, str], persons: NDArray[np.object_], rows: _Rows, catalogue: Catalogue
) -> NDArray[np.bool_]:
    """True where a row's sku is in the category of the page its person is shown."""
    page = np.array([pages.get(str(p)) for p in persons], dtype=object)[rows.person]
    category = catalogue.category[np.maximum(rows.item, 0)]
    return np.asarray((rows.item >= 0) & pd.notna(page) & (category == page), dtype=bool)


def _scope(
    scope: str,
    rows: _Rows,
    catalogue: Catalogue,
    baskets: tuple[NDArray[np.int64], NDArray[np.int64]],
) -> tuple[NDArray[np.bool_], NDArray[np.int64] | None]:
    """Which rows the scope keeps, and a priority (cross-sell: anchored in the basket first)."""
    if scope == "all":
        return np.ones(len(rows.item), dtype=bool), None
    if scope in ("discovery", "buy_again"):
        return rows.bought_before == (scope == "buy_again"), None
    category = np.where(rows.item >= 0, catalogue.category_code[np.maximum(rows.item, 0)], -1)
    anchor = catalogue.index(rows.anchor)
    stride = int(catalogue.category_code.max(initial=-1)) + 2
    basket_person, basket_item = baskets
    basket_category = catalogue.category_code[basket_item]
    if scope == "cross_sell":
        taken = np.isin(rows.person * stride + category, basket_person * stride + basket_category)
        keep = np.isin(rows.person, basket_person) & ~(taken & (category >= 0))
        items = len(catalogue) + 1
        anchored = np.isin(rows.person * items + anchor, basket_person * items + basket_item)
        return keep, (anchored & (anchor >= 0)).astype(np.int64)
    # up_sell: dearer than the cheapest basket item of the category, or than the anchor.
    cheapest = (
        pd.Series(catalogue.price[basket_item])
        .groupby(basket_person * stride + basket_category)
        .min()
    )
    reference = cheapest.reindex(rows.person * stride + category).to_numpy(np.float64)
    reference[category < 0] = np.nan
    anchor_row = np.maximum(anchor, 0)
    same = (anchor >= 0) & (catalogue.category_code[anchor_row] == category)
    reference = np.fmin(reference, np.where(same, catalogue.price[anchor_row], np.nan))
    price = catalogue.price[np.maximum(rows.item, 0)]
    return (category >= 0) & (price > reference), None


def _objective(
    rows: _Rows, catalogue: Catalogue, policy: RulePolicy, scored: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Weighted mean of the normalised components over the ``scored`` rows; NaN elsewhere."""
    at = np.flatnonzero(scored)
    item = rows.item[at]
    components = {
        "relevance": lambda: rows.score[at],
        "revenue": lambda: catalogue.price[item],
        "margin": lambda: catalogue.margin[item],
        "turnover": lambda: catalogue.turnover[item],
    }
    total = np.zeros(len(at))
    for name, weight in policy.weights.items():
        if weight > 0:
            total += weight * _normalise(components[name](), rows.person[at], policy.normalise)
    objective = np.full(len(rows.item), np.nan)
    objective[at] = total / sum(policy.weights.values())
    return objective


def _normalise(
    values: NDArray[np.float64], person: NDArray[np.int64], how: str
) -> NDArray[np.float64]:
    """Per person into [0, 1], by min-max or by average rank; all equal: 1; unknown: 0."""
    if how == "rank":
        groups = pd.Series(values).groupby(person)
        spread = groups.transform("count").to_numpy(np.float64) - 1
        position = groups.rank(method="average").to_numpy(np.float64) - 1
    else:
        persons = int(person.max(initial=-1)) + 1
        low, high = np.full(persons, np.inf), np.full(persons, -np.inf)
        np.fmin.at(low, person, values)  # fmin and fmax pass NaN over, as pandas' min does
        np.fmax.at(high, person, values)
        low, high = low[person], high[person]
        spread = high - low  # a person without a value: no spread, and 0 below
        position = values - low
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(spread > 0, position / spread, 1.0)
    return np.where(np.isnan(values), 0.0, scaled)


def _choose(
    pool: NDArray[np.int64],
    rows: _Rows,
    objective: NDArray[np.float64],
    priority: NDArray[np.int64] | None,
    catalogue: Catalogue,
    policy: RulePolicy,
    k: int,
    n_persons: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows chosen per person (persons x k, -1 past a short list) and rows the cap passed over."""
    # Per person, best first: higher priority, objective, score; then the earlier row.
    group = 2 * rows.person[pool] + (1 - (priority[pool] if priority is not None else 0))
    order = np.lexsort((-rows.score[pool], -objective[pool], group))
    pool = pool[order]
    person = rows.person[pool]
    counts = np.bincount(person, minlength=n_persons)
    width = max(int(counts.max(initial=0)), 1)
    column = np.arange(len(pool)) - np.repeat(np.cumsum(counts) - counts, counts)
    matrix = np.full((n_persons, width), -1, dtype=np.int64)
    matrix[person, column] = pool
    items = np.where(matrix >= 0, rows.item[np.maximum(matrix, 0)], -1)
    relevance = np.where(matrix >= 0, objective[np.maximum(matrix, 0)], 0.0)
    levels = None
    if priority is not None:
        levels = np.where(matrix >= 0, priority[np.maximum(matrix, 0)], 0)
    selection = mmr_select(
        relevance,
        items,
        catalogue,
        k=k,
        diversity=policy.diversity,
        max_per_category=policy.max_per_category,
        similarity="embedding" if policy.similarity == "embedding" else "category",
        priority=levels,
    )
    chosen = np.where(
        selection.columns >= 0,
        np.take_along_axis(matrix, np.maximum(selection.columns, 0), axis=1),
        -1,
    )
    return chosen, matrix[selection.capped]


def _output(
    final: NDArray[np.int64],
    rows: _Rows,
    persons: NDArray[np.object_],
    objective: NDArray[np.float64],
    catalogue: Catalogue,
) -> pd.DataFrame:
    person = rows.person[final]
    rank = group_positions(person) + 1
    sku, source = rows.sku[final].astype(str), rows.source[final].astype(str)
    anchor, days = rows.anchor[final], rows.repurchase_days[final]
    return pd.DataFrame(
        {
            "person_id": persons[person].astype(str),
            "sku": sku,
            "rank": rank.astype(np.int64),
            "score": rows.score[final],
            "objective": objective[final],
            "source": source,
            "explanation": np.asarray(
                sentences(sku.astype(object), source.astype(object), anchor, days, catalogue),
                dtype=object,
            ),
        }
    )
