"""The retail feature sets: what the recommender, the forecaster and the churn model read.

Streams read two base relations that the builders make from the contract tables (offline) or
from the ingested rows (online), so that a streaming set computes the same way on both sides:

``fs_interactions``
    one row per purchase line (from ``orders`` and ``order_lines``: the system of record for
    purchases) or behavioural event (``events`` other than ``purchase``, which would count an
    order twice), with the resolved ``person_id`` (``person_map``; events through
    ``stitched_events``), the ``actor_id`` whose sessions it belongs to (the person, else the
    anonymous cookie or session), the product's department, category and brand, and money;
``fs_orders``
    one row per order of ``fs_interactions``: basket value, items, discount and lines.

Defaults: a count, sum or decayed weight of an entity with no rows is 0; days since a time that
never happened, a latest value never seen and a ratio with a zero denominator are NaN (LightGBM
reads NaN as missing); each set adds ``<set>_missing`` = 1 where the entity had no state at all.
"""

from __future__ import annotations

import re

from shelfwise.features.definitions import Aggregate as A
from shelfwise.features.definitions import Attribute, Derived, FeatureSet

NAN = float("nan")
PURCHASE = "kind = 'purchase'"
VIEW = "kind IN ('view', 'click')"
CART = "kind = 'add_to_cart'"
SEARCH = "kind = 'search'"
INTERACTION_COLUMNS = (
    "person_id", "actor_id", "sku", "event_at", "kind", "order_id", "store_id", "quantity",
    "sales", "discount", "device", "page", "department", "category", "brand",
)  # fmt: skip

RESOLVED = """SELECT source_system, source_id, min(person_id) AS person_id FROM person_map
    WHERE person_id IS NOT NULL GROUP BY source_system, source_id
    HAVING count(DISTINCT person_id) = 1"""

INTERACTIONS_SQL = f"""
WITH resolved AS ({RESOLVED})
SELECT r.person_id,
    coalesce(r.person_id, 'customer:' || o.source_system || ':' || o.customer_ref,
             'order:' || o.order_id) AS actor_id,
    l.sku, o.ordered_at AS event_at, 'purchase' AS kind, o.order_id, o.store_id,
    coalesce(l.quantity, 0.0) AS quantity, coalesce(l.sales_value, 0.0) AS sales,
    coalesce(l.discount_value, 0.0) + coalesce(l.coupon_value, 0.0) AS discount,
    o.channel AS device, CAST(NULL AS VARCHAR) AS page,
    p.department, p.category, p.brand
FROM orders o JOIN order_lines l USING (order_id)
LEFT JOIN resolved r ON r.source_system = o.source_system AND r.source_id = o.customer_ref
LEFT JOIN products p ON p.sku = l.sku
UNION ALL
SELECT s.person_id,
    coalesce(s.person_id, 'anonymous:' || coalesce(nullif(e.anonymous_id, ''),
             nullif(e.session_id, ''), e.source_system || ':' || e.customer_ref)) AS actor_id,
    e.sku, e.occurred_at AS event_at, e.event_type AS kind, CAST(NULL AS VARCHAR) AS order_id,
    CAST(NULL AS VARCHAR) AS store_id, coalesce(e.quantity, 0.0) AS quantity,
    coalesce(e.price * coalesce(e.quantity, 1.0), 0.0) AS sales, 0.0 AS discount,
    e.source_system AS device, json_extract_string(e.context, '$.page') AS page,
    p.department, p.category, p.brand
FROM events e LEFT JOIN stitched_events s USING (event_id)
LEFT JOIN products p ON p.sku = e.sku
WHERE e.event_type <> 'purchase'"""

ORDERS_SQL = """
SELECT person_id, actor_id, order_id, store_id, min(event_at) AS event_at,
    sum(sales) AS basket_value, sum(quantity) AS basket_items, sum(discount) AS basket_discount,
    count(*) AS basket_lines
FROM fs_interactions WHERE kind = 'purchase' AND order_id IS NOT NULL
GROUP BY person_id, actor_id, order_id, store_id"""

# Relations the streams may read besides the contract tables, in the order they are made.
BASE_RELATIONS = {"fs_interactions": INTERACTIONS_SQL, "fs_orders": ORDERS_SQL}


