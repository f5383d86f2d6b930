"""Klaviyo lists (JSON:API, revisioned REST API) — platform-apis.md §7.

Every request carries ``Authorization: Klaviyo-API-Key <private key>`` and the pinned
``revision`` header. Lists are found with ``GET /lists?filter=equals(name,"…")`` and created
with ``POST /lists``; ``DELETE /lists/{id}`` deletes one.

List members are Klaviyo profiles, identified by profile id, and Klaviyo takes clear values,
not hashes: the email trimmed and lowercased, the phone as ``phone_number`` in E.164 (what SMS
sending uses).

Add uses Bulk Import Profiles (``POST /profile-bulk-import-jobs``, ≤ 10,000 profiles a job)
with the list in the job's ``relationships``: one request both upserts the profiles (matched by
email, then phone) and adds them to the list, so replaying it after a lost response is
harmless — the alternative, one ``profile-import`` call per member, would take 25,000 calls for
25,000 members. The job runs asynchronously; the adapter polls it until ``complete`` and reads
its ``import-errors`` to set aside profiles Klaviyo refused. Adding to a list does not change
consent: SMS or email marketing still needs consent collected elsewhere.

Remove looks up profile ids (``GET /profiles?filter=any(email,[…])``, then ``phone_number`` for
members found by no email; ≤ 100 values a look-up) and deletes the list relationships
(``DELETE /lists/{id}/relationships/profiles``, ≤ 1,000 ids a call). Members Klaviyo has no
profile for are not on the list, so there is nothing to remove.

Errors arrive as a JSON:API ``errors`` array: 401 → AuthExpired, 429 (with ``Retry-After``) →
RateLimited, 5xx → Transient, anything else → BadRequest.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from segmint.destinations.base import (
    Destination,
    DestinationLimits,
    MembersChange,
    log_change,
    request,
)
from segmint.destinations.registry import register
from segmint.identifiers import is_sha256_hex, normalize_email, normalize_phone
from segmint.sync.batching import chunk
from segmint.sync.errors import (
    AuthExpired,
    BadRequest,
    DestinationError,
    RateLimited,
    Transient,
    parse_retry_after,
)
from segmint.sync.normalize import IdentifierKind, ListMember, SetAside
from segmint.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

KLAVIYO_URL = "https://a.klaviyo.com/api"
REVISION = "2025-01-15"
MAX_IMPORT_PROFILES = 10_000  # per bulk import job (Klaviyo's bulk import reference)
MAX_RELATIONSHIPS = 1_000  # per add / remove profiles call (§7.1)
MAX_FILTER_VALUES = 100  # per any(...) look-up (one page of 100 profiles)
JSON_API = "application/vnd.api+json"

CREDENTIAL_FIELDS: tuple[str, ...] = ("api_key",)
"""Constructor keywords holding secrets (the web UI builds its forms from these)."""
CONFIG_FIELDS: tuple[str, ...] = ()
"""Constructor keywords holding non-secret settings."""

_POINTER_INDEX = re.compile(r"/profiles/data/(\d+)")


@dataclass(frozen=True, slots=True)
class _Profile:
    """One member's clear identifiers as Klaviyo takes them."""

    key: str
    email: str | None
    phone: str | None

    def attributes(self) -> dict[str, str]:
        attributes = {}
        if self.email:
            attributes["email"] = self.email
        if self.phone:
            attributes["phone_number"] = self.phone
        return attributes


