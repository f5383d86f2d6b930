"""A local fake of LinkedIn's DMP Segments API (Rest.li 2.0) that enforces the real API.

It refuses what the real API refuses — a missing (401 EMPTY_ACCESS_TOKEN), wrong (401
INVALID_ACCESS_TOKEN) or expired (401 EXPIRED_ACCESS_TOKEN) bearer token, a missing
``LinkedIn-Version`` (400 VERSION_MISSING) or ``X-Restli-Protocol-Version: 2.0.0``, a users
call without ``X-RestLi-Method: BATCH_CREATE``, malformed segments and elements, ids that are
not SHA-256 / SHA-512 hex, names over 35 characters, more than 5,000 elements, unknown
segments (404) — with LinkedIn's error body ``{status, serviceErrorCode, code, message}``,
and keeps each segment's members (email hash → names). It can fail at random (500, 429) and
drop connections mid-response, and expire its token after N users calls.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from tests.destinations.fake_server import DroppingApp, serve_app

PREFIX = "/rest"
ID_TYPES = {
    "SHA256_EMAIL": re.compile(r"[0-9a-f]{64}"),
    "SHA512_EMAIL": re.compile(r"[0-9a-f]{128}"),
    "GOOGLE_AID": re.compile(r"[0-9a-fA-F-]{36}"),
}
SEGMENT_TYPES = frozenset(
    {"USER", "COMPANY", "USER_STREAMING", "COMPANY_STREAMING", "USER_LIST_UPLOAD"}
)
MAX_ELEMENTS = 5_000
MAX_NAME = 35


class LinkedInError(Exception):
    """An error the fake answers with, in LinkedIn's error body."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, service_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.service_code = (
            status,
            message,
            code,
            service_code,
        )

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.code is not None:
            body["code"] = self.code
        if self.service_code is not None:
            body["serviceErrorCode"] = self.service_code
        return JSONResponse(body, status_code=self.status)


def bad_request(message: str) -> LinkedInError:
    return LinkedInError(400, message, code="ILLEGAL_ARGUMENT", service_code=100)


@dataclass
class Segment:
    id: str
    name: str
    members: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    """Email hash → (firstName, lastName) as last sent."""


