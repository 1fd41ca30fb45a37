"""`shelfwise models ...`: the registry as an operator sees it: what is registered and in
which state, a version's model card, and rolling a model back to its previous champion.

A rollback is a registry move like any other (recorded with who and why, audited); a running
service picks the restored champion up at its next champion check, without a restart.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from shelfwise.cli import WorkspaceOption, _emit, console
from shelfwise.cli import _governed_workspace as _workspace

app = typer.Typer(
    help="The model registry: versions and states, model cards, rollback.",
    no_args_is_help=True,
)


@app.command("list")
def list_models(workspace: WorkspaceOption = None) -> None:
    """Every registered model and each version's state, newest first."""
    ws = _workspace(workspace)
    try:
        models = ws.registry.models()
    finally:
        ws.close()
    view = Table(
        "model", "version", "state", "registered (UTC)", "rollback", title="registered models"
    )
    for model in models:
        for at, entry in enumerate(model["versions"]):
            rollback = ""
            if entry["version"] == model["champion"]:
                target = model["rollback_to"]
                rollback = f"to v{target}" if target else "none"
            view.add_row(
                model["model"] if at == 0 else "",
                entry["version"],
                entry["state"] or "",
                entry["registered_at"],
                rollback,
            )
    console.print(view)
    for model in models:
        if model["champion"] and model["rollback_refused"]:
            console.print(f"no rollback: {model['rollback_refused']}")
    _emit(models)


@app.command()
def card(
    model: Annotated[str, typer.Argument(help="The registered model, e.g. recommender.")],
    version: Annotated[str, typer.Argument(help="Its version.")],
    as_json: Annotated[bool, typer.Option("--json", help="The card as JSON.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """A version's model card: purpose, owner, lineage, metrics, limitations, history."""
    from shelfwise.lifecycle import VersionNotFound
    from shelfwise.lifecycle.cards import card_markdown, model_card

    ws = _workspace(workspace)
    try:
        found = model_card(ws.registry, model, version)
    except VersionNotFound as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    finally:
        ws.close()
    if as_json:
        _emit(found)
    else:
        print(card_markdown(found), flush=True)


@app.command()
def rollback(
    model: Annotated[str, typer.Argument(help="The registered model, e.g. recommender.")],
    reason: Annotated[str, typer.Option(help="Why: kept in the history and the audit log.")],
    actor: Annotated[str | None, typer.Option(help="Who (default: the system user).")] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Make the previous champion the champion again (the current one is archived)."""
    from shelfwise.lifecycle import TransitionRefused, VersionNotFound

    ws = _workspace(workspace)
    try:
        registry = ws.registry
        before = registry.tracker.get_alias_version(model, "champion")
        restored = registry.rollback(model, actor=actor or getpass.getuser(), reason=reason)
    except (TransitionRefused, VersionNotFound) as error:
        console.print(f"[red]{error}[/red]")
        _emit({"error": str(error)})
        raise typer.Exit(1) from None
    finally:
        ws.close()
    console.print(f"{model}: v{restored} is the champion again (v{before} archived)")
    _emit({"model": model, "champion": restored, "archived": before})
