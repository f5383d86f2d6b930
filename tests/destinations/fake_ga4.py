"""A local fake of GA4's Measurement Protocol: ``/mp/collect`` and ``/debug/mp/collect``.

Like the real thing, the collection endpoint answers 204 with an empty body to every request
it receives, valid or not. Unlike the real thing, it remembers: valid hits are applied (each
audience's set of client ids, from ``added_to_segment`` / ``removed_from_segment``) and invalid
ones — a wrong measurement id or API secret, more than 25 events, bad names, values over 100
characters, ``timestamp_micros`` over 72 hours old — are kept in ``invalid_hits`` with the
reasons, so a test can assert GA4 would not have dropped anything. The validation endpoint
answers 200 with ``{"validationMessages": [{fieldPath, description, validationCode}]}``
(platform-apis.md §8) for the payload; like GA4 it does not check the API secret.

It can fail at random with 500s and 429s before applying anything and drop connections after
applying a hit (``DroppingApp``), fail every hit after the first ``fail_after`` with a 500,
and wait ``latency`` seconds before answering a hit (a network round trip), counting how
many hits were in flight at once.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from tests.destinations.fake_server import DroppingApp, serve_app

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
RESERVED_EVENTS = frozenset(
    {"ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query"}
    | {"adunit_exposure", "app_clear_data", "app_install", "app_update", "app_remove", "error"}
    | {"first_open", "first_visit", "in_app_purchase", "notification_dismiss"}
    | {"notification_foreground", "notification_open", "notification_receive", "os_update"}
    | {"screen_view", "session_start", "user_engagement"}
)
RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
MAX_BODY_BYTES = 130_000


def message(path: str, description: str, code: str) -> dict[str, str]:
    return {"fieldPath": path, "description": description, "validationCode": code}


@dataclass
class FakeGA4:
    """State and knobs of the fake; ``app()`` is the ASGI app serving it."""

    measurement_id: str = "G-TEST12345"
    api_secret: str = "mp-secret-1"
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    failure_rate: float = 0.0
    drop_rate: float = 0.0
    fail_after: int | None = None
    latency: float = 0.0
    seed: int = 5
    members: dict[str, set[str]] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    hits: list[dict[str, Any]] = field(default_factory=list)
    invalid_hits: list[tuple[Any, list[dict[str, str]]]] = field(default_factory=list)
    requests: int = 0
    debug_requests: int = 0
    failures: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def validate(self, body: Any, raw_size: int) -> list[dict[str, str]]:
        """The validation messages GA4 gives for ``body``."""
        if not isinstance(body, dict):
            return [
                message("", "Unable to parse the request body as a JSON object.", "VALUE_INVALID")
            ]
        found: list[dict[str, str]] = []
        if raw_size > MAX_BODY_BYTES:
            found.append(message("", "Request body exceeds 130 KB.", "VALUE_INVALID"))
        if not isinstance(body.get("client_id"), str) or not body["client_id"]:
            found.append(message("client_id", "client_id is required.", "VALUE_REQUIRED"))
        if "user_id" in body and not isinstance(body["user_id"], str):
            found.append(message("user_id", "user_id must be a string.", "VALUE_INVALID"))
        found += self._timestamp(body.get("timestamp_micros"))
        events = body.get("events")
        if not isinstance(events, list) or not events:
            found.append(message("events", "At least one event is required.", "VALUE_REQUIRED"))
            return found
        if len(events) > 25:
            found.append(
                message("events", "A maximum of 25 events can be specified.", "VALUE_INVALID")
            )
        for index, event in enumerate(events):
            found += self._event(index, event)
        return found

    def _timestamp(self, micros: Any) -> list[dict[str, str]]:
        if micros is None:
            return []
        if not isinstance(micros, int) or isinstance(micros, bool):
            return [message("timestamp_micros", "Must be an integer.", "VALUE_INVALID")]
        moment = datetime.fromtimestamp(micros / 1_000_000, UTC)
        if moment < self.now - timedelta(hours=72) or moment > self.now + timedelta(minutes=15):
            text = "Events may be backdated at most 72 hours and not set in the future."
            return [message("timestamp_micros", text, "VALUE_INVALID")]
        return []

    def _event(self, index: int, event: Any) -> list[dict[str, str]]:
        path = f"events[{index}]"
        if not isinstance(event, dict):
            return [message(path, f"Event at index: [{index}] is not an object.", "VALUE_INVALID")]
        name = event.get("name")
        if not isinstance(name, str) or NAME.fullmatch(name) is None or len(name) > 40:
            text = (
                f"Event at index: [{index}] has invalid name [{name}]. Only alphanumeric "
                "characters and underscores are allowed."
            )
            return [message("events", text, "NAME_INVALID")]
        if name in RESERVED_EVENTS:
            return [message("events", f"Event name [{name}] is reserved.", "NAME_RESERVED")]
        params = event.get("params", {})
        if not isinstance(params, dict) or len(params) > 25:
            return [message(f"{path}.params", "At most 25 params per event.", "VALUE_INVALID")]
        found = []
        for key, value in params.items():
            where = f"{path}.params.{key}"
            if NAME.fullmatch(key) is None or len(key) > 40:
                found.append(message(where, f"Param name [{key}] is invalid.", "NAME_INVALID"))
            elif key.startswith(RESERVED_PREFIXES):
                found.append(message(where, f"Param name [{key}] is reserved.", "NAME_RESERVED"))
            if isinstance(value, str) and len(value) > 100:
                found.append(message(where, "Param value is over 100 characters.", "VALUE_INVALID"))
            elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
                found.append(
                    message(where, "Param value must be a string or number.", "VALUE_INVALID")
                )
        return found

    def collect(self, query: dict[str, str], raw: bytes) -> None:
        """What ``/mp/collect`` does with a hit (it always answers 204)."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        problems = self.validate(body, len(raw))
        if query.get("measurement_id") != self.measurement_id:
            problems.append(message("measurement_id", "Unknown measurement id.", "VALUE_INVALID"))
        if query.get("api_secret") != self.api_secret:
            problems.append(message("api_secret", "Wrong API secret.", "VALUE_INVALID"))
        if problems:
            self.invalid_hits.append((body, problems))
            return
        self.hits.append(body)
        if "user_id" in body:
            self.user_ids[body["client_id"]] = body["user_id"]
        for event in body["events"]:
            audience = self.members.setdefault(str(event["params"].get("audience_id")), set())
            if event["name"] == "added_to_segment":
                audience.add(body["client_id"])
            elif event["name"] == "removed_from_segment":
                audience.discard(body["client_id"])

    def _maybe_fail(self) -> Response | None:
        if self.fail_after is not None and self.requests > self.fail_after:
            self.failures += 1
            return Response(status_code=500)
        if self.failure_rate and self._random.random() < self.failure_rate:
            self.failures += 1
            if self._random.random() < 0.5:
                return Response(status_code=500)
            return Response(status_code=429, headers={"retry-after": "0"})
        return None

    def app(self) -> ASGIApp:
        api = FastAPI()

        @api.post("/mp/collect")
        async def collect(request: Request) -> Response:
            raw = await request.body()
            with self._lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                with self._lock:
                    self.requests += 1
                    failed = self._maybe_fail()
                    if failed is not None:
                        return failed
                    self.collect(dict(request.query_params), raw)
            finally:
                with self._lock:
                    self.in_flight -= 1
            return Response(status_code=204)

        @api.post("/debug/mp/collect")
        async def debug(request: Request) -> JSONResponse:
            raw = await request.body()
            with self._lock:
                self.debug_requests += 1
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            return JSONResponse({"validationMessages": self.validate(body, len(raw))})

        return DroppingApp(api, self)


@contextmanager
def serve(fake: FakeGA4) -> Iterator[str]:
    """Serve ``fake`` on a free loopback port; yields the base URL."""
    with serve_app(fake.app(), "") as url:
        yield url
