"""The reviewers' dashboard: its page and files are served under a strict content security
policy, and every API call its script makes is a path and method the API has (so the page
cannot rot away from the API it drives)."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import resources

import pytest
from fastapi.testclient import TestClient

SCRIPT = resources.files("shelfwise.serve.dashboard").joinpath("dashboard.js").read_text()
# call("GET", "/models") and act("...", "PATCH", `/ml-alerts/${a.id}/read`, ...) alike
CALL = re.compile(r"""(?:call|act)\((?:`[^`]*`, )?"(GET|POST|PATCH)", [`"]([^`"]+)[`"]""")
SHOWN = re.compile(r"""showFrom\([^,]+, `([^`]+)`""")
DRAWN = re.compile(r"""\["(/[^"]+)", draw""")  # refresh()'s reads


def _template(path: str) -> str:
    """`/models/${v.version}/card${q}` -> /models/{}/card: the path without its query (``q``
    holds the ``?model=`` query of a version's buttons)."""
    path = path.split("?")[0].removesuffix("${q}")
    return re.sub(r"\$\{[^}]+\}", "{}", path)


def test_the_page_and_its_files_are_served_under_a_strict_policy(bare_client: TestClient) -> None:
    moved = bare_client.get("/dashboard", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (307, "/dashboard/")
    page = bare_client.get("/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert '<script src="/dashboard/dashboard.js" defer></script>' in page.text
    script = bare_client.get("/dashboard/dashboard.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.text == SCRIPT
    assert bare_client.get("/dashboard/dashboard.css").status_code == 200
    icon = bare_client.get("/dashboard/favicon.svg")
    assert icon.headers["content-type"] == "image/svg+xml"
    assert '<link rel="icon" href="/dashboard/favicon.svg"' in page.text
    assert bare_client.head("/dashboard/").status_code == 200
    assert bare_client.get("/dashboard/secrets.txt").status_code == 404
    assert "/dashboard/" not in bare_client.get("/openapi.json").json()["paths"]


def test_every_call_the_script_makes_is_in_the_api(bare_client: TestClient) -> None:
    paths = bare_client.get("/openapi.json").json()["paths"]
    api = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path.removeprefix("/api/v1")))
        for path, operations in paths.items()
        for method in operations
    }
    calls = {(m, _template(p)) for m, p in CALL.findall(SCRIPT)}
    calls |= {("GET", _template(p)) for p in SHOWN.findall(SCRIPT) + DRAWN.findall(SCRIPT)}
    assert len(calls) == 13, sorted(calls)  # every read and change the page offers
    assert calls <= api, sorted(calls - api)
    for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in SCRIPT  # text only: names and notes cannot inject markup


@pytest.mark.skipif(shutil.which("node") is None, reason="node checks the script's syntax")
def test_the_script_parses() -> None:
    path = resources.files("shelfwise.serve.dashboard").joinpath("dashboard.js")
    done = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
