"""360° profiles: one row per resolved person, from their records, orders and stitched events.

A profile is what the rest of the platform reads about a person: the recommender's cold-start
affinities, the churn model's recency and frequency, the dashboard's customer page. It is built
in one SQL statement inside the analytic store, so the Complete Journey's 1.47M order lines
take seconds, and it is point-in-time: given ``as_of``, only what happened strictly before it
counts, so the feature store can ask what a profile looked like on any past day without
leaking the future into a training frame.

Orders reach a person through ``(orders.source_system, orders.customer_ref)`` = a record of
``person_map``; events through the stitched relation (see :mod:`shelfwise.identity.sessions`).

Columns, and what a person with nothing of that kind gets:

=============================  ==============================================================
``person_id``                  the resolved person
``systems``, ``source_ids``    their records' systems and ``system:id`` (records created before
                               ``as_of``; a record with no ``created_at`` always counts), sorted
``records``                    how many such records (0 when all came later)
``first_seen``, ``last_seen``  earliest / latest of record ``created_at`` and ``updated_at``,
                               orders and attributed events before ``as_of`` (NULL: none)
``recency_days``               days from the last order to ``as_of`` (NULL: no order)
``frequency``                  orders (0)
``monetary``                   sum of ``order_lines.sales_value`` (0)
``avg_basket_value``           monetary / frequency (NULL: no order)
``avg_basket_items``           mean of each order's summed quantity (NULL: no order)
``distinct_skus``              skus bought (0)
``category_affinity``          JSON ``{category: share of spend}``, the ``top_k`` largest,
                               largest first; lines without a category count in the spend but
                               in no share, so the shares sum to at most 1 (NULL: no spend)
``department_affinity``        the same by ``products.department`` (NULL: no spend)
``brand_affinity``             the same by ``products.brand`` (NULL: no spend)
``channel_use``                JSON ``{"orders": {channel: share of orders}, "events":
                               {source_system: share of events}}``; a missing channel is
                               ``"unknown"``; ``{}`` on a side with nothing
``events``, ``sessions``       attributed events and their distinct sessions (0)
``anonymous_events_attributed`` attributed events that carried no ``customer_ref`` (0)
``returns``                    attributed events of type ``return`` (0); the contract's order
                               lines have no negative quantities, so returns live in events
``as_of``                      the point in time the profile describes
=============================  ==============================================================
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shelfwise.data.contract import TABLES
from shelfwise.data.store import AnalyticStore
from shelfwise.data.validation import quote
from shelfwise.identity.sessions import relation_exists

# products columns whose spend shares become the ``<name>_affinity`` columns.
AFFINITIES = ("category", "department", "brand")


def build_profiles(
    store: AnalyticStore,
    *,
    person_map: str = "person_map",
    stitched: str = "stitched_events",
    as_of: datetime | None = None,
    output: str = "person_profiles",
    top_k: int = 5,
    customer_records: str = "customer_records",
    orders: str = "orders",
    order_lines: str = "order_lines",
    products: str = "products",
    events: str = "events",
) -> int:
    """Write ``output`` (replaced), one row per person in ``person_map``; return its row count.

    ``as_of`` (a naive time is UTC): only data strictly before it counts. Without it every row
    counts and ``as_of`` is the latest order or event time in the store, the "now" that
    recency is measured from. A missing contract relation counts as empty; a missing
    ``stitched`` relation attributes each event by its own ``customer_ref`` alone.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, not {top_k!r}")
    rel = {
        "customer_records": _relation(store, customer_records, "customer_records"),
        "orders": _relation(store, orders, "orders"),
        "order_lines": _relation(store, order_lines, "order_lines"),
        "products": _relation(store, products, "products"),
        "events": _relation(store, events, "events"),
    }
    rel["stitched"] = (
        quote(stitched)
        if relation_exists(store, stitched)
        else f"(SELECT e.event_id, r.person_id FROM {rel['events']} e JOIN resolved r "
        "ON r.source_system = e.source_system AND r.source_id = e.customer_ref)"
    )
    moment = _latest(store, rel["orders"], rel["events"]) if as_of is None else _utc(as_of)
    sql = _profiles_sql(person_map, rel, output, top_k, strict=as_of is not None)
    store.execute(sql, [moment])
    return store.count(output)


