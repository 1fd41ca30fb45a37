"""The in-process scheduler: each job at the due times of its cron expression.

By default every governed model is retrained weekly (``retrain_cron``, Mondays at 03:00) and
every champion is checked for drift daily (``drift_check_cron``, 04:00); the expressions are
read in UTC. ``shelfwise serve`` runs a :class:`Scheduler` on a thread of its own when the
``scheduler`` setting is on, each job in a child process (:class:`ProcessRunner`: a job on a
thread of the service held up its answers); :meth:`Scheduler.run_due` is the same step with the
time given, so a test drives it without waiting.

A due job runs once, however many of its times went by (a long job before it, a suspended
machine), and times that passed while no scheduler ran are not made up: after a restart the
next due time counts from the start. A job that fails is logged and recorded (its ``job_runs``
row), one that finds its model busy is skipped until its next time, and the scheduler carries
on either way. Several processes may each run a scheduler: the model locks keep them from
running the same model's jobs at once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from croniter import croniter

from shelfwise.lifecycle.jobs import JOBS, JobBusy, JobRunner, job_named
from shelfwise.ops.states import RetrainingTrigger

if TYPE_CHECKING:
    from shelfwise.settings import Settings
    from shelfwise.workspace import Workspace

log = logging.getLogger(__name__)
# The longest sleep between looks at the clock, so that a clock set forward is noticed.
MAX_SLEEP_S = 60.0
ACTOR = "scheduler"
NICENESS = 10  # a job process's `nice` increment: the service's answers come first


@dataclass(frozen=True)
class Schedule:
    """``job`` at the times of ``cron`` (UTC), on ``model`` or on every model it covers."""

    job: str
    cron: str
    model: str | None = None

    def __post_init__(self) -> None:
        job_named(self.job)
        if not croniter.is_valid(self.cron):
            raise ValueError(f"{self.job}: {self.cron!r} is not a cron expression")

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment`` (an aware time)."""
        due: datetime = croniter(self.cron, moment.astimezone(UTC)).get_next(datetime)
        return due


class Runner(Protocol):
    """What runs the scheduler's jobs: :class:`JobRunner` in this process, or
    :class:`ProcessRunner`, each job in a child process."""

    def run(
        self, job: str, model: str, *, trigger: RetrainingTrigger, actor: str
    ) -> dict[str, Any]: ...

    def sweep(
        self, job: str, *, trigger: RetrainingTrigger, actor: str
    ) -> list[dict[str, Any]]: ...

    def stop(self) -> None:
        """Interrupt the job running now, where it can be (the scheduler is stopping)."""


