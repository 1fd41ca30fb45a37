"""The identity model: a Fellegi-Sunter linker (Splink 5) behind the estimator contract.

``fit`` learns the model's m and u probabilities from unlabelled customer records; ``links``
scores pairs (exact keys first, then the model); ``predict`` clusters a frame into persons;
``evaluate`` scores the links against true entities. What was learned is Splink's own model
JSON, saved with the settings, so the same model reloads on DuckDB or Spark and links new
records without being trained again.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from shelfwise.identity.comparisons import blocking_rule, splink_settings, usable
from shelfwise.identity.linkage import LinkageSession, unique_ids
from shelfwise.identity.settings import IdentitySettings
from shelfwise.models.base import Column, Estimator, Evaluation, LearnedArrays

logger = logging.getLogger(__name__)

LINK_COLUMNS = (
    "unique_id_l", "unique_id_r", "match_probability", "match_weight", "rule", "weights",
    "tf_weights", "vetoed",
)  # fmt: skip
MODEL_RULE = "model"


def empty_links() -> pd.DataFrame:
    """A links frame with no pair (nothing new to link)."""
    return pd.DataFrame({c: [] for c in LINK_COLUMNS})


# Rules whose agreement alone is almost never a chance: they estimate the prior.
_PRIOR_RULES = ("first_name+last_name+date_of_birth", "soc_sec_id", "email", "loyalty_id")


class IdentityModel(Estimator[IdentitySettings]):
    """Links customer records of many systems into persons."""

    family = "identity"
    settings_type = IdentitySettings
    training_columns = ("source_system", "source_id")
    evaluation_columns = ("source_system", "source_id", "entity_id")
    input_schema = (
        Column("source_system", "string"),
        Column("source_id", "string"),
        Column("email", "string", required=False),
        Column("phone", "string", required=False),
        Column("first_name", "string", required=False),
        Column("last_name", "string", required=False),
        Column("date_of_birth", "datetime", required=False),
        Column("postcode", "string", required=False),
    )
    output_schema = (Column("unique_id", "string"), Column("person_id", "string"))
    primary_metric = "f1"
    higher_is_better = True

    splink_model_: dict[str, Any]
    version_: str | None = None  # the registry version it was loaded as (set by the resolver)
    last_blocking_: dict[str, Any]  # pairs per blocking rule in the last scoring, and skips
    columns_: tuple[str, ...]
    training_stats_: dict[str, Any]

    @property
    def comparison_names_(self) -> tuple[str, ...]:
        return tuple(c["output_column_name"] for c in self.splink_model_["comparisons"])

    # --- fit ------------------------------------------------------------------------------

    def _fit(self, frame: pd.DataFrame) -> None:
        with LinkageSession(self.settings) as session:
            session.load("records", frame)
            session.blank_shared(["records"])
            self._train(session, "records")

    def fit_in(self, session: LinkageSession, table: str) -> IdentityModel:
        """Train on the normalised records of ``table`` in an open linkage session (the
        resolver's path: the records are loaded once for training and scoring)."""
        started = time.perf_counter()
        self._train(session, table)
        self.fit_seconds_ = time.perf_counter() - started
        self.fitted_at_ = datetime.now(UTC)
        self.training_data_ = {"rows": session.count(table), "table": "customer_records"}
        self.feature_versions_ = {}  # trained on records, not on feature-store features
        return self

    def _train(self, session: LinkageSession, table: str) -> None:
        from splink import DuckDBAPI, Linker

        settings = self.settings
        stages: dict[str, float] = {}
        started = time.perf_counter()
        sampled = session.sample(table, settings.training_sample, settings.seed, "training")
        columns = session.columns_with_values("training")
        spec = splink_settings(settings, columns)
        stages["prepare"] = time.perf_counter() - started

        api = DuckDBAPI(connection=session.connection)
        linker = Linker(
            self._inputs(session, api, "training"), spec["creator"], log_level=logging.ERROR
        )
        prior_rules = usable(_PRIOR_RULES, columns)
        mark = time.perf_counter()
        if prior_rules:
            linker.training.estimate_probability_two_random_records_match(
                [blocking_rule(r) for r in prior_rules], recall=settings.prior_recall
            )
        linker.training.estimate_u_using_random_sampling(
            max_pairs=settings.max_pairs_u, seed=settings.seed
        )
        stages["estimate_u"] = time.perf_counter() - mark
        mark = time.perf_counter()
        trained, failed = [], {}
        for rule in usable(settings.training_rules, columns):
            # A failed session can leave the model half-updated (Splink 5 refuses an m that
            # underflows to 0 midway): start again from the parameters before it.
            before = linker.misc.save_model_to_json()
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    blocking_rule(rule),
                    max_pairs=settings.em_max_pairs,
                    # Term frequencies change m little and cost EM most of its time.
                    estimate_without_term_frequencies=True,
                )
                trained.append(rule)
            except Exception as error:
                logger.warning("identity: EM on %s failed, skipped: %s", rule, error)
                failed[rule] = str(error)
                api = DuckDBAPI(connection=session.connection)
                linker = Linker(
                    self._inputs(session, api, "training"), before, log_level=logging.ERROR
                )
        if not trained:
            raise ValueError(
                "identity model: expectation maximisation ran on none of the training rules "
                f"{list(settings.training_rules)}; the records have values in {columns}"
            )
        stages["em"] = time.perf_counter() - mark
        model = linker.misc.save_model_to_json()
        model.pop("linker_uid", None)
        self.splink_model_ = model
        self.columns_ = tuple(columns)
        self.training_stats_ = {
            "records": session.count(table),
            "sampled": sampled,
            "blocking_rules": spec["blocking_rules"],
            "training_rules": trained,
            "failed_training_rules": failed,
            "prior": model.get("probability_two_random_records_match"),
            "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
        }

    def _inputs(self, session: LinkageSession, api: Any, name: str) -> Any:
        """Splink inputs: one table to dedupe, or one per source system to link."""
        if self.settings.link_type == "dedupe_only":
            return api.register(name, dataset_display_name=f"{name}_all")
        systems = [
            row[0]
            for row in session.connection.execute(
                f'SELECT DISTINCT source_system FROM "{name}" ORDER BY 1'
            ).fetchall()
        ]
        tables: list[Any] = []
        for system in systems:
            table = f"{name}__{len(tables)}"
            session.connection.execute(
                f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM "{name}" '
                "WHERE source_system = ?",
                [system],
            )
            tables.append(api.register(table, dataset_display_name=table))
        if len(tables) < 2:
            raise ValueError(f"link_type {self.settings.link_type}: needs 2+ source systems")
        return tables

    # --- scoring --------------------------------------------------------------------------

    def links(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Scored pairs within ``frame``: exact-key links, then model links (LINK_COLUMNS)."""
        self.check_fitted()
        with LinkageSession(self.settings) as session:
            session.load("records", frame)
            session.blank_shared(["records"])
            return self.score(session, "records")

    def score(
        self,
        session: LinkageSession,
        records: str,
        new: str | None = None,
        *,
        spark: Any | None = None,
    ) -> pd.DataFrame:
        """Links within table ``records`` of the session, or (with ``new``) only the links
        that involve a record of table ``new`` (a subset of ``records``): incremental linking
        with the trained model, nothing re-estimated.

        With a ``spark`` session the model's pairs are blocked and scored on Spark (the same
        saved model, translated by Splink); normalisation, exact keys and vetoes stay here.
        """
        from shelfwise.identity import scoring

        self.check_fitted()
        exact = session.deterministic_links(records, new)
        rules = self.blocking_for(session, records, new)
        # Each comparison's match weight is kept: it explains the link later.
        model = {
            **self.splink_model_,
            "retain_intermediate_calculation_columns": True,
            "blocking_rules_to_generate_predictions": [blocking_rule(r) for r in rules],
        }
        floor = min(self.settings.review_low, self.settings.threshold)
        if spark is None:
            scoring.score_on_duckdb(self, session, records, new, model, floor)
        else:
            from shelfwise.identity.spark import score_on_spark

            if new is not None:
                raise ValueError("identity: incremental linking runs on DuckDB, not Spark")
            score_on_spark(self, session, records, model, floor, spark)
        scored_pairs = session.connection.execute(
            f"{session.vetoed(records, '_scored')} ORDER BY unique_id_l, unique_id_r"
        ).df()
        scored_pairs["rule"] = MODEL_RULE
        exact["match_probability"] = 1.0
        exact["match_weight"] = math.inf
        exact["vetoed"] = False
        exact["weights"] = None
        exact["tf_weights"] = None
        both = pd.concat([exact, scored_pairs], ignore_index=True)
        # A pair an exact key links keeps that rule; the model's score of it is dropped.
        both = both.drop_duplicates(["unique_id_l", "unique_id_r"], keep="first")
        return both[list(LINK_COLUMNS)].reset_index(drop=True)

    def blocking_for(self, session: LinkageSession, records: str, new: str | None) -> list[str]:
        """The blocking rules this run can afford (``max_pairs_per_rule``); the counts and the
        rules skipped are kept in ``last_blocking_``."""
        rules = usable(self.settings.blocking_rules, self.columns_)
        counts = session.rule_pairs(records, rules, new)
        limit = self.settings.max_pairs_per_rule
        kept = [r for r in rules if counts[r] <= limit]
        if not kept:  # never block nothing: keep the tightest rule
            kept = [min(rules, key=lambda r: counts[r])]
        self.last_blocking_ = {"pairs": counts, "skipped": [r for r in rules if r not in kept]}
        if self.last_blocking_["skipped"]:
            logger.info("identity: blocking rules skipped as too broad: %s", self.last_blocking_)
        return kept

    def accepted(self, links: pd.DataFrame) -> pd.DataFrame:
        """The links that join persons: exact keys, and model scores past the threshold."""
        vetoed = links["vetoed"].astype("boolean").fillna(False).astype(bool)
        keep = (links["match_probability"].astype(float) >= self.settings.threshold) & ~vetoed
        return links[keep.to_numpy()]

    # --- the estimator contract -----------------------------------------------------------

    def _predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        from shelfwise.identity.graph import cluster_records

        unique_id = unique_ids(frame)
        links = self.links(frame)
        edges = self.accepted(links)[["unique_id_l", "unique_id_r", "match_probability"]]
        clusters = cluster_records(unique_id, edges, threshold=self.settings.threshold)
        return clusters.assignments[["unique_id", "person_id"]]

    def _evaluate(self, frame: pd.DataFrame) -> Evaluation:
        from shelfwise.evaluation.linkage import resolution_scores
        from shelfwise.identity.graph import cluster_records

        unique_id = unique_ids(frame)
        links = self.accepted(self.links(frame))
        persons = cluster_records(
            unique_id, links[["unique_id_l", "unique_id_r", "match_probability"]], threshold=0.0
        ).assignments.set_index("unique_id")["person_id"]
        truth = pd.Series(frame["entity_id"].to_numpy(), index=unique_id.to_numpy())
        return Evaluation(resolution_scores(links, persons, truth), "f1", True)

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        return {}, {
            "splink_model": self.splink_model_,
            "columns": list(self.columns_),
            "training_stats": self.training_stats_,
        }

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        self.splink_model_ = state["splink_model"]
        self.columns_ = tuple(state["columns"])
        self.training_stats_ = state["training_stats"]

    def _input_example(self) -> pd.DataFrame | None:
        return pd.DataFrame(
            {
                "source_system": ["crm", "web_shop"],
                "source_id": ["CRM-1", "W-1"],
                "email": ["ada.lovelace@example.org", "Ada.Lovelace+shop@example.org"],
                "first_name": ["Ada", "Ada"],
                "last_name": ["Lovelace", None],
            }
        )

    # --- explanations ---------------------------------------------------------------------

    def explain(self, link: pd.Series | dict[str, Any]) -> dict[str, Any]:
        """Why two records were linked: the exact key, or each comparison's level and weight."""
        from shelfwise.identity.explain import explain_link

        self.check_fitted()
        return explain_link(self.splink_model_, dict(link))