def base_relations_of(sql: str) -> list[str]:
    """The base relations a stream reads, with those they read in turn, in making order."""
    needed = {name for name in BASE_RELATIONS if re.search(rf"\b{name}\b", sql)}
    for name in list(needed):
        needed |= set(base_relations_of(BASE_RELATIONS[name]))
    return [name for name in BASE_RELATIONS if name in needed]


PERSON_PURCHASES = FeatureSet(
    name="person_purchases",
    entity="person",
    description="Recency, frequency, money, basket and price sensitivity, updated by each order.",
    stream="SELECT * FROM fs_orders WHERE person_id IS NOT NULL",
    streaming=True,
    freshness_target_seconds=1.0,
    aggregates=(
        A("orders_total", "count"),
        A("spend_total", "sum", "basket_value"),
        A("items_total", "sum", "basket_items"),
        A("discount_total", "sum", "basket_discount"),
        A("promo_orders", "count", where="basket_discount > 0"),
        A("days_since_last_order", "last", description="recency"),
        A("days_since_first_order", "first", description="tenure"),
        A("spend_decayed", "decayed", "basket_value", half_life_days=28.0),
        A("orders_decayed", "decayed", half_life_days=28.0),
    ),
    derived=(
        Derived("avg_basket_value", "spend_total / orders_total", NAN),
        Derived("avg_basket_items", "items_total / orders_total", NAN),
        Derived("discount_share", "discount_total / (spend_total + discount_total)", NAN,
                "price sensitivity: the share of the shelf value paid by discounts"),
        Derived("promo_order_share", "promo_orders / orders_total", NAN),
        Derived("interpurchase_days",
                "(days_since_first_order - days_since_last_order) / (orders_total - 1)", NAN),
        Derived("order_overdue", "days_since_last_order / interpurchase_days", NAN,
                "days since the last order against the usual gap between orders"),
    ),
)  # fmt: skip

PERSON_WINDOWS = FeatureSet(
    name="person_windows",
    entity="person",
    description="Orders and spend over the last 7, 30 and 90 days.",
    stream="SELECT * FROM fs_orders WHERE person_id IS NOT NULL",
    freshness_target_seconds=86_400.0,
    aggregates=(
        A("orders_7d", "window", window_days=7.0),
        A("orders_30d", "window", window_days=30.0),
        A("orders_90d", "window", window_days=90.0),
        A("spend_30d", "window", "basket_value", window_days=30.0),
        A("spend_90d", "window", "basket_value", window_days=90.0),
    ),
    derived=(Derived("spend_trend", "spend_30d / (spend_90d / 3)", NAN),),
)

PERSON_ACTIVITY = FeatureSet(
    name="person_activity",
    entity="person",
    description="Browsing: views, carts, searches and how recent they are.",
    stream="SELECT * FROM fs_interactions WHERE person_id IS NOT NULL AND kind <> 'purchase'",
    streaming=True,
    freshness_target_seconds=1.0,
    aggregates=(
        A("events_total", "count"),
        A("views_total", "count", where=VIEW),
        A("carts_total", "count", where=CART),
        A("removes_total", "count", where="kind = 'remove_from_cart'"),
        A("searches_total", "count", where=SEARCH),
        A("views_decayed", "decayed", where=VIEW, half_life_days=1.0),
        A("carts_decayed", "decayed", where=CART, half_life_days=1.0),
        A("days_since_last_event", "last"),
    ),
    derived=(Derived("cart_rate", "carts_total / views_total", NAN),),
)

SESSION = FeatureSet(
    name="session",
    entity="session",
    description="The actor's current session (a new one after 30 minutes without an event).",
    stream="SELECT * FROM fs_interactions WHERE kind <> 'purchase'",
    streaming=True,
    freshness_target_seconds=1.0,
    session_gap_minutes=30.0,
    aggregates=(
        A("session_events", "session"),
        A("session_views", "session", where=VIEW),
        A("session_carts", "session", where=CART),
        A("session_searches", "session", where=SEARCH),
        A("session_seconds", "session_seconds"),
        A("sessions_total", "sessions"),
        A("days_since_last_activity", "last"),
    ),
    derived=(Derived("minutes_since_last_activity", "days_since_last_activity * 1440", NAN),),
)

