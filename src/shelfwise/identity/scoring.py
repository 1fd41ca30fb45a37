"""Scoring blocked pairs with the trained model on DuckDB: every pair, or only the new ones.

Both paths leave table ``_scored`` in the linkage session: ``unique_id_l < unique_id_r``, the
match probability and weight, and each comparison's weight (``weights``) with its
term-frequency part (``tf_weights``), in the order of the model's comparisons.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from shelfwise.identity.linkage import LinkageSession

if TYPE_CHECKING:
    from shelfwise.identity.model import IdentityModel


def weights_sql(names: tuple[str, ...], columns: Collection[str], prefix: str) -> str:
    """An array of one weight per comparison, 0 where the scored table lacks its column."""
    parts = [f'coalesce("{prefix}{c}", 0)' if f"{prefix}{c}" in columns else "0" for c in names]
    return f"[{', '.join(parts)}]::DOUBLE[]"


def scored_select(names: tuple[str, ...], table: str, columns: Collection[str]) -> str:
    return (
        "SELECT least(unique_id_l, unique_id_r) AS unique_id_l, "
        "greatest(unique_id_l, unique_id_r) AS unique_id_r, match_probability, match_weight, "
        f"{weights_sql(names, columns, 'mw_')} AS weights, "
        f"{weights_sql(names, columns, 'mw_tf_adj_')} AS tf_weights FROM {table}"
    )


def term_frequency_columns(model: dict[str, Any]) -> list[str]:
    return sorted(
        {
            level["tf_adjustment_column"]
            for comparison in model["comparisons"]
            for level in comparison["comparison_levels"]
            if level.get("tf_adjustment_column")
        }
    )


def score_on_duckdb(
    estimator: IdentityModel,
    session: LinkageSession,
    records: str,
    new: str | None,
    model: dict[str, Any],
    floor: float,
) -> None:
    from splink import DuckDBAPI, Linker

    connection = session.connection
    api = DuckDBAPI(connection=connection)
    linker = Linker(estimator._inputs(session, api, records), model, log_level=logging.ERROR)
    # Term frequencies come from every record, also when only new ones are scored.
    for column in term_frequency_columns(model):
        linker.table_management.compute_tf_table(column)
    if new is None:
        tables = [linker.inference.predict(threshold_match_probability=floor, warning_mode="never")]
    else:
        connection.execute(
            f'CREATE OR REPLACE TABLE _existing AS SELECT * FROM "{records}" '
            f'WHERE unique_id NOT IN (SELECT unique_id FROM "{new}")'
        )
        left, right = api.register("_existing"), api.register(new)
        tables = [
            linker.inference.predict_between(
                left, right, threshold_match_probability=floor, warning_mode="never"
            ),
            linker.inference.predict_within(
                right, threshold_match_probability=floor, warning_mode="never"
            ),
        ]
    names = estimator.comparison_names_
    selects = []
    for table in tables:
        columns = {r[0] for r in connection.execute(f"DESCRIBE {table.physical_name}").fetchall()}
        selects.append(scored_select(names, table.physical_name, columns))
    connection.execute(f"CREATE OR REPLACE TABLE _scored AS {' UNION ALL '.join(selects)}")
    for table in tables:
        table.drop_table_from_database_and_remove_from_cache()
