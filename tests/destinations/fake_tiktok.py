"""A local fake of TikTok's API for Business (Custom Audiences) that enforces the real API.

It refuses what the real API refuses — paths without the trailing slash (HTTP 404, no
envelope), a missing ``Access-Token`` header (40104), a wrong (40105) or expired (40102)
token, another advertiser (40001), malformed bodies, unknown ``id_schema`` types, ids that are
not 64 lowercase hex SHA-256 digests, rows not positional with ``id_schema``, more than
``MAX_RECORDS`` rows (40002) — answering in TikTok's envelope ``{code, message, request_id,
data}`` with HTTP 200 as TikTok does (§5.1), and keeps each audience's member set. It can
fail at random (HTTP 500 / code 50000, throttling codes 40100 and 40133) and drop
connections mid-response, and expire its token after N member calls.

``DroppingApp`` and ``serve_app`` come from ``fake_server``, shared by every fake.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from tests.destinations.fake_server import DroppingApp, serve_app

PREFIX = "/open_api/v1.3"
ID_TYPES = {
    "EMAIL_SHA256": re.compile(r"[0-9a-f]{64}"),
    "PHONE_SHA256": re.compile(r"[0-9a-f]{64}"),
    "IDFA_SHA256": re.compile(r"[0-9a-f]{64}"),
    "AAID_SHA256": re.compile(r"[0-9a-f]{64}"),
    "GAID_SHA256": re.compile(r"[0-9a-f]{64}"),
    "IDFA_MD5": re.compile(r"[0-9a-f]{32}"),
    "AAID_MD5": re.compile(r"[0-9a-f]{32}"),
}
MAX_RECORDS = 1_000


class TikTokError(Exception):
    """An error the fake answers with, in TikTok's envelope."""

    def __init__(self, code: int, message: str, *, status: int = 200) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def response(self) -> JSONResponse:
        return envelope(self.code, self.message, {}, status=self.status)


def envelope(code: int, message: str, data: dict[str, Any], *, status: int = 200) -> JSONResponse:
    body = {"code": code, "message": message, "request_id": uuid.uuid4().hex[:24], "data": data}
    return JSONResponse(body, status_code=status)


def bad_param(message: str) -> TikTokError:
    return TikTokError(40002, message)


@dataclass
class Audience:
    id: str
    name: str
    members: set[frozenset[tuple[str, str]]] = field(default_factory=set)

    def values(self, id_type: str) -> set[str]:
        """Every id of type ``id_type`` (e.g. ``"EMAIL_SHA256"``) among the members."""
        return {value for member in self.members for kind, value in member if kind == id_type}


