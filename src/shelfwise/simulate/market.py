"""A market whose causal effects are known: price elasticities and promotion lifts.

Expected weekly units of a sku in a store are

    base[sku] * store_factor[store] * (price / regular_price) ** elasticity[sku]
        * lift[promotion type] * seasonality[week]

and the sold units are Poisson draws of it, spread over the baskets (orders) of that store and
week. Discounts are more likely in displayed weeks (as in real retail), so a naive comparison
of discounted and full-price weeks confounds price with display: the truth is there to check
that a causal estimate separates them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shelfwise.simulate._frames import contract_frame, masked, numbered, seconds, to_ns

# Department -> categories, each with the sizes its products come in.
CATEGORIES = {
    "GROCERY": (
        ("PASTA", ("16 OZ", "32 OZ")), ("CEREAL", ("12 OZ", "18 OZ")), ("SOUP", ("10 OZ",)),
    ),
    "DAIRY": (("YOGURT", ("6 OZ", "32 OZ")), ("CHEESE", ("8 OZ", "16 OZ")), ("MILK", ("1 GAL",))),
    "PRODUCE": (("APPLES", ("3 LB",)), ("SALAD MIX", ("5 OZ", "10 OZ"))),
    "FROZEN": (("FROZEN PIZZA", ("12 OZ", "24 OZ")), ("ICE CREAM", ("48 OZ",))),
    "BEVERAGES": (("SOFT DRINKS", ("12 PK", "2 LTR")), ("COFFEE", ("12 OZ", "24 OZ"))),
}  # fmt: skip
BRANDS = (
    "Private Label",
    "Hillcrest",
    "Sunny Acres",
    "Blue Harbor",
    "Golden Fields",
    "Nordic & Co",
)
STORE_FORMATS = ("hypermarket", "supermarket", "convenience")
REGIONS = ("north", "south", "east", "west")
DISPLAY_LOCATIONS = ("front_end_cap", "rear_end_cap", "secondary_location", "in_aisle")
MAILER_LOCATIONS = ("front_page", "back_page", "interior_page")


@dataclass(frozen=True)
class MarketConfig:
    """The true effects, and how often prices and promotions vary."""

    elasticity_low: float = -3.0
    elasticity_high: float = -0.5
    base_low: float = 30.0
    base_high: float = 150.0
    price_low: float = 1.0
    price_high: float = 12.0
    discount: float = 0.15
    discount_given_display: float = 0.45
    depth_low: float = 0.1
    depth_high: float = 0.4
    display: float = 0.08
    mailer: float = 0.08
    display_lift: float = 1.4
    mailer_lift: float = 1.25
    display_mailer_lift: float = 1.8
    discount_lift: float = 1.0
    seasonality_amplitude: float = 0.2
    store_factor_low: float = 0.6
    store_factor_high: float = 1.6
    units_per_order: float = 8.0
    start: str = "2017-01-02"

    def lift(self, promotion_type: str) -> float:
        return float(getattr(self, f"{promotion_type}_lift"))


@dataclass(frozen=True)
class MarketTruth:
    """``elasticities``: sku, elasticity, base_demand, regular_price; ``promotion_lifts``:
    promotion_type, lift; ``store_factors``: store_id, demand_factor; ``seasonality``:
    week_start, factor; ``demand``: per sku, store and week the price, promotions, the expected
    units and the sold units."""

    elasticities: pd.DataFrame
    promotion_lifts: pd.DataFrame
    store_factors: pd.DataFrame
    seasonality: pd.DataFrame
    demand: pd.DataFrame


@dataclass(frozen=True)
class SimulatedMarket:
    """Contract frames of the market and the truth they were drawn from."""

    products: pd.DataFrame
    stores: pd.DataFrame
    price_history: pd.DataFrame
    promotions: pd.DataFrame
    orders: pd.DataFrame
    order_lines: pd.DataFrame
    truth: MarketTruth


def simulate_market(
    seed: int,
    n_products: int = 40,
    n_stores: int = 5,
    n_weeks: int = 104,
    *,
    config: MarketConfig | None = None,
) -> SimulatedMarket:
    """Weekly prices, promotions and sales of ``n_products`` skus in ``n_stores`` stores."""
    config = config or MarketConfig()
    rng = np.random.default_rng(seed)
    products = _products(rng, n_products, config)
    stores = _stores(rng, n_stores, config)
    weeks = pd.Timestamp(config.start) + pd.to_timedelta(7 * np.arange(n_weeks), unit="D")
    phase = rng.uniform(0, 2 * np.pi)
    season = 1 + config.seasonality_amplitude * np.sin(2 * np.pi * np.arange(n_weeks) / 52 + phase)
    elasticity = rng.uniform(config.elasticity_low, config.elasticity_high, n_products)
    base = np.exp(rng.uniform(np.log(config.base_low), np.log(config.base_high), n_products))
    store_factor = rng.uniform(config.store_factor_low, config.store_factor_high, n_stores)
    demand = _demand(rng, products, stores, weeks, elasticity, base, store_factor, season, config)
    orders, lines = _baskets(rng, demand, config)
    regular = products["price"].to_numpy()
    truth = MarketTruth(
        elasticities=pd.DataFrame(
            {
                "sku": products["sku"],
                "elasticity": elasticity,
                "base_demand": base,
                "regular_price": regular,
            }
        ),
        promotion_lifts=pd.DataFrame(
            {
                "promotion_type": ["display", "mailer", "display_mailer", "discount"],
                "lift": [
                    config.display_lift,
                    config.mailer_lift,
                    config.display_mailer_lift,
                    config.discount_lift,
                ],
            }
        ),
        store_factors=pd.DataFrame({"store_id": stores["store_id"], "demand_factor": store_factor}),
        seasonality=pd.DataFrame({"week_start": weeks, "factor": season}),
        demand=demand,
    )
    return SimulatedMarket(
        products=products,
        stores=stores,
        price_history=_price_history(demand, weeks),
        promotions=_promotions(rng, demand),
        orders=orders,
        order_lines=lines,
        truth=truth,
    )


def _products(rng: np.random.Generator, n: int, config: MarketConfig) -> pd.DataFrame:
    kinds = [(d, c, sizes) for d, cats in CATEGORIES.items() for c, sizes in cats]
    kind = rng.integers(len(kinds), size=n)
    brand = rng.choice(np.array(BRANDS, dtype=object), size=n)
    size = np.array([kinds[k][2][int(rng.integers(len(kinds[k][2])))] for k in kind], dtype=object)
    category = np.array([kinds[k][1] for k in kind], dtype=object)
    price = np.exp(rng.uniform(np.log(config.price_low), np.log(config.price_high), n)).round(2)
    title = brand + " " + np.char.title(category.astype(str)).astype(object) + " " + size
    return contract_frame(
        "products",
        {
            "sku": numbered("SKU-", np.arange(1, n + 1), 5),
            "title": title,
            "department": np.array([kinds[k][0] for k in kind], dtype=object),
            "category": category,
            "subcategory": category + " " + size,
            "brand": brand,
            "manufacturer": np.where(brand == "Private Label", "Own Brand", brand + " Foods"),
            "size": size,
            "price": price,
            "cost": (price * rng.uniform(0.5, 0.75, n)).round(2),
            "launch_date": pd.Timestamp("2015-01-01")
            + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
        },
        n,
    )


def _stores(rng: np.random.Generator, n: int, config: MarketConfig) -> pd.DataFrame:
    ids = numbered("ST", np.arange(1, n + 1), 3)
    return contract_frame(
        "stores",
        {
            "store_id": ids,
            "name": "Store " + ids,
            "format": rng.choice(np.array(STORE_FORMATS, dtype=object), size=n),
            "region": rng.choice(np.array(REGIONS, dtype=object), size=n),
            "postcode": numbered("", rng.integers(10_000, 99_999, n), 5),
            "opened_at": pd.Timestamp("2005-01-01")
            + pd.to_timedelta(rng.integers(0, 3_650, n), unit="D"),
        },
        n,
    )


def _demand(
    rng: np.random.Generator,
    products: pd.DataFrame,
    stores: pd.DataFrame,
    weeks: pd.DatetimeIndex,
    elasticity: np.ndarray,
    base: np.ndarray,
    store_factor: np.ndarray,
    season: np.ndarray,
    config: MarketConfig,
) -> pd.DataFrame:
    """One row per (sku, store, week), in that order."""
    p, s, w = len(products), len(stores), len(weeks)
    sku, store, week = (
        a.ravel() for a in np.meshgrid(np.arange(p), np.arange(s), np.arange(w), indexing="ij")
    )
    n = sku.size
    display = rng.random(n) < config.display
    mailer = rng.random(n) < config.mailer
    discount_rate = np.where(display, config.discount_given_display, config.discount)
    discounted = rng.random(n) < discount_rate
    depth = np.where(discounted, rng.uniform(config.depth_low, config.depth_high, n), 0.0)
    regular = products["price"].to_numpy()[sku]
    price = np.maximum((regular * (1 - depth)).round(2), 0.01)
    kind = np.select(
        [display & mailer, display, mailer], ["display_mailer", "display", "mailer"], "none"
    )
    lift = np.select(
        [kind == "display_mailer", kind == "display", kind == "mailer"],
        [config.display_mailer_lift, config.display_lift, config.mailer_lift],
        1.0,
    ) * np.where(discounted, config.discount_lift, 1.0)
    expected = (
        base[sku] * store_factor[store] * (price / regular) ** elasticity[sku] * lift * season[week]
    )
    return pd.DataFrame(
        {
            "sku": products["sku"].to_numpy()[sku],
            "store_id": stores["store_id"].to_numpy()[store],
            "week_start": weeks[week],
            "price": price,
            "regular_price": regular,
            "promotion_type": pd.Series(kind, dtype="string").replace("none", pd.NA),
            "discount_pct": (100 * (1 - price / regular)).round(1),
            "expected_units": expected,
            "units": rng.poisson(expected).astype(np.int64),
        }
    )


def _price_history(demand: pd.DataFrame, weeks: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per run of equal weekly prices of a sku in a store."""
    key = demand["sku"] + "|" + demand["store_id"]
    changed = (key != key.shift()) | (demand["price"] != demand["price"].shift())
    runs = demand[changed.to_numpy()].reset_index(drop=True)
    run_key = key[changed.to_numpy()].reset_index(drop=True)
    end = weeks[-1] + pd.Timedelta(days=7)
    valid_to = runs["week_start"].shift(-1).where(run_key.shift(-1) == run_key, end)
    return contract_frame(
        "price_history",
        {
            "sku": runs["sku"],
            "store_id": runs["store_id"],
            "valid_from": runs["week_start"],
            "valid_to": pd.to_datetime(valid_to),
            "price": runs["price"],
            "regular_price": runs["regular_price"],
        },
        len(runs),
    )


