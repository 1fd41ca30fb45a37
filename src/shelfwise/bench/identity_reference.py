"""The Splink reference of the identity protocols (febrl4, febrl3, identity-1m).

BENCHMARKS.md names one reference for every identity protocol: "Splink 5 on DuckDB with
standard settings", trained from scratch on the records it is asked to link, with no labels.
This module is that reference, written down once so that each benchmark runs exactly the same
model beside shelfwise. The *standard settings*, every one a choice the figures depend on:

- **Records.** FEBRL-shaped frames; ``unique_id`` is ``rec_id``. One frame is a
  ``dedupe_only`` job; two are ``link_only``, told apart by ``source_dataset`` (Splink adds it
  from the names ``first`` and ``second``), and every pair is returned with ``unique_id_l``
  from the first frame and ``unique_id_r`` from the second.
- **Blocking for prediction** (a pair is scored when one rule holds): given_name + surname;
  surname + date_of_birth; given_name + date_of_birth; soc_sec_id; postcode + address_1.
- **Comparisons.** ``NameComparison`` on given_name and surname (exact with term-frequency
  adjustment, Jaro-Winkler 0.92 / 0.88 / 0.7); ``DateOfBirthComparison`` on the
  ``YYYYMMDD`` text (``input_is_string``, ``datetime_format='%Y%m%d'``: exact, Levenshtein 1,
  within a month, a year, ten years); an invalid date (FEBRL corrupts some on purpose) is
  parsed with DuckDB's ``try_strptime`` and falls in the null level, so it neither helps nor
  hurts; ``ExactMatch`` on street_number and state; ``JaroWinklerAtThresholds`` (0.9, 0.7)
  on address_1 and suburb; ``LevenshteinAtThresholds`` 1 on postcode and 1, 2 on soc_sec_id
  (one digit edited, or two transposed).
- **Training.** The prior (probability that two random records match) from
  ``estimate_probability_two_random_records_match`` on the deterministic rules soc_sec_id,
  and given_name + surname + date_of_birth, with an assumed recall of 0.7; u by random
  sampling (``max_pairs_u``, ``seed``); m by expectation maximisation on two blocking rules,
  given_name + surname (trains every other comparison) then date_of_birth (trains the
  names), without term frequencies during the iterations (Splink's own FEBRL examples, and
  what keeps 1M rows tractable). EM's prior is not written back, as is Splink's default.
- **Prediction.** Pairs with match probability >= ``threshold`` (0.5 in every protocol).

Splink logs at WARNING, so a benchmark's stderr shows what went wrong, not every SQL step.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from shelfwise.datasets.identity import FEBRL_COLUMNS

if TYPE_CHECKING:
    from splink import SettingsCreator

__all__ = [
    "PREDICTION_RULES",
    "ReferenceResult",
    "connected_clusters",
    "splink_reference",
]

PREDICTION_RULES: tuple[tuple[str, ...], ...] = (
    ("given_name", "surname"),
    ("surname", "date_of_birth"),
    ("given_name", "date_of_birth"),
    ("soc_sec_id",),
    ("postcode", "address_1"),
)
DETERMINISTIC_RULES: tuple[tuple[str, ...], ...] = (
    ("soc_sec_id",),
    ("given_name", "surname", "date_of_birth"),
)
DETERMINISTIC_RECALL = 0.7
EM_RULES: tuple[tuple[str, ...], ...] = (("given_name", "surname"), ("date_of_birth",))
_SOURCES = ("first", "second")


@dataclass(frozen=True)
class ReferenceResult:
    """What the reference predicted, and how long each stage took (wall seconds).

    ``predictions`` has ``unique_id_l``, ``unique_id_r`` and ``match_probability`` for every
    scored pair at or above the threshold; ``stage_seconds`` has ``setup`` (loading the
    records into DuckDB), ``prior``, ``estimate_u``, ``em`` and ``predict`` (including
    reading the pairs back); ``seconds`` is the whole call.
    """

    predictions: pd.DataFrame
    stage_seconds: dict[str, float]
    seconds: float


def _settings(link_type: Literal["link_only", "dedupe_only"]) -> SettingsCreator:
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="rec_id",
        blocking_rules_to_generate_predictions=[block_on(*r) for r in PREDICTION_RULES],
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
            ),
            cl.ExactMatch("street_number"),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]),
            cl.LevenshteinAtThresholds("postcode", 1),
            cl.ExactMatch("state"),
            cl.LevenshteinAtThresholds("soc_sec_id", [1, 2]),
        ],
        # Only the ids and the probability are read back: nothing else to carry.
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def _febrl_table(records: pd.DataFrame) -> Any:
    """The FEBRL columns as an Arrow table of strings (DuckDB reads Arrow without copying)."""
    import pyarrow as pa

    missing = [c for c in FEBRL_COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(f"records lack the FEBRL columns {missing}")
    frame = records[list(FEBRL_COLUMNS)].astype("string")
    if frame["rec_id"].isna().any() or frame["rec_id"].duplicated().any():
        raise ValueError("rec_id must be present and unique within each frame")
    schema = pa.schema([(c, pa.string()) for c in FEBRL_COLUMNS])
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def splink_reference(
    records: pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame],
    *,
    threshold: float = 0.5,
    seed: int = 42,
    max_pairs_u: float = 1e6,
) -> ReferenceResult:
    """Train Splink with the standard settings (module docstring) on ``records`` and predict.

    ``records`` is one FEBRL-shaped frame to deduplicate, or a pair of frames to link (each
    rec_id unique within its frame). ``seed`` fixes the u sample, the only random step.
    """
    from splink import DuckDBAPI, Linker, block_on

    started = time.perf_counter()
    stages: dict[str, float] = {}
    link_only = isinstance(records, tuple)
    frames = list(records) if isinstance(records, tuple) else [records]
    if link_only and len(frames) != 2:
        raise ValueError(f"link_only takes exactly two frames, got {len(frames)}")

    clock = time.perf_counter()
    db_api = DuckDBAPI()
    tables = [
        db_api.register(_febrl_table(frame), dataset_display_name=name)
        for frame, name in zip(frames, _SOURCES, strict=False)
    ]
    settings = _settings("link_only" if link_only else "dedupe_only")
    linker = Linker(tables if link_only else tables[0], settings, log_level=logging.WARNING)
    stages["setup"] = time.perf_counter() - clock

    clock = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*r) for r in DETERMINISTIC_RULES], recall=DETERMINISTIC_RECALL
    )
    stages["prior"] = time.perf_counter() - clock

    clock = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs_u, seed=seed)
    stages["estimate_u"] = time.perf_counter() - clock

    clock = time.perf_counter()
    for rule in EM_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*rule), estimate_without_term_frequencies=True
        )
    stages["em"] = time.perf_counter() - clock

    clock = time.perf_counter()
    scored = linker.inference.predict(threshold_match_probability=threshold)
    columns = "rec_id_l, rec_id_r, match_probability"
    if link_only:
        columns += ", source_dataset_l"
    predictions = scored.as_duckdbpyrelation().select(columns).df()
    stages["predict"] = time.perf_counter() - clock

    predictions = _oriented(predictions, link_only)
    return ReferenceResult(predictions, stages, time.perf_counter() - started)


def _oriented(pairs: pd.DataFrame, link_only: bool) -> pd.DataFrame:
    """``unique_id_l`` from the first frame in a link job; plain column names otherwise."""
    left, right = pairs["rec_id_l"].to_numpy(), pairs["rec_id_r"].to_numpy()
    if link_only:
        flip = (pairs["source_dataset_l"] != _SOURCES[0]).to_numpy()
        left, right = np.where(flip, right, left), np.where(flip, left, right)
    return pd.DataFrame(
        {
            "unique_id_l": pd.array(left, dtype="string"),
            "unique_id_r": pd.array(right, dtype="string"),
            "match_probability": pairs["match_probability"].to_numpy(dtype=np.float64),
        }
    )


def connected_clusters(
    record_ids: pd.Series, pairs: pd.DataFrame, threshold: float = 0.5
) -> pd.Series:
    """Clusters as the connected components of the pairs scored at or above ``threshold``.

    Returns one cluster number per record, indexed by record id (every record of
    ``record_ids``, a record without a link alone in its cluster): the input of
    :func:`shelfwise.evaluation.linkage.cluster_scores`.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = pd.Index(record_ids)
    if ids.has_duplicates:
        raise ValueError("record_ids must be unique")
    kept = pairs[pairs["match_probability"] >= threshold]
    left = ids.get_indexer(kept["unique_id_l"])
    right = ids.get_indexer(kept["unique_id_r"])
    if (left < 0).any() or (right < 0).any():
        raise ValueError("pairs name records that are not in record_ids")
    n = len(ids)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return pd.Series(labels, index=ids, name="cluster")
