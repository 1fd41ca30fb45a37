"""The service over a workspace: its champion recommender, catalogue, online features, keys.

One workspace is one tenant (``default``). At start the recommender's champion is loaded from
the registry (an artefact that cannot be read leaves the tenant serving popularity, not
ready, and says why in the log), and the demand forecaster's champion beside it (none, or one
that cannot be read, leaves the recommendations served and the forecasts refused with the
reason), and each model's challenger (and the ``shadow_versions``) to score in shadow; the
catalogue comes from the ``products`` table with the latest inventory snapshot per store; an
in-process online store is materialised from the offline states (a Redis one is
used as the feature stage left it); decisions are audited into the operational database's
``decision_log``.

API keys are read from ``api_keys_file``; when the workspace has none, one admin key is made
for the ``default`` tenant and written to ``<workspace>/api_keys.json`` (readable by its owner
alone), so a first ``shelfwise serve`` can be called at once.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from shelfwise.features.store import FeatureStore
from shelfwise.forecast.model import DemandForecaster
from shelfwise.forecast.stage import MODEL_NAME as FORECASTER_NAME
from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.lifecycle.shadow import ShadowTests
from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.stage import MODEL_NAME
from shelfwise.recommend.store_features import store_features
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.audit import DecisionAudit
from shelfwise.serve.auth import KeyRing, keys_file, new_key, write_keys
from shelfwise.serve.cache import open_cache
from shelfwise.serve.merchandising import (
    MerchandisingError,
    merchandising_file,
    read_merchandising,
)
from shelfwise.serve.segments import SegmentModels
from shelfwise.serve.shadow import ShadowTraffic
from shelfwise.serve.tenant import TenantRuntime
from shelfwise.workspace import Workspace

log = logging.getLogger("shelfwise.serve")
TENANT = "default"
FORECASTER = FORECASTER_NAME  # the forecaster's registered name
INVENTORY_SQL = """SELECT sku, store_id, on_hand, snapshot_at FROM inventory_snapshots"""


def tenant_from_workspace(workspace: Workspace, name: str = TENANT) -> TenantRuntime:
    """The tenant the workspace serves; :class:`MerchandisingError` first, before anything
    loads, where its merchandising file cannot be read."""
    settings = workspace.settings
    policy, overrides = read_merchandising(merchandising_file(settings))
    products = workspace.analytic.frame("SELECT * FROM products")
    inventory = workspace.analytic.frame(INVENTORY_SQL)
    catalogue = Catalogue.from_frame(products, inventory if len(inventory) else None)
    store = online_store(workspace)
    model, version, facts = load_champion(workspace, store)
    forecaster, forecaster_version, forecaster_facts = load_forecaster(workspace)
    cache = open_cache(settings.cache_url, name)
    workspace.operational.upgrade()
    audit = DecisionAudit(workspace.operational, name)
    alerts = AlertInbox(workspace.operational, workspace.registry, name)
    shadow = ShadowTraffic(
        ShadowTests(workspace.registry, alerts),
        experimental=settings.shadow_versions,
        min_samples=settings.shadow_min_samples,
    )
    shadow.refresh(workspace, store)
    segments = SegmentModels()
    segments.refresh(workspace, store)
    return TenantRuntime(
        name,
        catalogue,
        cache,
        policy=policy,
        overrides=overrides,
        model=model,
        version=version,
        store=store,
        audit=audit,
        facts=facts,
        deadline_seconds=settings.decision_deadline_ms / 1000,
        max_in_flight=settings.max_in_flight,
        forecaster=forecaster,
        forecaster_version=forecaster_version,
        forecaster_facts=forecaster_facts,
        registry=workspace.registry,
        alerts=alerts,
        shadow=shadow,
        segments=segments,
    )


def online_store(workspace: Workspace) -> FeatureStore:
    """The workspace's feature store as the service reads it: online, an in-memory online
    store filled from the offline features first."""
    store = FeatureStore(workspace, online_url=workspace.settings.online_store_url)
    if store.online_url.startswith("memory://"):
        store.materialise()
    return store


def load_champion(
    workspace: Workspace, store: FeatureStore, version: str | None = None
) -> tuple[TwoStageRecommender | None, str | None, dict[str, Any]]:
    """The recommender's champion (or ``version``) reading ``store`` online, with its load
    time and artefact size; (None, None, {}) when none is registered or its artefact cannot
    be read (logged)."""
    version = version or workspace.tracker.get_alias_version(MODEL_NAME, "champion")
    if version is None:
        log.warning("no champion of %r is registered: serving popularity", MODEL_NAME)
        return None, None, {}
    uri = f"models:/{MODEL_NAME}/{version}"
    started = time.perf_counter()
    try:
        loaded = workspace.tracker.load_estimator(uri)
        if not isinstance(loaded, TwoStageRecommender):
            raise TypeError(f"the champion is a {type(loaded).__name__}")
    except Exception:
        log.exception("%s v%s cannot be loaded", MODEL_NAME, version)
        return None, None, {}
    loaded.features = store_features(store, online=True)
    facts = {
        "load_seconds": round(time.perf_counter() - started, 3),
        "artefact_bytes": workspace.tracker.artefact_bytes(uri),
    }
    return loaded, version, facts


def load_forecaster(
    workspace: Workspace, version: str | None = None
) -> tuple[DemandForecaster | None, str | None, dict[str, Any]]:
    """The demand forecaster's champion (or ``version``) with its load time and artefact
    size; (None, None, {"reason": ...}) when none is registered or it cannot be read (logged),
    which never stops the service: its recommendations are served without it."""
    try:
        version = version or workspace.tracker.get_alias_version(FORECASTER, "champion")
    except Exception:
        log.exception("the registry cannot say which %s is the champion", FORECASTER)
        return None, None, {"reason": "the model registry could not be read"}
    if version is None:
        log.warning("no champion of %r is registered: serving no forecasts", FORECASTER)
        return None, None, {"reason": f"no champion of {FORECASTER!r} is registered"}
    uri = f"models:/{FORECASTER}/{version}"
    started = time.perf_counter()
    try:
        loaded = workspace.tracker.load_estimator(uri)
        if not isinstance(loaded, DemandForecaster):
            raise TypeError(f"the champion is a {type(loaded).__name__}")
        facts = {
            "load_seconds": round(time.perf_counter() - started, 3),
            "artefact_bytes": workspace.tracker.artefact_bytes(uri),
        }
    except Exception:
        log.exception("%s v%s cannot be loaded; serving no forecasts", FORECASTER, version)
        return None, None, {"reason": f"{FORECASTER} v{version} cannot be loaded (logged)"}
    return loaded, version, facts


class ChampionWatcher:
    """Swaps the tenant's models when the registry's champion aliases move (the recommender's
    and the demand forecaster's), and its shadow versions when a challenger alias moves:
    checked every ``interval_seconds`` on a thread of its own, loaded beside the serving model
    and warmed up on a decision of its own (so the first request it serves does not pay its
    set-up and pass the deadline), swapped in one assignment, so no request is dropped or sees
    two models. A new champion that cannot be loaded, or fails that first decision, leaves the
    old one serving (logged, counted in ``faults["model_load"]`` or
    ``faults["forecaster_load"]``; a shadow version in ``faults["shadow_load"]``). The
    merchandisers' file is read again when it changes (:mod:`shelfwise.serve.merchandising`),
    and so is the API keys file where ``keys`` is given (a new key counts, a removed one is
    refused, within ``interval_seconds``); a file that cannot be read leaves what was read
    before (counted in ``faults["merchandising_file"]`` and ``faults["keys_file"]``).
    """

    def __init__(
        self,
        workspace: Workspace,
        tenant: TenantRuntime,
        interval_seconds: float = 10.0,
        keys: KeyRing | None = None,
    ) -> None:
        self.workspace, self.tenant, self.interval = workspace, tenant, interval_seconds
        # as the tenant and the service read them
        self._merchandising = _Edits(merchandising_file(workspace.settings))
        self._keys, self._keys_file = keys, _Edits(keys_file(workspace.settings))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-watch", daemon=True)

    def start(self) -> ChampionWatcher:
        self._thread.start()
        return self

    def check(self) -> bool:
        """Look once; True when a new champion (of either model, or of a segment's model)
        was swapped in, the versions scoring in shadow changed (a challenger alias moved) or
        the merchandisers' new rules were taken up."""
        rules = self._check_merchandising()
        self._check_keys()
        forecaster = self._check_forecaster()
        recommender = self._check_recommender()
        shadow = self.tenant.shadow
        shadows = shadow is not None and shadow.refresh(self.workspace, self.tenant.store)
        segments = self.tenant.segments
        failed = segments.failures
        moved = segments.refresh(self.workspace, self.tenant.store)
        self.tenant.faults["segment_load"] += segments.failures - failed
        return recommender or forecaster or shadows or moved or rules

    def _check_merchandising(self) -> bool:
        path = self._merchandising.path
        if not self._merchandising.since_last_look():
            return False
        try:
            policy, overrides = read_merchandising(path)
        except MerchandisingError as error:
            self.tenant.faults["merchandising_file"] += 1
            log.error("%s; still deciding under the rules read before", error)
            return False
        self.tenant.set_merchandising(policy, overrides)
        log.warning("tenant %s decides under %s as edited", self.tenant.name, path)
        return True

    def _check_keys(self) -> bool:
        path = self._keys_file.path
        if self._keys is None or not self._keys_file.since_last_look():
            return False
        try:
            self._keys.take(KeyRing.from_file(path))
        except ValueError as error:
            self.tenant.faults["keys_file"] += 1
            log.error("%s: %s; still accepting the keys read before", path, error)
            return False
        log.warning("the service accepts the keys in %s as edited", path)
        return True

    def _check_forecaster(self) -> bool:
        version = self.workspace.tracker.get_alias_version(FORECASTER, "champion")
        if version is None or version == self.tenant.forecaster_version:
            return False
        model, loaded, facts = load_forecaster(self.workspace, version)
        if model is None:
            self.tenant.faults["forecaster_load"] += 1
            return False
        self.tenant.swap_forecaster(model, loaded, facts)
        log.warning("tenant %s now forecasts with %s v%s", self.tenant.name, FORECASTER, loaded)
        return True

    def _check_recommender(self) -> bool:
        version = self.workspace.tracker.get_alias_version(MODEL_NAME, "champion")
        if version is None or version == self.tenant.served.version:
            return False
        assert self.tenant.store is not None
        model, loaded, facts = load_champion(self.workspace, self.tenant.store, version)
        if model is not None:
            try:
                self.tenant.warm_up(model)  # its first decisions' set-up, before it serves
            except Exception:
                log.exception("%s v%s fails its first decision; not serving it", MODEL_NAME, loaded)
                model = None
        if model is None:
            self.tenant.faults["model_load"] += 1
            return False
        self.tenant.swap(model, loaded, facts)
        log.warning("tenant %s now serves %s v%s", self.tenant.name, MODEL_NAME, loaded)
        return True

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                log.exception("the champion watch failed; it will look again")


class _Edits:
    """Whether a file was written or removed since the last look (its time and size)."""

    def __init__(self, path: Path) -> None:
        self.path, self._stamp = path, _stamp(path)

    def since_last_look(self) -> bool:
        stamp = _stamp(self.path)
        edited, self._stamp = stamp != self._stamp, stamp
        return edited


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def keyring_of(workspace: Workspace) -> tuple[KeyRing, str | None]:
    """The service's keys, and the admin key when this call made the keys file."""
    path = keys_file(workspace.settings)
    made = None
    if not path.exists():
        made = new_key()
        write_keys(path, [{"name": "admin", "key": made, "tenant": TENANT, "roles": ["admin"]}])
    return KeyRing.from_file(path), made
