"""`shelfwise features ...`: list the sets, materialise them, check freshness, show a vector.

The online store is the workspace's ``online_store_url``. The default, ``memory://``, lives
inside one process: what `materialise` writes there is gone when the command ends, so `freshness`
finds nothing and `show` materialises first, in its own process. A ``redis://`` store
(``SHELFWISE_ONLINE_STORE_URL``) is shared by every command.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from shelfwise.features.store import FeatureStore

app = typer.Typer(
    help="The feature store: sets, materialisation, freshness, online vectors.",
    no_args_is_help=True,
)
console = Console(stderr=True)

WorkspaceOption = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace folder.")
]
IN_PROCESS = (
    "the online store is memory:// (in-process): it is empty in each new command, so this "
    "command materialises it first, here; set SHELFWISE_ONLINE_STORE_URL=redis://... to share "
    "one store between commands"
)


def _emit(result: Any) -> None:
    print(json.dumps(_plain(result), default=str), flush=True)


def _plain(value: Any) -> Any:
    """JSON without NaN: a missing number is null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _moment(value: str | None) -> datetime | None:
    """An ISO date or time (UTC unless it names an offset) as a naive UTC datetime."""
    if value is None:
        return None
    import pandas as pd

    try:
        moment = pd.Timestamp(value)
    except ValueError as error:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or time (e.g. 2017-09-01 or 2017-09-01T12:00:00)",
            param_hint="'--as-of'",
        ) from error
    if pd.isna(moment):
        raise typer.BadParameter(f"{value!r} is not a date or time", param_hint="'--as-of'")
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return moment.to_pydatetime()


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="ISO date or time (UTC unless an offset is given); default: just after the "
        "latest order or event.",
    ),
]


def _refusals() -> tuple[type[Exception], ...]:
    """Nothing to materialise or serve, another version stored, the online store unreachable."""
    from redis.exceptions import RedisError

    return (LookupError, ValueError, RedisError)


def _store(workspace: Path | None, *, existing: bool = True) -> FeatureStore:
    """The workspace's store; ``existing``: refuse a workspace that was never made."""
    from shelfwise.cli import _existing_workspace, _workspace
    from shelfwise.features.store import FeatureStore

    return FeatureStore(_existing_workspace(workspace) if existing else _workspace(workspace))


def _close(store: FeatureStore) -> None:
    store.close()
    store.workspace.close()


def _in_memory(store: FeatureStore) -> bool:
    return store.online_url.startswith("memory://")


@app.command("list")
def list_sets(workspace: WorkspaceOption = None) -> None:
    """Every feature set: its entity, kind, version, number of features and freshness target."""
    store = _store(workspace, existing=False)  # the definitions: no workspace needed
    sets = store.describe()
    view = Table(title="feature sets")
    view.add_column("set", no_wrap=True)
    for column in ("entity", "kind", "version", "features", "target"):
        view.add_column(column)
    for item in sets:
        view.add_row(
            item["name"],
            item["entity"],
            item["kind"],
            item["version"],
            str(len(item["features"])),
            _duration(item["freshness_target_seconds"]),
        )
    console.print(view)
    _emit({"sets": [{**item, "feature_count": len(item["features"])} for item in sets]})


@app.command()
def materialise(as_of: AsOfOption = None, workspace: WorkspaceOption = None) -> None:
    """Write every set's states as of a moment into the workspace's online store.

    With the default memory:// store they last only as long as this command: use a redis://
    store (SHELFWISE_ONLINE_STORE_URL) to serve them from other processes.
    """
    moment = _moment(as_of)
    store = _store(workspace)
    try:
        with console.status("materialising"):
            report = store.materialise(as_of=moment)
    except _refusals() as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    finally:
        _close(store)
    view = Table("set", "entities", "seconds", title=f"materialised as of {report['as_of']}")
    for name, item in report["sets"].items():
        view.add_row(name, f"{item['entities']:,}", f"{item['seconds']:.3f}")
    console.print(view)
    if _in_memory(store):
        console.print(
            "[yellow]note:[/yellow] the online store is memory:// (in-process): these states "
            "are gone when this command ends"
        )
    _emit({**report, "online_store": store.online_url})


@app.command()
def freshness(workspace: WorkspaceOption = None) -> None:
    """Each set against its freshness target; exits 1 when any set is not fresh.

    With the default memory:// store nothing survives between commands, so every set reads as
    not materialised: use a redis:// store (SHELFWISE_ONLINE_STORE_URL).
    """
    store = _store(workspace)
    try:
        report = store.freshness()
    except _refusals() as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    finally:
        _close(store)
    _freshness_table(report)
    stale = [name for name, item in report.items() if not item["ok"]]
    if stale and _in_memory(store):
        console.print(
            "[yellow]note:[/yellow] the online store is memory:// (in-process): a new command "
            "starts empty; set SHELFWISE_ONLINE_STORE_URL=redis://... to share it"
        )
    _emit({"ok": not stale, "stale": stale, "sets": report, "online_store": store.online_url})
    if stale:
        raise typer.Exit(1)


