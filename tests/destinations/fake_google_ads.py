"""A local fake of the Google Ads API (Customer Match) that enforces the real API shape.

Served paths (REST, ``/v23``): ``customers:listAccessibleCustomers``,
``customers/{cid}/userLists:mutate``, ``customers/{cid}/googleAds:search`` (only the GAQL
over ``user_list`` and ``offline_user_data_job`` an adapter needs),
``customers/{cid}/offlineUserDataJobs:create``, ``…/offlineUserDataJobs/{id}:addOperations``
and ``…:run`` (platform-apis.md §3).

It refuses what the real API refuses, with ``google.rpc.Status`` bodies carrying
``GoogleAdsFailure`` details (§3.6): a missing, wrong or expired bearer token (401
``UNAUTHENTICATED``), a missing developer token, another customer id (401
``CUSTOMER_NOT_FOUND``), hashed values that are not 64 lowercase hex characters
(``INVALID_SHA256_FORMAT``), more than 20 identifiers in one operation or 100,000 in one
request (``TOO_MANY_USER_IDENTIFIERS``), identifiers that do not suit the list's upload key
type, ``removeAll`` anywhere but first in a job, and operations on a job no longer
``PENDING``. With ``enablePartialFailure`` refused operations are skipped and reported in a
200 ``partialFailureError``, as the real API does. Jobs move PENDING → RUNNING → SUCCESS; a
run applies the job's operations at once (the real one takes hours). Each user list keeps its
member set so a test can compare it exactly.

It can fail at random (500 ``INTERNAL``, 429 ``RESOURCE_EXHAUSTED``, 400
``CONCURRENT_MODIFICATION``), drop connections after doing the work, and expire its token
after N ``addOperations`` calls. Error enum names not found in the reference
(``JOB_ALREADY_STARTED``, ``INVALID_OPERATION_ORDER``, ``DEVELOPER_TOKEN_INVALID``) are
best guesses, marked so here.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from tests.destinations.fake_server import DroppingApp, serve_app

API_VERSION = "v23"
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_IDENTIFIERS_PER_OPERATION = 20
MAX_IDENTIFIERS_PER_REQUEST = 100_000
HASHED_FIELDS = frozenset({"hashedEmail", "hashedPhoneNumber"})
IDENTIFIER_FIELDS = HASHED_FIELDS | {"mobileId", "thirdPartyUserId", "addressInfo"}
KEY_TYPE_FIELDS: Mapping[str, frozenset[str]] = {
    "CONTACT_INFO": frozenset({"hashedEmail", "hashedPhoneNumber", "addressInfo"}),
    "CRM_ID": frozenset({"thirdPartyUserId"}),
    "MOBILE_ADVERTISING_ID": frozenset({"mobileId"}),
}
CONSENT = frozenset({"GRANTED", "DENIED", "UNSPECIFIED", "UNKNOWN"})
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
TOO_MANY_MESSAGE = (
    "Maximum number of user identifiers allowed per request is 100,000 and per operation is 20."
)

Member = frozenset[tuple[str, str]]


@dataclass
class AdsError:
    """One GoogleAdsFailure error: category (``offlineUserDataJobError``), enum, message and
    the field path it concerns."""

    category: str
    code: str
    message: str
    path: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"errorCode": {self.category: self.code}, "message": self.message}
        if self.path:
            error["location"] = {"fieldPathElements": self.path}
        return error


class StatusError(Exception):
    """An error the fake answers with, as a ``google.rpc.Status`` envelope."""

    def __init__(
        self, http: int, status: str, message: str, errors: list[AdsError] | None = None
    ) -> None:
        super().__init__(message)
        self.http, self.status, self.message, self.errors = http, status, message, errors or []

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.http, "message": self.message, "status": self.status}
        if self.errors:
            error["details"] = [failure(self.errors)]
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.http)


def failure(errors: list[AdsError]) -> dict[str, Any]:
    return {
        "@type": f"type.googleapis.com/google.ads.googleads.{API_VERSION}.errors.GoogleAdsFailure",
        "errors": [error.as_json() for error in errors],
        "requestId": "fAkErEqUeStId01",
    }


def invalid(errors: list[AdsError]) -> StatusError:
    return StatusError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", errors)


def field_error(message: str, *path: str) -> StatusError:
    elements = [{"fieldName": name} for name in path]
    return invalid([AdsError("fieldError", "REQUIRED", message, elements)])


@dataclass
class UserList:
    id: str
    name: str
    upload_key_type: str
    members: set[Member] = field(default_factory=set)

    def values(self, identifier: str) -> set[str]:
        """Every value of ``identifier`` (e.g. ``"hashedEmail"``) among the members."""
        return {value for member in self.members for k, value in member if k == identifier}


@dataclass
class Job:
    id: str
    user_list: UserList
    status: str = "PENDING"
    operations: list[tuple[str, Member | None]] = field(default_factory=list)


@dataclass
class FakeGoogleAds:
    """State and knobs of the fake; ``app()`` is the ASGI app serving it."""

    customer_id: str = "1234567890"
    token: str = "ya29.valid-token"
    developer_token: str = "DeVeLoPeRtOkEn22chars"
    expired_tokens: set[str] = field(default_factory=set)
    failure_rate: float = 0.0
    drop_rate: float = 0.0
    expire_after_calls: int | None = None
    seed: int = 11
    user_lists: dict[str, UserList] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    requests: int = 0
    failures: int = 0
    operation_calls: int = 0
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    _next_id: int = 9_100_000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    # -- knobs used by tests ---------------------------------------------------------------
    def reauthenticate(self, new_token: str) -> None:
        """The user logged in again: ``new_token`` is valid, the old one stays expired."""
        self.expired_tokens.add(self.token)
        self.token = new_token
        self.expire_after_calls = None

    def user_list(self, resource_name: str) -> UserList:
        """The list behind ``customers/{cid}/userLists/{id}`` (for assertions)."""
        return self.user_lists[resource_name.rsplit("/", 1)[-1]]

    # -- request checks --------------------------------------------------------------------
    def _check_headers(self, headers: Mapping[str, str]) -> None:
        authorization = headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        if self.expire_after_calls is not None and self.operation_calls >= self.expire_after_calls:
            self.expired_tokens.add(self.token)
        if not token or token != self.token or token in self.expired_tokens:
            raise StatusError(401, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE)
        if not headers.get("developer-token"):
            raise StatusError(  # enum name UNVERIFIED
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential.",
                [AdsError("authenticationError", "DEVELOPER_TOKEN_INVALID", "No developer token.")],
            )
        if headers["developer-token"] != self.developer_token:
            raise StatusError(
                401,
                "UNAUTHENTICATED",
                "The developer token is not valid.",
                [AdsError("authenticationError", "DEVELOPER_TOKEN_INVALID", "Invalid token.")],
            )
        login = headers.get("login-customer-id")
        if login is not None and not login.isdigit():
            raise invalid(
                [AdsError("requestError", "INVALID_CUSTOMER_ID", "Invalid login-customer-id.")]
            )

    def _check_customer(self, customer_id: str) -> None:
        if customer_id != self.customer_id:
            raise StatusError(
                401,
                "UNAUTHENTICATED",
                "The caller does not have permission",
                [
                    AdsError(
                        "authenticationError",
                        "CUSTOMER_NOT_FOUND",
                        "No customer found for the provided customer id.",
                    )
                ],
            )

    def _maybe_fail(self) -> None:
        if not self.failure_rate or self._random.random() >= self.failure_rate:
            return
        self.failures += 1
        roll = self._random.random()
        if roll < 0.4:
            raise StatusError(
                500,
                "INTERNAL",
                "Internal error encountered.",
                [AdsError("internalError", "INTERNAL_ERROR", "An internal error has occurred.")],
            )
        if roll < 0.8:
            raise StatusError(
                429,
                "RESOURCE_EXHAUSTED",
                "Too many requests. Retry in 1 seconds.",
                [AdsError("quotaError", "RESOURCE_EXHAUSTED", "Too many requests.")],
            )
        raise invalid(
            [
                AdsError(
                    "databaseError",
                    "CONCURRENT_MODIFICATION",
                    "Multiple requests were attempting to modify the same resource at once. "
                    "Retry the request.",
                )
            ]
        )

    # -- user lists ------------------------------------------------------------------------
    def mutate_user_lists(self, body: dict[str, Any]) -> dict[str, Any]:
        operations = body.get("operations")
        if not isinstance(operations, list) or not operations:
            raise field_error("The required field was not present.", "operations")
        results = []
        for index, operation in enumerate(operations):
            if not isinstance(operation, dict) or len(operation) != 1:
                raise field_error("Exactly one operation must be set.", "operations")
            if "create" in operation:
                results.append({"resourceName": self._create_list(index, operation["create"])})
            elif "remove" in operation:
                self._existing_list(str(operation["remove"]), index)
                del self.user_lists[str(operation["remove"]).rsplit("/", 1)[-1]]
                results.append({"resourceName": operation["remove"]})
            else:
                raise field_error("Unsupported operation.", "operations")
        return {"results": results}

    def _create_list(self, index: int, create: Any) -> str:
        path: list[dict[str, Any]] = [
            {"fieldName": "operations", "index": index},
            {"fieldName": "create"},
        ]
        if not isinstance(create, dict) or not create.get("name"):
            raise invalid([AdsError("fieldError", "REQUIRED", "Name is required.", path)])
        crm = create.get("crmBasedUserList")
        key_type = crm.get("uploadKeyType") if isinstance(crm, dict) else None
        if key_type not in KEY_TYPE_FIELDS:
            raise invalid([AdsError("fieldError", "REQUIRED", "uploadKeyType is required.", path)])
        if any(existing.name == create["name"] for existing in self.user_lists.values()):
            raise invalid(
                [
                    AdsError(
                        "userListError",
                        "NAME_ALREADY_USED",
                        "Name is already being used for another user list for the account.",
                        path,
                    )
                ]
            )
        self._next_id += 1
        user_list = UserList(str(self._next_id), str(create["name"]), str(key_type))
        self.user_lists[user_list.id] = user_list
        return f"customers/{self.customer_id}/userLists/{user_list.id}"

    def _existing_list(self, resource_name: str, index: int = 0) -> UserList:
        prefix = f"customers/{self.customer_id}/userLists/"
        list_id = resource_name.removeprefix(prefix)
        if not resource_name.startswith(prefix) or list_id not in self.user_lists:
            raise invalid(
                [
                    AdsError(
                        "mutateError",
                        "RESOURCE_NOT_FOUND",
                        "The requested resource was not found.",
                        [{"fieldName": "operations", "index": index}],
                    )
                ]
            )
        return self.user_lists[list_id]

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        query = str(body.get("query", ""))
        if re.search(r"\bFROM\s+user_list\b", query):
            name = re.search(r"user_list\.name\s*=\s*'((?:[^'\\]|\\.)*)'", query)
            wanted = re.sub(r"\\(.)", r"\1", name.group(1)) if name else None
            rows = [
                {
                    "userList": {
                        "resourceName": f"customers/{self.customer_id}/userLists/{ul.id}",
                        "name": ul.name,
                    }
                }
                for ul in self.user_lists.values()
                if wanted is None or ul.name == wanted
            ]
            return {"results": rows, "fieldMask": "userList.resourceName,userList.name"}
        if re.search(r"\bFROM\s+offline_user_data_job\b", query):
            rows = [
                {
                    "offlineUserDataJob": {
                        "resourceName": self._job_name(job.id),
                        "status": job.status,
                        "type": "CUSTOMER_MATCH_USER_LIST",
                    }
                }
                for job in self.jobs.values()
            ]
            return {"results": rows}
        raise invalid([AdsError("queryError", "UNEXPECTED_END_OF_QUERY", "Invalid query.")])

    # -- offline user data jobs ------------------------------------------------------------
    def _job_name(self, job_id: str) -> str:
        return f"customers/{self.customer_id}/offlineUserDataJobs/{job_id}"

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        job = body.get("job")
        if not isinstance(job, dict) or job.get("type") != "CUSTOMER_MATCH_USER_LIST":
            raise field_error("job.type must be CUSTOMER_MATCH_USER_LIST.", "job", "type")
        metadata = job.get("customerMatchUserListMetadata")
        if not isinstance(metadata, dict) or not metadata.get("userList"):
            raise field_error("The user list is required.", "job", "user_list")
        consent = metadata.get("consent") or {}
        if not isinstance(consent, dict) or any(v not in CONSENT for v in consent.values()):
            raise field_error("Invalid consent.", "job", "consent")
        prefix = f"customers/{self.customer_id}/userLists/"
        list_id = str(metadata["userList"]).removeprefix(prefix)
        if not str(metadata["userList"]).startswith(prefix) or list_id not in self.user_lists:
            raise invalid(
                [
                    AdsError(
                        "offlineUserDataJobError",
                        "INVALID_USER_LIST_ID",
                        "The user list ID provided for the job is invalid.",
                    )
                ]
            )
        self._next_id += 1
        new = Job(str(self._next_id), self.user_lists[list_id])
        self.jobs[new.id] = new
        return {"resourceName": self._job_name(new.id)}

    def _job(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise invalid([AdsError("mutateError", "RESOURCE_NOT_FOUND", "The job was not found.")])
        return self.jobs[job_id]

    def _not_started(self, job: Job) -> None:
        if job.status != "PENDING":
            raise invalid(  # enum name UNVERIFIED
                [
                    AdsError(
                        "offlineUserDataJobError",
                        "JOB_ALREADY_STARTED",
                        "The job has already been started and cannot be changed or run again.",
                    )
                ]
            )

    def add_operations(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(job_id)
        self.operation_calls += 1
        self._not_started(job)
        operations = body.get("operations")
        if not isinstance(operations, list) or not operations:
            raise field_error("The required field was not present.", "operations")
        total = sum(_identifier_count(operation) for operation in operations)
        if total > MAX_IDENTIFIERS_PER_REQUEST:
            raise invalid(
                [AdsError("offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS", TOO_MANY_MESSAGE)]
            )
        accepted: list[tuple[str, Member | None]] = []
        errors: list[AdsError] = []
        for index, operation in enumerate(operations):
            first = not job.operations and not accepted and index == 0
            problems = self._check_operation(job.user_list, operation, index, first)
            if problems:
                errors.extend(problems)
            else:
                accepted.append(_parse_operation(operation))
        if errors and not body.get("enablePartialFailure"):
            raise invalid(errors)
        if body.get("validateOnly"):
            return {}
        job.operations.extend(accepted)
        if errors:
            return {
                "partialFailureError": {
                    "code": 3,
                    "message": f"Multiple errors in ‘details’. First error: {errors[0].message}",
                    "details": [failure(errors)],
                }
            }
        return {}

    def _check_operation(
        self, user_list: UserList, operation: Any, index: int, first: bool
    ) -> list[AdsError]:
        at = [{"fieldName": "operations", "index": index}]
        if not isinstance(operation, dict) or len(operation) != 1:
            return [AdsError("fieldError", "REQUIRED", "Exactly one operation must be set.", at)]
        kind, value = next(iter(operation.items()))
        if kind == "removeAll":
            if value is not True:
                return [AdsError("fieldError", "INVALID_VALUE", "removeAll must be true.", at)]
            if not first:  # enum name UNVERIFIED
                return [
                    AdsError(
                        "offlineUserDataJobError",
                        "INVALID_OPERATION_ORDER",
                        "removeAll must be the first operation of the job.",
                        at,
                    )
                ]
            return []
        if kind not in ("create", "remove"):
            return [AdsError("fieldError", "REQUIRED", f"Unknown operation {kind!r}.", at)]
        at = [*at, {"fieldName": kind}]
        identifiers = value.get("userIdentifiers") if isinstance(value, dict) else None
        if not isinstance(identifiers, list) or not identifiers:
            return [
                AdsError(
                    "offlineUserDataJobError",
                    "MISSING_USER_IDENTIFIER",
                    "User identifiers must be set.",
                    at,
                )
            ]
        if len(identifiers) > MAX_IDENTIFIERS_PER_OPERATION:
            return [
                AdsError(
                    "offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS", TOO_MANY_MESSAGE, at
                )
            ]
        errors = []
        for position, identifier in enumerate(identifiers):
            path = [*at, {"fieldName": "user_identifiers", "index": position}]
            errors.extend(_check_identifier(user_list, identifier, path))
        return errors

    def run_job(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(job_id)
        self._not_started(job)
        if body.get("validateOnly"):
            return {}
        job.status = "RUNNING"
        members = job.user_list.members
        removing: set[tuple[str, str]] = set()  # identifiers of consecutive removes

        def flush() -> None:
            # A remove drops whoever the given identifiers match.
            if removing:
                members.difference_update([m for m in members if not removing.isdisjoint(m)])
                removing.clear()

        for kind, member in job.operations:
            if kind == "remove" and member is not None:
                removing.update(member)
                continue
            flush()
            if kind == "removeAll":
                members.clear()
            elif member is not None:
                members.add(member)
        flush()
        job.status = "SUCCESS"
        return {
            "name": f"customers/{self.customer_id}/operations/{job.id}",
            "metadata": {"resourceName": self._job_name(job.id)},
        }

    # -- HTTP ------------------------------------------------------------------------------
    def app(self) -> ASGIApp:
        api = FastAPI()

        @api.api_route(f"/{API_VERSION}/{{path:path}}", methods=["GET", "POST"])
        async def google_ads(path: str, request: Request) -> JSONResponse:
            try:
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    raise invalid(
                        [AdsError("requestError", "BAD_REQUEST", "Invalid JSON payload.")]
                    ) from None
                if not isinstance(body, dict):
                    raise invalid([AdsError("requestError", "BAD_REQUEST", "Expected object.")])
                with self._lock:
                    self.requests += 1
                    self.headers_seen.append(dict(request.headers))
                    self._check_headers(request.headers)
                    self._maybe_fail()
                    return JSONResponse(self._route(request.method, path, body))
            except StatusError as error:
                return error.response()

        return DroppingApp(api, self)

    def _route(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == "customers:listAccessibleCustomers" and method == "GET":
            return {"resourceNames": [f"customers/{self.customer_id}"]}
        match = re.fullmatch(r"customers/([^/:]+)/(.+)", path)
        if match is None or method != "POST":
            raise StatusError(404, "NOT_FOUND", f"Method not found: /{path}")
        self._check_customer(match.group(1))
        rest = match.group(2)
        if rest == "userLists:mutate":
            return self.mutate_user_lists(body)
        if rest == "googleAds:search":
            return self.search(body)
        if rest == "offlineUserDataJobs:create":
            return self.create_job(body)
        job = re.fullmatch(r"offlineUserDataJobs/(\d+):(addOperations|run)", rest)
        if job is not None:
            if job.group(2) == "addOperations":
                return self.add_operations(job.group(1), body)
            return self.run_job(job.group(1), body)
        raise StatusError(404, "NOT_FOUND", f"Method not found: /{path}")


def _identifier_count(operation: Any) -> int:
    if not isinstance(operation, dict):
        return 0
    data = operation.get("create") or operation.get("remove")
    identifiers = data.get("userIdentifiers") if isinstance(data, dict) else None
    return len(identifiers) if isinstance(identifiers, list) else 0


def _check_identifier(user_list: UserList, identifier: Any, path: list[Any]) -> list[AdsError]:
    if not isinstance(identifier, dict) or len(identifier) != 1:
        return [AdsError("fieldError", "REQUIRED", "Exactly one identifier must be set.", path)]
    name, value = next(iter(identifier.items()))
    path = [*path, {"fieldName": _snake(name)}]
    if name not in IDENTIFIER_FIELDS:
        return [AdsError("fieldError", "REQUIRED", f"Unknown identifier {name!r}.", path)]
    if name not in KEY_TYPE_FIELDS[user_list.upload_key_type]:
        return [
            AdsError(
                "offlineUserDataJobError",
                "INCOMPATIBLE_UPLOAD_KEY_TYPE",
                "The type of the user identifier does not match the list's upload key type.",
                path,
            )
        ]
    if name in HASHED_FIELDS and (not isinstance(value, str) or not SHA256.fullmatch(value)):
        return [_bad_hash(path)]
    if name == "addressInfo":
        return _check_address(value, path)
    if not isinstance(value, str) or not value:
        return [AdsError("fieldError", "REQUIRED", "The value must be a string.", path)]
    return []


def _check_address(value: Any, path: list[Any]) -> list[AdsError]:
    if not isinstance(value, dict):
        return [AdsError("fieldError", "REQUIRED", "addressInfo must be an object.", path)]
    for name in ("hashedFirstName", "hashedLastName", "hashedStreetAddress"):
        if name in value and not SHA256.fullmatch(str(value[name])):
            return [_bad_hash([*path, {"fieldName": _snake(name)}])]
    country = value.get("countryCode")
    if country is not None and not re.fullmatch(r"[A-Za-z]{2}", str(country)):
        return [
            AdsError(
                "offlineUserDataJobError",
                "INVALID_COUNTRY_CODE",
                "The country code is invalid.",
                [*path, {"fieldName": "country_code"}],
            )
        ]
    return []


def _bad_hash(path: list[Any]) -> AdsError:
    return AdsError(
        "offlineUserDataJobError",
        "INVALID_SHA256_FORMAT",
        "The SHA256 encoded value is malformed.",
        path,
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _parse_operation(operation: dict[str, Any]) -> tuple[str, Member | None]:
    kind, value = next(iter(operation.items()))
    if kind == "removeAll":
        return kind, None
    pairs = []
    for identifier in value["userIdentifiers"]:
        name, item = next(iter(identifier.items()))
        pairs.append((name, json.dumps(item, sort_keys=True) if isinstance(item, dict) else item))
    return kind, frozenset(pairs)


@contextmanager
def serve(fake: FakeGoogleAds) -> Iterator[str]:
    """Serve ``fake`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL
    (``http://127.0.0.1:PORT/v23``)."""
    with serve_app(fake.app(), f"/{API_VERSION}") as url:
        yield url
