"""Human-readable reports for the terminal."""

from __future__ import annotations

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
    checks = Table("check", "result", title="checks")
    for name, check in report.checks.items():
        mark = "[green]ok[/green]" if check["ok"] else "[red]FAIL[/red]"
        detail = ", ".join(f"{k}={v:,}" for k, v in check.items() if k != "ok")
        checks.add_row(name, f"{mark} {detail}")
    console.print(checks)
    console.print(
        f"workspace {report.workspace}: "
        + ", ".join(f"{t} {n:,}" for t, n in report.tables.items() if n)
    )
    stages = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in report.stage_seconds.items())
    console.print(f"done in {report.seconds:.1f}s ({stages})")
