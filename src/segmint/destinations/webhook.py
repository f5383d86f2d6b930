"""A generic webhook: signed JSON POSTs to a URL the user runs (R18's "generic webhook").

Every request carries ``Segmint-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256 with the shared secret over ``"<t>.<raw body>"``, and ``Segmint-Delivery-Id`` (also
sent as ``Idempotency-Key``): one id per batch, the same on every retry of that batch, so a
receiver that saw it already can answer 2xx and do nothing. :func:`verify_signature` is what a
Python receiver calls (docs/destinations/webhook.md).

Bodies (``type`` says which):

- ``{"type": "members", "audience": {"id", "name"}, "action": "add"|"remove", "members": [...]}``
  for List Sync, members in clear text with every identifier the profile has;
- ``{"type": "events", "events": [...]}`` for Event Sync, each event as the sync runner built it
  (:meth:`segmint.destinations.base.Destination.send_events`);
- ``{"type": "audience_deleted", "audience": {...}}`` when the user deletes the audience (R22);
- ``{"type": "ping"}`` from :meth:`WebhookDestination.check_credentials`.

Status codes are classified as the receiver's author would expect: 401 / 403 → the receiver
refused our signature (AuthExpired, R21), 429 → RateLimited, 5xx / 408 / dropped connections →
Transient (retried), any other 4xx → BadRequest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import httpx

from segmint.destinations.base import Destination, DestinationLimits, MembersChange, request
from segmint.destinations.registry import register
from segmint.errors import InvalidInput
from segmint.sync.batching import chunk
from segmint.sync.errors import (
    AuthExpired,
    BadRequest,
    DestinationError,
    RateLimited,
    Transient,
    parse_retry_after,
)
from segmint.sync.normalize import IdentifierKind, ListMember
from segmint.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

CREDENTIAL_FIELDS: tuple[str, ...] = ("signing_secret",)
"""The shared secret signing every request (at least 16 characters)."""
CONFIG_FIELDS: tuple[str, ...] = ("url", "max_per_request")
"""The receiver's URL, and members or events per request (default 100)."""
FIELD_HINTS = {
    "url": "the receiver's https:// URL, e.g. https://hooks.example.com/segmint",
    "signing_secret": "text of at least 16 random characters",
    "max_per_request": "a whole number of at least 1, e.g. 100",
}
"""What to put in each setting, for the messages about a missing or wrong one."""

SIGNATURE_HEADER = "Segmint-Signature"
DELIVERY_HEADER = "Segmint-Delivery-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_MAX_PER_REQUEST = 100
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Segmint-Signature`` header value for ``body`` sent at ``timestamp`` (unix s)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (a ``Segmint-Signature`` value) signs the raw ``body`` with
    ``secret`` and was made at most ``tolerance_seconds`` from ``now`` (default: the clock),
    which stops an old request from being replayed. Any ``v1`` entry may match, so a receiver
    keeps working while a sender rotates secrets. Compare in constant time; never raises."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, raw, timestamp).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def member_record(member: ListMember) -> dict[str, str | None]:
    """A List Sync member as the webhook sends it: every field, ``null`` when unknown."""
    return asdict(member)


