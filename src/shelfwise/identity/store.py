"""Where identity resolution keeps its results: tables beside the contract tables.

Every run of the resolver is a row of ``identity_runs``; its links, its assignments of records
to persons, the merges and splits it made are kept under its ``run_id``. A run builds on the
run before it (``base_run_id``), so the links the graph uses are those of the current run's
chain, and a rollback only has to mark a run ``rolled_back``: its base becomes current again.
Reviewers' decisions live apart from any run, so they hold on every later run.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from shelfwise.data.store import AnalyticStore

RUN_COUNTS = (
    "records", "new_records", "links", "accepted_links", "persons", "new_persons", "merges",
    "splits", "review_items",
)  # fmt: skip

DDL = (
    """CREATE TABLE IF NOT EXISTS identity_runs (
        run_id VARCHAR PRIMARY KEY, base_run_id VARCHAR, kind VARCHAR NOT NULL,
        status VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP,
        model_name VARCHAR, model_version VARCHAR, mlflow_run_id VARCHAR,
        records BIGINT, new_records BIGINT, links BIGINT, accepted_links BIGINT,
        persons BIGINT, new_persons BIGINT, merges BIGINT, splits BIGINT, review_items BIGINT,
        next_sequence BIGINT, stats JSON)""",
    """CREATE TABLE IF NOT EXISTS identity_links (
        run_id VARCHAR NOT NULL, unique_id_l VARCHAR NOT NULL, unique_id_r VARCHAR NOT NULL,
        match_probability DOUBLE, match_weight DOUBLE, rule VARCHAR, weights DOUBLE[],
        tf_weights DOUBLE[], vetoed BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS identity_assignments (
        run_id VARCHAR NOT NULL, unique_id VARCHAR NOT NULL, source_system VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL, person_id VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS identity_merges (
        run_id VARCHAR NOT NULL, surviving_id VARCHAR, absorbed_id VARCHAR,
        unique_ids_moved BIGINT)""",
    """CREATE TABLE IF NOT EXISTS identity_splits (
        run_id VARCHAR NOT NULL, person_id VARCHAR, new_person_id VARCHAR, records BIGINT)""",
    """CREATE TABLE IF NOT EXISTS identity_review (
        run_id VARCHAR NOT NULL, unique_id_l VARCHAR NOT NULL, unique_id_r VARCHAR NOT NULL,
        match_probability DOUBLE, rule VARCHAR, vetoed BOOLEAN, weights DOUBLE[],
        queued_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS identity_decisions (
        unique_id_l VARCHAR NOT NULL, unique_id_r VARCHAR NOT NULL, decision VARCHAR NOT NULL,
        reviewer VARCHAR NOT NULL, reason VARCHAR, decided_at TIMESTAMP NOT NULL)""",
)
CURRENT_RUN = (
    "(SELECT run_id FROM identity_runs WHERE status = 'active' "
    "ORDER BY started_at DESC, run_id DESC LIMIT 1)"
)
# person_map: the one relation the rest of the platform reads (sessions, profiles, features).
VIEWS = (
    f"""CREATE OR REPLACE VIEW person_map AS
        SELECT source_system, source_id, person_id FROM identity_assignments
        WHERE run_id = {CURRENT_RUN}""",
    # The review queue: grey-band links of the current run that nobody has decided yet.
    f"""CREATE OR REPLACE VIEW identity_open_reviews AS
        SELECT q.* FROM identity_review AS q
        WHERE q.run_id = {CURRENT_RUN}
          AND NOT EXISTS (SELECT 1 FROM identity_decisions AS d
                          WHERE d.unique_id_l = q.unique_id_l AND d.unique_id_r = q.unique_id_r)""",
)


def create_identity_tables(store: AnalyticStore) -> None:
    for statement in (*DDL, *VIEWS):
        store.execute(statement)


def chain_sql(run_id_param: str = "?") -> str:
    """SQL listing the run ids of a run's chain (itself, its base, ... back to a full run)."""
    return f"""WITH RECURSIVE chain(run_id, base_run_id, kind) AS (
        SELECT run_id, base_run_id, kind FROM identity_runs WHERE run_id = {run_id_param}
        UNION ALL
        SELECT r.run_id, r.base_run_id, r.kind FROM identity_runs AS r
        JOIN chain AS c ON r.run_id = c.base_run_id WHERE c.kind <> 'full'
    ) SELECT run_id FROM chain"""


def write_run(store: AnalyticStore, run: dict[str, Any], tables: dict[str, pd.DataFrame]) -> None:
    """One run's rows, all or nothing: a run interrupted midway leaves no trace."""
    connection = store.connection
    with store._lock:
        connection.execute("BEGIN TRANSACTION")
        try:
            for table, frame in {**tables, "identity_runs": pd.DataFrame([run])}.items():
                columns = [r[0] for r in connection.execute(f"DESCRIBE {table}").fetchall()]
                connection.register("_rows", frame[columns])
                connection.execute(f"INSERT INTO {table} SELECT * FROM _rows")
                connection.unregister("_rows")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