PERSON_PRODUCT = FeatureSet(
    name="person_product",
    entity="person_product",
    description="A person and a product: purchases, repurchase cycle, views and carts.",
    stream="SELECT * FROM fs_interactions WHERE person_id IS NOT NULL AND sku IS NOT NULL",
    streaming=True,
    freshness_target_seconds=1.0,
    aggregates=(
        A("pp_purchases", "count", where=PURCHASE),
        A("pp_quantity", "sum", "quantity", where=PURCHASE),
        A("pp_spend", "sum", "sales", where=PURCHASE),
        A("pp_days_since_first_purchase", "first", where=PURCHASE),
        A("pp_days_since_last_purchase", "last", where=PURCHASE),
        A("pp_views", "count", where=VIEW),
        A("pp_carts", "count", where=CART),
        A("pp_days_since_last_interaction", "last"),
        A("pp_interaction_decayed", "decayed",
          "CASE WHEN kind = 'purchase' THEN 5 WHEN kind = 'add_to_cart' THEN 3 "
          "WHEN kind IN ('view', 'click') THEN 1 ELSE 0 END", half_life_days=14.0,
          description="purchases weigh 5, carts 3, views and clicks 1"),
        A("pp_purchases_decayed", "decayed", where=PURCHASE, half_life_days=60.0),
    ),
    derived=(
        Derived("pp_repurchase_interval_days",
                "(pp_days_since_first_purchase - pp_days_since_last_purchase) "
                "/ (pp_purchases - 1)", NAN, "the person's usual cycle for this product"),
        Derived("pp_repurchase_due", "pp_days_since_last_purchase / pp_repurchase_interval_days",
                NAN, "days since the last purchase against the usual cycle (1: due now)"),
    ),
)  # fmt: skip

PERSON_CATEGORY = FeatureSet(
    name="person_category",
    entity="person_category",
    description="A person's purchases and views in a product's category.",
    stream="SELECT * FROM fs_interactions WHERE person_id IS NOT NULL AND category IS NOT NULL",
    streaming=True,
    freshness_target_seconds=1.0,
    aggregates=(
        A("category_purchases", "count", where=PURCHASE),
        A("category_spend", "sum", "sales", where=PURCHASE),
        A("category_views", "count", where=VIEW),
        A("days_since_category_purchase", "last", where=PURCHASE),
    ),
)

PERSON_BRAND = FeatureSet(
    name="person_brand",
    entity="person_brand",
    description="A person's purchases of a product's brand.",
    stream="SELECT * FROM fs_interactions WHERE person_id IS NOT NULL AND brand IS NOT NULL",
    streaming=True,
    freshness_target_seconds=1.0,
    aggregates=(
        A("brand_purchases", "count", where=PURCHASE),
        A("brand_spend", "sum", "sales", where=PURCHASE),
    ),
)

PRODUCT = FeatureSet(
    name="product",
    entity="product",
    description="Popularity and its trend over 1, 7 and 30 days, conversion, prices paid.",
    stream="SELECT * FROM fs_interactions WHERE sku IS NOT NULL",
    freshness_target_seconds=86_400.0,
    aggregates=(
        A("orders_1d", "window", where=PURCHASE, window_days=1.0),
        A("product_orders_7d", "window", where=PURCHASE, window_days=7.0),
        A("product_orders_30d", "window", where=PURCHASE, window_days=30.0),
        A("units_7d", "window", "quantity", where=PURCHASE, window_days=7.0),
        A("units_30d", "window", "quantity", where=PURCHASE, window_days=30.0),
        A("sales_30d", "window", "sales", where=PURCHASE, window_days=30.0),
        A("discount_30d", "window", "discount", where=PURCHASE, window_days=30.0),
        A("discounted_orders_30d", "window", where=f"{PURCHASE} AND discount > 0",
          window_days=30.0),
        A("views_30d", "window", where=VIEW, window_days=30.0),
        A("carts_30d", "window", where=CART, window_days=30.0),
        A("product_purchases_total", "count", where=PURCHASE),
        A("popularity_decayed", "decayed", where=PURCHASE, half_life_days=7.0),
        A("days_since_last_sale", "last", where=PURCHASE),
        A("days_since_first_sale", "first", where=PURCHASE),
    ),
    derived=(
        Derived("trend_7_30", "(product_orders_7d / 7) / (product_orders_30d / 30)", NAN,
                "this week's daily orders against the month's (1: steady)"),
        Derived("conversion_30d", "product_orders_30d / views_30d", NAN),
        Derived("cart_conversion_30d", "carts_30d / views_30d", NAN),
        Derived("unit_price_30d", "(sales_30d + discount_30d) / units_30d", NAN,
                "shelf price paid per unit over 30 days"),
        Derived("discount_share_30d", "discount_30d / (sales_30d + discount_30d)", NAN),
        Derived("on_discount_share_30d", "discounted_orders_30d / product_orders_30d", NAN),
    ),
)  # fmt: skip

