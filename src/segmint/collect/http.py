"""The Segment-compatible tracking API: ``/v1/track`` ... ``/v1/batch`` and the short paths
analytics.js posts to (``/v1/t`` ... ``/v1/b``).

Rules (see docs/collection.md):
- write key as the HTTP Basic user name, or ``writeKey`` in the body; unknown → 401;
- bodies may be gzip-compressed (``Content-Encoding: gzip``) and sent as ``text/plain``;
- invalid JSON, a message over 32 KB, a batch over 500 KB or 2,500 messages → 400;
- a single message that breaks the spec → 400 naming the field;
- in a batch, valid messages are stored even when neighbours are invalid; the answer is 200
  and lists the rejected ones (index, field, reason); 400 only when none was valid;
- 200 means stored durably: synced to the collection journal (by default) or committed to
  the warehouse (``SEGMINT_INGEST_ACK=commit``); see collect/journal.py;
- ``context.ip`` is filled from the connection for browser calls (the short paths) and for
  messages with ``context.direct: true``, as Segment does; server-side calls keep theirs.
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
import zlib
from datetime import datetime
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from segmint.collect.messages import Message
from segmint.collect.pipeline import utcnow
from segmint.collect.validate import parse_timestamp, validate_message
from segmint.errors import InvalidInput, InvalidMessage, PayloadTooLarge, SegmintError
from segmint.settings import Settings

router = APIRouter(tags=["collection"])

SINGLE_ROUTES = {
    "track": "t",
    "identify": "i",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
}


def _basic_user(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip"})


async def read_json_body(request: Request, limit: int) -> tuple[bytes, Any]:
    """Read at most ``limit`` bytes (after gunzip) and parse them as JSON, whatever the
    Content-Type (analytics.js sends JSON as text/plain). Returns the bytes and the value."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the request body is {int(declared):,} bytes; the limit is {limit:,}"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        raise InvalidInput(
            f"Content-Encoding {encoding!r} is not supported; send the body as it is or "
            "gzip-compressed (Content-Encoding: gzip)"
        )
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise InvalidInput(
                "the body says Content-Encoding: gzip but is not gzip data"
            ) from None
        if len(raw) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the uncompressed body is over the limit of {limit:,} bytes")
        if not inflater.eof:
            raise InvalidInput(
                "the gzip body ends before its end marker: it was cut off; send it whole"
            )
    if not raw.strip():
        raise InvalidInput("the request body is empty; send a JSON object")
    try:
        return raw, orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None


def _source(request: Request, body: Any) -> str:
    key = _basic_user(request.headers.get("authorization"))
    if key is None and isinstance(body, dict):
        value = body.get("writeKey")
        key = value if isinstance(value, str) else None
    checker = request.app.state.write_keys
    return str(checker.name_for(key, time.monotonic()))


BROWSER_PATHS = frozenset({f"/v1/{short}" for short in ("t", "i", "p", "s", "g", "a", "b")})


def accept_batch(
    body: Any,
    *,
    received_at: datetime,
    source: str,
    settings: Settings,
    size_limits: bool = True,
) -> tuple[list[Message], list[dict[str, Any]]]:
    """Validate a ``/v1/batch`` body: the valid messages, and the rejected ones (index,
    field, reason). Raises for a body that is not a batch at all. ``size_limits=False``
    skips the message count and size limits (a journaled request passed them already)."""
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise InvalidInput('a batch is a JSON object {"batch": [message, ...]}', path="batch")
    items = body["batch"]
    if not items:
        raise InvalidInput("batch is empty; send at least one message", path="batch")
    if size_limits and len(items) > settings.max_batch_messages:
        raise PayloadTooLarge(
            f"the batch has {len(items):,} messages; at most {settings.max_batch_messages:,} "
            "are allowed per request — split it",
            path="batch",
        )
    context, integrations = body.get("context"), body.get("integrations")
    if context is not None and not isinstance(context, dict):
        raise InvalidInput("context must be a JSON object", path="context")
    if integrations is not None and not isinstance(integrations, dict):
        raise InvalidInput("integrations must be a JSON object", path="integrations")
    sent_at = parse_timestamp(body.get("sentAt"), "sentAt")
    accepted: list[Message] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            accepted.append(
                validate_message(
                    item,
                    received_at=received_at,
                    batch_sent_at=sent_at,
                    batch_context=context,
                    batch_integrations=integrations,
                    max_bytes=settings.max_message_bytes if size_limits else None,
                    path=f"batch[{index}].",
                    source=source,
                )
            )
        except SegmintError as exc:
            rejected.append({"index": index, **exc.to_dict()})
    return accepted, rejected


def accept_single(
    body: Any, kind: str, *, received_at: datetime, source: str, settings: Settings
) -> Message:
    """Validate the body of a single-message route (``kind`` is what the route implies)."""
    if not isinstance(body, dict):
        raise InvalidMessage("the body must be a JSON object (one message)")
    return validate_message(
        body,
        received_at=received_at,
        implied_type=kind,
        source=source,
        max_bytes=settings.max_message_bytes,
    )


def fill_ip(messages: list[Message], client_ip: str | None, from_browser: bool) -> None:
    """Fill ``context.ip`` from the connection where the spec says the server does: browser
    calls, or messages with ``context.direct: true``."""
    if not client_ip:
        return
    for message in messages:
        context = message.context
        if "ip" not in context and (from_browser or context.get("direct") is True):
            message.context = {**context, "ip": client_ip}