def _freshness_table(report: dict[str, Any]) -> None:
    view = Table("set", "ok", "age", "target", "as of", "entities", title="freshness")
    for name, item in report.items():
        view.add_row(
            name,
            "[green]ok[/green]" if item["ok"] else "[red]no[/red]",
            _duration(item["age_seconds"]) if "age_seconds" in item else item.get("detail", ""),
            _duration(item["target_seconds"]) if "target_seconds" in item else "",
            str(item.get("as_of") or ""),
            f"{item['entities']:,}" if item.get("entities") is not None else "",
        )
    console.print(view)


@app.command()
def show(
    person: Annotated[str, typer.Option("--person", help="The person (person_id).")],
    sku: Annotated[
        list[str] | None,
        typer.Option("--sku", help="A product to pair with the person (repeatable)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The moment asked about (ISO; default: now, UTC)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """The online vector of a person (with each --sku), and each set's freshness.

    With the default memory:// store, which is empty in every new command, the sets are
    materialised first in this process (as of --as-of when given, else just after the latest
    data), and the command says so; a redis:// store is read as it is.
    """
    moment = _moment(as_of)
    skus = list(dict.fromkeys(sku or []))
    store = _store(workspace)
    try:
        _check_known(store, person, skus)
        materialised = False
        if _in_memory(store) and not store.backend.get_meta().get("sets"):
            console.print(f"[yellow]note:[/yellow] {IN_PROCESS}")
            with console.status("materialising"):
                store.materialise(as_of=moment)
            materialised = True
        vectors = store.vectors(_rows(person, skus, moment))
    except _refusals() as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    finally:
        _close(store)
    _emit(_show(vectors, person, skus, materialised, store.online_url))


def _check_known(store: FeatureStore, person: str, skus: list[str]) -> None:
    """An unknown person or product is a usage error (exit 2), named."""
    from shelfwise.identity.sessions import relation_exists

    analytic = store.workspace.analytic
    if not relation_exists(analytic, "person_map"):
        _usage("the workspace has no persons yet (no person_map): resolve identities first")
    if not analytic.execute("SELECT count(*) FROM person_map WHERE person_id = ?", [person])[0][0]:
        _usage(f"unknown person {person!r}: no such person_id in person_map")
    if skus:
        known = {
            row[0]
            for row in analytic.execute(
                "SELECT sku FROM products WHERE sku IN (SELECT unnest(?))", [skus]
            )
        }
        missing = [s for s in skus if s not in known]
        if missing:
            _usage(f"unknown sku(s) {', '.join(map(repr, missing))}: not in products")


def _usage(message: str) -> None:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(2)


def _rows(person: str, skus: list[str], moment: datetime | None) -> pd.DataFrame:
    import pandas as pd

    rows = pd.DataFrame({"person_id": [person] * max(len(skus), 1)}, dtype=object)
    if skus:
        rows["sku"] = pd.Series(skus, dtype=object)
    if moment is not None:
        rows["as_of"] = pd.Timestamp(moment)
    return rows


def _show(
    vectors: pd.DataFrame, person: str, skus: list[str], materialised: bool, url: str
) -> dict[str, Any]:
    from shelfwise.features.definitions import FEATURE_VERSIONS
    from shelfwise.features.store import FRESHNESS

    features = [c for c in vectors.columns if c not in ("person_id", "sku", "as_of")]
    heads = [f"value ({s})" for s in skus] or ["value"]
    view = Table("feature", *heads, title=f"person {person}")
    for feature in features:
        view.add_row(feature, *(_cell(v) for v in vectors[feature].tolist()))
    console.print(view)
    ages = vectors.attrs.get(FRESHNESS, {})
    ages_view = Table("set", "oldest state written", title="freshness")
    for name, age in ages.items():
        ages_view.add_row(name, f"{_duration(age)} ago")
    console.print(ages_view)
    as_of = vectors["as_of"].iloc[0] if "as_of" in vectors.columns else None
    values: Any
    if skus:
        values = {s: {f: vectors[f].iloc[i] for f in features} for i, s in enumerate(skus)}
    else:
        values = {f: vectors[f].iloc[0] for f in features}
    return {
        "person_id": person,
        "skus": skus,
        "as_of": None if as_of is None else str(as_of),
        "features": values,
        "freshness_seconds": ages,
        "versions": vectors.attrs.get(FEATURE_VERSIONS, {}),
        "online_store": url,
        "materialised_in_process": materialised,
    }


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g}s"
    if seconds < 7_200:
        return f"{seconds / 60:.3g}min"
    if seconds < 172_800:
        return f"{seconds / 3_600:.3g}h"
    return f"{seconds / 86_400:.3g}d"
