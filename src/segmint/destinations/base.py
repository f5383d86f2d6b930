"""The one small interface every destination platform module implements.

A destination module is an adapter over its platform's API and nothing else: normalization,
hashing, batching and retries come from :mod:`segmint.sync`; errors are classified into
:mod:`segmint.sync.errors` so links and logs treat every platform alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segmint.sync.errors import BadRequest
from segmint.sync.normalize import IdentifierKind, ListMember, SetAside


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
