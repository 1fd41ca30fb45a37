"""The quickstart's printed report: every kind of figure a stage's checks may carry."""

from __future__ import annotations

from rich.console import Console

from shelfwise.cli.report import print_quickstart
from shelfwise.quickstart import QuickstartReport


def test_the_report_prints_checks_of_counts_rates_and_names() -> None:
    report = QuickstartReport(workspace="/tmp/ws", tables={"orders": 1234}, seconds=1.5)
    report.checks = {
        "orders rows": {"ok": True, "seen": 1234, "expected": 1234},
        "recommender: beats popularity": {"ok": True, "ndcg@10": 0.4271, "popularity": 0.179},
        "recommender: registered": {"ok": False, "version": "3", "alias": None},
    }
    console = Console(record=True, width=200)
    print_quickstart(console, report)
    text = console.export_text()
    assert "seen=1,234, expected=1,234" in text
    assert "ndcg@10=0.427, popularity=0.179" in text
    assert "FAIL version=3, alias=None" in text
    assert "orders 1,234" in text


def test_the_report_says_where_the_merchandising_file_is() -> None:
    report = QuickstartReport(workspace="/tmp/ws")
    report.merchandising = {
        "file": "/tmp/ws/merchandising.json",
        "written": True,
        "excluded_categories": ["FUEL", "KIOSK-GAS", "COUPON", "COUPON/MISC ITEMS"],
    }
    console = Console(record=True, width=200)
    print_quickstart(console, report)
    text = console.export_text()
    assert "wrote /tmp/ws/merchandising.json, never recommending 4 departments" in text
    assert "(FUEL, KIOSK-GAS, COUPON, ...)" in text
    report.merchandising = {"file": "/tmp/ws/merchandising.json", "written": False}
    console = Console(record=True, width=200)
    print_quickstart(console, report)
    assert "/tmp/ws/merchandising.json kept as it is" in console.export_text()