@dataclass
class FakeTikTok:
    """State and knobs of the fake; ``app()`` is the ASGI app serving it."""

    advertiser_id: str = "7012345678901234567"
    token: str = "valid-token"
    expired_tokens: set[str] = field(default_factory=set)
    failure_rate: float = 0.0
    drop_rate: float = 0.0
    expire_after_calls: int | None = None
    seed: int = 7
    audiences: dict[str, Audience] = field(default_factory=dict)
    requests: int = 0
    failures: int = 0
    mapping_calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    _next_id: int = 7100000000000000000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def reauthenticate(self, new_token: str) -> None:
        """The user logged in again: ``new_token`` is valid, the old one stays expired."""
        self.expired_tokens.add(self.token)
        self.token = new_token
        self.expire_after_calls = None

    # -- request handling ------------------------------------------------------------------
    def _check_token(self, token: str | None) -> None:
        if not token:
            raise TikTokError(
                40104,
                "Access token is null, you should set it in http header with key Access-Token.",
            )
        if self.expire_after_calls is not None and self.mapping_calls >= self.expire_after_calls:
            self.expired_tokens.add(self.token)
        if token in self.expired_tokens:
            raise TikTokError(40102, "Access token has expired, please refresh it.")
        if token != self.token:
            raise TikTokError(40105, "Access token is incorrect or has been revoked.")

    def _maybe_fail(self) -> None:
        if self.failure_rate and self._random.random() < self.failure_rate:
            self.failures += 1
            roll = self._random.random()
            if roll < 1 / 3:
                raise TikTokError(50000, "System error, please try again later.", status=500)
            if roll < 2 / 3:
                raise TikTokError(40100, "Requests made too frequently, please try again later.")
            raise TikTokError(
                40133,
                f"Advertiser ({self.advertiser_id})'s QPS of the current API reaches QPS limit, "
                "please try again later.",
            )

    def _check_advertiser(self, advertiser_id: Any) -> None:
        if advertiser_id != self.advertiser_id:
            raise TikTokError(40001, f"No permission to operate advertiser {advertiser_id}.")

    def _audience(self, audience_id: Any) -> Audience:
        audience = self.audiences.get(str(audience_id))
        if audience is None:
            raise bad_param(f"Custom audience {audience_id} does not exist.")
        return audience

    def create_audience(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_advertiser(body.get("advertiser_id"))
        name = body.get("custom_audience_name")
        if not isinstance(name, str) or not name or len(name) > 128:
            raise bad_param("custom_audience_name: Length must be between 1 and 128.")
        if body.get("action") != "create":
            raise bad_param("action: Not a valid choice.")
        self._next_id += 1
        audience = Audience(str(self._next_id), name)
        self.audiences[audience.id] = audience
        return {"audience_id": audience.id}

    def list_audiences(self, query: dict[str, str]) -> dict[str, Any]:
        self._check_advertiser(query.get("advertiser_id"))
        try:
            page, size = int(query.get("page", "1")), int(query.get("page_size", "10"))
        except ValueError:
            raise bad_param("page and page_size must be integers.") from None
        if page < 1 or not 1 <= size <= 100:
            raise bad_param("page_size: Must be between 1 and 100.")
        audiences = list(self.audiences.values())
        rows = audiences[(page - 1) * size : page * size]
        return {
            "list": [{"audience_id": a.id, "name": a.name, "is_valid": True} for a in rows],
            "page_info": {
                "page": page,
                "page_size": size,
                "total_number": len(audiences),
                "total_page": max(1, -(-len(audiences) // size)),
            },
        }

    def delete_audiences(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_advertiser(body.get("advertiser_id"))
        ids = body.get("custom_audience_ids")
        if not isinstance(ids, list) or not ids:
            raise bad_param("custom_audience_ids: Missing data for required field.")
        for audience_id in ids:
            del self.audiences[self._audience(audience_id).id]
        return {}

    def map_members(self, body: dict[str, Any]) -> dict[str, Any]:
        advertisers = body.get("advertiser_ids")
        if not isinstance(advertisers, list) or not advertisers:
            raise bad_param("advertiser_ids: Missing data for required field.")
        for advertiser in advertisers:
            self._check_advertiser(advertiser)
        action = body.get("action")
        if action not in ("add", "delete"):
            raise bad_param("action: Not a valid choice.")
        schema = self._id_schema(body.get("id_schema"))
        rows = self._batch_data(body.get("batch_data"), schema)
        for audience_id, member in rows:
            audience = self._audience(audience_id)
            if action == "add":
                audience.members.add(member)
            else:
                audience.members.discard(member)
        self.mapping_calls += 1
        self.batch_sizes.append(len(body["batch_data"]))
        return {}

    def _id_schema(self, schema: Any) -> list[str]:
        if not isinstance(schema, list) or not schema:
            raise bad_param("id_schema: Missing data for required field.")
        for id_type in schema:
            if id_type not in ID_TYPES:
                raise bad_param(f"id_schema: {id_type!r} is not a valid choice.")
        if len(set(schema)) != len(schema):
            raise bad_param("id_schema: duplicated id type.")
        return schema

    def _batch_data(
        self, batch: Any, schema: list[str]
    ) -> list[tuple[str, frozenset[tuple[str, str]]]]:
        if not isinstance(batch, list) or not batch:
            raise bad_param("batch_data: Missing data for required field.")
        if len(batch) > MAX_RECORDS:
            raise bad_param(f"batch_data: Length must be between 1 and {MAX_RECORDS}.")
        rows: list[tuple[str, frozenset[tuple[str, str]]]] = []
        for index, row in enumerate(batch):
            if not isinstance(row, list) or len(row) != len(schema):
                raise bad_param(f"batch_data[{index}]: must have one entry per id_schema type.")
            pairs: list[tuple[str, str]] = []
            audience_ids: set[str] = set()
            for id_type, entry in zip(schema, row, strict=True):
                if entry == {}:
                    continue
                if not isinstance(entry, dict) or set(entry) != {"id", "audience_ids"}:
                    raise bad_param(f"batch_data[{index}]: entry must be {{}} or id+audience_ids.")
                value, ids = entry["id"], entry["audience_ids"]
                if not isinstance(value, str) or ID_TYPES[id_type].fullmatch(value) is None:
                    raise bad_param(f"batch_data[{index}]: invalid {id_type} id.")
                if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                    raise bad_param(f"batch_data[{index}]: audience_ids must list strings.")
                pairs.append((id_type, value))
                audience_ids.update(ids)
            if not pairs:
                raise bad_param(f"batch_data[{index}]: no id given.")
            rows.extend((audience_id, frozenset(pairs)) for audience_id in sorted(audience_ids))
        return rows

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        if method == "GET" and path == "/dmp/custom_audience/list/":
            return self.list_audiences(query)
        if method == "POST" and not isinstance(body, dict):
            raise bad_param("Request body must be a JSON object.")
        if method == "POST" and path == "/segment/audience/":
            return self.create_audience(body)
        if method == "POST" and path == "/segment/mapping/":
            return self.map_members(body)
        if method == "POST" and path == "/dmp/custom_audience/delete/":
            return self.delete_audiences(body)
        raise TikTokError(40000, f"Method {method} not allowed on {path}.")

    def app(self) -> ASGIApp:
        api = FastAPI()
        known = {
            "/dmp/custom_audience/list/",
            "/segment/audience/",
            "/segment/mapping/",
            "/dmp/custom_audience/delete/",
        }

        @api.api_route(PREFIX + "/{path:path}", methods=["GET", "POST"])
        async def business_api(path: str, request: Request) -> JSONResponse:
            route = "/" + path
            if route not in known:  # incl. a missing trailing slash: never reaches the API
                return JSONResponse({"message": "404 page not found"}, status_code=404)
            try:
                body: Any = None
                raw = await request.body()
                if request.method == "POST":
                    if not request.headers.get("content-type", "").startswith("application/json"):
                        raise bad_param("Content-Type must be application/json.")
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise bad_param("Request body is not valid JSON.") from None
                with self._lock:
                    self.requests += 1
                    self._check_token(request.headers.get("access-token"))
                    self._maybe_fail()
                    data = self._route(request.method, route, dict(request.query_params), body)
                return envelope(0, "OK", data)
            except TikTokError as error:
                return error.response()

        return DroppingApp(api, self)


@contextmanager
def serve(fake: FakeTikTok) -> Iterator[str]:
    """Serve ``fake``; yields ``http://127.0.0.1:PORT/open_api/v1.3``."""
    with serve_app(fake.app(), PREFIX) as url:
        yield url
