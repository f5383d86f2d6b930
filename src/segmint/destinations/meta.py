"""Meta Custom Audiences (Marketing API, Graph API) — platform-apis.md §2.

Create: ``POST /act_{ad_account}/customaudiences``; add: ``POST /{audience}/users``; remove:
``DELETE /{audience}/users``; delete: ``DELETE /{audience}``. Members go as a multi-key
``payload`` (``schema: ["EMAIL", "PHONE", "FN", "LN", "COUNTRY"]``, one row per member, ``""``
for unknown values) hashed per Meta's rules, in batches of at most 10,000 records, all batches
of one call sharing a ``session`` (``session_id``, ``batch_seq``, ``last_batch_flag``,
``estimated_num_total``). POST bodies are form-encoded with JSON-encoded values, as the
official SDK sends them; DELETE carries a JSON body (a query string could not hold 10,000
rows) with ``access_token`` in the query, as RudderStack does.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
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
from segmint.sync.normalize import META_RULES, IdentifierKind, ListMember, prepare_members
from segmint.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

GRAPH_URL = "https://graph.facebook.com/v25.0"
MAX_RECORDS = 10_000
CREDENTIAL_FIELDS: tuple[str, ...] = ("access_token",)
"""Constructor keywords holding secrets (the web UI builds its forms from these)."""
CONFIG_FIELDS: tuple[str, ...] = ("ad_account_id",)
"""Constructor keywords holding non-secret settings."""
SCHEMA_KEYS: Mapping[IdentifierKind, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "first_name": "FN",
    "last_name": "LN",
    "country": "COUNTRY",
}
# Graph error codes (§2.5): 190 = invalid/expired token; throttling and transient codes as
# RudderStack classifies them.
_AUTH_CODES = frozenset({190})
_THROTTLE_CODES = frozenset({4, 17, 32, 613, 80003})
_TRANSIENT_CODES = frozenset({1, 2, 341, 368})


@register("meta")
class MetaCustomAudiences(Destination):
    """List Sync to one Meta ad account's Custom Audiences."""

    name = "meta"
    identifier_schema: tuple[IdentifierKind, ...] = (
        "email",
        "phone",
        "first_name",
        "last_name",
        "country",
    )
    limits = DestinationLimits(max_records_per_request=MAX_RECORDS, min_list_size=100)

    def __init__(
        self,
        *,
        ad_account_id: str,
        access_token: str,
        destination_name: str = "Meta",
        base_url: str = GRAPH_URL,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        session_ids: Callable[[], int] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """``destination_name`` is the user's name for this destination, shown in R21's
        message; ``base_url`` points elsewhere for tests (a fake Graph server)."""
        self.ad_account_id = ad_account_id.removeprefix("act_")
        self.access_token = access_token
        self.destination_name = destination_name
        self.retry = retry or RetryPolicy()
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._session_ids = session_ids or (lambda: secrets.randbits(62) + 1)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def check_credentials(self) -> None:
        """Read the ad account's id: raises AuthExpired when the token no longer works."""
        self._call("GET", f"/act_{self.ad_account_id}", params={"fields": "id"})

    def ensure_audience(self, name: str) -> str:
        """The id of the ad account's custom audience called ``name``, created if missing.

        Creating is not idempotent, so a create whose response was lost is not replayed
        blindly: the whole look-up-then-create is retried, finding the one already made."""
        return self.retry.call(lambda: self._find_or_create(name))

    def _find_or_create(self, name: str) -> str:
        existing = self._find_audience(name)
        if existing is not None:
            return existing
        body = self._call(
            "POST",
            f"/act_{self.ad_account_id}/customaudiences",
            retried=False,
            form={
                "name": name,
                "subtype": "CUSTOM",
                "description": "Synced by Segmint",
                "customer_file_source": "USER_PROVIDED_ONLY",
            },
        )
        return str(body["id"])

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Add members in batches of ≤ 10,000 hashed rows under one upload session."""
        return self._send_members("POST", remote_id, members)

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Remove members in batches of ≤ 10,000 hashed rows under one upload session."""
        return self._send_members("DELETE", remote_id, members)

    def delete_audience(self, remote_id: str) -> None:
        """Delete the custom audience on Meta."""
        self._call("DELETE", f"/{remote_id}")

    def _find_audience(self, name: str) -> str | None:
        path: str | None = f"/act_{self.ad_account_id}/customaudiences"
        params: dict[str, str] = {"fields": "id,name", "limit": "500"}
        while path:
            body = self._call("GET", path, params=params)
            for audience in body.get("data", []):
                if audience.get("name") == name:
                    return str(audience["id"])
            path = body.get("paging", {}).get("next")
            params = {}
        return None

    def _send_members(
        self, method: str, remote_id: str, members: Sequence[ListMember]
    ) -> MembersChange:
        prepared = prepare_members(members, self.identifier_schema, META_RULES)
        change = MembersChange(set_aside=prepared.set_aside)
        schema = [SCHEMA_KEYS[kind] for kind in prepared.schema]
        batches = list(chunk(prepared.rows, self.limits.max_records_per_request))
        session_id = self._session_ids()
        for seq, rows in enumerate(batches, start=1):
            payload = {"schema": schema, "data": rows}
            session = {
                "session_id": session_id,
                "batch_seq": seq,
                "last_batch_flag": seq == len(batches),
                "estimated_num_total": len(prepared.rows),
            }
            path = f"/{remote_id}/users"
            if method == "POST":
                self._call("POST", path, form={"payload": payload, "session": session})
            else:
                self._call("DELETE", path, json_body={"payload": payload, "session": session})
            change.sent += len(rows)
            change.requests += 1
        verb = "add" if method == "POST" else "remove"
        log_change(log, "meta", verb, change, self.destination_name, remote_id)
        return change

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        retried: bool = True,
    ) -> dict[str, Any]:
        """One Graph request, with the shared retry policy unless ``retried`` is false;
        errors classified."""

        query = {**(params or {}), "access_token": self.access_token}
        data = None
        if form is not None:
            # The SDK JSON-encodes every non-string top-level value.
            data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items()}
        return request(
            self._client,
            self.retry,
            "Meta",
            method,
            path,
            retried=retried,
            handle=self._handle,
            params=query,
            data=data,
            json=json_body,
        )

    def _handle(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON body of a successful response (a list wrapped as ``data``); otherwise the
        classified error."""
        if response.is_success:
            body = response.json()
            return body if isinstance(body, dict) else {"data": body}
        raise self._classify(response)

    def _classify(self, response: httpx.Response) -> DestinationError:
        """Map the Graph error envelope (§2.5) to our error classes."""
        try:
            error = response.json().get("error", {})
        except (ValueError, AttributeError):
            error = {}
        code = error.get("code") if isinstance(error, dict) else None
        message = str(error.get("message") or response.text[:200] or response.reason_phrase)
        text = f"Meta error {code}: {message}" if code is not None else f"Meta: {message}"
        if code in _AUTH_CODES:
            return AuthExpired(self.destination_name, detail=message, platform_code=code)
        if response.status_code == 429 or code in _THROTTLE_CODES:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(text, retry_after=retry_after, platform_code=code)
        if response.status_code >= 500 or code in _TRANSIENT_CODES:
            return Transient(text, platform_code=code)
        return BadRequest(text, platform_code=code)
