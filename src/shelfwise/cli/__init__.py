"""The `shelfwise` command line.

Human-readable output goes to stderr; commands whose result a script may want (ingest, bench,
quickstart) print one JSON object as the last line of stdout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shelfwise import __version__

app = typer.Typer(
    name="shelfwise",
    help="A retailer's production ML platform: data, identity, features, models, lifecycle.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: settings / SHELFWISE_WORKSPACE)."
    ),
]


def _quiet_libraries() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Models load from the workspace's own registry: a progress bar per load is only noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _workspace(path: Path | None) -> Any:
    from pydantic import ValidationError

    from shelfwise.settings import Settings
    from shelfwise.workspace import Workspace

    try:
        settings = Settings(workspace=path) if path is not None else Settings()
    except ValidationError as error:
        console.print(f"[red]invalid settings:[/red] {error}")
        raise typer.Exit(2) from error
    return Workspace(settings)


def _existing_workspace(path: Path | None) -> Any:
    """The workspace for a command that reads one: refused (exit 2) where there is none yet,
    rather than an empty one made at a mistyped path and reported as empty."""
    ws = _workspace(path)
    if not ws.analytic.exists:
        console.print(
            f"[red]no workspace at {ws.settings.workspace}[/red]: create one with "
            "shelfwise init (or shelfwise quickstart), or point --workspace at one"
        )
        raise typer.Exit(2)
    return ws


def _governed_workspace(path: Path | None) -> Any:
    """The workspace for a registry or job command, once its operational database is there
    (the history and locks live in it); refused (exit 1, the reason as the JSON line) where
    it is not."""
    ws = _workspace(path)
    ok, detail = ws.operational.check()
    if not ok:
        ws.close()
        console.print(f"[red]{detail}[/red]; `shelfwise init` makes a workspace")
        _emit({"error": detail})
        raise typer.Exit(1)
    return ws


def _emit(result: Any) -> None:
    print(json.dumps(result, default=str), flush=True)


def _version(value: bool) -> None:
    if value:
        print(f"shelfwise {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    _quiet_libraries()


@app.command()
def init(workspace: WorkspaceOption = None) -> None:
    """Create the workspace: contract tables, operational tables (migrated) and MLflow store."""
    ws = _workspace(workspace)
    result = ws.init()
    for key, value in result.items():
        console.print(f"{key:>22}: {value}")
    _emit(result)


@app.command()
def ingest(
    table: Annotated[str, typer.Argument(help="Contract table, e.g. events, products, orders.")],
    path: Annotated[
        str | None, typer.Argument(help="CSV, Parquet or JSON-lines file (omit with --sql).")
    ] = None,
    sql: Annotated[str | None, typer.Option(help="A SQL query to read instead of a file.")] = None,
    url: Annotated[str | None, typer.Option(help="SQLAlchemy URL the --sql query runs on.")] = None,
    column: Annotated[
        list[str] | None,
        typer.Option("--map", help="Rename a source column: SOURCE=CONTRACT (repeatable)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Validate a file or query against the contract; accept good rows, quarantine the rest."""
    from shelfwise.data.sources import SourceError, from_sql
    from shelfwise.data.validation import ContractError

    column_map = {}
    for pair in column or []:
        if "=" not in pair:
            console.print(f"[red]--map expects SOURCE=CONTRACT, got {pair!r}[/red]")
            raise typer.Exit(2)
        source, target = pair.split("=", 1)
        column_map[source.strip()] = target.strip()
    if (path is None) == (sql is None):
        console.print("[red]give either a PATH or --sql QUERY with --url URL[/red]")
        raise typer.Exit(2)
    ws = _workspace(workspace)
    try:
        ws.settings.workspace.mkdir(parents=True, exist_ok=True)
        data: Any = from_sql(url or ws.settings.operational, sql) if sql else path
        report = ws.ingest(table, data, column_map=column_map or None)
    except (ContractError, SourceError, ValueError) as error:
        console.print(f"[red]refused:[/red] {error}")
        _emit({"table": table, "error": str(error)})
        raise typer.Exit(1) from error
    finally:
        ws.close()
    console.print(
        f"{report.table}: {report.rows_in:,} rows in, {report.accepted:,} accepted "
        f"({report.inserted:,} new, {report.updated:,} updated, {report.unchanged:,} unchanged), "
        f"{report.quarantined:,} quarantined in {report.seconds:.2f}s"
    )
    for reason, count in report.reasons.items():
        console.print(f"  [yellow]{count:>8,}[/yellow]  {reason}")
        for example in report.examples.get(reason, []):
            console.print(f"            e.g. {example}")
    for drift in report.drift:
        console.print(f"  [cyan]schema drift[/cyan] {drift}")
    _emit(report.to_dict())


