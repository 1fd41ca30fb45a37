"""`shelfwise bench ingest`: the price of the contract, against a plain copy of the same rows.

Full run: The Complete Journey's 1,469,307 transaction lines into ``order_lines`` (types,
bounds, references to orders and products, duplicate keys), timed against DuckDB copying the
same source without any checks, in the same run; and a file with planted broken rows, to show
that every row is accounted for. Smoke run: the broken file alone, small.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.bench import BenchOptions, progress
from shelfwise.data.ingest import ingest
from shelfwise.data.store import AnalyticStore

BROKEN_KINDS = ("bad_date", "negative_quantity", "text_quantity", "unknown_sku", "missing_key")


def broken_events(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Products and an events file in which one row in ten is broken in a known way."""
    rng = np.random.default_rng(seed)
    skus = [f"sku-{i}" for i in range(200)]
    products = pd.DataFrame({"sku": skus, "title": [f"product {i}" for i in range(200)]})
    times = pd.Timestamp("2017-01-01") + pd.to_timedelta(rng.integers(0, 365 * 86400, rows), "s")
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(rows)],
            "occurred_at": times.strftime("%Y-%m-%d %H:%M:%S"),
            "source_system": "web_shop",
            "event_type": rng.choice(["view", "add_to_cart", "purchase"], rows),
            "customer_ref": [f"c{i}" for i in rng.integers(0, 500, rows)],
            "sku": rng.choice(skus, rows),
            "quantity": rng.integers(1, 5, rows).astype(str),
        }
    )
    broken = rng.choice(rows, size=rows // 10, replace=False)
    kinds = rng.choice(len(BROKEN_KINDS), size=len(broken))
    for row, kind in zip(broken, kinds, strict=True):
        name = BROKEN_KINDS[kind]
        if name == "bad_date":
            events.loc[row, "occurred_at"] = "2017-02-30 25:61:00"
        elif name == "negative_quantity":
            events.loc[row, "quantity"] = "-3"
        elif name == "text_quantity":
            events.loc[row, "quantity"] = "three"
        elif name == "unknown_sku":
            events.loc[row, "sku"] = "no-such-sku"
        else:
            events.loc[row, "event_id"] = ""
    return products, events, len(broken)


def _broken_file_figures(folder: Path, rows: int) -> dict[str, Any]:
    products, events, planted = broken_events(rows)
    path = folder / "events.csv"
    events.to_csv(path, index=False)
    store = AnalyticStore(f"duckdb:///{folder / 'broken.duckdb'}")
    ingest(store, "products", products)
    report = ingest(store, "events", path)
    again = ingest(store, "events", path)
    store.close()
    return {
        "broken_file_rows_in": report.rows_in,
        "broken_file_planted": planted,
        "broken_file_quarantined": report.quarantined,
        "broken_file_balanced": report.rows_in == report.accepted + report.quarantined,
        "broken_file_reingest_inserted": again.inserted,
        "broken_file_reasons": report.reasons,
    }


def _order_lines_figures(folder: Path, repeats: int) -> dict[str, Any]:
    from shelfwise.datasets import complete_journey

    sources = {item.name: item for item in complete_journey.sources(include_promotions=False)}
    ours, baseline = [], []
    rows = 0
    for attempt in range(repeats):
        store = AnalyticStore(f"duckdb:///{folder / f'cj{attempt}.duckdb'}")
        for name in ("stores", "products", "orders"):
            ingest(store, sources[name].table, sources[name].source)
        lines = sources["order_lines"].source
        started = time.perf_counter()
        report = ingest(store, "order_lines", lines)
        ours.append(time.perf_counter() - started)
        rows = report.rows_in
        started = time.perf_counter()
        store.execute(f"CREATE TABLE plain_copy AS {lines.sql}")
        baseline.append(time.perf_counter() - started)
        progress(f"order_lines {attempt + 1}: {ours[-1]:.2f}s, plain copy {baseline[-1]:.2f}s")
        store.close()
    ours_p50, copy_p50 = statistics.median(ours), statistics.median(baseline)
    return {
        "order_lines_rows": rows,
        "order_lines_accepted": report.accepted,
        "order_lines_quarantined": report.quarantined,
        "shelfwise_seconds_p50": round(ours_p50, 3),
        "shelfwise_rows_per_s_p50": round(rows / ours_p50),
        "plain_copy_seconds_p50": round(copy_p50, 3),
        "contract_overhead_x": round(ours_p50 / copy_p50, 2),
        "repeats": repeats,
    }


def run(options: BenchOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shelfwise-bench-") as tmp:
        folder = Path(tmp)
        progress("broken file")
        figures = _broken_file_figures(folder, 2_000 if options.smoke else 100_000)
        if not options.smoke:
            progress("Complete Journey order lines")
            figures.update(_order_lines_figures(folder, repeats=3))
    return {"figures": figures}
