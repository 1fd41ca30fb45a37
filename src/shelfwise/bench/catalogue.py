"""The serving benchmark's large catalogue: a workspace's products plus simulated new ones.

`shelfwise bench serve` measures the service over 1,000,000 items, and The Complete Journey
has 92,331 products. :func:`enlarge` adds simulated products until the catalogue holds
``total``: each copies the attributes of a real product drawn at random (department, category,
subcategory, brand, manufacturer, size), with its own sku (``SIM0000000``...), a title naming
it a variant, a price within about 15% of its template's and a launch date in the last 60
days of the purchase log. They go through the data contract into the ``products`` table like
any product (so the catalogue, the rules' stock and price checks, and the feature store's
product attributes all hold them), and into the champion recommender with
``add_products``: embedded by its content model, they are new products, placed in the lists
through the ANN index over their vectors. The enlarged champion is registered as a new
version and made the champion, which the service then loads. Nobody has bought them, so the
sold skus that the other generators score stay what they were.

A second call on the same workspace finds the catalogue already at ``total`` and does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.ops.states import RegistryState
from shelfwise.workspace import Workspace

PREFIX = "SIM"
ATTRIBUTES = ("department", "category", "subcategory", "brand", "manufacturer", "size")
EXPERIMENT = "bench-serve"


def simulated_products(
    products: pd.DataFrame, count: int, latest: pd.Timestamp, *, seed: int = 0, start: int = 0
) -> pd.DataFrame:
    """``count`` products modelled on random rows of ``products`` (contract columns)."""
    rng = np.random.default_rng(seed)
    template = products.iloc[rng.integers(0, len(products), count)].reset_index(drop=True)
    numbers = np.arange(start, start + count)
    price = pd.to_numeric(template["price"], errors="coerce").to_numpy(dtype=float)
    launched = latest - pd.to_timedelta(rng.uniform(0, 60, count), unit="D")
    return pd.DataFrame(
        {
            "sku": [f"{PREFIX}{n:07d}" for n in numbers],
            "title": template["title"].fillna("product").astype(str) + " (variant)",
            **{name: template[name] for name in ATTRIBUTES if name in template.columns},
            "price": np.round(price * rng.lognormal(0.0, 0.15, count), 2),
            "launch_date": launched.normalize().date,
        }
    )


def enlarge(workspace: Workspace, total: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """The workspace's catalogue grown to ``total`` products with simulated ones, and the
    champion recommender re-registered with them; what was done and how long it took."""
    from shelfwise.recommend.stage import MODEL_NAME, purchase_log
    from shelfwise.recommend.two_stage import TwoStageRecommender

    count = int(workspace.analytic.frame("SELECT count(*) AS n FROM products")["n"].iloc[0])
    facts: dict[str, Any] = {"items": count, "simulated": 0, "seconds": {}}
    if count >= total:
        return facts
    products = workspace.analytic.frame("SELECT * FROM products")
    simulated = products["sku"].astype(str).str.startswith(PREFIX)
    latest = pd.Timestamp(purchase_log(workspace)["occurred_at"].max())
    need = total - count
    progress(f"simulating {need:,} products to make a catalogue of {total:,}")
    mark = time.perf_counter()
    frame = simulated_products(
        products[~simulated], need, latest, seed=int(simulated.sum()), start=int(simulated.sum())
    )
    report = workspace.ingest("products", frame)
    if report.accepted != need:
        raise RuntimeError(
            f"the data contract refused {report.quarantined} simulated products: {report.reasons}"
        )
    facts["seconds"]["ingest"] = round(time.perf_counter() - mark, 1)

    tracker = workspace.tracker
    version = tracker.get_alias_version(MODEL_NAME, "champion")
    if version is None:
        raise RuntimeError(f"the workspace has no champion {MODEL_NAME!r} to add products to")
    model = tracker.load_estimator(f"models:/{MODEL_NAME}/{version}")
    if not isinstance(model, TwoStageRecommender):
        raise TypeError(f"the champion {MODEL_NAME!r} is a {type(model).__name__}")
    progress(f"embedding {need:,} products into the champion and indexing the new products")
    mark = time.perf_counter()
    model.add_products(frame)
    facts["seconds"]["embed_and_index"] = round(time.perf_counter() - mark, 1)
    mark = time.perf_counter()
    record = tracker.log_training(
        model,
        experiment=EXPERIMENT,
        params={"simulated_products": need, "based_on_version": version},
    )
    # Through the registry, as every promotion: the move and the archived old champion are
    # recorded and audited (setting the alias directly left no trace and a stale state).
    enlarged = workspace.registry.register(
        MODEL_NAME,
        record,
        actor="bench",
        reason=f"v{version} with {need:,} simulated products added (shelfwise bench serve)",
        state=RegistryState.CHAMPION,
    )
    facts["seconds"]["register"] = round(time.perf_counter() - mark, 1)
    facts.update(items=count + need, simulated=need, new_products=len(model.new_skus_))
    facts["version"] = enlarged
    return facts
