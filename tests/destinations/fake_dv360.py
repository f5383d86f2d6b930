"""A local fake of the Display & Video 360 API v4 (Customer Match) that enforces the real API.

Served paths (platform-apis.md §6): ``GET /v4/advertisers/{id}``, ``GET`` (list) and ``POST``
(create) ``/v4/firstPartyAndPartnerAudiences?advertiserId=…``, ``GET
/v4/firstPartyAndPartnerAudiences/{id}`` and ``POST
/v4/firstPartyAndPartnerAudiences/{id}:editCustomerMatchMembers``. There is no delete, as in the
real API: any other path or method is a 404 ``NOT_FOUND``.

It refuses what the real API refuses, with ``google.rpc.Status`` bodies: a missing, wrong or
expired bearer token (401 ``UNAUTHENTICATED``), another advertiser's id, unknown JSON fields
(Google's "Invalid JSON payload received. Unknown name" 400), hashed values that are not 64
lowercase hex characters, a country code that is not two letters, consent denied in either
field, more than 500,000 members in one request after splitting (each hashed email and phone
of a contact info counts as one member — our reading of "after splitting"), device-id lists
sent to a contact-info audience, and a contact info with nothing to match on. Each audience
keeps its member set (one frozenset of ``(field, value)`` per contact info) so a test can
compare it exactly; a removal drops every member sharing a hashed email or phone with it.

Listing with ``filter=displayName:"x"`` is a *contains* match and pages with ``pageSize``
(1–200, default 100) / ``pageToken`` — the adapter's assumption, since the fact sheet does not
document the list endpoint.

Knobs: ``error_rate`` (random 500 ``INTERNAL``, 503 ``UNAVAILABLE`` and 429
``RESOURCE_EXHAUSTED``), ``drop_rate`` (connections cut after the work is done),
``expire_after_calls`` (the token expires after N edit calls), ``reauthenticate(new)``.
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

API_VERSION = "v4"
SHA256 = re.compile(r"[0-9a-f]{64}")
COUNTRY = re.compile(r"[A-Za-z]{2}")
MAX_MEMBERS_PER_REQUEST = 500_000
CM_TYPES = frozenset({"CUSTOMER_MATCH_CONTACT_INFO", "CUSTOMER_MATCH_DEVICE_ID"})
CONSENT_VALUES = frozenset(
    {"CONSENT_STATUS_UNSPECIFIED", "CONSENT_STATUS_GRANTED", "CONSENT_STATUS_DENIED"}
)
CREATE_FIELDS = frozenset(
    {"displayName", "description", "audienceType", "membershipDurationDays", "appId"}
    | {"firstPartyAndPartnerAudienceType", "contactInfoList", "mobileDeviceIdList"}
)
EDIT_FIELDS = frozenset(
    {"advertiserId", "addedContactInfoList", "addedMobileDeviceIdList"}
    | {"removedContactInfoList", "removedMobileDeviceIdList"}
)
CONTACT_FIELDS = frozenset(
    {"hashedEmails", "hashedPhoneNumbers", "zipCodes", "hashedFirstName", "hashedLastName"}
    | {"countryCode"}
)
MATCH_FIELDS = frozenset({"hashedEmails", "hashedPhoneNumbers"})
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_AUTH_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)

Member = frozenset[tuple[str, str]]


class StatusError(Exception):
    """An error the fake answers with, as a ``google.rpc.Status`` envelope."""

    def __init__(self, http: int, status: str, message: str) -> None:
        super().__init__(message)
        self.http, self.status, self.message = http, status, message

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.http, "message": self.message, "status": self.status}}
        return JSONResponse(body, status_code=self.http)


def invalid(message: str) -> StatusError:
    return StatusError(400, "INVALID_ARGUMENT", message)


def unknown_field(name: str, at: str) -> StatusError:
    where = f" at '{at}'" if at else ""
    return invalid(
        f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'
    )


@dataclass
class Audience:
    id: str
    advertiser_id: str
    display_name: str
    audience_type: str
    membership_duration_days: int
    members: set[Member] = field(default_factory=set)

    def values(self, key: str) -> set[str]:
        """Every value of ``key`` (e.g. ``"hashedEmails"``, ``"countryCode"``) among members."""
        return {value for member in self.members for k, value in member if k == key}

    def resource(self) -> dict[str, Any]:
        return {
            "name": f"firstPartyAndPartnerAudiences/{self.id}",
            "firstPartyAndPartnerAudienceId": self.id,
            "displayName": self.display_name,
            "description": "",
            "firstPartyAndPartnerAudienceType": "TYPE_FIRST_PARTY",
            "audienceType": self.audience_type,
            "audienceSource": "AUDIENCE_SOURCE_UNSPECIFIED",
            "membershipDurationDays": str(self.membership_duration_days),
            # DV360 reports sizes under 1,000 as 0 (privacy).
            "displayAudienceSize": str(len(self.members) if len(self.members) >= 1000 else 0),
        }


@dataclass
class FakeDV360:
    """State and knobs of the fake; ``app()`` is the ASGI app serving it."""

    advertiser_id: str = "4455667"
    token: str = "ya29.dv360-valid"
    expired_tokens: set[str] = field(default_factory=set)
    error_rate: float = 0.0
    drop_rate: float = 0.0
    expire_after_calls: int | None = None
    seed: int = 13
    audiences: dict[str, Audience] = field(default_factory=dict)
    consents: list[Mapping[str, Any]] = field(default_factory=list)
    requests: int = 0
    failures: int = 0
    edit_calls: int = 0
    _next_id: int = 8_100_000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    # -- knobs used by tests ---------------------------------------------------------------
    def reauthenticate(self, new_token: str) -> None:
        """The user logged in again: ``new_token`` is valid, the old one stays expired."""
        self.expired_tokens.add(self.token)
        self.token = new_token
        self.expire_after_calls = None

    # -- request checks --------------------------------------------------------------------
    def _check_auth(self, authorization: str) -> None:
        if not authorization.startswith("Bearer ") or not authorization[7:]:
            raise StatusError(401, "UNAUTHENTICATED", MISSING_AUTH_MESSAGE)
        token = authorization[7:]
        if self.expire_after_calls is not None and self.edit_calls >= self.expire_after_calls:
            self.expired_tokens.add(self.token)
        if token != self.token or token in self.expired_tokens:
            raise StatusError(401, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE)

    def _check_advertiser(self, advertiser_id: object) -> None:
        if not advertiser_id:
            raise invalid("Must set advertiser_id or partner_id.")
        if str(advertiser_id) != self.advertiser_id:
            raise StatusError(403, "PERMISSION_DENIED", "The caller does not have permission")

    def _maybe_fail(self) -> None:
        if not self.error_rate or self._random.random() >= self.error_rate:
            return
        self.failures += 1
        roll = self._random.random()
        if roll < 0.35:
            raise StatusError(500, "INTERNAL", "Internal error encountered.")
        if roll < 0.5:
            raise StatusError(503, "UNAVAILABLE", "The service is currently unavailable.")
        raise StatusError(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per "
            "minute per user' of service 'displayvideo.googleapis.com'.",
        )

    def _audience(self, audience_id: str) -> Audience:
        audience = self.audiences.get(audience_id)
        if audience is None:
            raise StatusError(404, "NOT_FOUND", "Requested entity was not found.")
        return audience

    # -- audiences -------------------------------------------------------------------------
    def create_audience(self, query: Mapping[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self._check_advertiser(query.get("advertiserId"))
        for name in body:
            if name not in CREATE_FIELDS:
                raise unknown_field(name, "")
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise invalid("displayName must be set.")
        if body.get("audienceType") not in CM_TYPES:
            raise invalid("Only Customer Match audiences can be created.")
        if body.get("audienceType") == "CUSTOMER_MATCH_DEVICE_ID" and not body.get("appId"):
            raise invalid("appId must be set for CUSTOMER_MATCH_DEVICE_ID audiences.")
        if body.get("firstPartyAndPartnerAudienceType") != "TYPE_FIRST_PARTY":
            raise invalid("firstPartyAndPartnerAudienceType must be TYPE_FIRST_PARTY.")
        try:
            days = int(body.get("membershipDurationDays", ""))
        except (TypeError, ValueError):
            raise invalid("membershipDurationDays must be set.") from None
        if not (1 <= days <= 540 or days == 10_000):
            raise invalid("membershipDurationDays must be > 0 and <= 540, or 10000.")
        self._next_id += 1
        audience = Audience(
            str(self._next_id), self.advertiser_id, name, str(body["audienceType"]), days
        )
        self.audiences[audience.id] = audience
        return audience.resource()

    def list_audiences(self, query: Mapping[str, str]) -> dict[str, Any]:
        self._check_advertiser(query.get("advertiserId"))
        wanted = _display_name_filter(query.get("filter", ""))
        try:
            size = int(query.get("pageSize", "100"))
            start = int(query.get("pageToken") or "0")
        except ValueError:
            raise invalid("Invalid page size or page token.") from None
        if not 1 <= size <= 200:
            raise invalid("pageSize must be between 1 and 200.")
        matching = [
            a
            for a in sorted(self.audiences.values(), key=lambda a: a.id)
            if wanted is None or wanted in a.display_name
        ]
        page = matching[start : start + size]
        body: dict[str, Any] = {"firstPartyAndPartnerAudiences": [a.resource() for a in page]}
        if start + size < len(matching):
            body["nextPageToken"] = str(start + size)
        return body

    def edit_members(self, audience_id: str, body: dict[str, Any]) -> dict[str, Any]:
        audience = self._audience(audience_id)
        self._check_advertiser(body.get("advertiserId"))
        for name in body:
            if name not in EDIT_FIELDS:
                raise unknown_field(name, "")
        if "addedContactInfoList" in body and "addedMobileDeviceIdList" in body:
            raise invalid("Only one of added_contact_info_list, added_mobile_device_id_list.")
        if "removedContactInfoList" in body and "removedMobileDeviceIdList" in body:
            raise invalid("Only one of removed_contact_info_list, removed_mobile_device_id_list.")
        lists = {k: v for k, v in body.items() if k != "advertiserId"}
        if not lists:
            raise invalid("Must set an added or removed list.")
        if audience.audience_type == "CUSTOMER_MATCH_DEVICE_ID":
            return self._edit_devices(audience, lists)
        if any("MobileDeviceId" in k for k in lists):
            raise invalid("Mobile device ids cannot be edited in a contact info audience.")
        total = _split_size(lists.get("addedContactInfoList")) + _split_size(
            lists.get("removedContactInfoList")
        )
        if total > MAX_MEMBERS_PER_REQUEST:
            raise invalid(
                f"The number of members after splitting ({total}) exceeds the maximum of "
                f"{MAX_MEMBERS_PER_REQUEST}."
            )
        added = self._contact_infos(lists.get("addedContactInfoList"), "added_contact_info_list")
        removed = self._contact_infos(
            lists.get("removedContactInfoList"), "removed_contact_info_list"
        )
        self.edit_calls += 1
        audience.members.update(added)
        if removed:
            gone = {pair for member in removed for pair in member if pair[0] in MATCH_FIELDS}
            audience.members.difference_update(
                [m for m in audience.members if not gone.isdisjoint(m)]
            )
        return {"firstPartyAndPartnerAudienceId": audience.id}

    def _edit_devices(self, audience: Audience, lists: dict[str, Any]) -> dict[str, Any]:
        if any("ContactInfo" in k for k in lists):
            raise invalid("Contact info cannot be edited in a mobile device id audience.")
        changes: dict[str, list[str]] = {}
        for key in ("addedMobileDeviceIdList", "removedMobileDeviceIdList"):
            value = lists.get(key)
            if value is None:
                continue
            if not isinstance(value, dict) or set(value) - {"mobileDeviceIds", "consent"}:
                raise invalid(f"Invalid value at '{key}'.")
            self._check_consent(value.get("consent"), key)
            ids = value.get("mobileDeviceIds")
            if (
                not isinstance(ids, list)
                or not ids
                or not all(isinstance(i, str) and i.strip() == i and i for i in ids)
            ):
                raise invalid(f"{key}.mobile_device_ids must be non-empty trimmed strings.")
            if len(ids) > MAX_MEMBERS_PER_REQUEST:
                raise invalid("Too many mobile device ids in one request.")
            changes[key] = ids
        self.edit_calls += 1
        audience.members.update(
            frozenset({("mobileDeviceId", i)}) for i in changes.get("addedMobileDeviceIdList", [])
        )
        audience.members.difference_update(
            frozenset({("mobileDeviceId", i)}) for i in changes.get("removedMobileDeviceIdList", [])
        )
        return {"firstPartyAndPartnerAudienceId": audience.id}

    def _contact_infos(self, value: Any, at: str) -> list[Member]:
        if value is None:
            return []
        if not isinstance(value, dict):
            raise invalid(f"Invalid value at '{at}': expected an object.")
        for name in value:
            if name not in ("contactInfos", "consent"):
                raise unknown_field(name, at)
        self._check_consent(value.get("consent"), at)
        infos = value.get("contactInfos")
        if not isinstance(infos, list) or not infos:
            raise invalid(f"{at}.contact_infos must not be empty.")
        return [_contact_info(info, f"{at}.contact_infos[{i}]") for i, info in enumerate(infos)]

    def _check_consent(self, consent: Any, at: str) -> None:
        if consent is None:
            return
        if not isinstance(consent, dict):
            raise invalid(f"Invalid value at '{at}.consent': expected an object.")
        for name, status in consent.items():
            if name not in ("adUserData", "adPersonalization"):
                raise unknown_field(name, f"{at}.consent")
            if status not in CONSENT_VALUES:
                raise invalid(f"Invalid value at '{at}.consent.{name}' ({status!r}).")
            if status == "CONSENT_STATUS_DENIED":
                raise invalid(
                    f"{at}.consent.{name}: Customer Match members cannot be uploaded with "
                    "consent denied."
                )
        self.consents.append(consent)

    # -- HTTP ------------------------------------------------------------------------------
    def app(self) -> ASGIApp:
        api = FastAPI()

        @api.api_route(f"/{API_VERSION}/{{path:path}}", methods=["GET", "POST", "DELETE", "PATCH"])
        async def dv360(path: str, request: Request) -> JSONResponse:
            try:
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    raise invalid("Invalid JSON payload received.") from None
                if not isinstance(body, dict):
                    raise invalid("Invalid JSON payload received. Expected an object.")
                with self._lock:
                    self.requests += 1
                    self._check_auth(request.headers.get("authorization", ""))
                    self._maybe_fail()
                    return JSONResponse(
                        self._route(request.method, path, dict(request.query_params), body)
                    )
            except StatusError as error:
                return error.response()

        return DroppingApp(api, self)

    def _route(
        self, method: str, path: str, query: Mapping[str, str], body: dict[str, Any]
    ) -> dict[str, Any]:
        if method == "GET" and path == f"advertisers/{self.advertiser_id}":
            return {"name": f"advertisers/{self.advertiser_id}", "advertiserId": self.advertiser_id}
        if method == "GET" and re.fullmatch(r"advertisers/\d+", path):
            raise StatusError(403, "PERMISSION_DENIED", "The caller does not have permission")
        if path == "firstPartyAndPartnerAudiences":
            if method == "POST":
                return self.create_audience(query, body)
            if method == "GET":
                return self.list_audiences(query)
        match = re.fullmatch(
            r"firstPartyAndPartnerAudiences/(\d+)(:editCustomerMatchMembers)?", path
        )
        if match is not None:
            if match.group(2) and method == "POST":
                return self.edit_members(match.group(1), body)
            if not match.group(2) and method == "GET":
                return self._audience(match.group(1)).resource()
        raise StatusError(404, "NOT_FOUND", f"Method not found: {method} /{API_VERSION}/{path}")


def _display_name_filter(text: str) -> str | None:
    """The value of ``displayName:"…"`` (the only filter supported), or ``None``."""
    if not text:
        return None
    match = re.fullmatch(r'\s*displayName\s*:\s*"((?:[^"\\]|\\.)*)"\s*', text)
    if match is None:
        raise invalid(f"Invalid filter: {text}")
    return re.sub(r"\\(.)", r"\1", match.group(1))


def _contact_info(info: Any, at: str) -> Member:
    if not isinstance(info, dict):
        raise invalid(f"Invalid value at '{at}': expected an object.")
    pairs: list[tuple[str, str]] = []
    for name, value in info.items():
        if name not in CONTACT_FIELDS:
            raise unknown_field(name, at)
        if name in ("hashedEmails", "hashedPhoneNumbers", "zipCodes"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise invalid(f"Invalid value at '{at}.{name}': expected a list of strings.")
            values = value
        elif not isinstance(value, str):
            raise invalid(f"Invalid value at '{at}.{name}': expected a string.")
        else:
            values = [value]
        for item in values:
            if name.startswith("hashed") and SHA256.fullmatch(item) is None:
                raise invalid(
                    f"{at}.{name}: the value must be a SHA-256 hash in lowercase hex "
                    "(64 characters)."
                )
            if name == "countryCode" and COUNTRY.fullmatch(item) is None:
                raise invalid(f"{at}.country_code: invalid country code {item!r}.")
            pairs.append((name, item.upper() if name == "countryCode" else item))
    member = frozenset(pairs)
    address = {"hashedFirstName", "hashedLastName", "zipCodes", "countryCode"}
    has_address = address <= {name for name, _ in pairs}
    if not has_address and not any(name in MATCH_FIELDS for name, _ in pairs):
        raise invalid(
            f"{at}: a contact info needs a hashed email, a hashed phone number, or first name, "
            "last name, zip code and country code together."
        )
    return member


def _split_size(contact_info_list: Any) -> int:
    """Members of a ContactInfoList after splitting: one per hashed email and phone number of
    each contact info (at least one per contact info)."""
    if not isinstance(contact_info_list, dict):
        return 0
    infos = contact_info_list.get("contactInfos")
    total = 0
    for info in infos if isinstance(infos, list) else []:
        if isinstance(info, dict):
            lists = [info.get(name) for name in MATCH_FIELDS]
            total += max(1, sum(len(v) for v in lists if isinstance(v, list)))
    return total


@contextmanager
def serve(fake: FakeDV360) -> Iterator[str]:
    """Serve ``fake`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL
    (``http://127.0.0.1:PORT/v4``)."""
    with serve_app(fake.app(), f"/{API_VERSION}") as url:
        yield url
