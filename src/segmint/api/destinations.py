"""``/api/v1/destinations``, audience links and syncs over HTTP (issue 5 points 2, 4–10).

Thin: each handler validates its input and calls one service function of
:mod:`segmint.sync.catalog`, :mod:`segmint.sync.runner` or :mod:`segmint.sync.checks`.
Credentials go in and never come out: every response shows them redacted.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from segmint.api.auth import require_api_key
from segmint.audiences import operations
from segmint.sync import catalog as sync_catalog
from segmint.sync import checks, runner
from segmint.sync.catalog import DestinationInfo, LinkInfo, SyncLogEntry
from segmint.sync.runner import SyncContext

router = APIRouter(prefix="/api/v1", tags=["destinations"])
Caller = Depends(require_api_key)
_ref = sync_catalog.destination_ref  # an id (digits) or a name


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DestinationBody(_Body):
    name: str = Field(
        description="Your name for this destination, e.g. 'Shop Meta' (not only digits: "
        "those are ids)."
    )
    platform: str = Field(description=f"One of: {', '.join(sync_catalog.PLATFORMS)}.")
    credentials: dict[str, Any] = Field(description="The platform's login (stored encrypted).")
    config: dict[str, Any] = Field(default_factory=dict)


class ConfigBody(_Body):
    config: dict[str, Any]


class NameBody(_Body):
    name: str = Field(description="The new name (1 to 100 characters, unique, not only digits).")


class CredentialsBody(_Body):
    credentials: dict[str, Any]


class LinkBody(_Body):
    destination: str | int
    mode: str | None = Field(None, description="'list' (R16) or 'event' (R17).")
    identifier_mapping: dict[str, str] | None = Field(
        None, description="Platform identifier → profile field; R18's defaults when left out."
    )


class MappingBody(_Body):
    identifier_mapping: dict[str, str]


def _ctx(request: Request) -> SyncContext:
    return SyncContext.of(request.app.state.runtime)


def destination_json(info: DestinationInfo) -> dict[str, Any]:
    """The public shape of a destination (credentials redacted)."""
    return {**asdict(info), "label": info.label}


def link_json(info: LinkInfo) -> dict[str, Any]:
    """The public shape of a link."""
    return asdict(info)


def log_json(entry: SyncLogEntry) -> dict[str, Any]:
    """The public shape of a sync log entry."""
    return asdict(entry)


def _json(payload: Any, status_code: int = 200) -> JSONResponse:
    from segmint.api.audiences import jsonable

    return JSONResponse(jsonable(payload), status_code=status_code)


# --- destinations --------------------------------------------------------------------------


@router.get("/destinations", summary="Every destination (credentials redacted)")
async def list_destinations(request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    rows = await run_in_threadpool(sync_catalog.list_destinations, ctx.catalog)
    return _json({"destinations": [destination_json(row) for row in rows]})


@router.post("/destinations", summary="Connect a destination", status_code=201)
async def create_destination(
    body: DestinationBody, request: Request, check: bool = False, _: str = Caller
) -> JSONResponse:
    """The settings are checked without calling the platform (400 names a wrong one); with
    ``check=true`` the credentials are then tried on the platform, and nothing is saved when
    they fail."""
    ctx = _ctx(request)

    def run() -> DestinationInfo:
        if check:
            # Before saving: a login the platform refuses leaves nothing behind. The settings
            # are checked first, so a missing one is named rather than met by the adapter.
            credentials, config = sync_catalog.check_settings(
                body.platform, body.name, body.credentials, body.config
            )
            runner.try_credentials(body.platform, body.name, credentials, config)
        return sync_catalog.create_destination(
            ctx.catalog, ctx.secrets, body.name, body.platform, body.credentials, body.config
        )

    return _json(destination_json(await run_in_threadpool(run)), 201)


@router.get("/destinations/{ref}", summary="One destination by id or name")
async def get_destination(ref: str, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    info = await run_in_threadpool(sync_catalog.get_destination, ctx.catalog, _ref(ref))
    return _json(destination_json(info))


@router.patch("/destinations/{ref}", summary="Change settings (a key set to null is removed)")
async def configure_destination(
    ref: str, body: ConfigBody, request: Request, _: str = Caller
) -> JSONResponse:
    """The settings that result are checked as on creation (400 names a wrong one) and
    nothing changes unless they pass."""
    ctx = _ctx(request)
    info = await run_in_threadpool(
        lambda: sync_catalog.configure_destination(
            ctx.catalog, _ref(ref), body.config, box=ctx.secrets
        )
    )
    return _json(destination_json(info))


@router.post("/destinations/{ref}/rename", summary="Give the destination a new name")
async def rename_destination(
    ref: str, body: NameBody, request: Request, _: str = Caller
) -> JSONResponse:
    ctx = _ctx(request)
    info = await run_in_threadpool(
        lambda: sync_catalog.rename_destination(ctx.catalog, _ref(ref), body.name)
    )
    return _json(destination_json(info))


@router.post("/destinations/{ref}/reauthenticate", summary="Replace the login (R21)")
async def reauthenticate(
    ref: str, body: CredentialsBody, request: Request, _: str = Caller
) -> JSONResponse:
    """New credentials make the destination active again; pending changes go out with the
    next sync of each link."""
    ctx = _ctx(request)
    info = await run_in_threadpool(
        lambda: sync_catalog.reauthenticate_destination(
            ctx.catalog, ctx.secrets, _ref(ref), body.credentials
        )
    )
    return _json(destination_json(info))


@router.post("/destinations/{ref}/check", summary="Try the credentials on the platform")
async def check_destination(ref: str, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    info = await run_in_threadpool(runner.check_destination, ctx, _ref(ref))
    return _json(destination_json(info))


@router.post("/destinations/{ref}/disable", summary="Stop every sync to it")
async def disable(ref: str, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    info = await run_in_threadpool(sync_catalog.disable_destination, ctx.catalog, _ref(ref))
    return _json(destination_json(info))


@router.post("/destinations/{ref}/enable", summary="Sync to it again")
async def enable(ref: str, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    info = await run_in_threadpool(sync_catalog.enable_destination, ctx.catalog, _ref(ref))
    return _json(destination_json(info))


# --- links -----------------------------------------------------------------------------------


@router.get("/audiences/{ref}/links", summary="The audience's destinations")
async def audience_links(
    ref: str, request: Request, include_ended: bool = False, _: str = Caller
) -> JSONResponse:
    ctx = _ctx(request)

    def run() -> list[LinkInfo]:
        audience = operations.resolve_ref(ctx.catalog, ref)
        return sync_catalog.list_links(
            ctx.catalog, audience_id=audience.id, include_ended=include_ended
        )

    return _json({"links": [link_json(link) for link in await run_in_threadpool(run)]})


@router.post(
    "/audiences/{ref}/links", summary="Link the audience to a destination", status_code=201
)
async def link(ref: str, body: LinkBody, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)

    def run() -> LinkInfo:
        audience = operations.resolve_ref(ctx.catalog, ref)
        return sync_catalog.link_audience(
            ctx.catalog,
            audience.id,
            _ref(body.destination),
            mode=body.mode,
            identifier_mapping=body.identifier_mapping,
        )

    return _json(link_json(await run_in_threadpool(run)), 201)


@router.get("/links/{link_id}", summary="One link")
async def get_link(link_id: int, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    return _json(link_json(await run_in_threadpool(sync_catalog.get_link, ctx.catalog, link_id)))


@router.patch("/links/{link_id}", summary="Change the identifier mapping (R18)")
async def update_link(
    link_id: int, body: MappingBody, request: Request, _: str = Caller
) -> JSONResponse:
    ctx = _ctx(request)
    info = await run_in_threadpool(
        lambda: sync_catalog.update_link(
            ctx.catalog, link_id, identifier_mapping=body.identifier_mapping
        )
    )
    return _json(link_json(info))


@router.post("/links/{link_id}/unlink", summary="Stop syncing; leave the remote audience (R22)")
async def unlink(link_id: int, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    return _json(link_json(await run_in_threadpool(runner.unlink, ctx, link_id)))


@router.post("/links/{link_id}/delete", summary="Delete the remote audience too (R22)")
async def delete_link(link_id: int, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    return _json(link_json(await run_in_threadpool(runner.delete_link, ctx, link_id)))


@router.post("/links/{link_id}/sync", summary="Instant Sync (R20 intervals apply)")
async def instant_sync(
    link_id: int,
    request: Request,
    wait: float = Query(
        600,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds to wait for the outcome (0: do not wait).",
    ),
    _: str = Caller,
) -> JSONResponse:
    """Sends the changes pending since the last sync now; the answer is its log entry, or,
    when it is still running after ``wait`` seconds, 202 (it goes on: follow it in
    ``GET /audiences/{ref}/logs``)."""
    ctx = _ctx(request)
    entry = await run_in_threadpool(lambda: runner.sync_link_within(ctx, link_id, wait=wait))
    if entry is None:
        audience_id = sync_catalog.get_link(ctx.catalog, link_id).audience_id
        logs = f"/api/v1/audiences/{audience_id}/logs"
        message = f"the sync of link {link_id} is still running; follow it in {logs}"
        body = {"status": "running", "link_id": link_id, "logs": logs, "message": message}
        return _json(body, 202)
    return _json(log_json(entry))


@router.get("/links/{link_id}/preview", summary="Match-rate preview (R19)")
async def preview(link_id: int, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    result = await run_in_threadpool(checks.match_rate_preview, ctx, link_id)
    return _json(asdict(result))


@router.get("/links/{link_id}/diagnosis", summary="Why is this audience not syncing? (R29)")
async def diagnosis(link_id: int, request: Request, _: str = Caller) -> JSONResponse:
    ctx = _ctx(request)
    result = await run_in_threadpool(checks.why_not_syncing, ctx, link_id)
    return _json(asdict(result))


@router.get("/audiences/{ref}/logs", summary="Every sync attempt, newest first (R23)")
async def logs(
    ref: str,
    request: Request,
    destination: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    _: str = Caller,
) -> JSONResponse:
    ctx = _ctx(request)

    def run() -> list[SyncLogEntry]:
        audience = operations.resolve_ref(ctx.catalog, ref)
        return sync_catalog.list_sync_logs(
            ctx.catalog,
            audience.id,
            destination=_ref(destination) if destination else None,
            limit=limit,
        )

    return _json({"logs": [log_json(entry) for entry in await run_in_threadpool(run)]})