@register("webhook")
class WebhookDestination(Destination):
    """List Sync and Event Sync to a URL the user runs, every request signed."""

    name = "webhook"
    identifier_schema: tuple[IdentifierKind, ...] = (
        "email",
        "phone",
        "first_name",
        "last_name",
        "country",
    )
    supports_event_sync = True

    def __init__(
        self,
        *,
        url: str,
        signing_secret: str,
        max_per_request: int | str = DEFAULT_MAX_PER_REQUEST,
        destination_name: str = "Webhook",
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        delivery_ids: Callable[[], str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """``url`` is the receiver's endpoint; ``signing_secret`` the shared secret (at least
        16 characters); ``max_per_request`` caps members or events per POST; ``clock`` and
        ``delivery_ids`` are for tests."""
        if not url.startswith(("https://", "http://")):
            raise InvalidInput(
                f"webhook URL {url!r} must start with https:// (or http://)", path="config.url"
            )
        if len(signing_secret) < 16:
            raise InvalidInput(
                "the webhook signing secret is too short: use at least 16 random characters",
                path="credentials.signing_secret",
            )
        size = int(max_per_request) if str(max_per_request).strip().isdecimal() else 0
        if size < 1:
            raise InvalidInput(
                f"max_per_request must be a whole number of at least 1, not {max_per_request!r}",
                path="config.max_per_request",
            )
        self.url = url
        self.signing_secret = signing_secret
        self.destination_name = destination_name
        self.limits = DestinationLimits(max_records_per_request=size)
        self.retry = retry or RetryPolicy()
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._clock = clock
        self._delivery_ids = delivery_ids or (lambda: str(uuid.uuid4()))

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def check_credentials(self) -> None:
        """Send a signed ``ping``: raises AuthExpired when the receiver refuses the signature,
        Transient when it cannot be reached."""
        self._post({"type": "ping"})

    def ensure_audience(self, name: str) -> str:
        """The receiver keys audiences by name, so the name is the id; nothing is sent."""
        return name

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """POST ``add`` batches of at most ``max_per_request`` members."""
        return self._send_members("add", remote_id, members)

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """POST ``remove`` batches of at most ``max_per_request`` members."""
        return self._send_members("remove", remote_id, members)

    def delete_audience(self, remote_id: str) -> None:
        """Tell the receiver the audience was deleted (R22 Delete)."""
        self._post({"type": "audience_deleted", "audience": {"id": remote_id, "name": remote_id}})

    def send_events(self, events: Sequence[Mapping[str, Any]]) -> int:
        """POST the events as given, in batches of at most ``max_per_request``; returns how
        many the receiver accepted (all of them, or an error is raised)."""
        return self.deliver_events(events).sent

    def deliver_events(self, events: Sequence[Mapping[str, Any]]) -> MembersChange:
        """:meth:`send_events` with the number of requests made."""
        change = MembersChange()
        for batch in chunk(events, self.limits.max_records_per_request):
            self._post({"type": "events", "events": [dict(event) for event in batch]})
            change.sent += len(batch)
            change.requests += 1
        log.info(
            "webhook events: %d in %d requests",
            change.sent,
            change.requests,
            extra={"destination": self.destination_name},
        )
        return change

    def _send_members(
        self, action: str, remote_id: str, members: Sequence[ListMember]
    ) -> MembersChange:
        change = MembersChange()
        audience = {"id": remote_id, "name": remote_id}
        for batch in chunk(members, self.limits.max_records_per_request):
            records = [member_record(member) for member in batch]
            self._post(
                {"type": "members", "audience": audience, "action": action, "members": records}
            )
            change.sent += len(batch)
            change.requests += 1
        log.info(
            "webhook %s: %d members in %d requests",
            action,
            change.sent,
            change.requests,
            extra={"destination": self.destination_name, "audience_id": remote_id},
        )
        return change

    def _post(self, payload: Mapping[str, Any]) -> None:
        """One signed POST with the shared retry policy. The delivery id and body are fixed
        before the first attempt, so every retry is the same delivery; the signature is
        remade per attempt so a long backoff never outlives the receiver's tolerance."""
        delivery_id = self._delivery_ids()
        body = json.dumps(
            {**payload, "delivery_id": delivery_id},
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,  # traits may hold dates or decimals
        ).encode()

        def headers() -> dict[str, str]:
            return {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self.signing_secret, body, int(self._clock())),
                DELIVERY_HEADER: delivery_id,
                IDEMPOTENCY_HEADER: delivery_id,
                "User-Agent": "Segmint-Webhook/1",
            }

        request(
            self._client,
            self.retry,
            "the webhook",
            "POST",
            self.url,
            handle=self._check,
            headers=headers,
            content=body,
        )

    def _check(self, response: httpx.Response) -> None:
        """Nothing on success; otherwise the classified error."""
        if not response.is_success:
            raise self._classify(response)

    def _classify(self, response: httpx.Response) -> DestinationError:
        status = response.status_code
        detail = response.text[:200] or response.reason_phrase
        text = f"webhook answered HTTP {status}: {detail}"
        if status in (401, 403):
            return AuthExpired(self.destination_name, detail=text, platform_code=status)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(text, retry_after=retry_after, platform_code=status)
        if status >= 500 or status == 408:
            return Transient(text, platform_code=status)
        if 300 <= status < 400:
            location = response.headers.get("location", "?")
            return BadRequest(
                f"the webhook URL redirects (HTTP {status} to {location}); "
                "set the final URL in the destination's configuration",
                platform_code=status,
            )
        return BadRequest(text, platform_code=status)
