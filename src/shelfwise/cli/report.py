"""Human-readable reports for the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from shelfwise.quickstart import QuickstartReport


def print_quickstart(console: Console, report: QuickstartReport) -> None:
    loaded = Table(
        "source", "table", "rows in", "accepted", "quarantined", "seconds",
        title="The Complete Journey -> shelfwise contract",
    )  # fmt: skip
    for item in report.loaded:
        loaded.add_row(
            item.name,
            item.table,
            f"{item.rows_in:,}",
            f"{item.accepted:,}",
            f"{item.quarantined:,}" if item.quarantined else "0",
            "already loaded" if item.skipped else f"{item.seconds:.1f}",
        )
    console.print(loaded)
    if report.quarantined:
        why = Table("table", "reason", "rows", title="quarantined, and why")
        for table, reasons in report.quarantined.items():
            for reason, count in reasons.items():
                why.add_row(table, reason, f"{count:,}")
        console.print(why)
        examples = [
            (item.name, example)
            for item in report.loaded
            for samples in item.examples.values()
            for example in samples[:1]
        ]
        for name, example in examples:
            console.print(f"  e.g. {name} {example}")
        console.print("  (all of them: `shelfwise quarantine`)")
    if report.identity:
        _print_identity(console, report.identity)
    if report.features:
        _print_features(console, report.features)
    if report.recommender:
        _print_recommender(console, report.recommender)
    if report.forecaster:
        _print_forecaster(console, report.forecaster)
    merchandising = report.merchandising
    if merchandising.get("written"):
        names = merchandising["excluded_categories"]
        console.print(
            f"merchandising: wrote {merchandising['file']}, never recommending "
            f"{len(names)} departments and categories that are not merchandise "
            f"({', '.join(names[:3])}, ...); a running service takes up an edit within 10 s"
        )
    elif merchandising:
        console.print(f"merchandising: {merchandising['file']} kept as it is")
    checks = Table("check", "result", title="checks")
    for name, check in report.checks.items():
        mark = "[green]ok[/green]" if check["ok"] else "[red]FAIL[/red]"
        detail = ", ".join(f"{k}={_count(v)}" for k, v in check.items() if k != "ok")
        checks.add_row(name, f"{mark} {detail}")
    console.print(checks)
    console.print(
        f"workspace {report.workspace}: "
        + ", ".join(f"{t} {n:,}" for t, n in report.tables.items() if n)
    )
    stages = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in report.stage_seconds.items())
    console.print(f"done in {report.seconds:.1f}s ({stages})")


def _print_identity(console: Console, identity: dict[str, Any]) -> None:
    view = Table("identity resolution", "", title="one person across every system")
    view.add_row(
        "persons found / true",
        f"{identity['persons_found']:,} / {identity['persons_true']:,} "
        f"(from {identity['records']:,} records; {identity['run']} run)",
    )
    pairs, clusters = identity["pairwise"], identity["clusters"]
    view.add_row(
        "pairwise precision / recall",
        f"{pairs['precision']:.3f} / {pairs['recall']:.3f}",
    )
    view.add_row(
        "cluster precision / recall",
        f"{clusters['precision']:.3f} / {clusters['recall']:.3f} "
        f"(exact persons {clusters['exact_cluster_rate']:.1%})",
    )
    view.add_row(
        "links by rule", ", ".join(f"{k} {v:,}" for k, v in identity["links_by_rule"].items())
    )
    view.add_row("pairs to review", f"{identity['review_queue']:,} (`shelfwise identity review`)")
    sessions = identity["sessions"]
    view.add_row(
        "anonymous events stitched",
        f"{sessions['anonymous_attributed']:,} of {sessions['anonymous_events']:,} "
        f"({sessions['share_attributed']:.1%}), {sessions['attributed_to_right_person']:.1%} "
        "to the right person",
    )
    view.add_row("profiles", f"{identity['profiles']:,} (table person_profiles)")
    console.print(view)


def _print_features(console: Console, features: dict[str, Any]) -> None:
    view = Table("feature store", "", title="features, point in time, the same online")
    view.add_row(
        "feature sets / features",
        f"{features['sets']} / {features['features']} (`shelfwise features list`)",
    )
    parity = features["parity"]
    view.add_row(
        "online = offline after replay",
        f"{'yes' if parity['ok'] else 'NO'}: {parity['replayed_rows']:,} events of "
        f"{parity['start'][:10]}..{parity['end'][:10]} replayed at "
        f"{parity['ingest_rows_per_s']:,.0f}/s; {parity['entities_compared']:,} entities x "
        f"{parity['features_compared']} features compared, "
        f"{len(parity['mismatched'])} features differ",
    )
    entities = features["entities"]
    view.add_row(
        f"online store ({features['online_store']})",
        f"as of {features['materialised_as_of']}: "
        + ", ".join(f"{k} {v:,}" for k, v in entities.items() if v),
    )
    console.print(view)


def _print_recommender(console: Console, recommender: dict[str, Any]) -> None:
    view = Table("recommender", "", title="two-stage recommendations, backtested and registered")
    view.add_row(
        "model",
        f"{recommender['model']} version {recommender['version']} "
        f"({recommender['persons']:,} persons, {recommender['skus']:,} skus, "
        f"{recommender['ranker_features']} ranking features from "
        f"{len(recommender['feature_sets'])} feature sets; "
        f"{recommender.get('new_products', 0):,} new products placed by content)",
    )
    backtest = recommender["backtest"]
    view.add_row(
        f"last four weeks ({backtest['persons']:,} persons)",
        f"ndcg@10 {backtest['ndcg@10']:.3f} (retrieval alone {backtest['retrieval_ndcg@10']:.3f}, "
        f"popularity {backtest['popularity_ndcg@10']:.3f}); recall@20 {backtest['recall@20']:.3f}",
    )
    console.print(view)


def _print_forecaster(console: Console, forecaster: dict[str, Any]) -> None:
    view = Table("forecaster", "", title="weekly demand forecasts, backtested and registered")
    tiers = ", ".join(forecaster["adopted_tiers"]) or "none (the global model everywhere)"
    view.add_row(
        "model",
        f"{forecaster['model']} version {forecaster['version']} ({forecaster['series']:,} "
        f"products to {forecaster['last_week']}, {forecaster['horizon_weeks']} weeks ahead; "
        f"department tiers adopted: {tiers})",
    )
    backtest = forecaster["backtest"]
    view.add_row(
        f"the 4 weeks after {backtest['origin']}",
        f"WAPE {backtest['wape']:.3f} "
        f"(4-week moving average {backtest['moving_average_wape']:.3f});"
        f" MAE {backtest['mae']:.2f}; 80% intervals cover {backtest['coverage']:.1%}",
    )
    console.print(view)


def _count(value: Any) -> str:
    """A check's figure as the table shows it: counts with separators, rates to 3 places."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"
