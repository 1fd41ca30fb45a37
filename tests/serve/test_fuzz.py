"""Fuzzing the OpenAPI schema with schemathesis: whatever it sends, no 5xx comes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shelfwise.serve.app import create_app
from shelfwise.serve.auth import KeyRing
from shelfwise.serve.tenant import TenantRuntime

EXAMPLES = 40


def test_no_request_gets_a_server_error(
    runtimes: dict[str, TenantRuntime],
    keyring: KeyRing,
    as_: Callable[[str], dict[str, str]],
    fuzz: Callable[..., list[str]],
) -> None:
    def governed(case: Any, response: Any) -> bool:
        # These tenants serve no forecaster and hold no model registry, so those refusals are
        # the designed answers (the forecasts are fuzzed with one in test_forecasts_api.py; the
        # lifecycle endpoints are tested in test_lifecycle_api.py).
        path: str = case.path
        refused = path == "/api/v1/forecasts" or path.startswith(
            ("/api/v1/ml-alerts", "/api/v1/models", "/api/v1/experiments")
        )
        return refused and response.status_code == 503

    app = create_app(runtimes, keyring)
    fuzzed = fuzz(app, lambda _: True, as_("a_writer"), EXAMPLES, governed)
    assert set(fuzzed) >= {
        "POST /api/v1/recommendations",
        "POST /api/v1/events",
        "POST /api/v1/catalogue/changes",
        "GET /ready",
    }
