"""Registry states for every model family, and the history of every move between them.

A version's state is the MLflow alias it holds (``champion``, ``challenger``: what serving and
the stages read), else its ``status`` tag (candidate, experimental, archived). Every move is
one ``registry_transitions`` row and one ``audit_log`` entry, written in the same transaction,
and the moves of one model are serialised (a PostgreSQL advisory lock; SQLite's write lock),
so two reviewers approving two versions at the same moment leave exactly one champion: the
second sees the first's champion and archives it.

A new champion archives the one it replaces; a new challenger sends the previous challenger
back to candidate. The champion cannot be archived or demoted on its own: promote another
version, or :meth:`ModelRegistry.rollback` to the previous champion in one call. MLflow and the
database cannot share a transaction: a move interrupted between the two is put right by
:meth:`ModelRegistry.reconcile`, from the committed history.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shelfwise.ops import OperationalDatabase, RegistryTransition, record_audit
from shelfwise.ops._schema import DEFAULT_TENANT
from shelfwise.ops.states import RegistryState
from shelfwise.tracking import Tracker
from shelfwise.tracking._tracker import STATUS_TAG, TrainingRecord, mlflow_time

ALIASED = (RegistryState.CHAMPION, RegistryState.CHALLENGER)
# Models whose state is more than their champion alias, rolled back by a command of their own.
OWN_ROLLBACK = {
    "identity": "shelfwise identity rollback, which restores the previous run's persons with "
    "its model version"
}


class TransitionRefused(ValueError):
    """A move the lifecycle does not allow (the message says which and what to do instead)."""


class VersionNotFound(LookupError):
    """No such model, or no such version of it (the message says which, and what there is)."""


class ModelRegistry:
    """Moves model versions between registry states, recorded and serialised per model."""

    def __init__(
        self, tracker: Tracker, operational: OperationalDatabase, tenant: str = DEFAULT_TENANT
    ) -> None:
        self.tracker, self.operational, self.tenant = tracker, operational, tenant

    def version(self, name: str, version: str) -> Any:
        """MLflow's record of ``name`` version ``version``; :class:`VersionNotFound` naming
        the models, or the model's versions, where there is none."""
        try:
            return self.tracker.client.get_model_version(name, version)
        except Exception:
            pass
        self.require(name)
        versions = ", ".join(str(v.version) for v in self._versions(name))
        raise VersionNotFound(f"{name} has no version {version!r}; its versions: {versions}")

    def require(self, name: str) -> None:
        """:class:`VersionNotFound` naming the registered models where ``name`` is not one."""
        models = sorted(m.name for m in self.tracker.client.search_registered_models())
        if name not in models:
            raise VersionNotFound(
                f"no model named {name!r}; registered: {', '.join(models) or 'none'}"
            )

    def models(self) -> list[dict[str, Any]]:
        """Every registered model: its champion and challenger, the version a rollback would
        restore (``rollback_to``, or None with ``rollback_refused`` saying why), and each
        version's state, newest first."""
        out = []
        for name in sorted(m.name for m in self.tracker.client.search_registered_models()):
            aliased = {a: self.tracker.get_alias_version(name, a.value) for a in ALIASED}
            versions = []
            for v in reversed(self._versions(name)):
                version = str(v.version)
                held = [a.value for a, holder in aliased.items() if holder == version]
                versions.append(
                    {
                        "version": version,
                        "state": held[0] if held else v.tags.get(STATUS_TAG),
                        "registered_at": mlflow_time(v.creation_timestamp),
                        "run_id": v.run_id,
                    }
                )
            rollback_to, refused = self.rollback_target(name)
            out.append(
                {
                    "model": name,
                    "champion": aliased[RegistryState.CHAMPION],
                    "challenger": aliased[RegistryState.CHALLENGER],
                    "rollback_to": rollback_to,
                    "rollback_refused": refused or None,
                    "versions": versions,
                }
            )
        return out

    def _versions(self, name: str) -> list[Any]:
        """MLflow's records of every version of ``name``, oldest first."""
        found = self.tracker.client.search_model_versions(f"name = '{name}'")
        return sorted(found, key=lambda v: int(v.version))

    def state(self, name: str, version: str) -> RegistryState | None:
        for aliased in ALIASED:
            if self.tracker.get_alias_version(name, aliased.value) == version:
                return aliased
        status = self.tracker.get_status(name, version)
        return RegistryState(status) if status else None

    def register(
        self,
        name: str,
        record: TrainingRecord,
        *,
        actor: str,
        reason: str,
        state: RegistryState = RegistryState.CANDIDATE,
    ) -> str:
        """A new version of ``name`` from a logged training, entered as ``state``."""
        version = self.tracker.register(name, record, status=RegistryState.CANDIDATE.value)
        with self.operational.session() as session:
            self._lock(session, name)
            self._record(
                session, name, version, None, RegistryState.CANDIDATE, actor, reason, record.metrics
            )
        if state != RegistryState.CANDIDATE:
            self.transition(
                name, version, state, actor=actor, reason=reason, metrics=record.metrics
            )
        return version

    def register_first_champion(
        self, name: str, record: TrainingRecord, *, actor: str, reason: str
    ) -> str:
        """Register a new version; it becomes the champion where ``name`` has none yet (the
        quickstart's first model: nothing to compare it with)."""
        version = self.register(name, record, actor=actor, reason=reason)
        if self.tracker.get_alias_version(name, RegistryState.CHAMPION.value) is None:
            self.transition(
                name,
                version,
                RegistryState.CHAMPION,
                actor=actor,
                metrics=record.metrics,
                reason=f"the first {name}: nothing to compare it with",
            )
        return version

    def transition(
        self,
        name: str,
        version: str,
        to: RegistryState,
        *,
        actor: str,
        reason: str,
        metrics: dict[str, float] | None = None,
        session: Session | None = None,
    ) -> RegistryTransition:
        """Move ``version`` to ``to``; the champion or challenger it replaces moves too.
        ``session``: the caller's transaction (an alert's action, say), else one of its own."""
        if not reason.strip():
            raise TransitionRefused("a registry transition needs a reason")
        if session is not None:
            return self._transition(session, name, version, to, actor, reason, metrics or {})
        with self.operational.session() as own:
            return self._transition(own, name, version, to, actor, reason, metrics or {})

    def _transition(
        self,
        session: Session,
        name: str,
        version: str,
        to: RegistryState,
        actor: str,
        reason: str,
        metrics: dict[str, float],
    ) -> RegistryTransition:
        self._lock(session, name)
        current = self.state(name, version)
        if current == to:
            raise TransitionRefused(f"{name} v{version} is already {to.value}")
        champion = self.tracker.get_alias_version(name, RegistryState.CHAMPION.value)
        if version == champion and to != RegistryState.CHAMPION:
            raise TransitionRefused(
                f"{name} v{version} is the champion: promote another version or roll back "
                "instead of moving it to " + to.value
            )
        replaced: tuple[str, RegistryState] | None = None
        if to in ALIASED:
            holder = self.tracker.get_alias_version(name, to.value)
            if holder is not None and holder != version:
                after = (
                    RegistryState.ARCHIVED
                    if to == RegistryState.CHAMPION
                    else RegistryState.CANDIDATE
                )
                why = f"replaced as {to.value} by v{version}: {reason}"
                self._record(session, name, holder, to, after, actor, why, {})
                replaced = (holder, after)
        row = self._move(session, name, version, current, to, actor, reason, metrics)
        if replaced is not None:
            # Only now: the alias left the holder in the one call that gave it to ``version``,
            # so a process stopped between the two calls leaves a champion, never none.
            self.tracker.set_status(name, replaced[0], replaced[1].value)
        return row

    def rollback(self, name: str, *, actor: str, reason: str) -> str:
        """Make the previous champion the champion again; returns its version."""
        previous, refused = self.rollback_target(name)
        if previous is None:
            raise TransitionRefused(refused)
        self.transition(
            name, previous, RegistryState.CHAMPION, actor=actor, reason=f"rollback: {reason}"
        )
        return previous

    def rollback_target(self, name: str) -> tuple[str | None, str]:
        """The version :meth:`rollback` would make champion (the last champion before the
        current one), or None with why there is none."""
        if name in OWN_ROLLBACK:
            return None, f"{name} is rolled back with {OWN_ROLLBACK[name]}"
        champion = self.tracker.get_alias_version(name, RegistryState.CHAMPION.value)
        if champion is None:
            self.require(name)
        with self.operational.session() as session:
            previous = session.scalars(
                sa.select(RegistryTransition.version)
                .where(
                    RegistryTransition.tenant == self.tenant,
                    RegistryTransition.model_name == name,
                    RegistryTransition.from_state == RegistryState.CHAMPION.value,
                    RegistryTransition.version != (champion or ""),
                )
                .order_by(RegistryTransition.at.desc(), RegistryTransition.id.desc())
                .limit(1)
            ).first()
        if previous is None:
            return None, f"{name} has no previous champion to roll back to"
        return previous, ""

    def reconcile(self, name: str, *, actor: str, reason: str) -> list[str]:
        """Point ``name``'s aliases back where its committed history puts them; returns what
        was repaired (empty: nothing).

        A move changes MLflow after flushing its rows and before committing them, so a process
        stopped in between leaves an alias moved with no record of the move. Whoever finds that
        process's run interrupted (:mod:`shelfwise.lifecycle.jobs`) calls this: the move was
        never recorded, so it is undone. A model without history is left alone, since its
        aliases were set by something other than the registry."""
        with self.operational.session() as session:
            self._lock(session, name)  # a move in flight elsewhere commits first
            rows = session.execute(
                sa.select(RegistryTransition.version, RegistryTransition.to_state)
                .where(
                    RegistryTransition.tenant == self.tenant, RegistryTransition.model_name == name
                )
                .order_by(RegistryTransition.at, RegistryTransition.id)
            ).all()
            latest: dict[str, str] = {}
            for version, state in rows:  # each version's last state, the latest moved last
                latest.pop(version, None)
                latest[version] = state
            repaired = []
            for aliased in ALIASED if latest else ():
                holders = [v for v, state in latest.items() if state == aliased.value]
                expected = holders[-1] if holders else None
                actual = self.tracker.get_alias_version(name, aliased.value)
                if actual == expected:
                    continue
                if expected is None:
                    self.tracker.delete_alias(name, aliased.value)
                else:
                    self.tracker.set_alias(name, aliased.value, expected)
                before, after = (f"v{v}" if v else "none" for v in (actual, expected))
                repaired.append(f"{aliased.value}: {before} back to {after}")
            if repaired:
                record_audit(
                    session,
                    actor=actor,
                    action="registry.reconcile",
                    entity_type="registered_model",
                    entity_id=name,
                    tenant=self.tenant,
                    details={"reason": reason, "repaired": repaired},
                )
        return repaired

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every move of ``name``'s versions, oldest first."""
        with self.operational.session() as session:
            rows = session.scalars(
                sa.select(RegistryTransition)
                .where(
                    RegistryTransition.tenant == self.tenant, RegistryTransition.model_name == name
                )
                .order_by(RegistryTransition.at, RegistryTransition.id)
            ).all()
            return [
                {
                    "version": r.version,
                    "from_state": r.from_state,
                    "to_state": r.to_state,
                    "actor": r.actor,
                    "reason": r.reason,
                    "metrics": dict(r.metrics),
                    "at": r.at,
                }
                for r in rows
            ]

    # --- the moves ---------------------------------------------------------------------
    def _move(
        self,
        session: Session,
        name: str,
        version: str,
        before: RegistryState | None,
        after: RegistryState,
        actor: str,
        reason: str,
        metrics: dict[str, float],
    ) -> RegistryTransition:
        row = self._record(session, name, version, before, after, actor, reason, metrics)
        session.flush()  # the rows are valid before MLflow changes; commit follows MLflow
        if before in ALIASED and before != after:
            self.tracker.delete_alias(name, before.value)
        if after in ALIASED:
            self.tracker.set_alias(name, after.value, version)
        else:
            self.tracker.set_status(name, version, after.value)
        return row

    def _record(
        self,
        session: Session,
        name: str,
        version: str,
        before: RegistryState | None,
        after: RegistryState,
        actor: str,
        reason: str,
        metrics: dict[str, float],
    ) -> RegistryTransition:
        row = RegistryTransition(
            tenant=self.tenant,
            model_name=name,
            version=version,
            from_state=before.value if before else None,
            to_state=after.value,
            actor=actor,
            reason=reason,
            metrics={k: float(v) for k, v in metrics.items()},
        )
        session.add(row)
        record_audit(
            session,
            actor=actor,
            action="registry.transition",
            entity_type="model_version",
            entity_id=f"{name}/{version}",
            tenant=self.tenant,
            details={
                "from": row.from_state,
                "to": row.to_state,
                "reason": reason,
                "metrics": row.metrics,
            },
        )
        return row

    def _lock(self, session: Session, name: str) -> None:
        """Serialise the moves of ``name`` until the session's transaction ends."""
        digest = hashlib.sha256(f"registry:{self.tenant}:{name}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        else:  # SQLite: take the database's write lock now, before reading the aliases
            session.execute(sa.text("UPDATE registry_transitions SET reason = reason WHERE 0 = 1"))