@register("klaviyo")
class KlaviyoLists(Destination):
    """List Sync to one Klaviyo account's lists, by email and SMS phone number.

    Credentials: ``api_key`` (a private API key, ``pk_…``, with the ``lists:write`` and
    ``profiles:write`` scopes, and their read scopes). Config: none (``revision`` can be
    overridden but is pinned to one tested API revision)."""

    name = "klaviyo"
    identifier_schema: tuple[IdentifierKind, ...] = ("email", "phone")
    # §7.2: list and bulk-import endpoints allow 10 requests at once, 150 a minute (tier M).
    limits = DestinationLimits(
        max_records_per_request=MAX_IMPORT_PROFILES, requests_per_second=2.5, burst=10
    )

    def __init__(
        self,
        *,
        api_key: str,
        destination_name: str = "Klaviyo",
        revision: str = REVISION,
        base_url: str = KLAVIYO_URL,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        poll_seconds: float = 2.0,
        job_timeout_seconds: float = 1_800.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
    ) -> None:
        """``destination_name`` is the user's name for this destination, shown in R21's
        message; ``base_url`` points elsewhere for tests (a fake Klaviyo server);
        ``poll_seconds`` / ``job_timeout_seconds`` govern waiting for import jobs."""
        self.api_key = api_key
        self.destination_name = destination_name
        self.revision = revision
        self.retry = retry or RetryPolicy()
        self.poll_seconds = poll_seconds
        self.job_timeout_seconds = job_timeout_seconds
        self._sleep = sleep
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def check_credentials(self) -> None:
        """Read the first page of lists: raises AuthExpired when the key no longer works."""
        self._call("GET", "/lists", params={"fields[list]": "name"})

    def ensure_audience(self, name: str) -> str:
        """The id of the list called ``name``, created if missing.

        Creating is not idempotent (Klaviyo allows two lists with one name), so the whole
        look-up-then-create is retried, finding a list whose create response was lost."""
        return self.retry.call(lambda: self._find_or_create(name))

    def _find_or_create(self, name: str) -> str:
        existing = self._find_list(name)
        if existing is not None:
            return existing
        body = self._call(
            "POST",
            "/lists",
            json_body={"data": {"type": "list", "attributes": {"name": name}}},
            retried=False,
        )
        return str(body["data"]["id"])

    def _find_list(self, name: str) -> str | None:
        params = {"filter": f"equals(name,{json.dumps(name)})", "fields[list]": "name"}
        for item in self._pages("/lists", params):
            if item.get("attributes", {}).get("name") == name:
                return str(item["id"])
        return None

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Upsert the members' profiles and add them to the list, ≤ 10,000 per import job."""
        profiles, change = _prepare(members)
        for batch in chunk(profiles, self.limits.max_records_per_request):
            refused = self._import(remote_id, batch)
            for index, reason in sorted(refused.items()):
                change.set_aside.append(SetAside(batch[index].key, "*", reason))
            change.sent += len(batch) - len(refused)
            change.requests += 1
        self._log("add", remote_id, change)
        return change

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Remove the members' profiles from the list, ≤ 1,000 profile ids per call."""
        profiles, change = _prepare(members)
        ids = self._profile_ids(profiles)
        for batch in chunk(ids, MAX_RELATIONSHIPS):
            self._call(
                "DELETE",
                f"/lists/{remote_id}/relationships/profiles",
                json_body={"data": [{"type": "profile", "id": i} for i in batch]},
            )
            change.sent += len(batch)
            change.requests += 1
        self._log("remove", remote_id, change)
        return change

    def delete_audience(self, remote_id: str) -> None:
        """Delete the list (its profiles stay in the Klaviyo account)."""
        self._call("DELETE", f"/lists/{remote_id}")

    def _log(self, action: str, remote_id: str, change: MembersChange) -> None:
        log_change(log, "klaviyo", action, change, self.destination_name, remote_id)

    # -- add: bulk import jobs ---------------------------------------------------------------
    def _import(self, list_id: str, batch: Sequence[_Profile]) -> dict[int, str]:
        """Run one bulk import job adding ``batch`` to the list; batch index → reason for each
        profile Klaviyo refused."""
        job = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {
                    "profiles": {
                        "data": [{"type": "profile", "attributes": p.attributes()} for p in batch]
                    }
                },
                "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}},
            }
        }
        job_id = str(self._call("POST", "/profile-bulk-import-jobs", json_body=job)["data"]["id"])
        attributes = self._wait_for(job_id)
        if not attributes.get("failed_count"):
            return {}
        refused: dict[int, str] = {}
        for error in self._pages(f"/profile-bulk-import-jobs/{job_id}/import-errors", {}):
            details = error.get("attributes", {})
            pointer = str((details.get("source") or {}).get("pointer", ""))
            match = _POINTER_INDEX.search(pointer)
            if match and int(match.group(1)) < len(batch):
                reason = details.get("detail") or details.get("title") or "refused"
                refused.setdefault(int(match.group(1)), f"refused by Klaviyo: {reason}")
        return refused

    def _wait_for(self, job_id: str) -> dict[str, Any]:
        """Poll the import job until it is complete; its attributes."""
        deadline = time.monotonic() + self.job_timeout_seconds
        while True:
            body = self._call("GET", f"/profile-bulk-import-jobs/{job_id}")
            attributes: dict[str, Any] = body["data"].get("attributes", {})
            status = attributes.get("status")
            if status == "complete":
                return attributes
            if status in ("cancelled", "failed"):
                raise Transient(f"Klaviyo import job {job_id} ended {status}; re-run the sync")
            if time.monotonic() > deadline:
                raise Transient(
                    f"Klaviyo import job {job_id} still {status} after "
                    f"{self.job_timeout_seconds:.0f} s; re-running the sync is safe"
                )
            self._sleep(self.poll_seconds)

    # -- remove: profile id look-ups ---------------------------------------------------------
    def _profile_ids(self, profiles: Sequence[_Profile]) -> list[str]:
        """Klaviyo profile ids of ``profiles``: by email, then by phone for the rest."""
        ids: dict[str, None] = {}
        found_emails: set[str] = set()
        emails = [p.email for p in profiles if p.email]
        for item in self._lookup("email", emails):
            ids[str(item["id"])] = None
            found_emails.add(str(item.get("attributes", {}).get("email") or ""))
        phones = [p.phone for p in profiles if p.phone and p.email not in found_emails]
        for item in self._lookup("phone_number", phones):
            ids[str(item["id"])] = None
        return list(ids)

    def _lookup(self, field: str, values: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for batch in chunk(sorted(set(values)), MAX_FILTER_VALUES):
            params = {
                "filter": f"any({field},{json.dumps(list(batch))})",
                "fields[profile]": "email,phone_number",
                "page[size]": str(MAX_FILTER_VALUES),
            }
            found.extend(self._pages("/profiles", params))
        return found

    # -- HTTP --------------------------------------------------------------------------------
    def _pages(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every item of a paged collection, following ``links.next``."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: Mapping[str, str] | None = params
        while url:
            body = self._call("GET", url, params=query)
            items.extend(item for item in body.get("data", []) if isinstance(item, dict))
            url, query = (body.get("links") or {}).get("next"), None
        return items

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        retried: bool = True,
    ) -> dict[str, Any]:
        """One Klaviyo request, with the shared retry policy unless ``retried`` is false;
        errors classified."""
        headers = {
            "Authorization": f"Klaviyo-API-Key {self.api_key}",
            "revision": self.revision,
            "Accept": JSON_API,
        }
        content = None
        if json_body is not None:
            headers["Content-Type"] = JSON_API
            content = json.dumps(json_body).encode()

        return request(
            self._client,
            self.retry,
            "Klaviyo",
            method,
            path,
            retried=retried,
            handle=self._handle,
            headers=headers,
            params=params,
            content=content,
        )

    def _handle(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON body of a successful response (``{}`` when empty); otherwise the
        classified error."""
        if response.is_success:
            if not response.content:
                return {}
            body = response.json()
            return body if isinstance(body, dict) else {}
        raise self._classify(response)

    def _classify(self, response: httpx.Response) -> DestinationError:
        """Map the JSON:API error envelope to our error classes; the platform code is the
        first error's ``code`` (``not_authenticated``, ``throttled``, ``invalid``…)."""
        try:
            errors = response.json().get("errors") or [{}]
            error = errors[0] if isinstance(errors[0], dict) else {}
        except (ValueError, AttributeError, IndexError, TypeError):
            error = {}
        code = str(error.get("code") or response.status_code)
        message = str(error.get("detail") or error.get("title") or response.reason_phrase)
        text = f"Klaviyo {code}: {message}"
        if response.status_code == 401:
            return AuthExpired(self.destination_name, detail=message, platform_code=code)
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(text, retry_after=retry_after, platform_code=code)
        if response.status_code >= 500:
            return Transient(text, platform_code=code)
        if response.status_code == 403:
            text += " (the API key needs the lists:write and profiles:write scopes)"
        return BadRequest(text, platform_code=code)


def _prepare(members: Sequence[ListMember]) -> tuple[list[_Profile], MembersChange]:
    """Clear, normalized identifiers per member: email trimmed and lowercased, phone in E.164
    (national numbers read in the member's country). Hashed values cannot be used — Klaviyo
    needs clear text — and are set aside like malformed ones; a member left with neither is
    set aside whole."""
    profiles: list[_Profile] = []
    change = MembersChange()
    aside = change.set_aside
    for member in members:
        email = phone = None
        if member.email is not None:
            email = normalize_email(member.email)
            if email is None and str(member.email).strip():
                aside.append(SetAside(member.key, "email", _why(member.email, "email")))
        if member.phone is not None:
            phone = normalize_phone(member.phone, member.country)
            if phone is None and str(member.phone).strip():
                aside.append(SetAside(member.key, "phone", _why(member.phone, "phone")))
        if email is None and phone is None:
            aside.append(SetAside(member.key, "*", "no usable email or phone"))
            continue
        profiles.append(_Profile(member.key, email, phone))
    return profiles, change


def _why(value: object, kind: str) -> str:
    if is_sha256_hex(str(value).strip()):
        return f"hashed {kind} (Klaviyo needs clear text)"
    return f"malformed {kind}"
