"""A local fake of Klaviyo's JSON:API (lists, profiles, bulk import jobs) that enforces the
real API shape (platform-apis.md §7).

Served paths under ``/api`` (a trailing slash is accepted, as Klaviyo does): ``GET``/``POST
/lists``, ``GET``/``DELETE /lists/{id}``, ``POST``/``DELETE
/lists/{id}/relationships/profiles``, ``GET /profiles``, ``POST /profile-bulk-import-jobs``,
``GET /profile-bulk-import-jobs/{id}`` and ``…/{id}/import-errors``; anything else is a 404
``not_found``.

It refuses what the real API refuses, with JSON:API ``errors`` bodies: a missing or wrong
``Authorization: Klaviyo-API-Key`` (401), a missing or unknown ``revision`` header (400), a
body that is not JSON:API (``type``/``attributes``/``data`` shapes, 400 ``invalid`` with a
``source.pointer``), a wrong content type (415), more than 1,000 profile ids per relationship
call or 10,000 profiles per import job, unknown profile ids ("Invalid profile IDs: …") and
unknown lists. Import jobs run asynchronously: ``queued``, then ``processing``, ``complete``
after ``job_polls`` polls (jobs complete in the order they were created, as a queue would);
profiles with an invalid email or a phone not in E.164 — e.g. a SHA-256 hash — are refused
one by one and listed under ``import-errors``, not failing the job. Profiles are upserted by
email, then phone; a phone held by another profile is a conflict.

``filter`` supports ``equals(name,"…")`` on lists and ``any(email|phone_number,[…])`` /
``equals(…)`` on profiles, at most 100 values (our assumption); ``page[size]`` 1–100.
Error codes and texts not in the fact sheet (``authentication_failed``, the revision and
phone messages) are best guesses.

Knobs: ``error_rate`` (random 500 ``error`` and 429 ``throttled`` with ``Retry-After``),
``drop_rate`` (connections cut after the work is done), ``expire_after_calls`` (the key is
revoked after N write calls), ``reauthenticate(new)``.
"""

from __future__ import annotations

import json
import random
import re
import string
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from tests.destinations.fake_server import DroppingApp, serve_app