class ProcessRunner:
    """Each job in a child process (``shelfwise jobs run``), as ``shelfwise serve`` runs them.

    A retrain or a drift check keeps Python busy for minutes; on a thread of the serving
    process it held up every answer (measured on the million-item workspace, cached at
    1,000/s: p99 5 ms before a drift check, 300-400 ms during it). The child gets these
    settings through its environment and opens the analytic store read-only, beside the
    service's own read-only connection; what a job records goes to the operational database
    and the tracker, which both processes share, and the service takes up a new champion as
    its watcher sees the alias move."""

    def __init__(self, settings: Settings, *, timeout_seconds: float = 6 * 3600.0) -> None:
        self.environment = {
            **os.environ,
            **settings.environment_variables(),
            "SHELFWISE_ANALYTIC_READ_ONLY": "true",
        }
        self.timeout_seconds = timeout_seconds
        self._child: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def run(
        self, job: str, model: str, *, trigger: RetrainingTrigger, actor: str
    ) -> dict[str, Any]:
        outcome: dict[str, Any] = self._call(job, model, trigger, actor)
        if outcome.get("status") == "refused":  # its model's lock is held, or it is unknown
            raise JobBusy(str(outcome.get("error")))
        return outcome

    def sweep(self, job: str, *, trigger: RetrainingTrigger, actor: str) -> list[dict[str, Any]]:
        outcome = self._call(job, None, trigger, actor)
        runs: list[dict[str, Any]] = outcome.get("runs", [outcome])
        return runs

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt the job running now, as Ctrl-C would (killed if it does not stop within
        ``timeout`` seconds); the next run on its model marks it failed and undoes it."""
        with self._lock:
            child = self._child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()

    def _call(
        self, job: str, model: str | None, trigger: RetrainingTrigger, actor: str
    ) -> dict[str, Any]:
        # Below the service's priority where the system has `nice`: on a small machine the
        # job and the answers share the cores, and the answers should win.
        command = ["nice", "-n", str(NICENESS)] if shutil.which("nice") else []
        command += [sys.executable, "-m", "shelfwise", "jobs", "run", job]
        command += ["--trigger", trigger.value, "--actor", actor]
        command += ["--model", model] if model is not None else []
        with self._lock:  # its last stdout line is the outcome; its log goes to ours
            self._child = child = subprocess.Popen(
                command, env=self.environment, stdout=subprocess.PIPE, text=True
            )
        try:
            out, _ = child.communicate(timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise RuntimeError(
                f"{job} on {model or 'every model'} ran past {self.timeout_seconds:g} s and "
                "was stopped"
            ) from None
        finally:
            with self._lock:
                self._child = None
        lines = out.strip().splitlines()
        try:
            outcome: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise RuntimeError(
                f"{job} on {model or 'every model'}: the job's process exited with "
                f"{child.returncode} and no outcome"
            ) from None
        return outcome


def default_schedules(settings: Settings) -> list[Schedule]:
    """Every job on every model it covers, at the time its setting says."""
    return [Schedule(name, getattr(settings, job.schedule_setting)) for name, job in JOBS.items()]


def _now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Runs the workspace's jobs when they are due: :meth:`start` on a thread, or
    :meth:`run_due` step by step."""

    def __init__(
        self,
        workspace: Workspace,
        schedules: Sequence[Schedule] | None = None,
        *,
        runner: Runner | None = None,
        start: datetime | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.runner: Runner = runner or JobRunner(workspace)
        self.schedules = (
            list(schedules) if schedules is not None else default_schedules(workspace.settings)
        )
        self.clock = clock
        origin = start or clock()
        self._due = [schedule.next_after(origin) for schedule in self.schedules]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def next_due(self) -> list[tuple[Schedule, datetime]]:
        """Each schedule with its next due time."""
        return list(zip(self.schedules, self._due, strict=True))

    def run_due(self, now: datetime) -> list[dict[str, Any]]:
        """Run every schedule due by ``now``, once; the outcomes of its runs, in order."""
        outcomes = []
        for index, schedule in enumerate(self.schedules):
            if self._due[index] > now:
                continue
            self._due[index] = schedule.next_after(now)
            outcomes.extend(self._run(schedule))
        return outcomes

    def _run(self, schedule: Schedule) -> list[dict[str, Any]]:
        trigger, job, model = RetrainingTrigger.SCHEDULED, schedule.job, schedule.model
        try:
            if model is None:  # the sweep records and reports each model's failure itself
                return self.runner.sweep(job, trigger=trigger, actor=ACTOR)
            return [self.runner.run(job, model, trigger=trigger, actor=ACTOR)]
        except JobBusy as busy:
            log.warning("%s on %s skipped: %s", job, model, busy)
            return [{"job": job, "model": model, "status": "busy", "error": str(busy)}]
        except Exception as error:  # recorded in its job run, if it got as far as one
            log.exception("%s on %s failed", job, model or "every model")
            return [{"job": job, "model": model, "status": "failed", "error": str(error)}]

    def run_forever(self) -> None:
        """Run what is due, sleep until the next due time, again, until :meth:`stop`."""
        while not self._stop.is_set():
            self.run_due(self.clock())
            wait = (min(self._due) - self.clock()).total_seconds() if self._due else MAX_SLEEP_S
            self._stop.wait(min(max(wait, 0.0), MAX_SLEEP_S))

    def start(self) -> Scheduler:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name="scheduler", daemon=True)
        self._thread.start()
        for schedule, due in self.next_due():
            log.info("%s (%s) next at %s", schedule.job, schedule.cron, due.isoformat())
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the job in progress, waiting ``timeout`` seconds for it at most: one
        cut short by the process ending is failed by the next run on its model. A job in a
        child process is interrupted at once."""
        self._stop.set()
        self.runner.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
