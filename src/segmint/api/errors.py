"""Mapping errors to HTTP answers, in one place. No stack trace reaches a client."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from segmint.errors import SegmintError

log = logging.getLogger(__name__)


def _body(code: str, message: str, field: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"success": False, "code": code, "message": message}
    if field:
        body["field"] = field
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SegmintError)
    async def segmint_error(_: Request, exc: SegmintError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.message, exc.path), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = describe_validation_error(exc)
        return JSONResponse(_body("invalid_request", message, field), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            _body("http_error", str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            _body(
                "internal_error",
                "Segmint hit an unexpected error; it was logged. Retry, and report it if it "
                "persists.",
            ),
            status_code=500,
        )


# A union member's name in a location (``str``, ``int``, ``list[str]``, ``function-after[…]``,
# a model's class name): pydantic names the member that failed, the input has no such key.
_MEMBER = re.compile(r"^(str|int|float|bool|bytes|none|[A-Z]\w*|[\w-]*\[.*\]|[a-z]+(-[a-z]+)+)$")


def describe_validation_error(exc: RequestValidationError) -> tuple[str, str | None]:
    """The message and field of the first problem of a request that failed validation. A body
    that is not JSON is said so, with where it breaks; a field is the path of the bad input
    (``definition.root``), without pydantic's union member names."""
    errors = list(exc.errors())
    if not errors:
        return "invalid request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return _json_problem(first, exc.body), None
    field = field_path(first.get("loc", ()), exc.body)
    # A union reports each member's failure at the same place: say them together.
    messages = [
        str(e.get("msg")) for e in errors if field_path(e.get("loc", ()), exc.body) == field
    ]
    return _together(list(dict.fromkeys(messages))), field


def field_path(loc: Sequence[Any], body: Any) -> str | None:
    """``loc`` as a dotted path over the request: the body's keys and indices (a missing
    field by its name), or ``query.NAME`` for a parameter, without union member names."""
    parts: list[str] = []
    in_body = bool(loc) and loc[0] == "body"
    current: Any = body if in_body else None
    for item in loc[1:] if in_body else loc:
        if _holds(current, item):
            current = current[item]
        elif isinstance(item, str) and _MEMBER.match(item):
            continue
        else:
            current = None  # a missing field, or a query / path parameter
        parts.append(str(item))
    return ".".join(parts) or None


def _holds(value: Any, key: Any) -> bool:
    if isinstance(value, dict):
        return key in value
    return isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)


def _json_problem(error: Any, document: Any) -> str:
    reason = str((error.get("ctx") or {}).get("error") or "it does not parse")
    loc = error.get("loc", ())
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    if not isinstance(document, str) or position is None:
        return f"the body is not valid JSON: {reason}"
    line = document.count("\n", 0, position) + 1
    column = position - document.rfind("\n", 0, position)
    return f"the body is not valid JSON: {reason} at line {line} column {column}"


def _together(messages: list[str]) -> str:
    prefix = "Input should be "
    if len(messages) > 1 and all(m.startswith(prefix) for m in messages):
        return prefix + " or ".join(m.removeprefix(prefix) for m in messages)
    return messages[0]
