"""The feature store: offline frames, materialisation, real-time updates and online vectors.

``FeatureStore(workspace)`` binds the feature sets to the workspace's analytic store (offline)
and to its online store (``online_store_url``: ``memory://`` or ``redis://``):

- :meth:`training_frame`: point-in-time features for labelled rows;
- :meth:`materialise`: every set's states as of a moment into the online store;
- :meth:`ingest`: interaction rows (purchases, views, carts...) folded into the streaming sets'
  states as they arrive, with the same SQL the offline states use;
- :meth:`vectors`: features for rows asked about now, from the online store, computed by the
  same code as the offline frame, each set's freshness reported;
- :meth:`freshness`: each set against its freshness target.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd

from shelfwise.data.validation import quote
from shelfwise.features.compute import (
    StateBlock,
    epoch_seconds,
    feature_columns,
    select_sets,
)
from shelfwise.features.definitions import (
    FEATURE_VERSIONS,
    Derived,
    FeatureSet,
    check_versions,
)
from shelfwise.features.online import (
    Backend,
    Layout,
    VersionGuard,
    entity_keys,
    group_name,
    open_backend,
)
from shelfwise.features.reader import OnlineReader, Vocabularies
from shelfwise.features.retail import (
    CROSS_FEATURES,
    INTERACTION_COLUMNS,
    ORDERS_SQL,
    RETAIL_FEATURE_SETS,
)
from shelfwise.features.states import states_sql

if TYPE_CHECKING:
    from shelfwise.features.offline import OfflineFeatures
    from shelfwise.workspace import Workspace

FRESHNESS = "freshness_seconds"  # DataFrame.attrs key of online vectors: set -> oldest age
INTERACTION_TYPES: dict[str, Any] = {
    "person_id": "string", "actor_id": "string", "sku": "string", "kind": "string",
    "order_id": "string", "store_id": "string", "quantity": "float64", "sales": "float64",
    "discount": "float64", "device": "string", "page": "string", "department": "string",
    "category": "string", "brand": "string",
}  # fmt: skip


def interactions_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows in the ``fs_interactions`` shape: the columns in order, typed; absent ones NULL."""
    if "event_at" not in rows.columns:
        raise ValueError(f"interactions need event_at; got {list(rows.columns)}")
    out = pd.DataFrame(index=rows.index)
    for column in INTERACTION_COLUMNS:
        if column == "event_at":
            try:
                moments = pd.to_datetime(rows["event_at"], utc=True).dt.tz_localize(None)
            except (ValueError, TypeError) as error:
                raise ValueError(f"interactions: event_at is not a time: {error}") from error
            if moments.isna().any():
                raise ValueError("interactions: event_at has missing or unreadable values")
            out[column] = moments.astype("datetime64[us]")
            continue
        dtype = INTERACTION_TYPES[column]
        if column in rows.columns:
            try:
                out[column] = rows[column].astype(dtype)
            except (ValueError, TypeError) as error:
                raise ValueError(f"interactions: {column} is not {dtype}: {error}") from error
        else:
            missing = np.nan if dtype == "float64" else pd.NA
            out[column] = pd.Series(missing, index=rows.index, dtype=dtype)
    for column in ("quantity", "sales", "discount"):
        out[column] = out[column].fillna(0.0)
    if out["actor_id"].isna().any():
        out["actor_id"] = out["actor_id"].fillna(out["person_id"])
    return out.reset_index(drop=True)


