"""A local webhook receiver written the way the docs tell users to write one.

It checks ``Segmint-Signature`` over the raw body with :func:`verify_signature` (401 when it
does not verify), de-duplicates by ``Segmint-Delivery-Id`` and, for events, by ``message_id``,
and keeps what it was told: each audience's member set (List Sync, keyed by member ``key``) and
each audience's set of profiles from ``added_to_segment`` / ``removed_from_segment`` events
(Event Sync). It can fail at random with 500s and 429s before doing anything, and drop the
connection after applying a delivery (``DroppingApp``), so the sender cannot tell.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from segmint.destinations.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature
from tests.destinations.fake_server import DroppingApp, serve_app

PATH = "/hooks/segmint"


@dataclass
class FakeReceiver:
    """State and knobs of the receiver; ``app()`` is the ASGI app serving it."""

    secret: str = "whsec-0123456789abcdef"
    failure_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int = 11
    audiences: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    event_members: dict[str, set[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    deliveries: set[str] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)
    batch_sizes: list[int] = field(default_factory=list)
    requests: int = 0
    failures: int = 0
    rejected_signatures: int = 0
    duplicate_deliveries: int = 0
    duplicate_messages: int = 0
    pings: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def members(self, audience: str) -> set[str]:
        """Keys of the members the receiver holds for ``audience`` (List Sync)."""
        return set(self.audiences.get(audience, {}))

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """What the receiver answers to one POST."""
        if not verify_signature(self.secret, headers.get(SIGNATURE_HEADER.lower()), body):
            with self._lock:
                self.rejected_signatures += 1
            return 401, {"error": "signature does not verify"}
        delivery_id = headers.get(DELIVERY_HEADER.lower())
        if not delivery_id:
            return 400, {"error": f"missing {DELIVERY_HEADER}"}
        with self._lock:
            self.requests += 1
            if self.failure_rate and self._random.random() < self.failure_rate:
                self.failures += 1
                if self._random.random() < 0.5:
                    return 500, {"error": "receiver crashed"}
                return 429, {"error": "slow down"}
            if delivery_id in self.deliveries:
                self.duplicate_deliveries += 1
                return 200, {"status": "duplicate"}
            payload = json.loads(body)
            if payload.get("delivery_id") != delivery_id:
                return 400, {"error": "delivery_id in body and header differ"}
            self._apply(payload)
            self.deliveries.add(delivery_id)
        return 200, {"status": "ok"}

    def _apply(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if kind == "ping":
            self.pings += 1
        elif kind == "members":
            members = self.audiences.setdefault(payload["audience"]["id"], {})
            self.batch_sizes.append(len(payload["members"]))
            for member in payload["members"]:
                if payload["action"] == "add":
                    members[member["key"]] = member
                else:
                    members.pop(member["key"], None)
        elif kind == "events":
            self.batch_sizes.append(len(payload["events"]))
            for event in payload["events"]:
                self._apply_event(event)
        elif kind == "audience_deleted":
            self.deleted.append(payload["audience"]["id"])
            self.audiences.pop(payload["audience"]["id"], None)
        else:
            raise ValueError(f"unknown payload type {kind!r}")

    def _apply_event(self, event: dict[str, Any]) -> None:
        if event["message_id"] in self.messages:
            self.duplicate_messages += 1
            return
        self.messages.add(event["message_id"])
        members = self.event_members.setdefault(event["audience"]["id"], set())
        if event["event"] == "added_to_segment":
            members.add(event["profile_id"])
        elif event["event"] == "removed_from_segment":
            members.discard(event["profile_id"])

    def app(self) -> ASGIApp:
        api = FastAPI()

        @api.post(PATH)
        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            status, answer = self.handle(body, dict(request.headers))
            return JSONResponse(answer, status_code=status)

        return DroppingApp(api, self)


@contextmanager
def serve(fake: FakeReceiver) -> Iterator[str]:
    """Serve ``fake`` on a free loopback port; yields the webhook URL."""
    with serve_app(fake.app(), PATH) as url:
        yield url


def segment_events(
    event: str,
    start: int,
    stop: int,
    *,
    audience: tuple[str, str] = ("aud_1", "Cart abandoners"),
    refresh_id: str = "r1",
    timestamp: str = "2026-11-29T05:00:00Z",
    ga_every: int = 1,
) -> list[dict[str, Any]]:
    """Events shaped as the sync runner builds them (base.py ``send_events``), for profiles
    ``p<start>`` .. ``p<stop - 1>``; every third is anonymous (no user id, no email), and only
    every ``ga_every``-th carries a ``_ga`` cookie."""
    direction = "add" if event == "added_to_segment" else "remove"
    return [
        {
            "event": event,
            "message_id": f"{refresh_id}:{audience[0]}:p{i}:{direction}",
            "timestamp": timestamp,
            "audience": {"id": audience[0], "name": audience[1]},
            "refresh_id": refresh_id,
            "profile_id": f"p{i}",
            "user_id": None if i % 3 == 0 else f"u{i}",
            "anonymous_id": f"anon-{i}",
            "email": None if i % 3 == 0 else f"user{i}@example.com",
            "phone": None,
            "traits": {"plan": "pro"} if i % 2 else {},
            "cookies": {
                "fbp": f"fb.1.1700000000000.{i}",
                "fbc": None,
                "ga": f"GA1.1.{1_000_000 + i}.1700000000" if i % ga_every == 0 else None,
            },
            "click_ids": {"gclid": f"gclid-{i}" if i % 4 == 0 else None},
        }
        for i in range(start, stop)
    ]
