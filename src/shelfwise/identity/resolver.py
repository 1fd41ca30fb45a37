"""Identity resolution over a workspace: customer records in, stable persons out, every run kept.

The first run trains the identity model, scores every pair the blocking rules propose, and
clusters the links into persons. A later run links only the records that are new since the
current run, with the same model (nothing retrained), and re-clusters the stored graph with
the previous assignments, so existing person ids stay put. ``retrain=True`` trains and
registers a new model version; ``rollback()`` makes the previous run (and its model version)
current again. Reviewers' confirm and split decisions are applied on every run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from shelfwise.identity.governance import Governance, _now
from shelfwise.identity.graph import Clustering, cluster_records
from shelfwise.identity.linkage import LinkageSession, unique_ids
from shelfwise.identity.model import LINK_COLUMNS, IdentityModel, empty_links
from shelfwise.identity.settings import IdentitySettings
from shelfwise.identity.store import (
    CURRENT_RUN,
    RUN_COUNTS,
    chain_sql,
    write_run,
)
from shelfwise.ops.states import RegistryState

if TYPE_CHECKING:
    from shelfwise.workspace import Workspace

MODEL_NAME = "identity"
EXPERIMENT = "identity"
BEHAVIOUR_ITEMS = 30
Progress = Callable[[str], None]

# What each customer record did: its most frequent items over events and orders.
BEHAVIOUR_SQL = f"""
SELECT source_system, source_id,
       list(sku ORDER BY n DESC, sku)[1:{BEHAVIOUR_ITEMS}] AS behaviour
