"""The reviewers' dashboard: one page over the lifecycle's API (``/dashboard``).

A static page and its script, served without a key; everything it shows or changes goes
through ``/api/v1`` with the key the reviewer types in (kept in the browser tab's session
storage, sent in the ``X-API-Key`` header), so the dashboard has no rights or logic of its
own: a reader sees the models, their cards, the ML alerts and the experiments; a reviewer also
reviews the evidence and approves or rejects a version, rolls a model back, acts on alerts and
approves or completes experiments. Every change is recorded with the key's name, as through
the API. The page builds its content as DOM text, never as HTML, and its content security
policy allows only its own script and style.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def dashboard_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    folder = resources.files(__package__)
    bodies = {path: (folder / name).read_bytes() for path, (name, _) in FILES.items()}

    @router.api_route("/dashboard", methods=["GET", "HEAD"])
    def home() -> RedirectResponse:
        return RedirectResponse("/dashboard/", status_code=307)

    @router.api_route("/dashboard/{path}", methods=["GET", "HEAD"])
    @router.api_route("/dashboard/", methods=["GET", "HEAD"], name="dashboard_index")
    def page(path: str = "") -> Response:
        if path not in FILES:
            return Response(f"no dashboard file {path!r}", status_code=404)
        headers = {
            "Content-Security-Policy": POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        }
        return Response(bodies[path], media_type=FILES[path][1], headers=headers)

    return router
