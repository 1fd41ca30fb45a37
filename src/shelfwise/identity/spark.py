"""The identity model's pairs blocked and scored on Apache Spark (the ``spark`` extra).

The model trained on DuckDB is saved as Splink's JSON; Splink translates its comparisons and
blocking rules to Spark SQL (the custom levels name DuckDB as their dialect), so the same
saved settings score the same pairs on a cluster. The normalised records travel to Spark as a
DataFrame, and the scored pairs come back into the linkage session as table ``_scored``, where
the exact keys and the vetoes are applied as on DuckDB.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from shelfwise.identity.comparisons import splink_settings
from shelfwise.identity.linkage import LinkageSession
from shelfwise.identity.scoring import scored_select

if TYPE_CHECKING:
    from shelfwise.identity.model import IdentityModel

LIST_COLUMNS = ("nulled", "behaviour")
INSTALL = "Spark scoring needs pyspark and Java 17+: pip install 'shelfwise[spark]'"


def local_spark(app_name: str = "shelfwise-identity", cores: int = 2) -> Any:
    """A local Spark session with Splink's similarity functions (its bundled jar) loaded."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise ImportError(INSTALL) from error
    from splink.backends.spark import similarity_jar_location

    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", str(2 * cores))
        .config("spark.default.parallelism", str(2 * cores))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_model(estimator: IdentityModel, model: dict[str, Any]) -> dict[str, Any]:
    """The trained model in Spark's dialect: the comparisons rebuilt from the settings (Splink
    writes each level for Spark), with the m and u probabilities learned on DuckDB.

    Translating the saved DuckDB SQL instead loses Splink's recognition of exact-match levels,
    which term-frequency adjustments need.
    """
    spec = splink_settings(estimator.settings, estimator.columns_)
    rebuilt: dict[str, Any] = spec["creator"].get_settings("spark").as_dict()
    for target, trained in zip(rebuilt["comparisons"], model["comparisons"], strict=True):
        if target["output_column_name"] != trained["output_column_name"]:
            raise ValueError(
                f"identity: Spark comparison {target['output_column_name']!r} does not line up "
                f"with the trained {trained['output_column_name']!r}"
            )
        for level, learned in zip(
            target["comparison_levels"], trained["comparison_levels"], strict=True
        ):
            for key in ("m_probability", "u_probability"):
                if key in learned:
                    level[key] = learned[key]
    for key in (
        "probability_two_random_records_match",
        "blocking_rules_to_generate_predictions",
        "retain_intermediate_calculation_columns",
    ):
        rebuilt[key] = model[key]
    return rebuilt


def _schema(frame: Any) -> Any:
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    fields = [
        StructField(str(c), ArrayType(StringType()) if c in LIST_COLUMNS else StringType())
        for c in frame.columns
    ]
    return StructType(fields)


def score_on_spark(
    estimator: IdentityModel,
    session: LinkageSession,
    records: str,
    model: dict[str, Any],
    floor: float,
    spark: Any,
) -> None:
    """Every pair the model's blocking rules propose, scored on ``spark``, into ``_scored``."""
    from splink import Linker

    # Looked up, not imported by name: typed only where pyspark is installed.
    spark_api: Any = importlib.import_module("splink.backends.spark").SparkAPI

    if estimator.settings.link_type != "dedupe_only":
        raise ValueError("identity: Spark scoring supports dedupe_only models")
    frame = session.connection.execute(f'SELECT * FROM "{records}"').df()
    # Spark infers no type from an all-null column: give it the records' schema as strings.
    table = spark.createDataFrame(frame.astype(object).where(frame.notna(), None), _schema(frame))
    api = spark_api(spark_session=spark, break_lineage_method="persist")
    linker = Linker(api.register(table), spark_model(estimator, model), log_level=logging.ERROR)
    scored = linker.inference.predict(threshold_match_probability=floor, warning_mode="never")
    pairs: Any = getattr(scored, "as_pandas_dataframe")()  # noqa: B009 - untyped in Splink
    session.connection.register("_spark_scored", pairs)
    session.connection.execute(
        "CREATE OR REPLACE TABLE _scored AS "
        + scored_select(estimator.comparison_names_, "_spark_scored", set(pairs.columns))
    )
    session.connection.unregister("_spark_scored")