REVISIONS = frozenset({"2023-02-22", "2024-10-15", "2025-01-15", "2026-04-15", "2026-10-15"})
MAX_RELATIONSHIPS = 1_000
MAX_IMPORT_PROFILES = 10_000
MAX_FILTER_VALUES = 100
LIST_PAGE_SIZE = 10
EMAIL = re.compile(r"[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
CONTENT_TYPES = ("application/json", "application/vnd.api+json")


class ApiError(Exception):
    """An error the fake answers with, in the JSON:API ``errors`` envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        pointer: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.pointer, self.headers = pointer, dict(headers or {})

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "status": self.status,
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "links": {},
            "meta": {},
        }
        if self.pointer:
            error["source"] = {"pointer": self.pointer}
        return JSONResponse({"errors": [error]}, status_code=self.status, headers=self.headers)


def invalid(detail: str, pointer: str | None = None) -> ApiError:
    return ApiError(400, "invalid", "Invalid input.", detail, pointer)


def not_found(detail: str) -> ApiError:
    return ApiError(404, "not_found", "Not found.", detail)


@dataclass
class Profile:
    id: str
    email: str | None = None
    phone: str | None = None


@dataclass
class KList:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    """Profile ids on the list."""


@dataclass
class ImportJob:
    id: str
    list_ids: list[str]
    profiles: list[dict[str, Any]]
    status: str = "queued"
    polls: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    completed: int = 0


@dataclass
class FakeKlaviyo:
    """State and knobs of the fake; ``app()`` is the ASGI app serving it."""

    api_key: str = "pk_valid0123456789abcdef"
    expired_keys: set[str] = field(default_factory=set)
    error_rate: float = 0.0
    drop_rate: float = 0.0
    expire_after_calls: int | None = None
    job_polls: int = 2
    seed: int = 17
    lists: dict[str, KList] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    jobs: dict[str, ImportJob] = field(default_factory=dict)
    revisions_seen: set[str] = field(default_factory=set)
    requests: int = 0
    failures: int = 0
    write_calls: int = 0
    _by_email: dict[str, str] = field(default_factory=dict)
    _by_phone: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    # -- knobs and reads used by tests -----------------------------------------------------
    def reauthenticate(self, new_key: str) -> None:
        """The user pasted a new key: ``new_key`` is valid, the old one stays revoked."""
        self.expired_keys.add(self.api_key)
        self.api_key = new_key
        self.expire_after_calls = None

    def emails(self, list_id: str) -> set[str]:
        """Emails of the profiles on the list."""
        return {e for p in self._members(list_id) if (e := p.email)}

    def phones(self, list_id: str) -> set[str]:
        """Phone numbers of the profiles on the list."""
        return {n for p in self._members(list_id) if (n := p.phone)}

    def _members(self, list_id: str) -> list[Profile]:
        return [self.profiles[i] for i in self.lists[list_id].members]

    def _new_id(self, length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
        return "".join(self._random.choice(alphabet) for _ in range(length))

    # -- request checks --------------------------------------------------------------------
    def _check_headers(self, headers: Mapping[str, str], has_body: bool) -> None:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Klaviyo-API-Key "):
            raise ApiError(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.",
            )
        key = authorization.removeprefix("Klaviyo-API-Key ").strip()
        if self.expire_after_calls is not None and self.write_calls >= self.expire_after_calls:
            self.expired_keys.add(self.api_key)
        if key != self.api_key or key in self.expired_keys:
            raise ApiError(
                401,
                "authentication_failed",
                "Incorrect authentication credentials.",
                "Incorrect authentication credentials.",
            )
        revision = headers.get("revision")
        if not revision:
            raise invalid("A revision header is required (e.g. revision: 2025-01-15).")
        if revision not in REVISIONS:
            raise invalid(f"Invalid revision {revision!r}: not a published API revision.")
        self.revisions_seen.add(revision)
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if has_body and content_type not in CONTENT_TYPES:
            raise ApiError(
                415,
                "unsupported_media_type",
                "Unsupported media type.",
                f"Unsupported media type {content_type!r} in request.",
            )

    def _maybe_fail(self) -> None:
        if not self.error_rate or self._random.random() >= self.error_rate:
            return
        self.failures += 1
        if self._random.random() < 0.5:
            raise ApiError(
                500, "error", "A server error occurred.", "A server error occurred. Please retry."
            )
        raise ApiError(
            429,
            "throttled",
            "Request was throttled.",
            "Request was throttled. Expected available in 1 second.",
            headers={"Retry-After": "1"},
        )

    def _list(self, list_id: str) -> KList:
        if list_id not in self.lists:
            raise not_found("List not found")
        return self.lists[list_id]

    # -- lists -----------------------------------------------------------------------------
    def list_resource(self, klist: KList) -> dict[str, Any]:
        return {"type": "list", "id": klist.id, "attributes": {"name": klist.name}}

    def create_list(self, body: Any) -> dict[str, Any]:
        data = _resource(body, "list")
        name = data.get("attributes", {}).get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid("'name' is a required field.", "/data/attributes/name")
        klist = KList(self._new_id(6, string.ascii_letters + string.digits), name)
        self.lists[klist.id] = klist
        return {"data": self.list_resource(klist)}

    def get_lists(self, query: Mapping[str, str], base: str) -> dict[str, Any]:
        wanted = None
        if query.get("filter"):
            op, _, value = _filter(query["filter"], {"name"})
            if op != "equals" or not isinstance(value, str):
                raise invalid('lists support only equals(name,"…").', "filter")
            wanted = value
        items = [self.list_resource(k) for k in self.lists.values() if wanted in (None, k.name)]
        return _page(items, query, LIST_PAGE_SIZE, base)

    def edit_relationships(self, list_id: str, body: Any, add: bool) -> None:
        klist = self._list(list_id)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not data:
            raise invalid("'data' must be a non-empty list of profiles.", "/data")
        if len(data) > MAX_RELATIONSHIPS:
            raise invalid(f"At most {MAX_RELATIONSHIPS} profiles can be sent at a time.", "/data")
        ids = []
        for index, item in enumerate(data):
            if not isinstance(item, dict) or item.get("type") != "profile":
                raise invalid("Each item must be of type 'profile'.", f"/data/{index}/type")
            if not isinstance(item.get("id"), str):
                raise invalid("'id' is required.", f"/data/{index}/id")
            ids.append(item["id"])
        unknown = [i for i in ids if i not in self.profiles]
        if unknown:
            raise invalid(f"Invalid profile IDs: {', '.join(unknown)}", "/data")
        self.write_calls += 1
        if add:
            klist.members.update(ids)
        else:
            klist.members.difference_update(ids)

    # -- profiles --------------------------------------------------------------------------
    def get_profiles(self, query: Mapping[str, str], base: str) -> dict[str, Any]:
        matches = list(self.profiles.values())
        if query.get("filter"):
            op, name, value = _filter(query["filter"], {"email", "phone_number", "id"})
            values = value if op == "any" else [value]
            if not isinstance(values, list) or len(values) > MAX_FILTER_VALUES:
                raise invalid(f"'any' takes a list of at most {MAX_FILTER_VALUES} values.")
            attribute = {"email": "email", "phone_number": "phone", "id": "id"}[name]
            wanted = set(values)
            matches = [p for p in matches if getattr(p, attribute) in wanted]
        items = [
            {
                "type": "profile",
                "id": p.id,
                "attributes": {"email": p.email, "phone_number": p.phone},
            }
            for p in matches
        ]
        try:
            size = int(query.get("page[size]", "20"))
        except ValueError:
            raise invalid("page[size] must be an integer.", "page[size]") from None
        if not 1 <= size <= 100:
            raise invalid("page[size] must be between 1 and 100.", "page[size]")
        return _page(items, query, size, base)

    def _upsert(self, attributes: Mapping[str, Any]) -> str:
        """The id of the profile ``attributes`` identify, created or updated; raises
        ``ApiError`` with the reason a profile is refused."""
        email, phone = attributes.get("email"), attributes.get("phone_number")
        if email is not None and (not isinstance(email, str) or not EMAIL.fullmatch(email)):
            raise invalid(f"Invalid email address: {email!r}", "email")
        if phone is not None and (not isinstance(phone, str) or not E164.fullmatch(phone)):
            raise invalid(
                "Invalid phone number format (Example of a valid phone number format: "
                "+12345678901)",
                "phone_number",
            )
        if email is None and phone is None:
            raise invalid("A profile needs an email, phone_number or external_id.", "email")
        key = email.lower() if email else None
        by_email = self._by_email.get(key) if key else None
        by_phone = self._by_phone.get(phone) if phone else None
        if by_email and by_phone and by_email != by_phone:
            raise ApiError(
                409,
                "duplicate_profile",
                "Conflict.",
                "phone_number is used by another profile.",
                "phone_number",
            )
        profile_id = by_email or by_phone
        if profile_id is None:
            profile_id = "01" + self._new_id(24)
            self.profiles[profile_id] = Profile(profile_id)
        profile = self.profiles[profile_id]
        if key and profile.email and profile.email != key:
            raise ApiError(
                409,
                "duplicate_profile",
                "Conflict.",
                "phone_number is used by another profile.",
                "phone_number",
            )
        if key:
            profile.email, self._by_email[key] = key, profile_id
        if phone:
            if profile.phone and profile.phone != phone:
                del self._by_phone[profile.phone]
            profile.phone, self._by_phone[phone] = phone, profile_id
        return profile_id

    # -- bulk import jobs ------------------------------------------------------------------
    def create_import_job(self, body: Any) -> dict[str, Any]:
        data = _resource(body, "profile-bulk-import-job")
        profiles = (data.get("attributes", {}).get("profiles") or {}).get("data")
        pointer = "/data/attributes/profiles/data"
        if not isinstance(profiles, list) or not profiles:
            raise invalid("'profiles' must be a non-empty list.", pointer)
        if len(profiles) > MAX_IMPORT_PROFILES:
            raise invalid(f"At most {MAX_IMPORT_PROFILES} profiles per import job.", pointer)
        for index, item in enumerate(profiles):
            if not isinstance(item, dict) or item.get("type") != "profile":
                raise invalid("Each item must be of type 'profile'.", f"{pointer}/{index}/type")
            if not isinstance(item.get("attributes"), dict):
                raise invalid("'attributes' is required.", f"{pointer}/{index}/attributes")
        lists = ((data.get("relationships") or {}).get("lists") or {}).get("data", [])
        if not isinstance(lists, list):
            raise invalid("'lists' must be a list.", "/data/relationships/lists/data")
        for item in lists:
            if not isinstance(item, dict) or item.get("type") != "list":
                raise invalid("Each list must be of type 'list'.", "/data/relationships/lists")
            if item.get("id") not in self.lists:
                raise invalid(f"Invalid list ID: {item.get('id')}", "/data/relationships/lists")
        self.write_calls += 1
        job = ImportJob("01" + self._new_id(24), [item["id"] for item in lists], list(profiles))
        self.jobs[job.id] = job
        return {"data": self.job_resource(job)}

    def job_resource(self, job: ImportJob) -> dict[str, Any]:
        return {
            "type": "profile-bulk-import-job",
            "id": job.id,
            "attributes": {
                "status": job.status,
                "total_count": len(job.profiles),
                "completed_count": job.completed,
                "failed_count": len(job.errors),
            },
        }

    def poll_job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found("Import job not found")
        job.polls += 1
        if job.status != "complete":
            job.status = "processing"
        if job.polls >= self.job_polls:
            for earlier in list(self.jobs.values()):  # creation order: a queue
                if earlier.status != "complete":
                    self._run(earlier)
                if earlier is job:
                    break
        return {"data": self.job_resource(job)}

    def _run(self, job: ImportJob) -> None:
        for index, item in enumerate(job.profiles):
            try:
                profile_id = self._upsert(item["attributes"])
            except ApiError as error:
                job.errors.append(
                    {
                        "type": "import-error",
                        "id": str(uuid.uuid4()),
                        "attributes": {
                            "code": error.code,
                            "title": error.title,
                            "detail": error.detail,
                            "source": {
                                "pointer": f"/data/attributes/profiles/data/{index}/"
                                f"attributes/{error.pointer}"
                            },
                            "original_payload": item["attributes"],
                        },
                    }
                )
                continue
            job.completed += 1
            for list_id in job.list_ids:
                if list_id in self.lists:
                    self.lists[list_id].members.add(profile_id)
        job.status = "complete"

    def import_errors(self, job_id: str, query: Mapping[str, str], base: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found("Import job not found")
        return _page(job.errors, query, 100, base)

    # -- HTTP ------------------------------------------------------------------------------
    def app(self) -> ASGIApp:
        api = FastAPI()

        @api.api_route("/api/{path:path}", methods=["GET", "POST", "DELETE", "PATCH"])
        async def klaviyo(path: str, request: Request) -> Response:
            try:
                raw = await request.body()
                with self._lock:
                    self.requests += 1
                    self._check_headers(request.headers, bool(raw))
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        raise invalid("The request body is not valid JSON.") from None
                    self._maybe_fail()
                    base = str(request.url).split("?")[0]
                    query = dict(request.query_params)
                    status, result = self._route(request.method, path.strip("/"), query, body, base)
            except ApiError as error:
                return error.response()
            if result is None:
                return Response(status_code=status)
            return JSONResponse(result, status_code=status)

        return DroppingApp(api, self)

    def _route(
        self, method: str, path: str, query: Mapping[str, str], body: Any, base: str
    ) -> tuple[int, dict[str, Any] | None]:
        parts = path.split("/")
        if parts == ["lists"]:
            if method == "GET":
                return 200, self.get_lists(query, base)
            if method == "POST":
                return 201, self.create_list(body)
        if len(parts) == 2 and parts[0] == "lists":
            if method == "GET":
                return 200, {"data": self.list_resource(self._list(parts[1]))}
            if method == "DELETE":
                del self.lists[self._list(parts[1]).id]
                return 204, None
        relationships = len(parts) == 4 and parts[2:] == ["relationships", "profiles"]
        if relationships and parts[0] == "lists" and method in ("POST", "DELETE"):
            self.edit_relationships(parts[1], body, add=method == "POST")
            return 204, None
        if parts == ["profiles"] and method == "GET":
            return 200, self.get_profiles(query, base)
        if parts == ["profile-bulk-import-jobs"] and method == "POST":
            return 202, self.create_import_job(body)
        if len(parts) == 2 and parts[0] == "profile-bulk-import-jobs" and method == "GET":
            return 200, self.poll_job(parts[1])
        if parts[0::2] == ["profile-bulk-import-jobs", "import-errors"] and method == "GET":
            return 200, self.import_errors(parts[1], query, base)
        raise not_found(f"{method} /api/{path} is not a Klaviyo endpoint.")


def _resource(body: Any, kind: str) -> dict[str, Any]:
    """``body["data"]``, checked to be a JSON:API resource object of type ``kind``."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise invalid("'data' is a required object.", "/data")
    if data.get("type") != kind:
        raise invalid(f"'type' must be {kind!r}.", "/data/type")
    if not isinstance(data.get("attributes"), dict):
        raise invalid("'attributes' is a required object.", "/data/attributes")
    return data


def _filter(text: str, fields: set[str]) -> tuple[str, str, Any]:
    """``(operator, field, value)`` of ``equals(f,"v")`` or ``any(f,["a","b"])``."""
    match = re.fullmatch(r"(equals|any)\((\w+),(.*)\)", text.strip())
    if match is None:
        raise invalid(f"Invalid filter: {text}", "filter")
    op, name, raw = match.groups()
    if name not in fields:
        raise invalid(f"Filtering on {name!r} is not supported.", "filter")
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid(f"Invalid filter value: {raw}", "filter") from None
    return op, name, value


def _page(
    items: list[dict[str, Any]], query: Mapping[str, str], size: int, base: str
) -> dict[str, Any]:
    """One cursor page of ``items`` with JSON:API ``links`` (the cursor is an offset)."""
    try:
        start = int(query.get("page[cursor]") or 0)
    except ValueError:
        raise invalid("Invalid page cursor.", "page[cursor]") from None
    links: dict[str, str | None] = {"self": base, "next": None, "prev": None}
    if start + size < len(items):
        following = {**query, "page[cursor]": str(start + size)}
        links["next"] = f"{base}?{urlencode(following)}"
    return {"data": items[start : start + size], "links": links}


@contextmanager
def serve(fake: FakeKlaviyo) -> Iterator[str]:
    """Serve ``fake`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL
    (``http://127.0.0.1:PORT/api``)."""
    with serve_app(fake.app(), "/api") as url:
        yield url
