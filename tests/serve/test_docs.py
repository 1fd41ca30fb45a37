"""The API's documentation pages are whole without the internet: every script, style and icon
they load is served by the service itself (FastAPI's own pages loaded theirs from a CDN and
were blank where the service runs offline)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

LOADED = re.compile(r"""(?:src|href)=["']?([^"' >]+)""")  # what a page makes the browser fetch
URL = re.compile(r"""url: ?['"]([^'"]+)['"]|spec-url=["']([^"']+)""")  # the schema it reads
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_documentation_page_loads_nothing_from_elsewhere(
    bare_client: TestClient, page: str
) -> None:
    answer = bare_client.get(page)
    assert answer.status_code == 200
    loaded = LOADED.findall(answer.text)
    assert loaded  # its script at least
    for path in loaded:
        assert path.startswith("/"), f"{page} loads {path} from outside the service"
        file = bare_client.get(path)
        assert file.status_code == 200, path
        suffix = path[path.rindex(".") :]
        assert file.headers["content-type"].startswith(TYPES[suffix]), path
        assert len(file.content) > 1_000, path
    (schema,) = [a or b for a, b in URL.findall(answer.text)]
    assert bare_client.get(schema).json()["info"]["title"] == "shelfwise"


def test_the_pages_files_are_not_in_the_schema_and_others_are_not_served(
    bare_client: TestClient,
) -> None:
    assert bare_client.get("/docs/oauth2-redirect").status_code == 200
    assert bare_client.head("/docs-assets/swagger-ui.css").status_code == 200
    assert bare_client.get("/docs-assets/secrets.txt").status_code == 404
    paths = bare_client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


def test_the_schema_declares_the_api_key_so_the_docs_can_send_it(bare_client: TestClient) -> None:
    schema = bare_client.get("/openapi.json").json()
    (scheme,) = schema["components"]["securitySchemes"].values()
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    operation = schema["paths"]["/api/v1/recommendations"]["post"]
    assert operation["security"] == [{"APIKeyHeader": []}]
    assert "security" not in schema["paths"]["/health"]["get"]  # open to probes
    unkeyed = bare_client.post("/api/v1/recommendations", json={"person_id": "p", "k": 3})
    assert unkeyed.status_code == 401
    assert unkeyed.json()["detail"] == "a valid API key is needed in the X-API-Key header"
