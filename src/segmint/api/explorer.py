"""``/api/v1/events`` and ``/api/v1/traits``: what is tracked (R27)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from segmint.api.auth import require_api_key
from segmint.warehouse import explorer

router = APIRouter(prefix="/api/v1", tags=["events"], dependencies=[Depends(require_api_key)])


@router.get("/events", summary="Tracked event names with counts and first/last seen")
async def list_events(request: Request) -> dict[str, Any]:
    events = await run_in_threadpool(explorer.tracked_events, request.app.state.runtime.warehouse)
    return {"events": [_as_dict(e) for e in events]}


@router.get("/events/{event:path}/properties", summary="Property keys of an event with their types")
async def event_properties(event: str, request: Request) -> dict[str, Any]:
    """``event`` is the event's name percent-encoded (``checkout%2Fstep%201``); a name with
    ``/`` in it may also be given as it is, since only the last ``/properties`` ends it."""
    keys = await run_in_threadpool(
        explorer.event_properties, request.app.state.runtime.warehouse, event
    )
    return {"event": event, "properties": [_as_dict(k) for k in keys]}


@router.get("/traits", summary="Profile trait keys with their types")
async def traits(request: Request) -> dict[str, Any]:
    keys = await run_in_threadpool(explorer.trait_keys, request.app.state.runtime.warehouse)
    return {"traits": [_as_dict(k) for k in keys]}


def _as_dict(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}
