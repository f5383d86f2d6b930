"""A local fake of Meta's Graph API (Custom Audiences) that enforces the real API shape.

It rejects what the real API would reject — unknown paths, a missing or wrong
``access_token`` (code 190), malformed ``payload`` / ``session`` (code 100), unknown schema
keys, values that are not 64 lowercase hex SHA-256 digests, more than 10,000 records — with
Meta's real error bodies (platform-apis.md §2.5), and keeps each audience's member set so a
test can compare it with the audience exactly. It can be told to fail at random with 500s and
429s (code 80003), to drop connections mid-response, and to expire its token after N calls.

Parameters arrive as the SDK sends them (form body for POST, query string for GET / DELETE,
each value JSON-encoded) or as RudderStack sends them (JSON body); all are accepted.
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
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from tests.destinations.fake_server import DroppingApp, serve_app

MULTI_KEYS = frozenset(
    {"EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST"}
    | {"ZIP", "MADID", "COUNTRY", "LOOKALIKE_VALUE", "APPUID", "DATA_PROCESSING_OPTIONS"}
)
UNHASHED = frozenset({"EXTERN_ID", "MADID", "LOOKALIKE_VALUE", "APPUID"})
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_RECORDS = 10_000


class GraphError(Exception):
    """An error the fake answers with, in Graph's envelope."""

    def __init__(
        self, status: int, code: int, message: str, *, subcode: int | None = None, kind: str = ""
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.subcode = status, code, message, subcode
        self.kind = kind or ("OAuthException" if code in (190, 200) else "GraphMethodException")

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": "AbCdEfGhIjK",
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return JSONResponse({"error": error}, status_code=self.status)


def bad_param(message: str) -> GraphError:
    return GraphError(400, 100, f"(#100) {message}", kind="OAuthException")


@dataclass
class Audience:
    id: str
    name: str
    members: set[frozenset[tuple[str, str]]] = field(default_factory=set)

    def values(self, key: str) -> set[str]:
        """Every value of schema key ``key`` (e.g. ``"EMAIL"``) among the members."""
        return {value for member in self.members for k, value in member if k == key}


@dataclass
class FakeMeta:
    """State and knobs of the fake; ``app()`` is the ASGI app serving it."""

    ad_account_id: str = "1234567890"
    token: str = "valid-token"
    expired_tokens: set[str] = field(default_factory=set)
    failure_rate: float = 0.0
    drop_rate: float = 0.0
    expire_after_calls: int | None = None
    seed: int = 7
    audiences: dict[str, Audience] = field(default_factory=dict)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    failures: int = 0
    user_calls: int = 0
    _next_id: int = 23850000000000000
    # When set, every request waits for it first (a slow platform).
    gate: threading.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    # -- knobs used by tests ---------------------------------------------------------------
    def reauthenticate(self, new_token: str) -> None:
        """The user logged in again: ``new_token`` is valid, the old one stays expired."""
        self.expired_tokens.add(self.token)
        self.token = new_token
        self.expire_after_calls = None

    # -- request handling ------------------------------------------------------------------
    def _check_token(self, params: dict[str, Any]) -> None:
        token = params.get("access_token")
        if not token:
            raise GraphError(400, 2500, "An active access token must be used to query information.")
        if self.expire_after_calls is not None and self.user_calls >= self.expire_after_calls:
            self.expired_tokens.add(self.token)
        if token in self.expired_tokens:
            raise GraphError(
                400,
                190,
                "Error validating access token: Session has expired on Tuesday, 01-Aug-23 "
                "10:12:14 PDT. The current time is Tuesday, 01-Aug-23 11:00:00 PDT.",
                subcode=463,
            )
        if token != self.token:
            raise GraphError(400, 190, "Invalid OAuth access token - Cannot parse access token")

    def _maybe_fail(self) -> None:
        if self.failure_rate and self._random.random() < self.failure_rate:
            self.failures += 1
            if self._random.random() < 0.5:
                raise GraphError(500, 2, "An unexpected error has occurred. Please retry.")
            raise GraphError(429, 80003, "There have been too many calls to this ad-account.")

    def _audience(self, audience_id: str) -> Audience:
        audience = self.audiences.get(audience_id)
        if audience is None:
            raise GraphError(
                400,
                100,
                f"Unsupported post request. Object with ID '{audience_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this "
                "operation.",
                subcode=33,
            )
        return audience

    def create_audience(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str) or not name:
            raise bad_param("The parameter name is required")
        if params.get("subtype", "CUSTOM") != "CUSTOM":
            raise bad_param("Invalid parameter subtype")
        source = params.get("customer_file_source")
        allowed = {"USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"}
        if source is not None and source not in allowed:
            raise bad_param("Param customer_file_source must be one of " + ", ".join(allowed))
        self._next_id += 1
        audience = Audience(str(self._next_id), name)
        self.audiences[audience.id] = audience
        return {"id": audience.id}

    def list_audiences(self) -> dict[str, Any]:
        data = [{"id": a.id, "name": a.name} for a in self.audiences.values()]
        return {"data": data, "paging": {"cursors": {"before": "MAZDZD", "after": "MAZDZD"}}}

    def change_users(self, audience_id: str, params: dict[str, Any], add: bool) -> dict[str, Any]:
        audience = self._audience(audience_id)
        schema, rows = self._payload(params.get("payload"))
        session = self._session(params.get("session"))
        members = [frozenset((k, v) for k, v in zip(schema, row, strict=True) if v) for row in rows]
        if add:
            audience.members.update(members)
        else:
            audience.members.difference_update(members)
        self.user_calls += 1
        self.sessions.append(session)
        return {
            "audience_id": audience.id,
            "session_id": str(session["session_id"]),
            "num_received": len(rows),
            "num_invalid_entries": 0,
            "invalid_entry_samples": {},
        }

    def _payload(self, payload: Any) -> tuple[list[str], list[list[str]]]:
        if not isinstance(payload, dict):
            raise bad_param("param payload must be a JSON object")
        schema, data = payload.get("schema"), payload.get("data")
        if isinstance(schema, str):
            schema_list, rows = [schema], [[value] for value in data or []]
        elif isinstance(schema, list) and schema:
            schema_list, rows = schema, data
        else:
            raise bad_param("Missing schema in payload")
        for key in schema_list:
            if key not in MULTI_KEYS:
                raise bad_param(f"Invalid schema key: {key}")
        if len(set(schema_list)) != len(schema_list):
            raise bad_param("Duplicate key in schema")
        if not isinstance(rows, list) or not rows:
            raise bad_param("Missing data in payload")
        if len(rows) > MAX_RECORDS:
            raise bad_param(f"Too many users in one request ({len(rows)} > {MAX_RECORDS})")
        for index, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(schema_list):
                raise bad_param(f"data[{index}] must have one value per schema key")
            for key, value in zip(schema_list, row, strict=True):
                if not isinstance(value, str):
                    raise bad_param(f"data[{index}] values must be strings")
                if value and key not in UNHASHED and SHA256.fullmatch(value) is None:
                    raise bad_param(f"data[{index}] {key} is not a SHA-256 hash")
        return schema_list, rows

    def _session(self, session: Any) -> dict[str, Any]:
        if not isinstance(session, dict):
            raise bad_param("param session must be a JSON object")
        checks = {
            "session_id": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
            "batch_seq": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "last_batch_flag": lambda v: isinstance(v, bool),
            "estimated_num_total": lambda v: isinstance(v, int) and not isinstance(v, bool),
        }
        for name, ok in checks.items():
            if name in session and not ok(session[name]):
                raise bad_param(f"session.{name} is invalid")
        for name in ("session_id", "batch_seq", "last_batch_flag"):
            if name not in session:
                raise bad_param(f"session.{name} is required")
        return session

    def app(self) -> ASGIApp:
        api = FastAPI()
        api_version = "/v25.0"

        async def params_of(request: Request) -> dict[str, Any]:
            params: dict[str, Any] = dict(request.query_params)
            body = await request.body()
            content_type = request.headers.get("content-type", "")
            if body and content_type.startswith("application/json"):
                params.update(json.loads(body))
            elif body:
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
            for name in ("payload", "session"):
                if isinstance(params.get(name), str):
                    try:
                        params[name] = json.loads(params[name])
                    except ValueError:
                        raise bad_param(f"param {name} must be JSON") from None
            return params

        @api.api_route(api_version + "/{path:path}", methods=["GET", "POST", "DELETE"])
        async def graph(path: str, request: Request) -> JSONResponse:
            if self.gate is not None:
                await asyncio.to_thread(self.gate.wait, 60)
            try:
                params = await params_of(request)
                with self._lock:
                    self.requests += 1
                    self._check_token(params)
                    self._maybe_fail()
                    return JSONResponse(self._route(request.method, path, params))
            except GraphError as error:
                return error.response()

        return DroppingApp(api, self)

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        account = f"act_{self.ad_account_id}"
        parts = path.strip("/").split("/")
        if parts == [account] and method == "GET":
            return {"id": account}
        if parts == [account, "customaudiences"]:
            if method == "POST":
                return self.create_audience(params)
            if method == "GET":
                return self.list_audiences()
        if len(parts) == 2 and parts[1] == "users" and method in ("POST", "DELETE"):
            return self.change_users(parts[0], params, add=method == "POST")
        if len(parts) == 1 and method == "DELETE" and parts[0] != account:
            del self.audiences[self._audience(parts[0]).id]
            return {"success": True}
        raise GraphError(400, 100, f"Unknown path components: /{path}", subcode=33)


@contextmanager
def serve(fake: FakeMeta) -> Iterator[str]:
    """Serve ``fake`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL
    (``http://127.0.0.1:PORT/v25.0``)."""
    with serve_app(fake.app(), "/v25.0") as url:
        yield url
