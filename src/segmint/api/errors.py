"""Mapping errors to HTTP answers, in one place. No stack trace reaches a client."""

from __future__ import annotations

import logging

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
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse(
            _body("invalid_request", str(first.get("msg")), field or None), status_code=400
        )

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