class FeatureStore:
    """Feature sets over a workspace: offline, online and the path between them."""

    def __init__(
        self,
        workspace: Workspace,
        sets: Sequence[FeatureSet] = RETAIL_FEATURE_SETS,
        cross: Sequence[Derived] = CROSS_FEATURES,
        *,
        online_url: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.sets = tuple(sets)
        self.cross = tuple(cross)
        self.online_url = online_url or workspace.settings.online_store_url
        self.layouts = Layout.of(self.sets)
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._ingesting = threading.Lock()
        self._vocabularies: Vocabularies = {}

    def using(self, online_url: str) -> FeatureStore:
        """The same sets and offline states over another online store."""
        other = FeatureStore(self.workspace, self.sets, self.cross, online_url=online_url)
        other.__dict__["offline"] = self.offline
        return other

    # Offline.
    @cached_property
    def offline(self) -> OfflineFeatures:
        from shelfwise.features.offline import OfflineFeatures

        return OfflineFeatures(self.workspace.analytic, self.sets, self.cross)

    def training_frame(self, rows: pd.DataFrame, sets: Sequence[str] | None = None) -> pd.DataFrame:
        """Point-in-time features for labelled rows (keys and ``as_of``)."""
        return self.offline.frame(rows, sets)

    def versions(self) -> dict[str, str]:
        return {s.name: s.version for s in self.sets}

    def describe(self) -> list[dict[str, Any]]:
        """Each set: entity, keys, version, kind and its features."""
        return [
            {
                "name": s.name,
                "entity": s.entity,
                "keys": list(s.keys),
                "version": s.version,
                "kind": s.kind,
                "freshness_target_seconds": s.freshness_target_seconds,
                "features": list(s.feature_names),
                "description": s.description,
            }
            for s in self.sets
        ]

    # Online.
    @cached_property
    def backend(self) -> Backend:
        return open_backend(self.online_url)

    @cached_property
    def guard(self) -> VersionGuard:
        return VersionGuard(self.backend)

    def materialise(
        self, as_of: datetime | None = None, sets: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Write every set's states as of ``as_of`` (default: after the latest data) into the
        online store, and record its version and moment."""
        chosen = select_sets(self.sets, sets)
        moment = pd.Timestamp(as_of if as_of is not None else self._latest())
        if moment.tzinfo is not None:
            moment = moment.tz_convert("UTC")
        moment = moment.tz_localize(None)
        meta = self.backend.get_meta()
        meta.setdefault("sets", {})
        meta.setdefault("vocabularies", {})
        report: dict[str, Any] = {"as_of": moment.isoformat(), "sets": {}}
        for feature_set in chosen:
            started = time.perf_counter()
            table = self.offline.states_table(feature_set)
            keys = ", ".join(quote(k) for k in feature_set.keys)
            frame = self.workspace.analytic.frame(
                f"SELECT DISTINCT {keys} FROM {quote(table)} WHERE "
                + " AND ".join(f"{quote(k)} IS NOT NULL" for k in feature_set.keys)
            )
            frame["as_of"] = moment
            block = self.offline.lookup(feature_set, {str(c): frame[c].to_numpy() for c in frame})
            rows = {k: frame[k].to_numpy() for k in feature_set.keys}
            keys_of = entity_keys(rows, feature_set.keys)
            written = self._write(feature_set, keys_of, block, meta["vocabularies"])
            meta["sets"][feature_set.name] = {
                "version": feature_set.version,
                "materialised_at": datetime.now(UTC).isoformat(),
                "as_of": moment.isoformat(),
                "entities": written,
            }
            report["sets"][feature_set.name] = {
                "entities": written,
                "seconds": round(time.perf_counter() - started, 3),
            }
        self.backend.put_meta(meta)
        self.guard.forget()
        return report

    def _latest(self) -> datetime:
        row = self.workspace.analytic.execute(
            "SELECT greatest((SELECT max(ordered_at) FROM orders), "
            "(SELECT max(occurred_at) FROM events))"
        )
        latest = row[0][0]
        if latest is None:
            raise LookupError("the workspace holds no orders or events to materialise")
        return latest + pd.Timedelta(seconds=1)  # type: ignore[no-any-return]

    def _write(
        self,
        feature_set: FeatureSet,
        keys: Sequence[str | None],
        block: StateBlock,
        vocabularies: dict[str, list[str]],
        current: np.ndarray[Any, Any] | None = None,
    ) -> int:
        """Write the set's slice of the rows of ``keys`` whose state is present. ``current``:
        those rows as already read (aligned with ``keys``), so they are not read again."""
        layout = self.layouts[group_name(feature_set.keys)]
        chosen = [i for i, k in enumerate(keys) if k is not None and block.present[i]]
        if not chosen:
            return 0
        names = [str(keys[i]) for i in chosen]
        if current is None:
            rows = self.backend.get_rows(layout.group, names, layout.width)
        else:
            rows = current[chosen]
        values = np.empty((len(chosen), len(feature_set.state_columns)))
        for j, column in enumerate(feature_set.state_columns):
            raw = np.asarray(block.columns[column])[chosen]
            if column in feature_set.categorical:
                values[:, j] = _encode(
                    raw, vocabularies.setdefault(f"{feature_set.name}.{column}", [])
                )
            else:
                values[:, j] = raw.astype(np.float64)
        rows[:, layout.columns(feature_set)] = values
        rows[:, layout.written_column(feature_set)] = time.time()
        self.backend.put_rows(layout.group, names, rows)
        return len(names)

    def lookup(self, feature_set: FeatureSet, rows: Mapping[str, Any]) -> StateBlock:
        """States of ``feature_set`` for ``rows`` from the online store."""
        block: StateBlock = self._reader()(feature_set, rows)
        return block

    def _reader(self) -> OnlineReader:
        return OnlineReader(self.backend, self.guard, self.layouts, self._vocabularies)

    def vector_columns(
        self,
        rows: Mapping[str, Any],
        as_of: np.ndarray[Any, Any],
        sets: Sequence[str] | None = None,
        expected_versions: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, float]]:
        """Online features as columns (no DataFrame: the serving fast path) and each set's
        freshness (the oldest age among the rows, seconds). ``expected_versions``: the versions
        a model was trained on; other versions are refused."""
        columns, ages, _ = self._online(rows, as_of, sets, expected_versions)
        return columns, ages

    def _online(
        self,
        rows: Mapping[str, Any],
        as_of: np.ndarray[Any, Any],
        sets: Sequence[str] | None,
        expected_versions: Mapping[str, str] | None,
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
        chosen = select_sets(self.sets, sets)
        reader = self._reader()
        reader.prefetch(chosen, rows)
        columns, used = feature_columns(rows, as_of, chosen, reader, cross=self.cross)
        versions = {s.name: s.version for s in used}
        if expected_versions is not None:
            check_versions(dict(expected_versions), versions, where="online vectors")
        return columns, dict(reader.ages), versions

    def vectors(
        self,
        rows: pd.DataFrame,
        sets: Sequence[str] | None = None,
        expected_versions: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """``rows`` (keys; ``as_of`` defaults to now) with their online features; attrs carry
        the set versions (:data:`FEATURE_VERSIONS`) and freshness (:data:`FRESHNESS`)."""
        frame = rows.reset_index(drop=True)
        if "as_of" not in frame.columns:
            frame = frame.assign(as_of=pd.Timestamp.now(tz="UTC").tz_localize(None))
        plain = {str(c): frame[c].to_numpy() for c in frame.columns}
        columns, ages, versions = self._online(
            plain, epoch_seconds(frame["as_of"]), sets, expected_versions
        )
        features = pd.DataFrame({k: v for k, v in columns.items() if k not in frame.columns})
        out = pd.concat([frame, features], axis=1)
        out.attrs[FEATURE_VERSIONS] = versions
        out.attrs[FRESHNESS] = ages
        return out

    # Real time.
    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB of this process, where ingested rows are folded into states."""
        if self._connection is None:
            self._connection = duckdb.connect(":memory:")
            self._connection.execute("SET TimeZone = 'UTC'")
        return self._connection

    def ingest(self, interactions: pd.DataFrame) -> dict[str, Any]:
        """Fold interaction rows into the streaming sets' online states, at once. One batch at
        a time: the batches share one DuckDB connection, and a fold reads a state before it
        writes it, so two at once would break the connection or lose an update."""
        with self._ingesting:
            return self._ingest(interactions)

    def _ingest(self, interactions: pd.DataFrame) -> dict[str, Any]:
        started = time.perf_counter()
        batch = interactions_frame(interactions)
        self._enrich(batch)
        streaming = [s for s in self.sets if s.streaming]
        self._register(streaming)
        connection = self.connection
        connection.register("fs_interactions", batch)
        report: dict[str, Any] = {"rows": len(batch), "sets": {}}
        try:
            connection.execute(f"CREATE OR REPLACE TEMP VIEW fs_orders AS {ORDERS_SQL}")
            for feature_set in streaming:
                report["sets"][feature_set.name] = self._fold(feature_set)
        finally:
            connection.unregister("fs_interactions")
        report["seconds"] = round(time.perf_counter() - started, 4)
        stats = self.backend.get_stats()
        for name in report["sets"]:
            # How long an event took to reach the store: the freshness of a streaming set.
            stats[name] = {
                "ingested_at": datetime.now(UTC).isoformat(),
                "ingest_seconds": report["seconds"],
            }
        self.backend.put_stats(stats)
        return report

    def _register(self, sets: Sequence[FeatureSet]) -> None:
        """Refuse sets stored at another version; record those the store has not seen yet
        (the metadata is written only then, not on every batch)."""
        known = self.guard.meta().get("sets", {})
        for feature_set in sets:
            stored = known.get(feature_set.name, {}).get("version", feature_set.version)
            if stored != feature_set.version:
                raise ValueError(
                    f"the online store holds version {stored} of {feature_set.name!r}; "
                    "materialise the current version first"
                )
        if all(s.name in known for s in sets):
            return
        meta = self.backend.get_meta()
        entries = meta.setdefault("sets", {})
        for feature_set in sets:
            entries.setdefault(feature_set.name, {"version": feature_set.version, "entities": 0})
        self.backend.put_meta(meta)
        self.guard.forget()

    def _fold(self, feature_set: FeatureSet) -> int:
        connection = self.connection
        stream = f"({feature_set.stream})"
        keys = ", ".join(quote(k) for k in feature_set.keys)
        touched = connection.execute(f"SELECT DISTINCT {keys} FROM {stream} AS s").df()
        if touched.empty:
            return 0
        layout = self.layouts[group_name(feature_set.keys)]
        names = entity_keys({k: touched[k].to_numpy() for k in touched}, feature_set.keys)
        valid = [i for i, n in enumerate(names) if n is not None]
        touched = touched.iloc[valid].reset_index(drop=True)
        names = [str(names[i]) for i in valid]
        matrix = self.backend.get_rows(layout.group, names, layout.width)
        position = {name: i for i, name in enumerate(names)}
        present = ~np.isnan(matrix[:, layout.written_column(feature_set)])
        prior = touched[present].reset_index(drop=True)
        states = matrix[present][:, layout.columns(feature_set)]
        for j, column in enumerate(feature_set.state_columns):
            prior[column] = states[:, j]
        connection.register("fs_prior", prior)
        try:
            sql = states_sql(feature_set, stream, prior="fs_prior", latest_only=True)
            new = connection.execute(sql).df()
        finally:
            connection.unregister("fs_prior")
        block = StateBlock(
            {c: new[c].to_numpy(np.float64, na_value=np.nan) for c in feature_set.state_columns},
            np.ones(len(new), dtype=bool),
        )
        rows = {k: new[k].to_numpy() for k in feature_set.keys}
        folded = entity_keys(rows, feature_set.keys)
        current = matrix[[position[str(key)] for key in folded]]
        return self._write(feature_set, folded, block, {}, current=current)

    def _enrich(self, batch: pd.DataFrame) -> None:
        """Department, category and brand of each row's product, from the online store."""
        attributes = next((s for s in self.sets if s.name == "product_attributes"), None)
        missing = batch["sku"].notna() & batch["category"].isna()
        if attributes is None or not missing.any():
            return
        try:
            self.guard.check(attributes)
        except LookupError:
            return
        skus = batch.loc[missing, "sku"].to_numpy()
        block = self.lookup(attributes, {"sku": skus})
        for column in ("department", "category", "brand"):
            batch.loc[missing, column] = pd.array(block.columns[column], dtype="string")

    def freshness(self) -> dict[str, Any]:
        """Each set against its freshness target: a batch set must have been materialised
        within the target; a streaming set must fold an ingested batch into the store within
        it (``ingest_seconds``, the time from a batch's arrival to its values being readable)."""
        meta = self.backend.get_meta().get("sets", {})
        stats = self.backend.get_stats()
        now = datetime.now(UTC)
        out: dict[str, Any] = {}
        for feature_set in self.sets:
            info = meta.get(feature_set.name)
            if info is None:
                out[feature_set.name] = {"ok": False, "detail": "not materialised"}
                continue
            info = {**info, **stats.get(feature_set.name, {})}
            stamps = [info.get("materialised_at"), info.get("ingested_at")]
            newest = max(datetime.fromisoformat(s) for s in stamps if s)
            age = (now - newest).total_seconds()
            target = feature_set.freshness_target_seconds
            lag = info.get("ingest_seconds")
            fresh = (lag is None or lag <= target) if feature_set.streaming else age <= target
            out[feature_set.name] = {
                "ok": info["version"] == feature_set.version and fresh,
                "kind": feature_set.kind,
                "version": info["version"],
                "current_version": feature_set.version,
                "target_seconds": target,
                "age_seconds": round(age, 3),
                "ingest_seconds": lag,
                "as_of": info.get("as_of"),
                "entities": info.get("entities"),
            }
        return out

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _encode(values: np.ndarray[Any, Any], words: list[str]) -> np.ndarray[Any, Any]:
    """Codes of category values in a growing vocabulary (NaN for a missing value)."""
    known = {w: i for i, w in enumerate(words)}
    codes = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value is None or value != value:
            continue
        code = known.get(value)
        if code is None:
            code = known[value] = len(words)
            words.append(str(value))
        codes[i] = code
    return codes
