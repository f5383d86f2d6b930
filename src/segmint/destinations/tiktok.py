"""TikTok Custom Audiences (API for Business, streaming "Segment API") — platform-apis.md §5.

Create: ``POST /segment/audience/`` (``action: "create"``); find: ``GET
/dmp/custom_audience/list/``; add / remove: ``POST /segment/mapping/`` (``action: "add"`` /
``"delete"``); delete: ``POST /dmp/custom_audience/delete/``. Every path ends with a trailing
slash (TikTok answers 404 without it) and the token goes in the ``Access-Token`` header.

Members go as ``batch_data``: one inner array per member, positional with ``id_schema``
(``["EMAIL_SHA256", "PHONE_SHA256"]``), each entry ``{"id": <sha256>, "audience_ids": [id]}``
or ``{}`` for an unknown value. TikTok answers almost everything with HTTP 200 and an envelope
``{code, message, request_id, data}``: ``code`` 0 is success, and the code — not the HTTP
status — says what went wrong (§5.1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
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

BUSINESS_API_URL = "https://business-api.tiktok.com/open_api/v1.3"
# TikTok publishes no per-request maximum for /segment/mapping/; 1,000 members per request
# keeps each body well under a megabyte and matches what the streaming integrations batch.
MAX_RECORDS = 1_000
INSTANT_SYNC_MIN_INTERVAL_SECONDS = 30 * 60  # R20
MIN_LIST_SIZE = 1_000  # §5.3: audiences under 1,000 entries do not serve
CREDENTIAL_FIELDS: tuple[str, ...] = ("access_token",)
"""Constructor keywords holding secrets (the web UI builds its forms from these)."""
CONFIG_FIELDS: tuple[str, ...] = ("advertiser_id", "phone_plus")
"""Constructor keywords holding non-secret settings."""
ID_SCHEMA: Mapping[IdentifierKind, str] = {"email": "EMAIL_SHA256", "phone": "PHONE_SHA256"}

TIKTOK_RULES = HashingRules(email_remove_all_whitespace=True, phone_plus=True, hash_country=False)
"""TikTok (§5.4): emails lose every space and are lowercased; phones are E.164 with ``+``
(the June 2025 help page; pass ``phone_plus=False`` for the digits-only reading)."""

# §5.1 error codes.
_AUTH_CODES = frozenset({40102, 40104, 40105, 40106})
_THROTTLE_CODES = frozenset({40100, 40016, 40133})
_SUCCESS_CODES = frozenset({0, 20001})  # 20001 = partial success


@register("tiktok")
class TikTokAudiences(Destination):
    """List Sync to one TikTok advertiser's Custom Audiences."""

    name = "tiktok"
    identifier_schema: tuple[IdentifierKind, ...] = ("email", "phone")
    limits = DestinationLimits(
        max_records_per_request=MAX_RECORDS,
        min_list_size=MIN_LIST_SIZE,
        instant_sync_min_interval_seconds=INSTANT_SYNC_MIN_INTERVAL_SECONDS,
    )

    def __init__(
        self,
        *,
        advertiser_id: str,
        access_token: str,
        destination_name: str = "TikTok",
        base_url: str = BUSINESS_API_URL,
        phone_plus: bool = True,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
    ) -> None:
        """``destination_name`` is the user's name for this destination, shown in R21's
        message; ``base_url`` points elsewhere for tests (a fake Business API server);
        ``phone_plus`` chooses between the two phone formats TikTok's help pages give."""
        self.advertiser_id = advertiser_id
        self.access_token = access_token
        self.destination_name = destination_name
        self.rules = replace(TIKTOK_RULES, phone_plus=phone_plus)
        self.retry = retry or RetryPolicy()
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def check_credentials(self) -> None:
        """List one audience: raises AuthExpired when the token no longer works."""
        self._call("GET", "/dmp/custom_audience/list/", params=self._page_params(1, 1))

    def ensure_audience(self, name: str) -> str:
        """The id of the advertiser's custom audience called ``name``, created if missing.

        Creating is not idempotent, so a create whose response was lost is not replayed
        blindly: the whole look-up-then-create is retried, finding the one already made."""
        return self.retry.call(lambda: self._find_or_create(name))

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Add members in batches of ≤ 1,000 hashed rows."""
        return self._send_members("add", remote_id, members)

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Remove members in batches of ≤ 1,000 hashed rows."""
        return self._send_members("delete", remote_id, members)

    def delete_audience(self, remote_id: str) -> None:
        """Delete the custom audience on TikTok."""
        self._call(
            "POST",
            "/dmp/custom_audience/delete/",
            json_body={"advertiser_id": self.advertiser_id, "custom_audience_ids": [remote_id]},
        )

    def _page_params(self, page: int, page_size: int) -> dict[str, str]:
        return {"advertiser_id": self.advertiser_id, "page": str(page), "page_size": str(page_size)}

    def _find_or_create(self, name: str) -> str:
        existing = self._find_audience(name)
        if existing is not None:
            return existing
        data = self._call(
            "POST",
            "/segment/audience/",
            retried=False,
            json_body={
                "custom_audience_name": name,
                "advertiser_id": self.advertiser_id,
                "action": "create",
            },
        )
        return str(data["audience_id"])

    def _find_audience(self, name: str) -> str | None:
        page, total_pages = 1, 1
        while page <= total_pages:
            data = self._call(
                "GET", "/dmp/custom_audience/list/", params=self._page_params(page, 100)
            )
            for audience in data.get("list") or []:
                if audience.get("name") == name:
                    return str(audience["audience_id"])
            total_pages = int((data.get("page_info") or {}).get("total_page") or 1)
            page += 1
        return None

    def _send_members(
        self, action: str, remote_id: str, members: Sequence[ListMember]
    ) -> MembersChange:
        prepared = prepare_members(members, self.identifier_schema, self.rules)
        change = MembersChange(set_aside=prepared.set_aside)
        id_schema = [ID_SCHEMA[kind] for kind in prepared.schema]
        audience_ids = [remote_id]
        for rows in chunk(prepared.rows, self.limits.max_records_per_request):
            batch_data = [
                [{"id": value, "audience_ids": audience_ids} if value else {} for value in row]
                for row in rows
            ]
            body = {
                "advertiser_ids": [self.advertiser_id],
                "action": action,
                "id_schema": id_schema,
                "batch_data": batch_data,
            }
            self._call("POST", "/segment/mapping/", json_body=body)
            change.sent += len(rows)
            change.requests += 1
        log_change(log, "tiktok", action, change, self.destination_name, remote_id)
        return change

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        retried: bool = True,
    ) -> dict[str, Any]:
        """One Business API request returning the envelope's ``data``, with the shared retry
        policy unless ``retried`` is false; errors classified."""

        return request(
            self._client,
            self.retry,
            "TikTok",
            method,
            path,
            retried=retried,
            handle=self._unwrap,
            headers={"Access-Token": self.access_token},
            params=params,
            json=json_body,
        )

    def _unwrap(self, response: httpx.Response) -> dict[str, Any]:
        """The envelope's ``data`` on success; otherwise the classified error (§5.1)."""
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or "code" not in envelope:
            raise self._classify_http(response)
        code = envelope.get("code")
        if response.is_success and code in _SUCCESS_CODES:
            data = envelope.get("data")
            return data if isinstance(data, dict) else {}
        message = str(envelope.get("message") or response.reason_phrase)
        text = f"TikTok error {code}: {message} (request {envelope.get('request_id', '?')})"
        if code in _AUTH_CODES:
            raise AuthExpired(self.destination_name, detail=message, platform_code=code)
        if response.status_code == 429 or code in _THROTTLE_CODES:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise RateLimited(text, retry_after=retry_after, platform_code=code)
        if response.status_code >= 500 or (isinstance(code, int) and 50000 <= code < 60000):
            raise Transient(text, platform_code=code)
        raise BadRequest(text, platform_code=code)

    def _classify_http(self, response: httpx.Response) -> DestinationError:
        """A response without TikTok's envelope: the request never reached the API logic."""
        text = (
            f"TikTok HTTP {response.status_code}: {response.text[:200] or response.reason_phrase}"
        )
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(text, retry_after=retry_after)
        if response.status_code >= 500:
            return Transient(text)
        return BadRequest(text)
