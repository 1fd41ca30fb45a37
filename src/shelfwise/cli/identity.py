"""`shelfwise identity ...`: resolve, review, explain and roll back identity resolution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Identity resolution: persons across systems.", no_args_is_help=True)
console = Console(stderr=True)

WorkspaceOption = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace folder.")
]


def _emit(result: Any) -> None:
    print(json.dumps(result, default=str), flush=True)


def _resolver(workspace: Path | None) -> Any:
    from shelfwise.cli import _existing_workspace
    from shelfwise.identity.resolver import IdentityResolver

    return IdentityResolver(_existing_workspace(workspace))


@app.command()
def resolve(
    retrain: Annotated[bool, typer.Option(help="Train a new model version first.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Link the workspace's customer records into persons (new records only, unless --retrain)."""
    resolver = _resolver(workspace)
    with console.status("resolving identities") as status:
        report = resolver.resolve(retrain=retrain, progress=lambda m: status.update(m))
    console.print(
        f"{report.kind} run {report.run_id}: {report.records:,} records "
        f"({report.new_records:,} new) -> {report.persons:,} persons; "
        f"{report.accepted_links:,} links {report.by_rule}; {report.merges} merges, "
        f"{report.splits} splits; {report.review_items} pairs to review"
    )
    resolver.workspace.close()
    _emit(report.to_dict())


@app.command()
def review(
    limit: Annotated[int, typer.Option(help="Pairs to show.")] = 20,
    workspace: WorkspaceOption = None,
) -> None:
    """The pairs waiting for a reviewer: grey-band or vetoed links of the current run."""
    resolver = _resolver(workspace)
    queue = resolver.review_queue()
    view = Table("left", "right", "probability", "vetoed", title=f"{len(queue):,} to review")
    for row in queue.head(limit).itertuples(index=False):
        view.add_row(
            row.unique_id_l, row.unique_id_r, f"{row.match_probability:.3f}", str(row.vetoed)
        )
    console.print(view)
    resolver.workspace.close()
    pairs = queue.head(limit).drop(columns=["weights"]).to_dict(orient="records")
    _emit({"open": len(queue), "pairs": pairs, "explain": "shelfwise identity explain LEFT RIGHT"})


@app.command()
def decide(
    left: Annotated[str, typer.Argument(help="A record, as source_system:source_id.")],
    right: Annotated[str, typer.Argument(help="The other record.")],
    decision: Annotated[str, typer.Argument(help="confirm or split.")],
    reviewer: Annotated[str, typer.Option(help="Who decides.")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    workspace: WorkspaceOption = None,
) -> None:
    """Confirm or split a pair; the decision holds on every later run."""
    resolver = _resolver(workspace)
    try:
        resolver.decide(left, right, decision, reviewer, reason)
    except ValueError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(2) from error
    finally:
        resolver.workspace.close()
    _emit({"decided": [left, right], "decision": decision, "reviewer": reviewer})


@app.command()
def explain(
    left: Annotated[str, typer.Argument(help="A record, as source_system:source_id.")],
    right: Annotated[str, typer.Argument(help="The other record.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Why two records are (or are not) one person."""
    resolver = _resolver(workspace)
    try:
        explanation = resolver.explain(left, right)
    finally:
        resolver.workspace.close()
    console.print(explanation.get("because", ""))
    _emit(explanation)


@app.command()
def rollback(workspace: WorkspaceOption = None) -> None:
    """Undo the current run: the one before it, and its model version, become current."""
    resolver = _resolver(workspace)
    try:
        result = resolver.rollback()
    except LookupError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    finally:
        resolver.workspace.close()
    console.print(f"rolled back {result['rolled_back']}; current is {result['current']}")
    _emit(result)


@app.command()
def runs(workspace: WorkspaceOption = None) -> None:
    """Every identity run: kind, status, model version and counts."""
    resolver = _resolver(workspace)
    frame = resolver.runs().drop(columns=["stats"])
    resolver.workspace.close()
    view = Table("run", "kind", "status", "version", "records", "persons", "merges", "splits")
    for row in frame.itertuples(index=False):
        view.add_row(
            row.run_id,
            row.kind,
            row.status,
            str(row.model_version),
            f"{row.records:,}",
            f"{row.persons:,}",
            str(row.merges),
            str(row.splits),
        )
    console.print(view)
    _emit({"runs": frame.to_dict(orient="records")})
