"""The Events page (R27): what is tracked, each event's properties, and a live tail."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from segmint.errors import NotFound
from segmint.warehouse import explorer
from segmint.web.auth import current_user
from segmint.web.deps import runtime_of
from segmint.web.templating import render

router = APIRouter(dependencies=[Depends(current_user)])

TAIL_SIZE = 25
TAIL_SQL = """
SELECT event, type, "timestamp", received_at, user_id, anonymous_id, properties
FROM all_events ORDER BY received_at DESC, "timestamp" DESC LIMIT ?
"""


@dataclass(frozen=True)
class TailEvent:
    event: str
    type: str
    timestamp: dt.datetime
    received_at: dt.datetime
    who: str
    properties: str


def _pretty(properties: Any) -> str:
    if properties is None:
        return "{}"
    try:
        value = json.loads(properties) if isinstance(properties, str) else properties
    except ValueError:
        return str(properties)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@router.get("/events")
async def events_page(
    request: Request, event: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    rt = runtime_of(request)

    def build() -> dict[str, Any]:
        tracked = explorer.tracked_events(rt.warehouse)
        selected = unknown = None
        properties: list[explorer.KeyInfo] = []
        if event:
            try:
                properties = explorer.event_properties(rt.warehouse, event)
                selected = event
            except NotFound:
                # The explorer's message points to the REST API, which a web session cannot
                # use: this page, which lists the tracked events, says it instead (a 404).
                unknown = event
        writer = getattr(request.app.state, "writer", None)
        journal_dir = request.app.state.settings.journal_dir
        ingest = writer.status(journal_dir) if writer is not None else None
        return {
            "tracked": tracked,
            "selected": selected,
            "unknown": unknown,
            "properties": properties,
            "ingest": ingest,
        }

    data = await run_in_threadpool(build)
    status = 404 if data["unknown"] is not None else 200
    return render(request, "events/page.html", data, status_code=status)


@router.get("/events/tail")
async def tail(request: Request) -> Response:
    """The newest events, newest first (an htmx fragment polled every few seconds)."""
    rt = runtime_of(request)

    def build() -> list[TailEvent]:
        rows = rt.warehouse.rows(TAIL_SQL, [TAIL_SIZE])
        return [
            TailEvent(
                event=row[0],
                type=row[1],
                timestamp=row[2],
                received_at=row[3],
                who=row[4] or (f"anonymous {row[5]}" if row[5] else "unknown"),
                properties=_pretty(row[6]),
            )
            for row in rows
        ]

    items = await run_in_threadpool(build)
    return render(request, "events/_tail.html", {"items": items})
