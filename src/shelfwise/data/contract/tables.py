"""The retail data contract: every table a retailer brings to shelfwise.

Identifiers are strings (source systems disagree on their types); times are UTC timestamps;
money is a float in the retailer's currency. Each table's ``key`` identifies a row.
"""

from __future__ import annotations

from shelfwise.data.contract._spec import Column, DType, RowRule, Table

S, N, F, B, T, D, J = (  # text, integer, float, boolean, timestamp, date, JSON
    DType.STRING,
    DType.INTEGER,
    DType.FLOAT,
    DType.BOOLEAN,
    DType.TIMESTAMP,
    DType.DATE,
    DType.JSON,
)

EVENT_TYPES = (
    "view",
    "click",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "search",
    "return",
    "login",
)
PRODUCT_EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase", "return")
SENSITIVE_CATEGORIES = ("health", "finance", "age_restricted", "adult")
PROMOTION_TYPES = ("display", "mailer", "display_mailer", "discount", "coupon")


def plausible_time(column: str) -> RowRule:
    """Times before 1970 or more than a day in the future are typing errors, not history."""
    return RowRule(
        name=f"{column}_plausible",
        violated=(
            f"{column} < TIMESTAMP '1970-01-01' "
            f"OR {column} > CAST(current_timestamp AS TIMESTAMP) + INTERVAL 1 DAY"
        ),
        message=f"{column}: implausible time (before 1970 or in the future)",
    )


def ordered(start: str, end: str) -> RowRule:
    return RowRule(
        name=f"{end}_after_{start}",
        violated=f"{end} < {start}",
        message=f"{end}: earlier than {start}",
    )


CUSTOMER_RECORDS = Table(
    name="customer_records",
    description="A customer as one source system knows them (web shop, CRM, loyalty, ...).",
    key=("source_system", "source_id"),
    on_conflict="update",
    time_column="updated_at",
    columns=(
        Column("source_system", S, description="the system the record comes from"),
        Column("source_id", S, description="the record's id in that system"),
        Column("email", S),
        Column("phone", S),
        Column("first_name", S),
        Column("last_name", S),
        Column("full_name", S, description="where a system keeps one name field only"),
        Column("address_line", S),
        Column("city", S),
        Column("postcode", S),
        Column("country", S),
        Column("date_of_birth", D),
        Column("device_id", S),
        Column("ip", S),
        Column("loyalty_id", S),
        Column("created_at", T),
        Column("updated_at", T),
        Column("attributes", J, description="demographics and any other per-record facts"),
    ),
    rules=(
        RowRule(
            "date_of_birth_plausible",
            "date_of_birth < DATE '1900-01-01' OR date_of_birth > current_date",
            "date_of_birth: implausible date (before 1900 or in the future)",
        ),
        plausible_time("created_at"),
        plausible_time("updated_at"),
        ordered("created_at", "updated_at"),
    ),
)

PRODUCTS = Table(
    name="products",
    description="The catalogue: one row per sku, with its category hierarchy.",
    key=("sku",),
    on_conflict="update",
    columns=(
        Column("sku", S),
        Column("title", S),
        Column("description", S),
        Column("department", S, description="top of the category hierarchy"),
        Column("category", S),
        Column("subcategory", S),
        Column("brand", S),
        Column("manufacturer", S),
        Column("size", S),
        Column("price", F, minimum=0),
        Column("cost", F, minimum=0),
        Column("attributes", J),
        Column("launch_date", D),
        Column(
            "sensitive_category",
            S,
            allowed=SENSITIVE_CATEGORIES,
            description="set when the product is health, finance, age-restricted or adult",
        ),
    ),
)

STORES = Table(
    name="stores",
    description="Physical stores and online channels that sell.",
    key=("store_id",),
    on_conflict="update",
    columns=(
        Column("store_id", S),
        Column("name", S),
        Column("format", S, description="hypermarket, convenience, online, ..."),
        Column("region", S),
        Column("postcode", S),
        Column("opened_at", D),
        Column("attributes", J),
    ),
)

INVENTORY_SNAPSHOTS = Table(
    name="inventory_snapshots",
    description="Stock on hand per store and sku at a moment.",
    key=("store_id", "sku", "snapshot_at"),
    time_column="snapshot_at",
    columns=(
        Column("store_id", S, references="stores.store_id"),
        Column("sku", S, references="products.sku"),
        Column("snapshot_at", T),
        Column("on_hand", F, required=True, minimum=0),
        Column("on_order", F, minimum=0),
    ),
    rules=(plausible_time("snapshot_at"),),
)

EVENTS = Table(
    name="events",
    description="Behaviour: views, clicks, carts, purchases, searches, returns and logins.",
    key=("event_id",),
    time_column="occurred_at",
    columns=(
        Column("event_id", S),
        Column("occurred_at", T, required=True),
        Column("source_system", S, required=True),
        Column("event_type", S, required=True, allowed=EVENT_TYPES),
        Column("customer_ref", S, description="the source system's customer id, if known"),
        Column("anonymous_id", S, description="cookie or app-instance id"),
        Column("session_id", S),
        Column("device_id", S),
        Column("ip", S),
        Column("sku", S, references="products.sku"),
        Column("quantity", F, minimum=0),
        Column("price", F, minimum=0),
        Column("context", J, description="page, search query, basket, campaign, ..."),
    ),
    rules=(
        RowRule(
            "has_actor",
            "customer_ref IS NULL AND anonymous_id IS NULL AND session_id IS NULL",
            "event has none of customer_ref, anonymous_id or session_id",
        ),
        RowRule(
            "product_event_has_sku",
            "event_type IN (" + ", ".join(f"'{t}'" for t in PRODUCT_EVENT_TYPES) + ")"
            " AND sku IS NULL",
            "sku: missing for a product event (view, cart, purchase, return)",
        ),
        plausible_time("occurred_at"),
    ),
)