# Collection requests hand their messages to the writer from worker threads, where they may
# wait for room (back-pressure) or for the commit. They get their own threads, at most this
# many at once, so a flood of events never takes the threads the web pages and APIs need.
STORE_THREADS = 16


def collect_limiter() -> anyio.CapacityLimiter:
    """The limiter of the collection API's worker threads (one per app, made at start-up)."""
    return anyio.CapacityLimiter(STORE_THREADS)


async def _store_in_thread(request: Request, *args: Any) -> None:
    await anyio.to_thread.run_sync(
        functools.partial(_store, request, *args), limiter=request.app.state.collect_limiter
    )


def _store(
    request: Request,
    route: str,
    raw: bytes,
    source: str,
    received_at: datetime,
    messages: list[Message],
    rejected: list[int] | None = None,
) -> None:
    """Hand accepted messages to the writer with what it takes to accept them again from
    the journal; returns once they are durable (journaled or committed, per settings).
    ``rejected`` are the positions of the batch's messages that were not accepted."""
    client_ip = request.client.host if request.client else None
    from_browser = request.url.path in BROWSER_PATHS
    fill_ip(messages, client_ip, from_browser)
    meta = journal_meta(route, received_at, source, client_ip, from_browser, messages, rejected)
    request.app.state.writer.submit(messages, meta, raw)


def journal_meta(
    route: str,
    received_at: datetime,
    source: str,
    client_ip: str | None,
    from_browser: bool,
    messages: list[Message],
    rejected: list[int] | None = None,
) -> dict[str, Any]:
    """What the journal keeps beside a request's body to accept it again exactly as now
    (:func:`messages_from_record`): among others the positions of the batch's messages
    that were rejected, since some may pass when accepted again (size limits are not
    checked again)."""
    meta: dict[str, Any] = {
        "route": route,
        "received_at": received_at.isoformat(),
        "source": source,
        "ip": client_ip,
        "browser": from_browser,
        "ids": [message.message_id for message in messages],
    }
    if rejected:
        meta["rejected"] = rejected
    return meta


def messages_from_record(meta: dict[str, Any], raw: bytes, settings: Settings) -> list[Message]:
    """Accept a journaled request again, exactly as it was: same receive time, source and
    client address, and the same message ids (those the server generated included). Size
    limits are not checked again: the request passed those in force when it was answered,
    and lowering them since must not lose it."""
    body = orjson.loads(raw)
    received_at = datetime.fromisoformat(meta["received_at"])
    source, route = meta["source"], meta["route"]
    if route == "batch":
        if meta.get("rejected") and isinstance(body, dict) and isinstance(body.get("batch"), list):
            left_out = set(meta["rejected"])
            body["batch"] = [m for i, m in enumerate(body["batch"]) if i not in left_out]
        messages, _ = accept_batch(
            body, received_at=received_at, source=source, settings=settings, size_limits=False
        )
    else:
        messages = [
            accept_single(body, route, received_at=received_at, source=source, settings=settings)
        ]
    ids = meta["ids"]
    if len(ids) != len(messages):
        raise InvalidInput(
            f"the journaled request accepted {len(ids)} messages but {len(messages)} pass "
            "validation now"
        )
    for message, message_id in zip(messages, ids, strict=True):
        message.message_id = message_id
    fill_ip(messages, meta["ip"], meta["browser"])
    return messages


@router.post("/v1/batch", summary="Send many messages at once")
@router.post("/v1/b", include_in_schema=False)
@router.post("/v1/import", include_in_schema=False)
async def batch(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    raw, body = await read_json_body(request, settings.max_batch_bytes)
    source = _source(request, body)
    received_at = utcnow()
    accepted, rejected = accept_batch(
        body, received_at=received_at, source=source, settings=settings
    )
    if accepted:
        await _store_in_thread(
            request, "batch", raw, source, received_at, accepted, [r["index"] for r in rejected]
        )
    if not rejected:
        return JSONResponse({"success": True})
    total = len(body["batch"])
    message = (
        f"{len(rejected)} of {total} messages were rejected; the others were stored"
        if accepted
        else f"all {total} messages were rejected; nothing was stored"
        if total > 1
        else "the message was rejected; nothing was stored"
    )
    return JSONResponse(
        {
            "success": bool(accepted),
            "accepted": len(accepted),
            "rejected": rejected,
            "message": message,
        },
        status_code=200 if accepted else 400,
    )


def _single_route(kind: str) -> Any:
    async def handler(request: Request) -> JSONResponse:
        settings = request.app.state.settings
        raw, body = await read_json_body(request, settings.max_message_bytes)
        source = _source(request, body)
        received_at = utcnow()
        message = accept_single(
            body, kind, received_at=received_at, source=source, settings=settings
        )
        await _store_in_thread(request, kind, raw, source, received_at, [message])
        return JSONResponse({"success": True})

    handler.__name__ = kind
    return handler


for _kind, _short in SINGLE_ROUTES.items():
    _handler = _single_route(_kind)
    router.add_api_route(
        f"/v1/{_kind}", _handler, methods=["POST"], summary=f"Send one {_kind} message"
    )
    router.add_api_route(f"/v1/{_short}", _handler, methods=["POST"], include_in_schema=False)
