"""`shelfwise keys ...`: the service's API keys, each a person or a system with its roles and
tenant.

A key's name is who acts with it: the lifecycle records it as the reviewer of a version and as
the proposer or approver of an experiment (two different names). A key is shown once, when it
is made; the file is readable by its owner alone. A running service reads the file again
within 10 s of a change: a new key counts, and a removed one is refused, without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from shelfwise.cli import WorkspaceOption, _emit, _workspace, console

app = typer.Typer(
    help="The service's API keys: names, roles and tenants (add, list, remove).",
    no_args_is_help=True,
)
TAKEN_UP = "a running service takes this up within 10 s"


def _file(workspace: Path | None) -> Path:
    from shelfwise.serve.auth import keys_file

    ws = _workspace(workspace)
    try:
        path: Path = keys_file(ws.settings)
        return path
    finally:
        ws.close()


def _refuse(message: str) -> NoReturn:
    console.print(f"[red]{message}[/red]")
    _emit({"error": message})
    raise typer.Exit(1)


def _entries(path: Path) -> list[dict[str, Any]]:
    from shelfwise.serve.auth import read_keys

    try:
        return read_keys(path)
    except ValueError as error:
        _refuse(str(error))


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    from shelfwise.serve.auth import write_keys

    try:
        write_keys(path, entries)
    except ValueError as error:
        _refuse(str(error))


@app.command("list")
def list_keys(workspace: WorkspaceOption = None) -> None:
    """Every key's name, tenant and roles (never the key itself)."""
    path = _file(workspace)
    shown = [
        {"name": e["name"], "tenant": e["tenant"], "roles": list(e["roles"])}
        for e in _entries(path)
    ]
    view = Table("name", "tenant", "roles", title=f"API keys in {path}")
    for entry in shown:
        view.add_row(entry["name"], entry["tenant"], ", ".join(entry["roles"]))
    console.print(view)
    _emit(shown)


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="Who acts with it, e.g. ana or checkout-web.")],
    role: Annotated[
        list[str],
        typer.Option("--role", help="reader, writer, reviewer or admin; repeat for more."),
    ],
    tenant: Annotated[str, typer.Option(help="The tenant it reaches.")] = "default",
    workspace: WorkspaceOption = None,
) -> None:
    """Make a key; it is printed once, here."""
    from shelfwise.serve.auth import ROLES, new_key

    unknown = sorted(set(role) - set(ROLES))
    if unknown:
        _refuse(f"--role {', '.join(unknown)}: a role is one of {', '.join(ROLES)}")
    path = _file(workspace)
    entries = _entries(path)
    if name in {e["name"] for e in entries}:
        _refuse(f"a key named {name!r} exists in {path}: remove it first, or pick another name")
    key = new_key()
    roles = sorted(set(role))
    _write(path, [*entries, {"name": name, "key": key, "tenant": tenant, "roles": roles}])
    console.print(f"made a key for {name!r} ({', '.join(roles)}, tenant {tenant!r}); {TAKEN_UP}")
    _emit({"name": name, "tenant": tenant, "roles": roles, "key": key})


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The key's name (shelfwise keys list).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Remove a key: it stops working when the service next starts."""
    path = _file(workspace)
    entries = _entries(path)
    kept = [e for e in entries if e["name"] != name]
    if len(kept) == len(entries):
        known = ", ".join(e["name"] for e in entries) or "none"
        _refuse(f"no key named {name!r} in {path}; its keys: {known}")
    _write(path, kept)
    console.print(f"removed the key {name!r}; {TAKEN_UP}")
    _emit({"removed": name})
