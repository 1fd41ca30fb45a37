"""`shelfwise bench features`: the feature store's build times, online latencies and ingest rate.

Full run, on a fresh workspace loaded from The Complete Journey as the quickstart loads it
(validated, identities resolved; without the quickstart's own feature stage):

- ``build_seconds_recommender``: point-in-time training frame, every set, for each purchase line
  of weeks 46-49 (the loyalty card's person) and 4 negatives per line drawn (seed 0) from the
  products sold up to week 45, weighted by how often they sold; states are built in the timing;
- ``build_seconds_forecaster``: the product and store sets (and context) for the 5,000
  products with the most purchase lines, as of the start of each of weeks 2-53;
- ``person_vector_*`` / ``products200_*``: milliseconds per online request after a warm-up,
  one random person (person and session sets) or 200 random products (product sets), from the
  in-process store and from Redis (``SHELFWISE_BENCH_REDIS_URL``; its database is flushed);
  ``rows200_read_*`` is the baseline in the same run: the same 200 rows read, nothing computed;
- ``ingest_one_event_*``: milliseconds for one browsing event alone through ``ingest``, from
  its arrival to its features being readable (the streaming sets' freshness target is 1 s);
- ``ingest_events_per_s``: the streaming sets materialised as of 2017-09-01, then the next 14
  days of interactions folded in through ``FeatureStore.ingest`` in batches of about 10,000 rows
  cut at order boundaries, into memory and into Redis;
- ``materialise_seconds`` (a fresh in-process store: its states built, then written;
  ``materialise_states_seconds`` of it building states) and each set's freshness afterwards;
  ``redis_materialise_seconds`` writes the same states, already built, into Redis.

Build times are measured once (``repeats``); latencies are percentiles over every request.
Smoke run: the same path on the simulated shop of :mod:`shelfwise.simulate.shop`, small.
``extra["workspace"]``: an existing Complete Journey workspace whose analytic file is copied
and used instead of building one (the original is not touched).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shelfwise.bench import BenchOptions, progress
from shelfwise.features.retail import RETAIL_FEATURE_SETS
from shelfwise.settings import Settings

if TYPE_CHECKING:
    from shelfwise.features.definitions import FeatureSet
    from shelfwise.features.store import FeatureStore
    from shelfwise.workspace import Workspace

REDIS_URL = "redis://127.0.0.1:6379/14"
NEGATIVES_PER_POSITIVE = 4
PRODUCTS_PER_REQUEST = 200
PERSON_ENTITIES = ("person", "session")
PRODUCT_ENTITIES = ("product",)
FORECAST_ENTITIES = ("product", "store")
# The Complete Journey's orders carry their week; the simulated shop's are counted from its start.
WEEK_SQL = """coalesce(TRY_CAST(json_extract_string(CAST(o.attributes AS VARCHAR), '$.week')
    AS INTEGER), CAST(date_diff('day', (SELECT min(ordered_at) FROM orders), o.ordered_at)
    // 7 AS INTEGER) + 1)"""


@dataclass(frozen=True)
class Protocol:
    history_weeks: int  # negatives come from the products sold up to this week
    label_weeks: tuple[int, int]  # the recommender's labelled weeks
    forecast_weeks: tuple[int, int]
    forecast_products: int
    replay_from: pd.Timestamp
    replay_days: float
    batch_rows: int
    warmup: int
    requests: int
    single_events: int = 200


# 10,000-row batches: about half a second of events at the goal rate, inside the 1 s target.
FULL = Protocol(45, (46, 49), (2, 53), 5_000, pd.Timestamp("2017-09-01"), 14.0, 10_000, 200, 3_000)
SMOKE = Protocol(13, (14, 17), (2, 17), 50, pd.Timestamp("2024-04-01"), 14.0, 500, 20, 200, 20)


def bench_settings(folder: Path) -> Settings:
    """Embedded stores in ``folder``, whatever the environment names."""
    return Settings(
        workspace=folder,
        analytic_url=None,
        operational_url=None,
        tracking_uri=None,
        registry_uri=None,
        artifact_location=None,
        online_store_url="memory://",
        cache_url="memory://",
    )


def bench_workspace(options: BenchOptions, folder: Path) -> Workspace:
    """The simulated shop (smoke), a copy of ``extra["workspace"]``, or a new Complete Journey
    workspace, with embedded stores in ``folder``."""
    from shelfwise.workspace import Workspace

    workspace = Workspace(bench_settings(folder / "workspace"))
    if options.smoke:
        from shelfwise.simulate.shop import load_shop, simulate_shop

        progress("loading the simulated shop")
        load_shop(workspace, simulate_shop(seed=0))
        return workspace
    existing = options.extra.get("workspace")
    if existing:
        progress(f"copying the analytic store of {existing}")
        workspace.settings.workspace.mkdir(parents=True)
        shutil.copyfile(Path(existing) / "analytic.duckdb", folder / "workspace/analytic.duckdb")
        return workspace
    from shelfwise.identity.stage import resolve_complete_journey
    from shelfwise.quickstart import QuickstartReport, _load_complete_journey

    started = time.perf_counter()
    progress("building a Complete Journey workspace (load, validate, resolve identities)")
    workspace.init()
    report = QuickstartReport(workspace=str(workspace.settings.workspace))
    _load_complete_journey(workspace, report, reload=False, progress=progress)
    resolve_complete_journey(workspace, progress)
    progress(f"workspace built in {time.perf_counter() - started:.0f}s")
    return workspace


def recommender_labels(workspace: Workspace, protocol: Protocol) -> pd.DataFrame:
    """Each purchase line of the labelled weeks (label 1) and its drawn negatives (label 0)."""
    first, last = protocol.label_weeks
    positives = workspace.analytic.frame(
        f"""WITH resolved AS (
            SELECT source_id, min(person_id) AS person_id FROM person_map
            WHERE source_system = 'loyalty_card' AND person_id IS NOT NULL
            GROUP BY source_id HAVING count(DISTINCT person_id) = 1),
        weeks AS (SELECT o.*, {WEEK_SQL} AS week FROM orders o)
        SELECT r.person_id, l.sku, w.ordered_at AS as_of
        FROM weeks w JOIN order_lines l USING (order_id)
        JOIN resolved r ON r.source_id = w.customer_ref
        WHERE w.source_system = 'loyalty_card' AND w.week BETWEEN ? AND ?
        ORDER BY w.ordered_at, w.order_id, l.line_id""",
        [first, last],
    )
    popular = workspace.analytic.frame(
        f"""WITH weeks AS (SELECT o.order_id, {WEEK_SQL} AS week FROM orders o)
        SELECT l.sku, count(*) AS lines FROM weeks w JOIN order_lines l USING (order_id)
        WHERE w.week <= ? GROUP BY l.sku ORDER BY l.sku""",
        [protocol.history_weeks],
    )
    rng = np.random.default_rng(0)
    weights = popular["lines"].to_numpy(np.float64)
    drawn = rng.choice(
        popular["sku"].to_numpy(object),
        size=len(positives) * NEGATIVES_PER_POSITIVE,
        p=weights / weights.sum(),
    )
    negatives = positives.loc[positives.index.repeat(NEGATIVES_PER_POSITIVE)].assign(sku=drawn)
    labels = pd.concat([positives.assign(label=1), negatives.assign(label=0)], ignore_index=True)
    return labels.astype({"person_id": object, "sku": object})


def forecaster_labels(workspace: Workspace, protocol: Protocol) -> pd.DataFrame:
    """The best-selling products (by purchase lines) as of the start of each week."""
    first, last = protocol.forecast_weeks
    return workspace.analytic.frame(
        f"""WITH weeks AS (SELECT o.order_id, o.ordered_at, {WEEK_SQL} AS week FROM orders o),
        starts AS (SELECT week, CAST(CAST(min(ordered_at) AS DATE) AS TIMESTAMP) AS as_of
            FROM weeks WHERE week BETWEEN ? AND ? GROUP BY week),
        top AS (SELECT l.sku FROM weeks w JOIN order_lines l USING (order_id)
            WHERE w.week BETWEEN ? AND ? GROUP BY l.sku ORDER BY count(*) DESC, l.sku LIMIT ?)
        SELECT top.sku, starts.as_of FROM top CROSS JOIN starts ORDER BY starts.as_of, top.sku""",
        [first, last, first, last, protocol.forecast_products],
    ).astype({"sku": object})


def _set_names(sets: Sequence[FeatureSet], entities: Sequence[str]) -> list[str]:
    return [s.name for s in sets if s.entity in entities]


def _build(
    workspace: Workspace, labels: pd.DataFrame, sets: list[str] | None, name: str
) -> dict[str, Any]:
    from shelfwise.features.store import FeatureStore

    store = FeatureStore(workspace)
    started = time.perf_counter()
    frame = store.training_frame(labels, sets)
    seconds = time.perf_counter() - started
    features = [c for c in frame.columns if c not in labels.columns]
    store.offline.close()
    progress(f"{name}: {len(frame):,} rows x {len(features)} features in {seconds:.1f}s")
    return {
        f"build_seconds_{name}": round(seconds, 3),
        f"{name}_rows": len(frame),
        f"{name}_features": len(features),
    }


def _percentiles(request: Callable[[int], object], protocol: Protocol) -> tuple[float, float]:
    for index in range(protocol.warmup):
        request(index)
    spent = np.empty(protocol.requests)
    for index in range(protocol.requests):
        started = time.perf_counter_ns()
        request(index)
        spent[index] = time.perf_counter_ns() - started
    p50, p99 = np.percentile(spent / 1e6, [50, 99])
    return round(float(p50), 4), round(float(p99), 4)


def _latencies(store: FeatureStore, protocol: Protocol, prefix: str) -> dict[str, Any]:
    """Milliseconds per online request: one person's vector, 200 products' vectors."""
    analytic = store.workspace.analytic
    persons = analytic.frame(
        "SELECT DISTINCT person_id FROM person_map WHERE person_id IS NOT NULL ORDER BY 1"
    )["person_id"].to_numpy(object)
    skus = analytic.frame("SELECT sku FROM products ORDER BY sku")["sku"].to_numpy(object)
    total = protocol.warmup + protocol.requests
    rng = np.random.default_rng(0)
    chosen = rng.choice(persons, total)
    baskets = [
        rng.choice(skus, PRODUCTS_PER_REQUEST, replace=len(skus) < PRODUCTS_PER_REQUEST)
        for _ in range(total)
    ]
    person_sets = _set_names(store.sets, PERSON_ENTITIES)
    product_sets = _set_names(store.sets, PRODUCT_ENTITIES)

    def person(index: int) -> object:
        rows = {"person_id": np.array([chosen[index]], dtype=object)}
        return store.vector_columns(rows, as_of=np.array([time.time()]), sets=person_sets)

    def products(index: int) -> object:
        now = np.full(PRODUCTS_PER_REQUEST, time.time())
        return store.vector_columns({"sku": baskets[index]}, as_of=now, sets=product_sets)

    layout = store.layouts["sku"]

    def raw_rows(index: int) -> object:
        keys = [str(k) for k in baskets[index]]
        return store.backend.get_rows(layout.group, keys, layout.width)

    p50, p99 = _percentiles(person, protocol)
    q50, q99 = _percentiles(products, protocol)
    r50, r99 = _percentiles(raw_rows, protocol)
    progress(f"{_where(prefix)}: person p50 {p50:.3f} ms, 200 products p50 {q50:.3f} ms")
    return {
        f"{prefix}person_vector_p50_ms": p50,
        f"{prefix}person_vector_p99_ms": p99,
        f"{prefix}products200_p50_ms": q50,
        f"{prefix}products200_p99_ms": q99,
        # Baseline in the same run: reading the same 200 rows, nothing computed.
        f"{prefix}rows200_read_p50_ms": r50,
        f"{prefix}rows200_read_p99_ms": r99,
    }


def _ingest(base: FeatureStore, url: str, protocol: Protocol, prefix: str) -> dict[str, Any]:
    """The streaming sets as of the replay's start, then the replay through ``ingest``."""
    from shelfwise.features.parity import order_batches, replayable

    store = base.using(url)
    sets = [s.name for s in store.sets if s.streaming or s.static]
    start = protocol.replay_from
    store.materialise(as_of=start.to_pydatetime(), sets=sets)
    end = start + pd.Timedelta(days=protocol.replay_days)
    interactions = replayable(store, start, end)
    batches = order_batches(interactions, protocol.batch_rows)
    spent = []
    for batch in batches:
        started = time.perf_counter()
        store.ingest(batch)
        spent.append(time.perf_counter() - started)
    single = _single_events(store, interactions, protocol)
    store.close()
    rate = len(interactions) / sum(spent) if spent else 0.0
    progress(f"{_where(prefix)} ingest: {len(interactions):,} rows, {rate:,.0f} rows/s")
    return {
        f"{prefix}ingest_events_per_s": round(rate, 1),
        f"{prefix}ingest_rows": len(interactions),
        f"{prefix}ingest_batches": len(batches),
        f"{prefix}ingest_batch_p50_ms": round(float(np.median(spent)) * 1e3, 3) if spent else 0.0,
        f"{prefix}ingest_one_event_p50_ms": single[0],
        f"{prefix}ingest_one_event_p99_ms": single[1],
    }


def _single_events(
    store: FeatureStore, interactions: pd.DataFrame, protocol: Protocol
) -> tuple[float, float]:
    """Milliseconds from one browsing event's arrival to its features being readable: the
    event alone through ``ingest``, as an API call would send it."""
    views = interactions[interactions["kind"] != "purchase"].head(protocol.single_events)
    if views.empty:
        return 0.0, 0.0
    spent = []
    for index in range(len(views)):
        event = views.iloc[[index]].assign(event_at=views["event_at"].max())
        started = time.perf_counter_ns()
        store.ingest(event)
        spent.append(time.perf_counter_ns() - started)
    p50, p99 = np.percentile(np.asarray(spent) / 1e6, [50, 99])
    return round(float(p50), 3), round(float(p99), 3)


def _online(store: FeatureStore, protocol: Protocol, prefix: str) -> dict[str, Any]:
    started = time.perf_counter()
    report = store.materialise()
    seconds = time.perf_counter() - started
    progress(f"{_where(prefix)}: materialised as of {report['as_of']} in {seconds:.1f}s")
    figures: dict[str, Any] = {f"{prefix}materialise_seconds": round(seconds, 3)}
    if not prefix:
        figures["materialise_states_seconds"] = round(sum(store.offline.build_seconds.values()), 3)
        freshness = store.freshness()
        figures["freshness"] = {name: bool(info["ok"]) for name, info in freshness.items()}
        figures["freshness_ok"] = all(figures["freshness"].values())
        figures["materialised_entities"] = {
            name: info["entities"] for name, info in report["sets"].items()
        }
    figures.update(_latencies(store, protocol, prefix))
    return figures


def _redis(base: FeatureStore, protocol: Protocol) -> dict[str, Any]:
    """The online figures again with Redis as the online store (states already built)."""
    import redis

    url = os.environ.get("SHELFWISE_BENCH_REDIS_URL", REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        client.flushdb()
        figures = _online(base.using(url), protocol, "redis_")
        client.flushdb()
        figures.update(_ingest(base, url, protocol, "redis_"))
        client.flushdb()
    except (redis.exceptions.RedisError, OSError) as error:
        progress(f"Redis at {url} failed: {error}")
        return {"redis_error": f"{url}: {error}"}
    finally:
        client.close()
    return figures


def _where(prefix: str) -> str:
    return "redis" if prefix else "memory"


def run(options: BenchOptions) -> dict[str, Any]:
    from shelfwise.features.store import FeatureStore

    protocol = SMOKE if options.smoke else FULL
    with tempfile.TemporaryDirectory(prefix="shelfwise-bench-") as tmp:
        workspace = bench_workspace(options, Path(tmp))
        try:
            progress("recommender training frame")
            labels = recommender_labels(workspace, protocol)
            figures = _build(workspace, labels, None, "recommender")
            progress("forecaster training frame")
            sets = _set_names(RETAIL_FEATURE_SETS, FORECAST_ENTITIES)
            figures.update(
                _build(workspace, forecaster_labels(workspace, protocol), sets, "forecaster")
            )
            figures["repeats"] = 1
            base = FeatureStore(workspace, online_url="memory://")
            figures.update(_online(base, protocol, ""))
            figures.update(_ingest(base, "memory://", protocol, ""))
            figures.update(_redis(base, protocol))
            figures["requests"] = protocol.requests
            base.offline.close()
        finally:
            workspace.close()
    return {"figures": figures}
