"""The ASGI application: collection API, REST API, OpenAPI docs at /docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from segmint import __version__
from segmint.api import audiences, destinations, explorer, preview
from segmint.api.errors import install_error_handlers
from segmint.audiences.scheduler import Scheduler
from segmint.catalog.keys import KeyChecker
from segmint.collect import http as collect_http
from segmint.collect.journal import Journal
from segmint.collect.workers import PreparationPool, worker_count
from segmint.collect.writer import GroupCommitWriter, IngestStatus
from segmint.runtime import Runtime
from segmint.settings import Settings
from segmint.sync.runner import SyncContext
from segmint.sync.worker import SyncWorker
from segmint.web.app import mount_web
from segmint.web.templating import static_url

log = logging.getLogger(__name__)


def ingest_processes(settings: Settings) -> int:
    """How many preparation processes the collection writer keeps (journal mode): the
    setting, else two — on 2 cores, 1,000,000 events were stored at 19,700–21,900/s with two
    against 18,600–20,600/s with one, in four interleaved pairs — or one on a single core."""
    cores = worker_count()
    if settings.ingest_processes is None:
        return min(2, cores)
    if settings.ingest_processes > cores:  # honoured: the user may know better
        log.warning(
            "SEGMINT_INGEST_PROCESSES=%d is more than the %d cores: preparation processes "
            "beyond the cores add no speed, only memory (100-350 MB each under load)",
            settings.ingest_processes,
            cores,
        )
    return settings.ingest_processes


def open_writer(rt: Runtime, settings: Settings) -> GroupCommitWriter:
    """The collection API's writer; in journal mode, what the journal kept from a previous
    run is stored first."""
    if settings.ingest_ack == "commit":
        return GroupCommitWriter(rt.collector, max_pending=settings.ingest_max_pending)
    rt.store_journal()
    processes = ingest_processes(settings)
    pool = (
        PreparationPool(rt.collector.enricher, settings, processes=processes) if processes else None
    )
    return GroupCommitWriter(
        rt.collector,
        journal=Journal(settings.journal_dir),
        max_pending=settings.ingest_max_pending,
        pool=pool,
        accept=lambda meta, body: collect_http.messages_from_record(meta, body, settings),
    )


COLLECTION_PREFIX = "/v1/"


class CollectionCORS:
    """CORS for the collection API alone: browsers on the sites in ``origins`` (every site by
    default, ``SEGMINT_CORS_ORIGINS``) may post events, which is what analytics.js needs.

    Nothing else answers cross-origin requests: the REST API (``/api/v1``) is for servers and
    scripts holding an admin key, and the web UI's pages and forms run on Segmint's own origin
    with a session cookie, so no other site's script may call or read them."""

    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self.app = app
        self.collection = CORSMiddleware(
            app, allow_origins=origins, allow_methods=["POST"], allow_headers=["*"], max_age=3600
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(COLLECTION_PREFIX):
            await self.collection(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. With no ``runtime`` it opens one from ``settings`` at start-up and
    closes it at shutdown; a given runtime is left open for its owner."""
    settings = settings or (runtime.settings if runtime else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = runtime or Runtime.open(settings)
        app.state.runtime = rt
        app.state.settings = settings
        app.state.write_keys = KeyChecker(rt.catalog, "write")
        app.state.api_keys = KeyChecker(rt.catalog, "admin")
        app.state.writer = open_writer(rt, settings)
        app.state.collect_limiter = collect_http.collect_limiter()
        worker = SyncWorker(SyncContext.of(rt))
        worker.start()
        app.state.sync_worker = worker
        scheduler = None
        if settings.scheduler:
            scheduler = Scheduler(
                rt.warehouse,
                rt.catalog,
                timezone=settings.timezone,
                every_seconds=settings.scheduler_every_seconds,
                on_refreshed=worker.submit,
            )
            scheduler.start()
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            worker.stop()
            app.state.writer.close()
            if owned:
                rt.close()

    app = FastAPI(
        title="Segmint",
        version=__version__,
        description="Audience engine: Segment-compatible collection API and REST API.",
        lifespan=lifespan,
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN; /docs is served below
        # from the app's static files instead (nothing is fetched from the internet).
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(CollectionCORS, origins=settings.cors_origins)
    install_error_handlers(app)
    app.include_router(collect_http.router)
    app.include_router(explorer.router)
    app.include_router(preview.router)
    app.include_router(audiences.router)
    app.include_router(destinations.router)
    mount_web(app, runtime, settings=settings)

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Segmint API",
            swagger_js_url=static_url("vendor/swagger-ui-bundle.js"),
            swagger_css_url=static_url("vendor/swagger-ui.css"),
            swagger_favicon_url=static_url("favicon.svg"),
            # No validator badge: it would be an image from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> RedirectResponse:
        return RedirectResponse(static_url("favicon.svg"), status_code=301)

    @app.get("/health", tags=["health"], summary="Liveness check")
    async def health(request: Request) -> dict[str, Any]:
        writer: GroupCommitWriter | None = getattr(request.app.state, "writer", None)
        status = (
            IngestStatus(pending=0, set_aside=[])
            if writer is None
            else await run_in_threadpool(writer.status, settings.journal_dir)
        )
        ingest = {
            "ack": settings.ingest_ack,
            "pending": status.pending,
            "set_aside": status.set_aside_messages,
            "preparation": status.preparation,
        }
        return {"status": "ok", "version": __version__, "ingest": ingest}

    return app