def _promotions(rng: np.random.Generator, demand: pd.DataFrame) -> pd.DataFrame:
    """Display and mailer placements, and discount weeks, one row per sku, store and week."""
    placed = demand[demand["promotion_type"].notna().to_numpy()]
    discounted = demand[(demand["discount_pct"] > 0).to_numpy()]
    kinds = pd.concat(
        [placed.assign(kind=placed["promotion_type"]), discounted.assign(kind="discount")],
        ignore_index=True,
    ).sort_values(["week_start", "sku", "store_id", "kind"], ignore_index=True)
    n = len(kinds)
    kind = kinds["kind"].astype(str).to_numpy()
    shown = np.isin(kind, ("display", "display_mailer"))
    mailed = np.isin(kind, ("mailer", "display_mailer"))
    display = rng.choice(np.array(DISPLAY_LOCATIONS, dtype=object), size=n)
    mailer = rng.choice(np.array(MAILER_LOCATIONS, dtype=object), size=n)
    return contract_frame(
        "promotions",
        {
            "promotion_id": numbered("PR-", np.arange(1, n + 1), 7),
            "sku": kinds["sku"],
            "store_id": kinds["store_id"],
            "promotion_type": kind,
            "starts_at": kinds["week_start"],
            "ends_at": kinds["week_start"] + pd.Timedelta(days=7) - pd.Timedelta(seconds=1),
            "display_location": masked(shown, display),
            "mailer_location": masked(mailed, mailer),
            "discount_pct": np.where(kind == "discount", kinds["discount_pct"], np.nan),
        },
        n,
    )