def _relation(store: AnalyticStore, name: str, contract: str) -> str:
    """``name`` quoted, or an empty relation with the contract table's columns if it is absent."""
    if relation_exists(store, name):
        return quote(name)
    columns = ", ".join(
        f"CAST(NULL AS {c.dtype.value}) AS {quote(c.name)}" for c in TABLES[contract].columns
    )
    return f"(SELECT {columns} WHERE false)"


def _utc(moment: datetime) -> datetime:
    """The store keeps naive UTC timestamps; an aware time is converted, a naive one trusted."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _latest(store: AnalyticStore, orders: str, events: str) -> datetime | None:
    row = store.execute(
        f"SELECT greatest((SELECT max(ordered_at) FROM {orders}), "
        f"(SELECT max(occurred_at) FROM {events}))"
    )
    latest: Any = row[0][0]
    return latest if isinstance(latest, datetime) else None


def _share_object(key: str, weight: str, order: str) -> str:
    """A JSON object {key: weight}, largest first (DuckDB's json_group_object keeps no order)."""
    return (
        f"to_json(map_from_entries(list(struct_pack(k := {key}, v := {weight}) ORDER BY {order})))"
    )


def _affinity_ctes(top_k: int) -> str:
    """Top ``top_k`` names by spend per person, one CTE per product attribute."""
    parts = []
    for name in AFFINITIES:
        column = quote(name)
        parts.append(
            f"""
        {name}_spend AS (
            SELECT person_id, {column} AS name, sum(sales) AS spend FROM lines
            WHERE {column} IS NOT NULL AND trim({column}) <> ''
            GROUP BY person_id, {column}
            QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY spend DESC, name)
                <= {int(top_k)}
        ),
        {name}_affinity AS (
            SELECT s.person_id,
                {_share_object("s.name", "s.spend / b.monetary", "s.spend DESC, s.name")}
                    AS affinity
            FROM {name}_spend s JOIN baskets b USING (person_id) WHERE b.monetary > 0
            GROUP BY s.person_id
        ),"""
        )
    return "".join(parts)


def _profiles_sql(
    person_map: str, rel: dict[str, str], output: str, top_k: int, *, strict: bool
) -> str:
    def before(column: str) -> str:
        return f"{column} < $1" if strict else "true"

    affinity_joins = "\n".join(
        f"LEFT JOIN {name}_affinity USING (person_id)" for name in AFFINITIES
    )
    affinity_columns = ", ".join(
        f"{name}_affinity.affinity AS {name}_affinity" for name in AFFINITIES
    )
    return f"""
    CREATE OR REPLACE TABLE {quote(output)} AS
    WITH mapped AS (
        SELECT DISTINCT source_system, source_id, person_id FROM {quote(person_map)}
        WHERE person_id IS NOT NULL
    ),
    -- A record mapped to two persons gives its orders and events to neither.
    resolved AS (
        SELECT source_system, source_id, min(person_id) AS person_id FROM mapped
        GROUP BY source_system, source_id HAVING count(*) = 1
    ),
    persons AS (SELECT DISTINCT person_id FROM mapped),
    records AS (
        SELECT m.person_id,
            list_sort(list_distinct(list(m.source_system))) AS systems,
            list_sort(list(m.source_system || ':' || m.source_id)) AS source_ids,
            count(*) AS records,
            least(min(c.created_at), min(c.updated_at) FILTER ({before("c.updated_at")}))
                AS first_seen,
            greatest(max(c.created_at), max(c.updated_at) FILTER ({before("c.updated_at")}))
                AS last_seen
        FROM mapped m LEFT JOIN {rel["customer_records"]} c
            ON c.source_system = m.source_system AND c.source_id = m.source_id
        WHERE c.created_at IS NULL OR {before("c.created_at")}
        GROUP BY m.person_id
    ),
    person_orders AS (
        SELECT o.order_id, r.person_id, o.ordered_at, coalesce(o.channel, 'unknown') AS channel
        FROM {rel["orders"]} o JOIN resolved r
            ON r.source_system = o.source_system AND r.source_id = o.customer_ref
        WHERE {before("o.ordered_at")}
    ),
    lines AS (
        SELECT po.person_id, po.order_id, l.sku, l.quantity,
            coalesce(l.sales_value, 0) AS sales, p.department, p.category, p.brand
        FROM person_orders po JOIN {rel["order_lines"]} l USING (order_id)
        LEFT JOIN {rel["products"]} p USING (sku)
    ),
    order_totals AS (
        SELECT po.person_id, po.order_id, po.ordered_at,
            coalesce(sum(l.sales), 0) AS value, coalesce(sum(l.quantity), 0) AS items
        FROM person_orders po LEFT JOIN lines l USING (order_id)
        GROUP BY po.person_id, po.order_id, po.ordered_at
    ),
    baskets AS (
        SELECT person_id, count(*) AS frequency, sum(value) AS monetary,
            avg(value) AS avg_basket_value, avg(items) AS avg_basket_items,
            min(ordered_at) AS first_order, max(ordered_at) AS last_order
        FROM order_totals GROUP BY person_id
    ),
    skus AS (SELECT person_id, count(DISTINCT sku) AS distinct_skus FROM lines GROUP BY 1),
    {_affinity_ctes(top_k)}
    order_channels AS (
        SELECT person_id, {_share_object("channel", "n / total", "n DESC, channel")} AS shares
        FROM (
            SELECT person_id, channel, count(*) AS n,
                sum(count(*)) OVER (PARTITION BY person_id) AS total
            FROM person_orders GROUP BY person_id, channel
        )
        GROUP BY person_id
    ),
    person_events AS (
        SELECT s.person_id, e.event_id, e.occurred_at, e.session_id, e.event_type,
            coalesce(e.source_system, 'unknown') AS source_system,
            nullif(trim(e.customer_ref), '') IS NULL AS anonymous
        FROM {rel["stitched"]} s JOIN {rel["events"]} e USING (event_id)
        WHERE {before("e.occurred_at")}
    ),
    activity AS (
        SELECT person_id, count(*) AS events, count(DISTINCT session_id) AS sessions,
            count(*) FILTER (anonymous) AS anonymous_events_attributed,
            count(*) FILTER (event_type = 'return') AS returns,
            min(occurred_at) AS first_event, max(occurred_at) AS last_event
        FROM person_events GROUP BY person_id
    ),
    event_channels AS (
        SELECT person_id,
            {_share_object("source_system", "n / total", "n DESC, source_system")} AS shares
        FROM (
            SELECT person_id, source_system, count(*) AS n,
                sum(count(*)) OVER (PARTITION BY person_id) AS total
            FROM person_events GROUP BY person_id, source_system
        )
        GROUP BY person_id
    )
    SELECT p.person_id,
        coalesce(r.systems, []::VARCHAR[]) AS systems,
        coalesce(r.source_ids, []::VARCHAR[]) AS source_ids,
        coalesce(r.records, 0) AS records,
        least(r.first_seen, b.first_order, a.first_event) AS first_seen,
        greatest(r.last_seen, b.last_order, a.last_event) AS last_seen,
        date_diff('second', b.last_order, CAST($1 AS TIMESTAMP)) / 86400.0 AS recency_days,
        coalesce(b.frequency, 0) AS frequency,
        coalesce(b.monetary, 0.0) AS monetary,
        b.avg_basket_value, b.avg_basket_items,
        coalesce(k.distinct_skus, 0) AS distinct_skus,
        {affinity_columns},
        json_object('orders', coalesce(oc.shares, '{{}}'::JSON),
            'events', coalesce(ec.shares, '{{}}'::JSON)) AS channel_use,
        coalesce(a.events, 0) AS events,
        coalesce(a.sessions, 0) AS sessions,
        coalesce(a.anonymous_events_attributed, 0) AS anonymous_events_attributed,
        coalesce(a.returns, 0) AS returns,
        CAST($1 AS TIMESTAMP) AS as_of
    FROM persons p
    LEFT JOIN records r USING (person_id)
    LEFT JOIN baskets b USING (person_id)
    LEFT JOIN skus k USING (person_id)
    {affinity_joins}
    LEFT JOIN order_channels oc USING (person_id)
    LEFT JOIN activity a USING (person_id)
    LEFT JOIN event_channels ec USING (person_id)
    ORDER BY p.person_id"""
