"""The one small interface every destination platform module implements.

A destination module is an adapter over its platform's API and nothing else: normalization,
hashing, batching and retries come from :mod:`segmint.sync`; errors are classified into
:mod:`segmint.sync.errors` so links and logs treat every platform alike.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from segmint.sync.errors import BadRequest, Transient
from segmint.sync.normalize import IdentifierKind, ListMember, SetAside
from segmint.sync.retry import RetryPolicy

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DestinationLimits:
    """A platform's rules (R19, R20): records per request, the smallest list it will serve,
    the minimum interval between Instant Syncs (``None`` when it has none) and its rate limit."""

    max_records_per_request: int
    max_bytes_per_request: int | None = None
    min_list_size: int = 0
    instant_sync_min_interval_seconds: int | None = None
    requests_per_second: float | None = None
    """The platform's published steady request rate, paced by the sync (None: no limit)."""
    burst: int = 1
    """Requests allowed at once before pacing starts."""


@dataclass
class MembersChange:
    """What one add or remove call did: members sent, requests made, values set aside."""

    sent: int = 0
    requests: int = 0
    set_aside: list[SetAside] = field(default_factory=list)

    @property
    def skipped_members(self) -> int:
        """Members not sent at all because no identifier was usable."""
        return sum(1 for item in self.set_aside if item.identifier == "*")


class Destination(ABC):
    """An ad or messaging platform an audience syncs to."""

    name: str
    """Registry name, e.g. ``"meta"``."""
    identifier_schema: tuple[IdentifierKind, ...]
    """Identifiers this platform accepts for List Sync, in the order it sends them (R18)."""
    limits: DestinationLimits

    @abstractmethod
    def check_credentials(self) -> None:
        """Make one cheap authenticated call; raise ``AuthExpired`` if the login is no good."""

    @abstractmethod
    def ensure_audience(self, name: str) -> str:
        """Return the remote id of the audience called ``name``, creating it if needed."""

    @abstractmethod
    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Add members to the remote audience (idempotent: adding twice is harmless)."""

    @abstractmethod
    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Remove members from the remote audience (idempotent)."""

    @abstractmethod
    def delete_audience(self, remote_id: str) -> None:
        """Delete the remote audience entirely (R22 Delete, not Unlink)."""

    supports_event_sync: bool = False

    def send_events(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Send ``added_to_segment`` / ``removed_from_segment`` events (R17); returns how many
        were accepted. Platforms without Event Sync refuse.

        Each event is a mapping shaped as :class:`segmint.sync.events.SegmentEvent` describes:
        ``event`` (the event name), ``message_id`` (stable per refresh, audience, profile and
        direction: platforms and receivers de-duplicate on it), ``timestamp`` (ISO 8601 UTC),
        ``audience`` (``{"id", "name"}``), ``refresh_id``, ``profile_id``, ``user_id``,
        ``anonymous_id``, ``email``, ``phone``, ``traits`` (dict), ``cookies``
        (``{"fbp", "fbc", "ga"}``, values or ``None``) and ``click_ids`` (``{"gclid", ...}``)."""
        raise BadRequest(f"{self.name} does not support Event Sync; use List Sync")


def request(
    client: httpx.Client,
    retry: RetryPolicy,
    platform: str,
    method: str,
    url: str,
    *,
    handle: Callable[[httpx.Response], T],
    retried: bool = True,
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    **httpx_kwargs: Any,
) -> T:
    """One HTTP request to a platform, run through ``retry`` unless ``retried`` is false.

    A dropped connection becomes :class:`~segmint.sync.errors.Transient` ("connection to
    ``platform`` failed: …"); every response, successful or not, goes to ``handle``, the
    adapter's own code that returns the useful part or raises the classified error.
    ``headers`` may be a function, called afresh for each attempt (a signature that must not
    outlive a long backoff); ``httpx_kwargs`` (``params``, ``json``, ``data``, ``content``…)
    go to :meth:`httpx.Client.request` unchanged."""

    def attempt() -> T:
        fresh = headers() if callable(headers) else headers
        try:
            response = client.request(method, url, headers=fresh, **httpx_kwargs)
        except httpx.TransportError as error:
            raise Transient(_connection_failed(platform, error)) from error
        return handle(response)

    return retry.call(attempt) if retried else attempt()


def _connection_failed(platform: str, error: httpx.TransportError) -> str:
    """What went wrong on the way to the platform, in words (not the exception's repr)."""
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return f"connection to {platform} failed: no answer in time ({reason})"
    if isinstance(error, httpx.ConnectError):
        return (
            f"connection to {platform} failed: could not connect ({reason}); check this "
            "machine's network, proxy and DNS"
        )
    return f"connection to {platform} failed: {reason}"


def log_change(
    logger: logging.Logger,
    platform: str,
    verb: str,
    change: MembersChange,
    destination: str,
    remote_id: str,
    *,
    note: str | None = None,
) -> None:
    """Log what one add or remove call did, in the words every adapter uses:
    ``"meta add: 120 members in 1 requests, 3 values set aside"``; ``note`` goes in
    parentheses after the requests (``"(job customers/1/offlineUserDataJobs/2)"``)."""
    template = f"{platform} %s: %d members in %d requests"
    args: tuple[object, ...] = (verb, change.sent, change.requests)
    if note is not None:
        template += " (%s)"
        args += (note,)
    logger.info(
        template + ", %d values set aside",
        *args,
        len(change.set_aside),
        extra={"destination": destination, "audience_id": remote_id},
    )