PRODUCT_ATTRIBUTES = FeatureSet(
    name="product_attributes",
    entity="product",
    description="The catalogue's current attributes (the contract keeps no history of them).",
    stream="SELECT * FROM products",
    attributes=(
        Attribute("department", "category", "department"),
        Attribute("category", "category", "category"),
        Attribute("subcategory", "category", "subcategory"),
        Attribute("brand", "category", "brand"),
        Attribute("manufacturer", "category", "manufacturer"),
        Attribute("list_price", "number", "price"),
        Attribute("cost", "number", "cost"),
        Attribute("sensitive", "number",
                  "CASE WHEN sensitive_category IS NULL THEN 0.0 ELSE 1.0 END"),
        Attribute("days_since_launch", "days_since", "launch_date"),
    ),
    derived=(Derived("margin", "(list_price - cost) / list_price", NAN),),
)  # fmt: skip

PRODUCT_PROMOTIONS = FeatureSet(
    name="product_promotions",
    entity="product",
    description="Display, mailer and discount promotions running at the moment, and how often.",
    stream="""SELECT sku, starts_at AS event_at, max(ends_at) AS ends_at,
        count(*) FILTER (WHERE promotion_type IN ('display', 'display_mailer')) AS display_stores,
        count(*) FILTER (WHERE promotion_type IN ('mailer', 'display_mailer')) AS mailer_stores,
        max(discount_pct) AS discount_pct
        FROM promotions WHERE promotion_type <> 'coupon' GROUP BY sku, starts_at""",
    aggregates=(
        A("display_stores", "active", "display_stores", until="ends_at",
          description="stores showing it on display now"),
        A("mailer_stores", "active", "mailer_stores", until="ends_at"),
        A("promotion_discount_pct", "active", "coalesce(discount_pct, 0)", until="ends_at"),
        A("promotions_total", "count"),
        A("days_since_last_promotion", "last"),
    ),
)  # fmt: skip

PRODUCT_COUPONS = FeatureSet(
    name="product_coupons",
    entity="product",
    description="Whether a coupon for the product can be redeemed now (overlapping runs merged).",
    stream="""WITH coupons AS (
            SELECT DISTINCT sku, starts_at, ends_at FROM promotions
            WHERE promotion_type = 'coupon'),
        flagged AS (
            SELECT *, CASE WHEN starts_at <= max(ends_at) OVER (PARTITION BY sku
                ORDER BY starts_at, ends_at ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS new_run FROM coupons),
        runs AS (
            SELECT *, sum(new_run) OVER (PARTITION BY sku ORDER BY starts_at, ends_at
                ROWS UNBOUNDED PRECEDING) AS run FROM flagged)
        SELECT sku, min(starts_at) AS event_at, max(ends_at) AS ends_at, count(*) AS campaigns
        FROM runs GROUP BY sku, run""",
    aggregates=(
        A("coupon_available", "active", "1", until="ends_at"),
        A("coupon_campaigns", "active", "campaigns", until="ends_at"),
    ),
)

