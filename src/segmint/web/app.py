"""Mounting the web UI on the API app: sessions, static files, pages, HTML error pages.

Pages are served at ``/`` (see docs/web.md); everything under ``/api``, ``/v1``, ``/ui``
(the builder's JSON endpoints), ``/docs`` and ``/health`` keeps its JSON error answers.

Every response of a page carries a Content Security Policy that allows scripts only from
``/static``: templates must not use inline ``<script>`` code or ``on...=`` attributes (data
for scripts goes in ``<script type="application/json">`` blocks, which are not run).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmint.errors import SegmintError
from segmint.runtime import Runtime
from segmint.settings import Settings
from segmint.sync.secrets import load_or_create_key
from segmint.web import builder
from segmint.web.auth import SESSION_COOKIE, SESSION_MAX_AGE, LoginRequired, session_secret
from segmint.web.auth import wants_json as _wants_json
from segmint.web.pages import audiences, destinations, events, login, sync_panel, usage
from segmint.web.templating import STATIC_DIR, render

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/v1/", "/ui/", "/docs", "/redoc", "/openapi.json", "/health")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)

Handler = Callable[[Request, Any], Awaitable[Response]]


def is_page_request(request: Request) -> bool:
    """Whether an answer to ``request`` should be an HTML page (not JSON)."""
    path = request.url.path
    if path.startswith(API_PREFIXES) or path.startswith("/static/"):
        return False
    return not _wants_json(request)


PAGE_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


class PageSecurityHeaders:
    """Adds ``PAGE_HEADERS`` to the answers of page requests (unless a page set its own). A
    plain ASGI middleware: other requests (the collection API above all) pass straight
    through, without the extra task and body stream of an ``@app.middleware`` function."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page_request(Request(scope)):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PAGE_HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_web(
    app: FastAPI, runtime: Runtime | None = None, *, settings: Settings | None = None
) -> None:
    """Add the web UI to ``app``: session cookies signed with a key derived from the data
    directory's secret key, ``/static``, the page routers and HTML error pages."""
    settings = settings or (runtime.settings if runtime else Settings())
    settings.ensure_data_dir()
    secret = session_secret(load_or_create_key(settings.data_dir))
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=False,
    )

    app.add_middleware(PageSecurityHeaders)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # The builder first: its /audiences/new must win over /audiences/{audience_id}.
    app.include_router(builder.router, include_in_schema=False)
    for module in (login, audiences, events, usage, destinations, sync_panel):
        app.include_router(module.router, include_in_schema=False)
    _install_page_errors(app)


def _install_page_errors(app: FastAPI) -> None:
    """HTML error pages for page requests; the existing JSON answers for the rest."""
    previous: dict[Any, Handler] = dict(app.exception_handlers)

    def page_or(kind: Any, status: Callable[[Any], int], message: Callable[[Any], str]) -> None:
        fallback = previous.get(kind)

        async def handler(request: Request, exc: Any) -> Response:
            if fallback is not None and not is_page_request(request):
                return await fallback(request, exc)
            code = status(exc)
            if code >= 500:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
            return error_page(request, code, message(exc))

        app.add_exception_handler(kind, handler)

    def validation_message(exc: RequestValidationError) -> str:
        errors = exc.errors()
        if not errors:
            return "The request is not valid."
        first = errors[0]
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        where = f" ({field})" if field else ""
        return f"The request is not valid{where}: {first.get('msg', 'invalid value')}."

    page_or(SegmintError, lambda e: e.status_code, lambda e: e.message)
    page_or(RequestValidationError, lambda e: 400, validation_message)
    page_or(StarletteHTTPException, lambda e: e.status_code, lambda e: _http_message(e))
    page_or(
        Exception,
        lambda e: 500,
        lambda e: (
            "Segmint hit an unexpected error; it was logged. Retry, and report it if it persists."
        ),
    )

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if is_page_request(request):
            return RedirectResponse(exc.next_url, status_code=303)
        return JSONResponse(
            {"success": False, "code": exc.code, "message": exc.message},
            status_code=401,
            headers={"HX-Redirect": exc.next_url},
        )

    app.add_exception_handler(LoginRequired, login_required)


def _http_message(exc: StarletteHTTPException) -> str:
    if exc.status_code == 404:
        return "There is no page at this address. Check the link, or start from Audiences."
    if exc.status_code == 405:
        return "This address does not accept that kind of request."
    return str(exc.detail)


TITLES = {
    400: "Bad request",
    401: "Sign in required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Bad request",
    500: "Something went wrong",
    503: "Busy",
}


def error_page(request: Request, status_code: int, message: str) -> Response:
    """The error page: what went wrong and a way back."""
    try:
        return render(
            request,
            "error.html",
            {
                "status_code": status_code,
                "title": TITLES.get(status_code, "Error"),
                "message": message,
            },
            status_code=status_code,
        )
    except Exception:  # never fail while reporting a failure
        log.exception("the error page could not be rendered")
        return Response(message, status_code=status_code, media_type="text/plain")
