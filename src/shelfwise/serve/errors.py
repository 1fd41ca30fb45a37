"""422 answers that name the field in the caller's terms, not pydantic's internals.

A body that may be one object or a list of them (``POST /api/v1/events``) is validated against
both shapes, and pydantic names each shape in the error's location
(``"function-after[_someone(), Event]"``, ``"list[...]"``) and reports both shapes' failures.
A caller sent one of the two: only that shape's errors are kept, without the tags, so an event
missing its time reads ``["body", "occurred_at"]`` (or ``["body", 3, "occurred_at"]`` in a
batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _is_tag(part: object) -> bool:
    return isinstance(part, str) and part.endswith("]") and "[" in part


def tidy_errors(errors: Sequence[Any], body: object) -> list[dict[str, Any]]:
    """``errors`` (pydantic's) of the shape ``body`` has, their locations without the tags,
    each once."""
    as_list = isinstance(body, list)
    out: list[dict[str, Any]] = []
    seen: set[tuple[object, ...]] = set()
    for error in errors:
        location = list(error.get("loc", ()))
        tags = [part for part in location if _is_tag(part)]
        if tags and tags[0].startswith("list[") != as_list:
            continue  # the other shape's failure: the caller did not send that shape
        where = tuple(part for part in location if not _is_tag(part))
        key = (where, error.get("type"), error.get("msg"))
        if key in seen:
            continue
        seen.add(key)
        out.append({**error, "loc": list(where)})
    return out or [dict(error) for error in errors]


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 with :func:`tidy_errors` applied."""
    if not isinstance(error, RequestValidationError):  # registered for it alone
        raise error
    detail = tidy_errors(error.errors(), error.body)
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)