ORDERS = Table(
    name="orders",
    description="A basket or order: who bought, where and when.",
    key=("order_id",),
    time_column="ordered_at",
    columns=(
        Column("order_id", S),
        Column("ordered_at", T, required=True),
        Column("source_system", S),
        Column("customer_ref", S),
        Column("store_id", S, references="stores.store_id"),
        Column("channel", S, description="store, web, app, ..."),
        Column("attributes", J),
    ),
    rules=(plausible_time("ordered_at"),),
)

ORDER_LINES = Table(
    name="order_lines",
    description="The lines of an order: sku, quantity and money.",
    key=("order_id", "line_id"),
    columns=(
        Column("order_id", S, references="orders.order_id"),
        Column("line_id", S, description="line number, or the sku where a sku appears once"),
        Column("sku", S, required=True, references="products.sku"),
        Column("quantity", F, required=True, minimum=0),
        Column("sales_value", F, minimum=0, description="what the customer paid for the line"),
        Column("discount_value", F, minimum=0, description="retailer's discounts on the line"),
        Column("coupon_value", F, minimum=0, description="coupon discounts on the line"),
    ),
)

PRICE_HISTORY = Table(
    name="price_history",
    description="Shelf price of a sku from a moment on, chain-wide or for one store.",
    key=("sku", "store_id", "valid_from"),
    time_column="valid_from",
    columns=(
        Column("sku", S, references="products.sku"),
        Column("store_id", S, references="stores.store_id", description="empty: every store"),
        Column("valid_from", T),
        Column("valid_to", T),
        Column("price", F, required=True, minimum=0, exclusive_minimum=True),
        Column("regular_price", F, minimum=0, exclusive_minimum=True),
    ),
    rules=(ordered("valid_from", "valid_to"), plausible_time("valid_from")),
)

PROMOTIONS = Table(
    name="promotions",
    description="Display, mailer, discount and coupon promotions of a sku over a period.",
    key=("promotion_id",),
    time_column="starts_at",
    columns=(
        Column("promotion_id", S),
        Column("sku", S, required=True, references="products.sku"),
        Column("store_id", S, references="stores.store_id", description="empty: every store"),
        Column("promotion_type", S, required=True, allowed=PROMOTION_TYPES),
        Column("starts_at", T, required=True),
        Column("ends_at", T, required=True),
        Column("display_location", S),
        Column("mailer_location", S),
        Column("discount_pct", F, minimum=0, maximum=100),
        Column("campaign_id", S, references="campaigns.campaign_id"),
        Column("coupon_code", S),
    ),
    rules=(ordered("starts_at", "ends_at"), plausible_time("starts_at")),
)

CAMPAIGNS = Table(
    name="campaigns",
    description="Marketing campaigns and experiments that assign customers to treatments.",
    key=("campaign_id",),
    on_conflict="update",
    columns=(
        Column("campaign_id", S),
        Column("name", S),
        Column("campaign_type", S),
        Column("channel", S),
        Column("starts_at", T),
        Column("ends_at", T),
        Column("attributes", J),
    ),
    rules=(ordered("starts_at", "ends_at"),),
)

TREATMENT_ASSIGNMENTS = Table(
    name="treatment_assignments",
    description="Who was assigned which arm of a campaign, with what probability, and the outcome.",
    key=("campaign_id", "unit_id"),
    on_conflict="update",
    columns=(
        Column("campaign_id", S, references="campaigns.campaign_id"),
        Column("unit_id", S, description="the customer (or session) that was assigned"),
        Column("arm", S, required=True, description="control, or the treatment received"),
        Column("assigned_at", T),
        Column("propensity", F, minimum=0, maximum=1, exclusive_minimum=True),
        Column("converted", B),
        Column("revenue", F, minimum=0),
        Column("outcomes", J, description="further named outcomes (visit, redemptions, ...)"),
        Column("covariates", J, description="pre-treatment features of the unit"),
        Column("outcome_observed_at", T),
    ),
)

BANDIT_LOGS = Table(
    name="bandit_logs",
    description="Decisions of a logging policy: context, action, its propensity and the reward.",
    key=("log_id",),
    time_column="logged_at",
    columns=(
        Column("log_id", S),
        Column("logged_at", T, required=True),
        Column("policy", S, required=True),
        Column("action", S, required=True),
        Column("position", N, minimum=0),
        Column("propensity", F, required=True, minimum=0, maximum=1, exclusive_minimum=True),
        Column("reward", F, required=True),
        Column("context", J),
    ),
)

ALL_TABLES: tuple[Table, ...] = (
    CUSTOMER_RECORDS,
    PRODUCTS,
    STORES,
    INVENTORY_SNAPSHOTS,
    EVENTS,
    ORDERS,
    ORDER_LINES,
    PRICE_HISTORY,
    CAMPAIGNS,
    PROMOTIONS,
    TREATMENT_ASSIGNMENTS,
    BANDIT_LOGS,
)