@app.command()
def quarantine(
    table: Annotated[str | None, typer.Argument(help="Only this table.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    workspace: WorkspaceOption = None,
) -> None:
    """Show quarantined rows: where they came from and why they were refused."""
    ws = _existing_workspace(workspace)
    ws.analytic.create_tables()
    summary = ws.analytic.quarantine_summary()
    view = Table("table", "reason", "rows", title="quarantine")
    for row in summary.itertuples(index=False):
        if table is None or row.table_name == table:
            view.add_row(str(row.table_name), str(row.reason), f"{row.rows:,}")
    console.print(view)
    rows = ws.analytic.quarantine(table, limit=limit)
    for row in rows.itertuples(index=False):
        console.print(f"{row.table_name} {row.source} row {row.source_row}: {list(row.messages)}")
    ws.close()


@app.command()
def doctor(workspace: WorkspaceOption = None) -> None:
    """Check each configured backend and say what is reachable."""
    ws = _workspace(workspace)
    checks = ws.doctor()
    view = Table("check", "status", "detail", title=f"shelfwise {__version__} doctor")
    for check in checks:
        status = (
            "[green]ok[/green]"
            if check.ok
            else ("[red]FAIL[/red]" if check.required else "[yellow]missing[/yellow]")
        )
        view.add_row(check.name, status, escape(check.detail))  # "shelfwise[spark]" is text
    console.print(view)
    failed = [c.name for c in checks if c.required and not c.ok]
    _emit({"ok": not failed, "failed": failed, "checks": [c.__dict__ for c in checks]})
    if failed:
        raise typer.Exit(1)


@app.command()
def datasets(
    datasets_dir: Annotated[
        Path | None, typer.Option("--datasets", help="Benchmark datasets folder.")
    ] = None,
) -> None:
    """List the datasets shelfwise can load, and from where."""
    from shelfwise.datasets import DATASETS, available_datasets
    from shelfwise.settings import Settings

    folder = datasets_dir or Settings().datasets_dir
    view = Table("dataset", "available", "from", "feeds", title="datasets")
    statuses = available_datasets(folder)
    for status in statuses:
        info = DATASETS[status.name]
        where = status.location if status.available else f"missing: {', '.join(status.missing)}"
        view.add_row(
            status.name,
            "[green]yes[/green]" if status.available else "[red]no[/red]",
            escape(str(where)),
            ", ".join(info.contract_tables) or "(raw loader only)",
        )
    console.print(view)
    _emit({"datasets": [s.__dict__ for s in statuses]})


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark name, e.g. ingest, recommend, serve.")],
    protocol: Annotated[str | None, typer.Option(help="Protocol (see BENCHMARKS.md).")] = None,
    datasets_dir: Annotated[
        Path | None, typer.Option("--datasets", help="Benchmark datasets folder.")
    ] = None,
    smoke: Annotated[bool, typer.Option(help="A tiny run, as the tests do.")] = False,
    workspace: Annotated[
        Path | None,
        typer.Option(
            help="A Complete Journey workspace: copied (features), kept between runs "
            "(recommend), or served (serve: built by the quickstart where it has no champion)."
        ),
    ] = None,
    interactions: Annotated[
        Path | None, typer.Option(help="recommend: your own interaction log (CSV or Parquet).")
    ] = None,
    user_col: Annotated[str | None, typer.Option(help="recommend: its user column.")] = None,
    item_col: Annotated[str | None, typer.Option(help="recommend: its item column.")] = None,
    time_col: Annotated[str | None, typer.Option(help="recommend: its time column.")] = None,
    split: Annotated[
        str, typer.Option(help="recommend: last-per-user or global (with --test-from).")
    ] = "last-per-user",
    test_from: Annotated[
        str | None, typer.Option(help="recommend: first test time of a global split.")
    ] = None,
    exclude_seen: Annotated[
        bool,
        typer.Option(
            help="recommend: leave each user's training items out of their lists (a ratings "
            "log, where nobody rates an item twice)."
        ),
    ] = False,
) -> None:
    """Run a benchmark; its last stdout line is one JSON object."""
    from shelfwise.bench import BenchOptions, dumps, run_benchmark
    from shelfwise.settings import Settings

    settings = Settings()
    options = BenchOptions(
        settings=settings,
        protocol=protocol,
        datasets=datasets_dir or settings.datasets_dir,
        smoke=smoke,
        extra={
            key: str(value)
            for key, value in {
                "workspace": workspace,
                "interactions": interactions,
                "user_col": user_col,
                "item_col": item_col,
                "time_col": time_col,
                "split": split,
                "test_from": test_from,
                "exclude_seen": "true" if exclude_seen else None,
            }.items()
            if value is not None
        },
    )
    try:
        result = run_benchmark(name, options)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    print(dumps(result), flush=True)


@app.command()
def quickstart(
    workspace: WorkspaceOption = None,
    reload: Annotated[
        bool, typer.Option(help="Ingest every source again even if already loaded.")
    ] = False,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Stop after the summary instead of serving.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
) -> None:
    """Build a workspace from The Complete Journey and validate it, resolve its households
    into persons, build its features (online = offline, proven by replay), train and register
    the recommender and the demand forecaster, summarise it all, then serve them.

    Rerun it to skip what is already loaded (--reload to load again)."""
    from shelfwise.cli.report import print_quickstart
    from shelfwise.quickstart import run_quickstart

    ws = _workspace(workspace)
    with console.status("starting") as status:
        report = run_quickstart(ws, reload=reload, progress=lambda m: status.update(m))
    ws.close()
    print_quickstart(console, report)
    summary = report.to_dict()
    summary.pop("loaded")
    _emit(summary)
    if not report.ok:
        raise typer.Exit(1)
    if not no_serve:
        _serve(_workspace(workspace), "127.0.0.1", port)


@app.command()
def serve(
    workspace: WorkspaceOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the workspace's champion models over HTTP (the decision API, /docs for its schema)."""
    _serve(_workspace(workspace), host, port)


def _serve(ws: Any, host: str, port: int) -> None:
    import gc

    import duckdb
    import uvicorn

    from shelfwise.serve.app import create_app
    from shelfwise.serve.auth import keys_file
    from shelfwise.serve.merchandising import MerchandisingError
    from shelfwise.serve.workspace import ChampionWatcher, keyring_of, tenant_from_workspace
    from shelfwise.tracing import configure
    from shelfwise.workspace import Workspace

    configure(ws.settings.tracing)
    folder = ws.settings.workspace
    if not ws.analytic.exists:  # not opened: it would be made
        _nothing_to_serve(folder, "there is no workspace there")
    # The service only reads the analytic store: read-only, so that its scheduled jobs (each a
    # process of its own) and other readers can open it beside the service.
    ws.close()
    ws = Workspace(ws.settings.model_copy(update={"analytic_read_only": True}))
    with console.status("loading the champion, the catalogue and the online features"):
        try:
            tenant = tenant_from_workspace(ws)
        except duckdb.CatalogException as error:  # the contract's tables were never made
            _nothing_to_serve(folder, str(error).splitlines()[0], error)
        except LookupError as error:  # the tables are empty: no features to materialise
            _nothing_to_serve(folder, str(error), error)
        except MerchandisingError as error:  # read first: the user's file to fix
            console.print(f"[red]{escape(str(error))}[/red]")
            raise typer.Exit(2) from error
        keys, made = keyring_of(ws)
    if made:
        console.print(f"made an admin API key for tenant {tenant.name!r}: {made}")
        console.print(
            f"(kept in {keys_file(ws.settings)}; more with shelfwise keys add NAME --role ...)"
        )
    key = made or "<your API key>"
    base = f"http://{host}:{port}"
    person = str(tenant.served.model.users_[0]) if tenant.served.model is not None else "p1"
    console.print(
        f"serving {tenant.name!r} (model version {tenant.served.version}) on {base}; "
        f"docs at {base}/docs; the reviewers' dashboard at {base}/dashboard/"
    )
    console.print("try:")
    console.print(
        f"  curl -s -X POST {base}/api/v1/recommendations -H 'X-API-Key: {key}' "
        f'-H \'Content-Type: application/json\' -d \'{{"person_id": "{person}", "k": 5}}\'',
        soft_wrap=True,  # one line, so that it pastes into a shell
    )
    console.print(
        f"  curl -s -X POST {base}/api/v1/events -H 'X-API-Key: {key}' "
        f'-H \'Content-Type: application/json\' -d \'{{"kind": "view", "person_id": '
        f'"{person}", "sku": "{tenant.catalogue.skus[0]}", '
        f'"occurred_at": "2026-01-01T12:00:00Z"}}\'',
        soft_wrap=True,  # one line, so that it pastes into a shell
    )
    forecaster = tenant.forecaster
    if forecaster is not None:
        week = forecaster.panel_.future_periods(1)[0].date()
        series = forecaster.panel_.ids[0]
        console.print(
            f"  curl -s -X POST {base}/api/v1/forecasts -H 'X-API-Key: {key}' "
            f'-H \'Content-Type: application/json\' -d \'{{"series_ids": ["{series}"], '
            f'"known": [{{"series_id": "{series}", "period_start": "{week}", '
            f'"display_stores": 50}}]}}\'',
            soft_wrap=True,  # one line, so that it pastes into a shell
        )
    # a promotion, an edited merchandising or keys file: taken up without a restart
    watcher = ChampionWatcher(ws, tenant, keys=keys).start()
    tenant.warm_up()
    gc.collect()
    gc.freeze()  # what loading made lives as long as the service: no collection walks it again
    scheduler = None
    if ws.settings.scheduler:  # the jobs on their schedules, on a thread beside the API
        from shelfwise.lifecycle.scheduler import ProcessRunner, Scheduler

        scheduler = Scheduler(ws, runner=ProcessRunner(ws.settings)).start()
        for schedule, due in scheduler.next_due():
            console.print(
                f"scheduled: {schedule.job} ({schedule.cron} UTC), next at {due:%Y-%m-%d %H:%M}"
            )
    try:
        # No lifespan: the app has no startup or shutdown of its own (the finally below is
        # its shutdown), and a second Ctrl-C during the shutdown cancelled the lifespan task
        # mid-wait, which printed tracebacks.
        uvicorn.run(
            create_app({tenant.name: tenant}, keys),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
        )
    finally:
        if scheduler is not None:
            scheduler.stop()
        watcher.stop()
        tenant.close()
        ws.close()
        # Frozen objects are never collected, not even at exit, where DuckDB's bindings then
        # list every object of theirs still alive as a leak.
        gc.unfreeze()


def _nothing_to_serve(folder: Path, reason: str, error: Exception | None = None) -> NoReturn:
    console.print(f"[red]nothing to serve in {escape(str(folder))}: {escape(reason)}[/red]")
    console.print(
        f"build it first: shelfwise quickstart --workspace {folder} --no-serve "
        "(or ingest your own tables with shelfwise ingest, then shelfwise jobs run retrain "
        "--model recommender)"
    )
    raise typer.Exit(2) from error


def _add_groups() -> None:
    from shelfwise.cli.features import app as features_app
    from shelfwise.cli.identity import app as identity_app
    from shelfwise.cli.jobs import app as jobs_app
    from shelfwise.cli.keys import app as keys_app
    from shelfwise.cli.models import app as models_app

    app.add_typer(identity_app, name="identity")
    app.add_typer(features_app, name="features")
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(models_app, name="models")
    app.add_typer(keys_app, name="keys")


_add_groups()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
