"""`shelfwise bench NAME`: benchmarks that print one JSON object as the last line of stdout.

Each benchmark is a module under :mod:`shelfwise.bench` with a function
``run(options: BenchOptions) -> dict``. The runner adds ``benchmark`` and ``seconds`` and
prints the JSON; progress goes to stderr. ``options.smoke`` asks for a tiny run that the tests
execute, so that no benchmark can rot unnoticed.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shelfwise.settings import Settings

# name -> module path; modules are imported on first use so `--help` stays fast.
BENCHMARKS: dict[str, str] = {
    "features": "shelfwise.bench.features",
    "forecast": "shelfwise.bench.forecast",
    "identity": "shelfwise.bench.identity",
    "ingest": "shelfwise.bench.ingest",
    "recommend": "shelfwise.bench.recommend",
    "serve": "shelfwise.bench.serve",
    "tracking": "shelfwise.bench.tracking",
}


@dataclass(frozen=True)
class BenchOptions:
    """What every benchmark receives."""

    settings: Settings
    protocol: str | None = None
    datasets: Path | None = None
    smoke: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def progress(message: str) -> None:
    """Progress to stderr, so that stdout's last line stays the JSON result."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def resolve(name: str) -> Callable[[BenchOptions], dict[str, Any]]:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    module = importlib.import_module(BENCHMARKS[name])
    runner: Callable[[BenchOptions], dict[str, Any]] = module.run
    return runner


def run_benchmark(name: str, options: BenchOptions) -> dict[str, Any]:
    """Run benchmark ``name`` and return its result with ``benchmark`` and ``seconds`` set."""
    runner = resolve(name)
    started = time.perf_counter()
    result = runner(options)
    out: dict[str, Any] = {"benchmark": name}
    out.update(result)
    out.setdefault("seconds", round(time.perf_counter() - started, 3))
    if options.smoke:
        out["smoke"] = True
    return out


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=False, default=str)
