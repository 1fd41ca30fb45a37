"""`shelfwise bench identity`: person linkage against the Splink reference, in the same run.

Protocols (../shared/BENCHMARKS.md): ``febrl4`` links febrl4a to febrl4b; ``febrl3``
deduplicates 5,000 records (pairwise and cluster metrics); ``identity-1m`` deduplicates the
million-row table of :mod:`shelfwise.datasets.identity_1m` and reports each stage's seconds.
shelfwise runs its own path end to end: the FEBRL files as customer records of the contract,
normalised, linked by the identity model trained on them (no labels), clustered. The reference
is Splink 5 with the standard settings of :mod:`shelfwise.bench.identity_reference`. Pairwise
figures are at match probability 0.5; clusters are connected components of those links.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pandas as pd

from shelfwise.bench import BenchOptions, progress
from shelfwise.datasets.identity import (
    febrl_entity_id,
    febrl_to_customer_records,
    febrl_true_links,
    febrl_true_pairs,
    load_febrl,
)
from shelfwise.identity.graph import cluster_records
from shelfwise.identity.linkage import LinkageSession, unique_ids
from shelfwise.identity.model import IdentityModel
from shelfwise.identity.settings import FEBRL_SETTINGS, IdentitySettings

PROTOCOLS = ("febrl4", "febrl3", "identity-1m")
SMOKE_ENTITIES = 300
SMOKE_ROWS = 3_000


def _ours(
    records: pd.DataFrame, settings: IdentitySettings
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Train, link and cluster; returns accepted links (rec ids), clusters and stage seconds."""
    stages: dict[str, float] = {}
    mark = time.perf_counter()
    if "_file" in records:
        parts = [
            febrl_to_customer_records(frame, str(system))
            for system, frame in records.groupby("_file")
        ]
    else:
        parts = [febrl_to_customer_records(records, "febrl")]
    customers = pd.concat(parts, ignore_index=True)
    stages["to_contract"] = time.perf_counter() - mark
    model = IdentityModel(settings)

    with LinkageSession(settings) as session:
        mark = time.perf_counter()
        session.load("records", customers)
        session.blank_shared(["records"])
        stages["normalise"] = time.perf_counter() - mark
        mark = time.perf_counter()
        model.fit_in(session, "records")
        stages["train"] = time.perf_counter() - mark
        mark = time.perf_counter()
        links = model.accepted(model.score(session, "records"))
        stages["score"] = time.perf_counter() - mark
    mark = time.perf_counter()
    unique_id = unique_ids(customers)
    clusters = cluster_records(
        unique_id, links[["unique_id_l", "unique_id_r", "match_probability"]], threshold=0.0
    ).assignments
    stages["cluster"] = time.perf_counter() - mark
    strip = {
        "unique_id_l": _rec_id(links["unique_id_l"]),
        "unique_id_r": _rec_id(links["unique_id_r"]),
    }
    pairs = pd.DataFrame(strip)
    clusters = clusters.assign(unique_id=_rec_id(clusters["unique_id"]))
    stages["total"] = sum(stages.values())
    return pairs, clusters, stages


def _rec_id(unique_id: pd.Series) -> pd.Series:
    return unique_id.astype("string").str.split(":", n=1).str[1]


def _figures(
    pairs: pd.DataFrame, truth: pd.DataFrame, clusters: pd.DataFrame | None, entity: pd.Series
) -> dict[str, Any]:
    from shelfwise.evaluation.linkage import cluster_scores, pair_scores

    out: dict[str, Any] = dict(pair_scores(pairs, truth).to_dict())
    if clusters is not None:
        scored = cluster_scores(clusters.set_index("unique_id")["person_id"], entity)
        out.update({f"cluster_{k}": v for k, v in scored.items()})
    return out


def _components(pairs: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    edges = pairs.assign(match_probability=1.0)
    return cluster_records(ids, edges, threshold=0.0).assignments


def _compare(
    records: pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame],
    settings: IdentitySettings,
    truth: pd.DataFrame,
    entity: pd.Series,
    clusters: bool,
) -> dict[str, Any]:
    from shelfwise.bench.identity_reference import splink_reference

    frame = (
        pd.concat([records[0].assign(_file="a"), records[1].assign(_file="b")], ignore_index=True)
        if isinstance(records, tuple)
        else records
    )
    progress(f"shelfwise: {len(frame):,} records")
    pairs, ours_clusters, stages = _ours(frame, settings)
    ours = _figures(pairs, truth, ours_clusters if clusters else None, entity)
    ours.update(seconds=round(stages["total"], 3), stage_seconds=_rounded(stages))
    progress(f"shelfwise f1 {ours['f1']:.4f} in {stages['total']:.1f}s; now the reference")
    reference = splink_reference(records)
    ref_pairs = reference.predictions[["unique_id_l", "unique_id_r"]]
    ref_clusters = _components(ref_pairs, frame["rec_id"]) if clusters else None
    ref = _figures(ref_pairs, truth, ref_clusters, entity)
    ref.update(seconds=round(reference.seconds, 3), stage_seconds=_rounded(reference.stage_seconds))
    progress(f"reference f1 {ref['f1']:.4f} in {reference.seconds:.1f}s")
    return {"shelfwise": ours, "splink_reference": ref}


def _rounded(stages: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in stages.items()}


def _smoke_subset(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[febrl_entity_id(frame["rec_id"]).to_numpy() < SMOKE_ENTITIES]


def run(options: BenchOptions) -> dict[str, Any]:
    protocol = options.protocol or "febrl4"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown identity protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    datasets = options.datasets
    if protocol == "febrl4":
        a, b = load_febrl("febrl4a", datasets), load_febrl("febrl4b", datasets)
        if options.smoke:
            a, b = _smoke_subset(a), _smoke_subset(b)
        truth = febrl_true_links(a, b).rename(
            columns={"rec_id_l": "unique_id_l", "rec_id_r": "unique_id_r"}
        )
        settings = dataclasses.replace(FEBRL_SETTINGS, link_type="link_only")
        entity = pd.Series(dtype="int64")
        tracks = {"default": _compare((a, b), settings, truth, entity, clusters=False)}
    else:
        if protocol == "febrl3":
            records = load_febrl("febrl3", datasets)
            if options.smoke:
                records = _smoke_subset(records)
        else:
            from shelfwise.datasets.identity_1m import build_identity_1m

            rows = SMOKE_ROWS if options.smoke else int(options.extra.get("rows", 1_000_000))
            mark = time.perf_counter()
            records = build_identity_1m(datasets, rows=rows)
            progress(f"built identity-1m ({rows:,} rows) in {time.perf_counter() - mark:.1f}s")
        truth = febrl_true_pairs(records).rename(
            columns={"rec_id_l": "unique_id_l", "rec_id_r": "unique_id_r"}
        )
        entity = pd.Series(
            febrl_entity_id(records["rec_id"]).to_numpy(), index=records["rec_id"].to_numpy()
        )
        tracks = {"default": _compare(records, FEBRL_SETTINGS, truth, entity, clusters=True)}
    return {
        "protocol": protocol,
        "primary_metric": "f1",
        "higher_is_better": True,
        "tracks": tracks,
    }
