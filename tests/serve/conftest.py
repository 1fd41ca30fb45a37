"""A two-tenant service over planted purchase logs, in process (TestClient) and on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.recommender_settings import RecommenderSettings
from shelfwise.recommend.two_stage import TwoStageRecommender
from shelfwise.serve.app import create_app
from shelfwise.serve.auth import KeyRing
from shelfwise.serve.cache import MemoryCache
from shelfwise.serve.tenant import TenantRuntime

SMALL = RecommenderSettings(ranker_trees=30, ranker_leaves=7, label_windows=2)
KEYS = {
    "a_reader": "a-reader-key-0123456789",
    "a_writer": "a-writer-key-0123456789",
    "b_reader": "b-reader-key-0123456789",
    "c_admin": "c-admin-key-01234567890",
    "a_reviewer": "a-reviewer-key-012345678",
}


@pytest.fixture(scope="session")
def tenant_models(planted_log: Callable[[int], pd.DataFrame]) -> dict[str, TwoStageRecommender]:
    """Tenant a's shoppers are p00..p59; tenant b's the same log with its persons renamed."""
    a = planted_log(0)
    b = planted_log(1).assign(person_id=lambda f: "b-" + f["person_id"])
    return {
        "a": TwoStageRecommender(SMALL).fit(a),
        "b": TwoStageRecommender(SMALL).fit(b),
    }


def catalogue_of(model: TwoStageRecommender) -> Catalogue:
    skus = pd.Series(model.items_, dtype=str)
    products = pd.DataFrame(
        {"sku": skus, "title": "Product " + skus, "category": skus.str[0], "price": 2.0}
    )
    return Catalogue.from_frame(products)


@pytest.fixture
def runtimes(tenant_models: dict[str, TwoStageRecommender]) -> Iterator[dict[str, TenantRuntime]]:
    out = {
        name: TenantRuntime(
            name, catalogue_of(model), MemoryCache(), model=model, version="1", deadline_seconds=5.0
        )
        for name, model in tenant_models.items()
    }
    yield out
    for runtime in out.values():
        runtime.close()


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing(
        [
            {"key": KEYS["a_reader"], "tenant": "a", "roles": ["reader"]},
            {"key": KEYS["a_writer"], "tenant": "a", "roles": ["reader", "writer"]},
            {"key": KEYS["b_reader"], "tenant": "b", "roles": ["reader"]},
            {"key": KEYS["c_admin"], "tenant": "c", "roles": ["admin"]},
            {"key": KEYS["a_reviewer"], "tenant": "a", "roles": ["reviewer"]},
        ]
    )


@pytest.fixture
def client(runtimes: dict[str, TenantRuntime], keyring: KeyRing) -> Iterator[TestClient]:
    with TestClient(create_app(runtimes, keyring), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def bare_client() -> Iterator[TestClient]:
    """The service with one tenant and no model (its pages, schema and keys, no decisions)."""
    catalogue = Catalogue.from_frame(pd.DataFrame({"sku": ["x1"], "price": 1.0}))
    runtime = TenantRuntime("a", catalogue, MemoryCache())
    keys = KeyRing([{"key": KEYS["a_reader"], "tenant": "a", "roles": ["reader"]}])
    with TestClient(create_app({"a": runtime}, keys)) as test_client:
        yield test_client
    runtime.close()


@pytest.fixture
def as_() -> Callable[[str], dict[str, str]]:
    """``as_("a_reader")``: the headers of that key."""
    return lambda name: {"X-API-Key": KEYS[name]}


# fuzz(app, wanted, headers, examples, answered=None) -> the operations fuzzed, "METHOD path"
Fuzz = Callable[..., list[str]]


@pytest.fixture
def fuzz() -> Fuzz:
    """Send schemathesis's examples of every operation of ``app``'s schema that ``wanted(path)``
    keeps, with ``headers``: the same examples every run (a failure reproduces), and every
    answer no 5xx, or one that ``answered(case, response)`` accepts as designed."""

    def run(
        app: Any,
        wanted: Callable[[str], bool],
        headers: dict[str, str],
        examples: int,
        answered: Callable[[Any, Any], bool] | None = None,
    ) -> list[str]:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations() if wanted(r.ok().path)]
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def call(case: Any) -> None:
                response = case.call(headers=headers)
                designed = answered is not None and answered(case, response)
                assert response.status_code < 500 or designed, (
                    case.method,
                    case.path,
                    case.body,
                    response.text,
                )

            call()
        return [f"{o.method.upper()} {o.path}" for o in operations]

    return run