def _baskets(
    rng: np.random.Generator, demand: pd.DataFrame, config: MarketConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spread each store-week's units over its baskets; a basket holds a sku on one line."""
    units = demand["units"].to_numpy()
    cell = np.repeat(np.arange(len(demand)), units)
    store_week = pd.MultiIndex.from_frame(demand[["store_id", "week_start"]])
    group, groups = pd.factorize(store_week)
    group_units = np.bincount(group, weights=units, minlength=len(groups))
    baskets = np.maximum(1, np.ceil(group_units / config.units_per_order)).astype(np.int64)
    offset = np.cumsum(baskets) - baskets
    unit_group = group[cell]
    basket = offset[unit_group] + (rng.random(cell.size) * baskets[unit_group]).astype(np.int64)
    line_key, quantity = np.unique(basket * len(demand) + cell, return_counts=True)
    line_basket, line_cell = np.divmod(line_key, len(demand))
    used, basket_number = np.unique(line_basket, return_inverse=True)
    order_ids = numbered("MO-", np.arange(1, used.size + 1), 8)
    used_group = np.searchsorted(offset, used, side="right") - 1
    week_start = pd.DatetimeIndex([k[1] for k in groups])[used_group]
    # Shops open 08:00-21:00: a basket falls in a random opening hour of its week.
    offset_s = rng.integers(0, 7, used.size) * 86_400 + rng.integers(8 * 3600, 21 * 3600, used.size)
    ordered_at = seconds(pd.Timestamp(0)) + (week_start.asi8 // 1_000_000_000 + offset_s).astype(
        "timedelta64[s]"
    )
    orders = contract_frame(
        "orders",
        {
            "order_id": order_ids,
            "ordered_at": to_ns(ordered_at),
            "source_system": "pos",
            "store_id": np.array([k[0] for k in groups], dtype=object)[used_group],
            "channel": "store",
        },
        used.size,
    )
    price = demand["price"].to_numpy()[line_cell]
    regular = demand["regular_price"].to_numpy()[line_cell]
    lines = contract_frame(
        "order_lines",
        {
            "order_id": order_ids[basket_number],
            "line_id": demand["sku"].to_numpy()[line_cell],
            "sku": demand["sku"].to_numpy()[line_cell],
            "quantity": quantity.astype(float),
            "sales_value": (quantity * price).round(2),
            "discount_value": (quantity * (regular - price)).round(2),
            "coupon_value": 0.0,
        },
        line_key.size,
    )
    return orders, lines
