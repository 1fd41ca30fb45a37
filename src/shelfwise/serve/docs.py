"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, served whole by the
service itself.

FastAPI's own pages load their scripts and styles from a public CDN, so where the service runs
without the internet (as a retailer's internal service often does) they were blank, and
elsewhere every reader's browser fetched code from a third party. The same pages here read
those files from the installed package ``fastapi-offline`` (Swagger UI 5 and ReDoc 2, MIT),
held in memory and served under ``/docs-assets/``.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response

ASSETS = "/docs-assets"
FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def docs_router(title: str, openapi_url: str) -> APIRouter:
    """``/docs``, ``/redoc`` and their files; the app is made with ``docs_url=None`` and
    ``redoc_url=None`` so that FastAPI's CDN pages are not there too."""
    router = APIRouter(include_in_schema=False)
    folder = resources.files("fastapi_offline") / "static"
    bodies = {name: (folder / name).read_bytes() for name in FILES}

    @router.get("/docs")
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
        )

    @router.get(OAUTH2_REDIRECT)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @router.api_route(ASSETS + "/{name}", methods=["GET", "HEAD"])
    def asset(name: str) -> Response:
        if name not in FILES:
            return Response(f"no documentation file {name!r}", status_code=404)
        headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        return Response(bodies[name], media_type=FILES[name], headers=headers)

    return router
