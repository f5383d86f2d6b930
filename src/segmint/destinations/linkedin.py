"""LinkedIn Matched Audiences (DMP Segments API, Rest.li 2.0) — platform-apis.md §4.

Find: ``GET /dmpSegments?q=account&account=urn:li:sponsoredAccount:{id}``; create: ``POST
/dmpSegments`` (201, the id in the ``x-restli-id`` header); add / remove: ``POST
/dmpSegments/{id}/users`` with ``X-RestLi-Method: BATCH_CREATE`` and ``elements`` of
``{"action": "ADD"|"REMOVE", "userIds": [{"idType": "SHA256_EMAIL", "idValue": <sha256>}],
"firstName", "lastName"}``, at most 5,000 per request; delete: ``DELETE /dmpSegments/{id}``.
Every call carries ``LinkedIn-Version`` and ``X-Restli-Protocol-Version: 2.0.0``.

Emails are trimmed, lowercased and SHA-256 hashed; first and last names go in clear text,
trimmed to LinkedIn's 35 characters (§4.2, §9). HTTP statuses carry the errors: 401 means the
login expired (R21), 429 the per-member rate limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
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
from segmint.sync.batching import chunk
from segmint.sync.errors import (
    AuthExpired,
    BadRequest,
    DestinationError,
    RateLimited,
    Transient,
    parse_retry_after,
)
from segmint.sync.normalize import HashingRules, IdentifierKind, ListMember, prepare_members
from segmint.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

REST_URL = "https://api.linkedin.com/rest"
LINKEDIN_VERSION = "202603"
MAX_RECORDS = 5_000  # what RudderStack sends per request; LinkedIn's hard limit is unpublished
MIN_LIST_SIZE = 300  # §4.4: delivery starts at 300 matched members
MAX_NAME_LENGTH = 35
SETTLE_SECONDS = 5.0  # §4.1: wait after creating a segment before adding users
CREDENTIAL_FIELDS: tuple[str, ...] = ("access_token",)
"""Constructor keywords holding secrets (the web UI builds its forms from these)."""
CONFIG_FIELDS: tuple[str, ...] = ("ad_account_id",)
"""Constructor keywords holding non-secret settings."""

LINKEDIN_RULES = HashingRules(email_remove_all_whitespace=False, hash_country=False)
"""LinkedIn (§4.3): emails trimmed and lowercased, then SHA-256."""


@register("linkedin")
class LinkedInAudiences(Destination):
    """List Sync to one LinkedIn ad account's DMP segments (Matched Audiences)."""

    name = "linkedin"
    identifier_schema: tuple[IdentifierKind, ...] = ("email", "first_name", "last_name")
    # §4: 600 requests a minute per member on /dmpSegments/users.
    limits = DestinationLimits(
        max_records_per_request=MAX_RECORDS,
        min_list_size=MIN_LIST_SIZE,
        requests_per_second=10.0,
        burst=10,
    )

    def __init__(
        self,
        *,
        ad_account_id: str,
        access_token: str,
        destination_name: str = "LinkedIn",
        base_url: str = REST_URL,
        linkedin_version: str = LINKEDIN_VERSION,
        source_platform: str = "STREAMING",
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        settle_seconds: float = SETTLE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
    ) -> None:
        """``destination_name`` is the user's name for this destination, shown in R21's
        message; ``base_url`` points elsewhere for tests (a fake LinkedIn server);
        ``source_platform`` is the partner value LinkedIn assigned (§4.1)."""
        self.ad_account_id = ad_account_id.removeprefix("urn:li:sponsoredAccount:")
        self.access_token = access_token
        self.destination_name = destination_name
        self.linkedin_version = linkedin_version
        self.source_platform = source_platform
        self.retry = retry or RetryPolicy()
        self.settle_seconds = settle_seconds
        self._sleep = sleep
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    @property
    def account_urn(self) -> str:
        """The ad account as LinkedIn names it."""
        return f"urn:li:sponsoredAccount:{self.ad_account_id}"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def check_credentials(self) -> None:
        """List one segment of the ad account: raises AuthExpired when the token is no good."""
        self._call("GET", "/dmpSegments", params=self._find_params(0, 1))

    def ensure_audience(self, name: str) -> str:
        """The id of the ad account's DMP segment called ``name``, created if missing.

        Creating is not idempotent, so a create whose response was lost is not replayed
        blindly: the whole look-up-then-create is retried, finding the one already made."""
        return self.retry.call(lambda: self._find_or_create(name))

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Add members in batches of ≤ 5,000 elements."""
        return self._send_members("ADD", remote_id, members)

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Remove members in batches of ≤ 5,000 elements."""
        return self._send_members("REMOVE", remote_id, members)

    def delete_audience(self, remote_id: str) -> None:
        """Delete the DMP segment on LinkedIn."""
        self._call("DELETE", f"/dmpSegments/{remote_id}")

    def _find_params(self, start: int, count: int) -> dict[str, str]:
        return {
            "q": "account",
            "account": self.account_urn,
            "start": str(start),
            "count": str(count),
        }

    def _find_or_create(self, name: str) -> str:
        existing = self._find_audience(name)
        if existing is not None:
            return existing
        response = self._call(
            "POST",
            "/dmpSegments",
            retried=False,
            json_body={
                "name": name,
                "sourcePlatform": self.source_platform,
                "account": self.account_urn,
                "accessPolicy": "PRIVATE",
                "type": "USER",
                "destinations": [{"destination": "LINKEDIN"}],
            },
        )
        segment_id = response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id")
        if not segment_id:
            raise Transient("LinkedIn created a segment but returned no x-restli-id")
        if self.settle_seconds:
            self._sleep(self.settle_seconds)
        return segment_id

    def _find_audience(self, name: str) -> str | None:
        start, count = 0, 100
        while True:
            body = self._call("GET", "/dmpSegments", params=self._find_params(start, count)).json()
            elements = body.get("elements") or []
            for segment in elements:
                if segment.get("name") == name:
                    return str(segment["id"])
            total = (body.get("paging") or {}).get("total")
            start += count
            if not elements or (isinstance(total, int) and start >= total):
                return None

    def _send_members(
        self, action: str, remote_id: str, members: Sequence[ListMember]
    ) -> MembersChange:
        prepared = prepare_members(members, ("email",), LINKEDIN_RULES)
        change = MembersChange(set_aside=prepared.set_aside)
        elements = [
            _element(action, row[0], member)
            for row, member in zip(prepared.rows, _kept(members, prepared.keys), strict=True)
        ]
        for batch in chunk(elements, self.limits.max_records_per_request):
            self.retry.call(partial(self._post_users, remote_id, batch))
            change.sent += len(batch)
            change.requests += 1
        log_change(log, "linkedin", action.lower(), change, self.destination_name, remote_id)
        return change

    def _post_users(self, remote_id: str, elements: Sequence[dict[str, Any]]) -> None:
        """One BATCH_CREATE of user elements, checking every element's status."""
        response = self._call(
            "POST",
            f"/dmpSegments/{remote_id}/users",
            json_body={"elements": list(elements)},
            restli_method="BATCH_CREATE",
            retried=False,
        )
        _check_element_statuses(response)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        restli_method: str | None = None,
        retried: bool = True,
    ) -> httpx.Response:
        """One Rest.li request, with the shared retry policy unless ``retried`` is false;
        errors classified."""
        headers = {
            "Authorization": f"Bearer {self.access_token}",
            "LinkedIn-Version": self.linkedin_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        if restli_method:
            headers["X-RestLi-Method"] = restli_method

        return request(
            self._client,
            self.retry,
            "LinkedIn",
            method,
            path,
            retried=retried,
            handle=self._handle,
            headers=headers,
            params=params,
            json=json_body,
        )

    def _handle(self, response: httpx.Response) -> httpx.Response:
        """A successful response as is; otherwise the classified error."""
        if response.is_success:
            return response
        raise self._classify(response)

    def _classify(self, response: httpx.Response) -> DestinationError:
        """Map LinkedIn's error body ``{status, serviceErrorCode, code, message}`` to our
        error classes by HTTP status."""
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        code = body.get("serviceErrorCode") or body.get("code")
        message = str(body.get("message") or response.text[:200] or response.reason_phrase)
        text = f"LinkedIn HTTP {response.status_code}: {message}"
        if response.status_code == 401:
            return AuthExpired(self.destination_name, detail=message, platform_code=code)
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(text, retry_after=retry_after, platform_code=code)
        if response.status_code >= 500:
            return Transient(text, platform_code=code)
        return BadRequest(text, platform_code=code)


def _kept(members: Sequence[ListMember], keys: Sequence[str]) -> Iterator[ListMember]:
    """The members ``prepare_members`` kept, in order: ``keys`` is a subsequence of the
    members' keys."""
    wanted = iter(keys)
    key = next(wanted, None)
    for member in members:
        if key is None:
            return
        if member.key == key:
            yield member
            key = next(wanted, None)


def _clear_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip()[:MAX_NAME_LENGTH] or None


def _element(action: str, email_hash: str, member: ListMember) -> dict[str, Any]:
    element: dict[str, Any] = {
        "action": action,
        "userIds": [{"idType": "SHA256_EMAIL", "idValue": email_hash}],
    }
    first, last = _clear_name(member.first_name), _clear_name(member.last_name)
    if first:
        element["firstName"] = first
    if last:
        element["lastName"] = last
    return element


def _check_element_statuses(response: httpx.Response) -> None:
    """LinkedIn answers a batch with one status per element: a throttled or failed element
    makes the whole (idempotent) batch worth retrying; a refused one is a bad request."""
    try:
        elements = response.json().get("elements") or []
    except (ValueError, AttributeError):
        return
    statuses = [item.get("status") for item in elements if isinstance(item, dict)]
    failed = [s for s in statuses if isinstance(s, int) and s >= 400]
    if not failed:
        return
    text = f"LinkedIn refused {len(failed)} of {len(statuses)} elements (status {failed[0]})"
    if any(s == 429 for s in failed):
        raise RateLimited(text, platform_code=429)
    if any(s >= 500 for s in failed):
        raise Transient(text, platform_code=failed[0])
    raise BadRequest(text, platform_code=failed[0])