@dataclass
class FakeLinkedIn:
    """State and knobs of the fake; ``app()`` is the ASGI app serving it."""

    ad_account_id: str = "508915999"
    token: str = "valid-token"
    expired_tokens: set[str] = field(default_factory=set)
    failure_rate: float = 0.0
    drop_rate: float = 0.0
    expire_after_calls: int | None = None
    seed: int = 7
    segments: dict[str, Segment] = field(default_factory=dict)
    requests: int = 0
    failures: int = 0
    user_calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    _next_id: int = 18000000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def account_urn(self) -> str:
        return f"urn:li:sponsoredAccount:{self.ad_account_id}"

    def reauthenticate(self, new_token: str) -> None:
        """The user logged in again: ``new_token`` is valid, the old one stays expired."""
        self.expired_tokens.add(self.token)
        self.token = new_token
        self.expire_after_calls = None

    # -- request handling ------------------------------------------------------------------
    def _check_headers(self, headers: Any) -> None:
        authorization = headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        if not token:
            raise LinkedInError(
                401, "Empty oauth2 access token", code="EMPTY_ACCESS_TOKEN", service_code=65604
            )
        if self.expire_after_calls is not None and self.user_calls >= self.expire_after_calls:
            self.expired_tokens.add(self.token)
        if token in self.expired_tokens:
            raise LinkedInError(
                401,
                "The token used in the request has expired",
                code="EXPIRED_ACCESS_TOKEN",
                service_code=65601,
            )
        if token != self.token:
            raise LinkedInError(
                401, "Invalid access token", code="INVALID_ACCESS_TOKEN", service_code=65600
            )
        version = headers.get("linkedin-version")
        if not version:
            raise LinkedInError(
                400,
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
                code="VERSION_MISSING",
            )
        if re.fullmatch(r"20\d{4}", version) is None:
            raise LinkedInError(
                426, f"Requested version {version} is not active", code="NONEXISTENT_VERSION"
            )
        if headers.get("x-restli-protocol-version") != "2.0.0":
            raise bad_request("X-Restli-Protocol-Version 2.0.0 is required")

    def _maybe_fail(self) -> None:
        if self.failure_rate and self._random.random() < self.failure_rate:
            self.failures += 1
            if self._random.random() < 0.5:
                raise LinkedInError(500, "Internal Server Error")
            raise LinkedInError(
                429,
                "Resource level throttle MEMBER MINUTE limit for calls to this resource is "
                "reached.",
                code="TOO_MANY_REQUESTS",
                service_code=101,
            )

    def _segment(self, segment_id: str) -> Segment:
        segment = self.segments.get(segment_id)
        if segment is None:
            raise LinkedInError(404, f"Not Found: dmpSegment {segment_id}", code="NOT_FOUND")
        return segment

    def create_segment(self, body: Any) -> str:
        if not isinstance(body, dict):
            raise bad_request("Request body must be a JSON object")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request("/name :: field is required but not found")
        if not isinstance(body.get("sourcePlatform"), str):
            raise bad_request("/sourcePlatform :: field is required but not found")
        if body.get("account") != self.account_urn:
            raise LinkedInError(
                403, "Not enough permissions to access: account", code="ACCESS_DENIED"
            )
        if body.get("accessPolicy") not in ("PRIVATE", "PUBLIC"):
            raise bad_request("/accessPolicy :: invalid value")
        if body.get("type") not in SEGMENT_TYPES:
            raise bad_request("/type :: invalid value")
        destinations = body.get("destinations")
        if not isinstance(destinations, list) or not all(
            isinstance(d, dict) and isinstance(d.get("destination"), str) for d in destinations
        ):
            raise bad_request("/destinations :: field is required but not found")
        self._next_id += 1
        segment = Segment(str(self._next_id), name)
        self.segments[segment.id] = segment
        return segment.id

    def find_segments(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("q") != "account":
            raise bad_request("Unsupported finder")
        if query.get("account") != self.account_urn:
            raise LinkedInError(
                403, "Not enough permissions to access: account", code="ACCESS_DENIED"
            )
        try:
            start, count = int(query.get("start", "0")), int(query.get("count", "10"))
        except ValueError:
            raise bad_request("start and count must be integers") from None
        segments = list(self.segments.values())
        elements = [
            {"id": int(s.id), "name": s.name, "account": self.account_urn, "type": "USER"}
            for s in segments[start : start + count]
        ]
        return {
            "elements": elements,
            "paging": {"start": start, "count": count, "total": len(segments)},
        }

    def change_users(self, segment_id: str, body: Any, method_header: str | None) -> dict[str, Any]:
        if method_header != "BATCH_CREATE":
            raise bad_request("X-RestLi-Method BATCH_CREATE is required on this resource")
        segment = self._segment(segment_id)
        elements = body.get("elements") if isinstance(body, dict) else None
        if not isinstance(elements, list) or not elements:
            raise bad_request("/elements :: field is required but not found")
        if len(elements) > MAX_ELEMENTS:
            raise bad_request(f"/elements :: more than {MAX_ELEMENTS} elements")
        changes = [self._element(index, element) for index, element in enumerate(elements)]
        for action, email, names in changes:
            if email is None:
                continue
            if action == "ADD":
                segment.members[email] = names
            else:
                segment.members.pop(email, None)
        self.user_calls += 1
        self.batch_sizes.append(len(elements))
        return {"elements": [{"status": 201} for _ in elements]}

    def _element(
        self, index: int, element: Any
    ) -> tuple[str, str | None, tuple[str | None, str | None]]:
        where = f"/elements/{index}"
        if not isinstance(element, dict):
            raise bad_request(f"{where} :: must be an object")
        allowed = {"action", "userIds", "firstName", "lastName", "title", "company", "country"}
        if set(element) - allowed:
            raise bad_request(f"{where} :: unrecognized field(s) {sorted(set(element) - allowed)}")
        action = element.get("action")
        if action not in ("ADD", "REMOVE"):
            raise bad_request(f"{where}/action :: invalid value")
        names: list[str | None] = []
        for key in ("firstName", "lastName"):
            value = element.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME):
                raise bad_request(f"{where}/{key} :: must be a string of at most {MAX_NAME}")
            names.append(value)
        user_ids = element.get("userIds", [])
        if not isinstance(user_ids, list):
            raise bad_request(f"{where}/userIds :: must be an array")
        email = None
        for user_id in user_ids:
            id_type = user_id.get("idType") if isinstance(user_id, dict) else None
            value = user_id.get("idValue") if isinstance(user_id, dict) else None
            if id_type not in ID_TYPES:
                raise bad_request(f"{where}/userIds :: invalid idType {id_type!r}")
            if not isinstance(value, str) or ID_TYPES[id_type].fullmatch(value) is None:
                raise bad_request(f"{where}/userIds :: invalid idValue for {id_type}")
            if id_type == "SHA256_EMAIL":
                email = value
        if not user_ids and not all(names):
            raise bad_request(f"{where} :: firstName and lastName are required without userIds")
        return action, email, (names[0], names[1])

    def app(self) -> ASGIApp:
        api = FastAPI()

        @api.api_route(PREFIX + "/{path:path}", methods=["GET", "POST", "DELETE"])
        async def rest(path: str, request: Request) -> Response:
            try:
                raw = await request.body()
                body: Any = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise bad_request("Request body is not valid JSON") from None
                with self._lock:
                    self.requests += 1
                    self._check_headers(request.headers)
                    self._maybe_fail()
                    return self._route(request, path.strip("/").split("/"), body)
            except LinkedInError as error:
                return error.response()

        return DroppingApp(api, self)

    def _route(self, request: Request, parts: list[str], body: Any) -> Response:
        method = request.method
        if parts == ["dmpSegments"] and method == "GET":
            return JSONResponse(self.find_segments(dict(request.query_params)))
        if parts == ["dmpSegments"] and method == "POST":
            segment_id = self.create_segment(body)
            return Response(status_code=201, headers={"x-restli-id": segment_id})
        if (
            len(parts) == 3
            and parts[0] == "dmpSegments"
            and parts[2] == "users"
            and method == "POST"
        ):
            method_header = request.headers.get("x-restli-method")
            return JSONResponse(self.change_users(parts[1], body, method_header))
        if len(parts) == 2 and parts[0] == "dmpSegments" and method == "DELETE":
            del self.segments[self._segment(parts[1]).id]
            return Response(status_code=204)
        raise LinkedInError(404, f"No resource found for {method} /{'/'.join(parts)}")


@contextmanager
def serve(fake: FakeLinkedIn) -> Iterator[str]:
    """Serve ``fake``; yields ``http://127.0.0.1:PORT/rest``."""
    with serve_app(fake.app(), PREFIX) as url:
        yield url