FROM (
    SELECT source_system, customer_ref AS source_id, sku, count(*) AS n FROM (
        SELECT source_system, customer_ref, sku FROM events
        WHERE customer_ref IS NOT NULL AND sku IS NOT NULL
        UNION ALL
        SELECT o.source_system, o.customer_ref, l.sku FROM orders AS o
        JOIN order_lines AS l USING (order_id) WHERE o.customer_ref IS NOT NULL
    ) GROUP BY ALL
) GROUP BY ALL
"""


@dataclass
class ResolveReport:
    """What one run of the resolver did."""

    run_id: str
    kind: str
    records: int
    new_records: int
    links: int
    accepted_links: int
    by_rule: dict[str, int]
    persons: int
    new_persons: int
    merges: int
    splits: int
    review_items: int
    model_version: str | None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class IdentityResolver(Governance):
    """Resolves the workspace's customer records into persons (the ``person_map`` view)."""

    def __init__(
        self,
        workspace: Workspace,
        settings: IdentitySettings | None = None,
        *,
        model_name: str = MODEL_NAME,
        track: bool = True,
        actor: str = "shelfwise",
    ) -> None:
        self.workspace = workspace
        self.settings = settings or IdentitySettings()
        self.model_name = model_name
        self.track = track
        self.actor = actor  # who runs and rolls back, in the audit log
        self._model: IdentityModel | None = None

    # --- runs -----------------------------------------------------------------------------

    def runs(self) -> pd.DataFrame:
        self._ensure_tables()
        return self._frame("SELECT * FROM identity_runs ORDER BY started_at, run_id")

    def records(self) -> pd.DataFrame:
        """The workspace's customer records with each one's behavioural signature."""
        return self._frame(
            f"SELECT c.* EXCLUDE (_extras, _ingest_id), b.behaviour FROM customer_records AS c "
            f"LEFT JOIN ({BEHAVIOUR_SQL}) AS b USING (source_system, source_id)"
        )

    def resolve(
        self,
        records: pd.DataFrame | None = None,
        *,
        retrain: bool = False,
        truth: pd.DataFrame | None = None,
        progress: Progress | None = None,
    ) -> ResolveReport:
        """Link ``records`` (default: the workspace's customer records) into persons.

        ``truth`` (source_system, source_id, person_id), where known, is used only to measure
        the run: its pairwise and cluster precision and recall go into the report and into
        the tracked model's metrics.
        """
        say = progress or (lambda message: None)
        self._run_started = _now()
        stages: dict[str, float] = {}
        mark = time.perf_counter()
        current = self.current_run()
        records = self.records() if records is None else records
        full = current is None or retrain
        previous = None if current is None else self.assignments(current["run_id"])
        stages["read"] = time.perf_counter() - mark
        with LinkageSession(self.settings) as session:
            mark = time.perf_counter()
            session.load("records", records)
            session.blank_shared(["records"])
            stages["prepare"] = time.perf_counter() - mark
            mark = time.perf_counter()
            if full:
                say("training the identity model")
                model = IdentityModel(self.settings)
                model.fit_in(session, "records")
                stages["train"] = time.perf_counter() - mark
                new_records = session.count("records")
                mark = time.perf_counter()
                say("scoring pairs")
                links = model.score(session, "records")
            else:
                assert current is not None
                assert previous is not None
                model = self.model(current["model_version"])
                known = previous[["unique_id"]]
                session.connection.register("_known", known)
                session.connection.execute(
                    "CREATE OR REPLACE TABLE new_records AS SELECT * FROM records "
                    "WHERE unique_id NOT IN (SELECT unique_id FROM _known)"
                )
                new_records = session.count("new_records")
                say(f"linking {new_records:,} new records")
                links = (
                    model.score(session, "records", new="new_records")
                    if new_records
                    else empty_links()
                )
            stages["score"] = time.perf_counter() - mark
            record_ids = session.connection.execute("SELECT unique_id FROM records").df()
        mark = time.perf_counter()
        graph = links if full else pd.concat([self._chain_links(current), links], ignore_index=True)
        accepted = model.accepted(graph)
        clustering = cluster_records(
            record_ids["unique_id"].astype("string"),
            accepted[["unique_id_l", "unique_id_r", "match_probability"]],
            threshold=self.settings.threshold,
            decisions=self.decisions(),
            previous=previous,
            # Ids of absorbed or vanished persons are never issued again.
            first_sequence=None if current is None else int(current["next_sequence"]),
        )
        stages["cluster"] = time.perf_counter() - mark
        metrics = self.measure(clustering, accepted, truth) if truth is not None else {}
        version = current["model_version"] if current and not full else None
        mlflow_run = None
        if full and self.track:
            mark = time.perf_counter()
            version, mlflow_run = self._register(model, metrics, len(records))
            stages["track"] = time.perf_counter() - mark
        self._model = model
        return self._write(
            current,
            full,
            records,
            new_records,
            links,
            graph,
            accepted,
            clustering,
            metrics,
            version,
            mlflow_run,
            stages,
            model,
        )

    def _chain_links(self, current: dict[str, Any] | None) -> pd.DataFrame:
        if current is None:
            return empty_links()
        return self._frame(
            f"SELECT {', '.join(LINK_COLUMNS)} FROM identity_links WHERE run_id IN ({chain_sql()})",
            [current["run_id"]],
        )

    def measure(
        self, clustering: Clustering, accepted: pd.DataFrame, truth: pd.DataFrame
    ) -> dict[str, float]:
        """Pairwise (links) and cluster precision, recall and F1 against true persons."""
        from shelfwise.evaluation.linkage import resolution_scores

        truth_of = pd.Series(truth["person_id"].to_numpy(), index=unique_ids(truth).to_numpy())
        persons = clustering.assignments.set_index("unique_id")["person_id"]
        scores = resolution_scores(accepted, persons, truth_of)
        return {**scores, "true_persons": scores["cluster_entities"]}

    def _register(
        self, model: IdentityModel, metrics: dict[str, float], records: int
    ) -> tuple[str, str]:
        from shelfwise.models.base import Evaluation

        tracker = self.workspace.tracker
        evaluation = Evaluation(metrics, "f1", True) if "f1" in metrics else None
        record = tracker.log_training(
            model,
            experiment=EXPERIMENT,
            metrics=evaluation or {"records": float(records)},
            dataset={"records": records},
        )
        # Through the registry, as every model: the move is recorded and audited, and the
        # version it replaces is archived.
        version = self.workspace.registry.register(
            self.model_name,
            record,
            actor=self.actor,
            reason=f"identity resolution: a full run over {records:,} records",
            state=RegistryState.CHAMPION,
        )
        return version, record.run_id

    def model(self, version: str | None = None) -> IdentityModel:
        """The identity model of ``version`` (default: the current run's), from the registry."""
        if version is None:
            current = self.current_run()
            if current is None:
                raise LookupError("identity: nothing resolved yet; run resolve() first")
            version = current["model_version"]
        if self._model is not None and getattr(self._model, "version_", None) == version:
            return self._model
        if version is None:
            raise LookupError("identity: the current run has no tracked model version")
        loaded = self.workspace.tracker.load_estimator(f"models:/{self.model_name}/{version}")
        if not isinstance(loaded, IdentityModel):
            raise TypeError(f"models:/{self.model_name}/{version} is not an identity model")
        loaded.version_ = version
        self._model = loaded
        return loaded

    def _write(
        self,
        current: dict[str, Any] | None,
        full: bool,
        records: pd.DataFrame,
        new_records: int,
        links: pd.DataFrame,
        graph: pd.DataFrame,
        accepted: pd.DataFrame,
        clustering: Clustering,
        metrics: dict[str, float],
        version: str | None,
        mlflow_run: str | None,
        stages: dict[str, float],
        model: IdentityModel,
    ) -> ResolveReport:
        run_id = f"{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        model.version_ = version
        settings = self.settings
        in_band = (graph["match_probability"] >= settings.review_low) & (
            (graph["match_probability"] < settings.review_high) | graph["vetoed"]
        )
        review = graph[(graph["rule"] == "model") & in_band.to_numpy()]
        keys = pd.DataFrame(
            {
                "unique_id": unique_ids(records),
                "source_system": records["source_system"].astype("string"),
                "source_id": records["source_id"].astype("string"),
            }
        )
        assignments = clustering.assignments.merge(keys, on="unique_id")
        by_rule = {str(k): int(v) for k, v in accepted["rule"].value_counts().items()}
        report = ResolveReport(
            run_id=run_id,
            kind="full" if full else "incremental",
            records=len(records),
            new_records=int(new_records),
            links=len(links),
            accepted_links=len(accepted),
            by_rule=by_rule,
            persons=int(clustering.assignments["person_id"].nunique()),
            new_persons=len(clustering.new_persons),
            merges=len(clustering.merges),
            splits=len(clustering.splits),
            review_items=len(review),
            model_version=version,
            stage_seconds={k: round(v, 3) for k, v in stages.items()},
            metrics=metrics,
            training=getattr(model, "training_stats_", {}) if full else {},
        )
        tables = {
            "identity_links": links.assign(run_id=run_id),
            "identity_assignments": assignments.assign(run_id=run_id),
            "identity_merges": clustering.merges.assign(run_id=run_id),
            "identity_splits": clustering.splits.assign(run_id=run_id),
            "identity_review": review.drop(columns=["match_weight", "tf_weights"]).assign(
                run_id=run_id, queued_at=_now()
            ),
        }
        run = {
            "run_id": run_id,
            "base_run_id": None if full or current is None else current["run_id"],
            "kind": report.kind,
            "status": "active",
            "started_at": self._run_started,
            "finished_at": _now(),
            "model_name": self.model_name,
            "model_version": version,
            "mlflow_run_id": mlflow_run,
            **{k: getattr(report, k) for k in RUN_COUNTS},
            "next_sequence": clustering.next_sequence,
            "stats": json.dumps(report.to_dict(), default=str),
        }
        write_run(self.store, run, tables)
        self._audit(
            self.actor,
            "identity.resolve",
            "identity_run",
            run_id,
            {k: run[k] for k in ("kind", "base_run_id", "model_version", *RUN_COUNTS)},
        )
        return report

    # --- what the rest of the platform reads ----------------------------------------------

    def assignments(self, run_id: str | None = None) -> pd.DataFrame:
        """unique_id, source_system, source_id, person_id of a run (default: the current)."""
        self._ensure_tables()
        if run_id is None:
            return self._frame(
                f"SELECT * EXCLUDE (run_id) FROM identity_assignments WHERE run_id = {CURRENT_RUN}"
            )
        return self._frame(
            "SELECT * EXCLUDE (run_id) FROM identity_assignments WHERE run_id = ?", [run_id]
        )

    def links_of(self, unique_id: str) -> pd.DataFrame:
        current = self.current_run()
        if current is None:
            return empty_links()
        return self._frame(
            f"SELECT * FROM identity_links WHERE run_id IN ({chain_sql()}) "
            "AND (unique_id_l = ? OR unique_id_r = ?)",
            [current["run_id"], unique_id, unique_id],
        )

    def explain(self, unique_id_l: str, unique_id_r: str) -> dict[str, Any]:
        """Why two records are (or are not) linked, by the model version that scored them."""
        left, right = sorted((unique_id_l, unique_id_r))
        found = self.links_of(left)
        found = found[found["unique_id_r"] == right]
        if found.empty:
            return {
                "unique_id_l": left,
                "unique_id_r": right,
                "because": "never scored: no "
                "blocking rule proposed this pair, or its probability was below "
                f"{self.settings.review_low}",
            }
        return self.model().explain(found.iloc[-1])
