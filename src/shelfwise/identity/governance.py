"""What people do to identity resolution: review pairs, decide them, roll runs back; all audited.

A mixin of :class:`~shelfwise.identity.resolver.IdentityResolver`: decisions are kept in the
analytic store (the next run applies them) and every decision, run and rollback is written to
the operational database's append-only audit log.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from shelfwise.identity.store import CURRENT_RUN, create_identity_tables
from shelfwise.ops.states import RegistryState

if TYPE_CHECKING:
    from shelfwise.identity.model import IdentityModel
    from shelfwise.workspace import Workspace

DECISIONS = ("confirm", "split")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Governance:
    workspace: Workspace
    model_name: str
    track: bool
    actor: str
    _model: IdentityModel | None

    @property
    def store(self) -> Any:
        return self.workspace.analytic

    def _frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        frame: pd.DataFrame = self.store.frame(sql, params)
        return frame

    def _ensure_tables(self) -> None:
        """Create the identity tables and views once per resolver, not on every read."""
        if not getattr(self, "_tables_ready", False):
            create_identity_tables(self.store)
            self._tables_ready = True

    def current_run(self) -> dict[str, Any] | None:
        self._ensure_tables()
        runs = self._frame(f"SELECT * FROM identity_runs WHERE run_id = {CURRENT_RUN}")
        return None if runs.empty else {str(k): v for k, v in runs.iloc[0].items()}

    def _audit(
        self, actor: str, action: str, entity_type: str, entity_id: str, details: dict[str, Any]
    ) -> None:
        """One entry of the operational audit log (append-only in the database itself)."""
        from shelfwise.ops import record_audit

        operational = self.workspace.operational
        if not getattr(self, "_audit_ready", False):
            # A workspace made by `ingest` alone has no operational tables yet.
            if operational.current_revision() != operational.head_revision():
                operational.upgrade()
            self._audit_ready = True
        with operational.session() as session:
            record_audit(
                session,
                actor=actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                details=json.loads(json.dumps(details, default=str)),
            )

    # --- review ---------------------------------------------------------------------------

    def review_queue(self) -> pd.DataFrame:
        """Grey-band links of the current run that no reviewer has decided."""
        self._ensure_tables()
        return self._frame(
            "SELECT * FROM identity_open_reviews ORDER BY abs(match_probability - 0.5), "
            "unique_id_l, unique_id_r"
        )

    def decide(
        self, unique_id_l: str, unique_id_r: str, decision: str, reviewer: str, reason: str = ""
    ) -> None:
        """Record a reviewer's ``confirm`` or ``split`` of a pair; it holds on every later run
        (the next ``resolve`` applies it; a later decision on the pair replaces it)."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if not reviewer:
            raise ValueError("a decision needs the reviewer's name")
        left, right = sorted((unique_id_l, unique_id_r))
        known = self._frame(
            "SELECT count(*) AS n FROM identity_assignments "
            f"WHERE run_id = {CURRENT_RUN} AND unique_id IN (?, ?)",
            [left, right],
        )
        if int(known["n"].iloc[0]) != 2:
            raise ValueError(f"unknown record(s): {left!r}, {right!r} are not both resolved")
        self.store.execute(
            "INSERT INTO identity_decisions VALUES (?, ?, ?, ?, ?, ?)",
            [left, right, decision, reviewer, reason, _now()],
        )
        self._audit(
            reviewer,
            f"identity.{decision}",
            "identity_pair",
            f"{left}|{right}",
            {"unique_id_l": left, "unique_id_r": right, "decision": decision, "reason": reason},
        )

    def decisions(self) -> pd.DataFrame:
        self._ensure_tables()
        return self._frame(
            "SELECT unique_id_l, unique_id_r, decision FROM identity_decisions ORDER BY decided_at"
        )

    # --- rollback -------------------------------------------------------------------------

    def rollback(self) -> dict[str, Any]:
        """Undo the current run: its base run (and that run's model version) is current again."""
        current = self.current_run()
        if current is None or (current["base_run_id"] is None and current["kind"] == "full"):
            earlier = self._frame(
                "SELECT run_id, model_version FROM identity_runs WHERE status = 'active' "
                "ORDER BY started_at DESC, run_id DESC LIMIT 2"
            )
            if len(earlier) < 2:
                raise LookupError("identity: no earlier run to roll back to")
            target = earlier.iloc[1].to_dict()
        else:
            target = (
                self._frame(
                    "SELECT run_id, model_version FROM identity_runs WHERE run_id = ?",
                    [current["base_run_id"]],
                )
                .iloc[0]
                .to_dict()
            )
        assert current is not None
        self.store.execute(
            "UPDATE identity_runs SET status = 'rolled_back' WHERE run_id = ?", [current["run_id"]]
        )
        if (
            self.track
            and target["model_version"]
            and target["model_version"] != current["model_version"]
        ):
            self.workspace.registry.transition(
                self.model_name,
                str(target["model_version"]),
                RegistryState.CHAMPION,
                actor=self.actor,
                reason=f"identity rollback of run {current['run_id']} to {target['run_id']}",
            )
        self._model = None
        self._audit(
            self.actor,
            "identity.rollback",
            "identity_run",
            str(current["run_id"]),
            {"current": target["run_id"], "model_version": target["model_version"]},
        )
        return {
            "rolled_back": current["run_id"],
            "current": target["run_id"],
            "model_version": target["model_version"],
        }