PRODUCT_SUPPLY = FeatureSet(
    name="product_supply",
    entity="product",
    description="Shelf price (price history: the mean of the prices stores set at one moment) "
    "and stock on hand (inventory snapshots, summed over stores).",
    stream="""SELECT sku, valid_from AS event_at, avg(price) AS price,
            avg(regular_price) AS regular_price, CAST(NULL AS DOUBLE) AS on_hand
        FROM price_history GROUP BY sku, valid_from
        UNION ALL
        SELECT sku, snapshot_at AS event_at, NULL, NULL, sum(on_hand)
        FROM inventory_snapshots GROUP BY sku, snapshot_at""",
    aggregates=(
        A("shelf_price", "latest", "price"),
        A("regular_price", "latest", "regular_price"),
        A("on_hand", "latest", "on_hand", description="units in all stores at the last snapshot"),
    ),
    derived=(Derived("price_cut", "1 - shelf_price / regular_price", NAN),),
)

STORE = FeatureSet(
    name="store",
    entity="store",
    description="A store's orders and takings over the last 7 and 30 days.",
    stream="SELECT * FROM fs_orders WHERE store_id IS NOT NULL",
    aggregates=(
        A("store_orders_7d", "window", window_days=7.0),
        A("store_orders_30d", "window", window_days=30.0),
        A("store_spend_30d", "window", "basket_value", window_days=30.0),
    ),
    derived=(Derived("store_avg_basket_30d", "store_spend_30d / store_orders_30d", NAN),),
)

PERSON_ATTRIBUTES = FeatureSet(
    name="person_attributes",
    entity="person",
    description="Demographics from the person's records (the loyalty card's, where it has them).",
    stream=f"""SELECT m.person_id,
            arg_max(c.attributes, CAST(c.attributes IS NOT NULL AS INTEGER) || ':'
                || m.source_system || ':' || m.source_id) AS attributes,
            count(*) AS records, count(DISTINCT m.source_system) AS systems
        FROM (SELECT DISTINCT person_id, source_system, source_id FROM person_map
              WHERE person_id IS NOT NULL) m
        JOIN ({RESOLVED}) r USING (source_system, source_id)
        LEFT JOIN customer_records c USING (source_system, source_id)
        GROUP BY m.person_id""",
    attributes=(
        Attribute("age_band", "category", "json_extract_string(attributes, '$.age')"),
        Attribute("income_band", "category", "json_extract_string(attributes, '$.income')"),
        Attribute("home_ownership", "category",
                  "json_extract_string(attributes, '$.home_ownership')"),
        Attribute("marital_status", "category",
                  "json_extract_string(attributes, '$.marital_status')"),
        Attribute("household_size", "category",
                  "json_extract_string(attributes, '$.household_size')"),
        Attribute("kids_count", "category", "json_extract_string(attributes, '$.kids_count')"),
        Attribute("person_records", "number", "records"),
        Attribute("person_systems", "number", "systems"),
    ),
)  # fmt: skip

RETAIL_FEATURE_SETS: tuple[FeatureSet, ...] = (
    PRODUCT_ATTRIBUTES,
    PERSON_ATTRIBUTES,
    PERSON_PURCHASES,
    PERSON_WINDOWS,
    PERSON_ACTIVITY,
    SESSION,
    PERSON_PRODUCT,
    PERSON_CATEGORY,
    PERSON_BRAND,
    PRODUCT,
    PRODUCT_PROMOTIONS,
    PRODUCT_COUPONS,
    PRODUCT_SUPPLY,
    STORE,
)

# Features across sets, computed once every set of a row is known.
CROSS_FEATURES: tuple[Derived, ...] = (
    Derived("category_spend_share", "category_spend / spend_total", 0.0,
            "the share of the person's spend that went to the product's category"),
    Derived("brand_spend_share", "brand_spend / spend_total", 0.0),
    Derived("price", "coalesce(shelf_price, list_price)", NAN,
            "the shelf price where price history has it, else the catalogue's"),
    Derived("price_vs_paid", "coalesce(shelf_price, list_price) / unit_price_30d", NAN,
            "today's price against what was paid over the last 30 days"),
    Derived("price_vs_basket", "coalesce(shelf_price, list_price) / avg_basket_value", NAN,
            "the product's price against the person's typical basket"),
)  # fmt: skip
