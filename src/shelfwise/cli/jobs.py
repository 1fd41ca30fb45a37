"""`shelfwise jobs ...`: the lifecycle's jobs by hand, their schedules and their last runs.

`jobs run` takes the model's lock as the scheduler does: a model already busy (a scheduled
retraining under way, say) is refused with the job that holds it and since when, and the
command exits 1, as it does for an unknown model or a job that fails; the JSON last line says
which.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from shelfwise.cli import WorkspaceOption, _emit, _governed_workspace, console

app = typer.Typer(
    help="The lifecycle's jobs: retraining and drift checks, on schedule or by hand.",
    no_args_is_help=True,
)


@app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option(help="Recent runs to show.")] = 20,
    workspace: WorkspaceOption = None,
) -> None:
    """The jobs with their schedules and next due times, and the latest runs."""
    from shelfwise.lifecycle.jobs import JOBS, JobRunner
    from shelfwise.lifecycle.scheduler import default_schedules

    ws = _governed_workspace(workspace)
    try:
        runs = JobRunner(ws).history(limit)
        now = datetime.now(UTC)
        jobs: list[dict[str, Any]] = [
            {
                "job": schedule.job,
                "schedule": schedule.cron,
                "next_due": schedule.next_after(now),
                "setting": JOBS[schedule.job].schedule_setting,
                "description": JOBS[schedule.job].description,
            }
            for schedule in default_schedules(ws.settings)
        ]
    finally:
        ws.close()
    view = Table("job", "schedule (UTC)", "next due", "what it does", title="jobs")
    for job in jobs:
        view.add_row(
            job["job"], job["schedule"], f"{job['next_due']:%Y-%m-%d %H:%M}", job["description"]
        )
    console.print(view)
    history = Table("run", "job", "model", "status", "started", "ended", "error", title="runs")
    for run in runs:
        colour = {"succeeded": "green", "failed": "red"}.get(run["status"], "yellow")
        history.add_row(
            str(run["id"]),
            run["job"],
            run["model"] or "",
            f"[{colour}]{run['status']}[/{colour}]",
            f"{run['started_at']:%Y-%m-%d %H:%M:%S}",
            f"{run['ended_at']:%Y-%m-%d %H:%M:%S}" if run["ended_at"] else "",
            run["error"] or "",
        )
    console.print(history if runs else "no job has run yet")
    _emit({"jobs": jobs, "runs": runs})


BY_HAND = ("manual", "new_data", "scheduled")


@app.command()
def run(
    job: Annotated[
        str, typer.Argument(help="retrain, drift-check, backtest-check or shadow-check.")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="The model (retrain needs one; drift-check: every champion)."
        ),
    ] = None,
    actor: Annotated[str, typer.Option(help="Who runs it, for the logs.")] = "cli",
    trigger: Annotated[
        str,
        typer.Option(help="Why (retrain): manual, new_data (a new source is ready) or scheduled."),
    ] = "manual",
    experiment: Annotated[
        int | None,
        typer.Option(help="Retrain for this approved experiment (an experimental version)."),
    ] = None,
    segments: Annotated[
        bool, typer.Option("--segments", help="Retrain: also a model per segment.")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Run a job now, under the model's lock; prints the result as JSON."""
    from shelfwise.lifecycle.families import FAMILIES, UnknownModel
    from shelfwise.lifecycle.jobs import JobBusy, JobRunner, job_named
    from shelfwise.ops.states import RetrainingTrigger

    try:
        spec = job_named(job)
    except KeyError as error:
        console.print(f"[red]{error.args[0]}[/red]")
        raise typer.Exit(2) from None
    if model is None and spec.needs_model:
        console.print(f"[red]{job} needs --model NAME, one of {', '.join(FAMILIES)}[/red]")
        raise typer.Exit(2)
    if trigger not in BY_HAND:
        console.print(f"[red]--trigger {trigger!r}: one of {', '.join(BY_HAND)}[/red]")
        raise typer.Exit(2)
    options: dict[str, Any] = {"segments": True} if segments else {}
    if experiment is not None:
        options["experiment"] = experiment
    ws = _governed_workspace(workspace)
    runner, why = JobRunner(ws), RetrainingTrigger(trigger)
    try:
        with console.status(f"{job} on {model or 'every model it covers'}"):
            if model is not None:
                outcomes = [runner.run(job, model, trigger=why, actor=actor, options=options)]
            else:
                outcomes = runner.sweep(job, trigger=why, actor=actor)
    except (JobBusy, UnknownModel) as error:
        console.print(f"[red]refused:[/red] {error}")
        _emit({"job": job, "model": model, "status": "refused", "error": str(error)})
        raise typer.Exit(1) from None
    except Exception as error:
        console.print(f"[red]{job} on {model} failed:[/red] {error}")
        _emit({"job": job, "model": model, "status": "failed", "error": str(error)})
        raise typer.Exit(1) from None
    finally:
        ws.close()
    for outcome in outcomes:
        said = outcome.get("error") or f"job run {outcome['run']}"
        console.print(f"{job} on {outcome['model']}: {outcome['status']} ({said})")
    if not outcomes:
        console.print(f"{job}: no model to run it on")
    _emit(outcomes[0] if model is not None else {"job": job, "runs": outcomes})
    if any(outcome["status"] != "succeeded" for outcome in outcomes):
        raise typer.Exit(1)
