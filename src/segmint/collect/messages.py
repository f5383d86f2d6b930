"""The shapes that flow through collection: a validated message and what enrichment adds.

Plain dataclasses (validated already, so no pydantic cost on the hot path).
All datetimes are naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")


@dataclass(slots=True)
class Enrichment:
    """What collection derives from a message's context (UTM, click ids, cookies, user agent,
    locale, location). Field names equal the warehouse's ``events`` columns."""

    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    gclid: str | None = None
    fbclid: str | None = None
    ttclid: str | None = None
    li_fat_id: str | None = None
    msclkid: str | None = None
    wbraid: str | None = None
    gbraid: str | None = None
    fbp: str | None = None
    fbc: str | None = None
    ga: str | None = None
    page_url: str | None = None
    page_path: str | None = None
    referrer: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device_type: str | None = None
    locale: str | None = None
    language: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    timezone: str | None = None


ENRICHMENT_FIELDS: tuple[str, ...] = tuple(Enrichment.__dataclass_fields__)


@dataclass(slots=True)
class Message:
    """One Segment-spec message after validation.

    ``event`` is the track event name; for the other types it is the type itself
    (``page``, ``screen``, ``identify``, ``group``, ``alias``) so every row has one.
    ``timestamp`` is already corrected for client clock skew. What enrichment derived is in
    ``enrichment`` (per-message API, ``Enricher.enrich``; None until then) or, on the
    collector's batch path, in ``enriched`` as a tuple in ``ENRICHMENT_FIELDS`` order
    (``Enricher.enrich_rows``); read it with :func:`enrichment_values`, which takes
    ``enriched`` when set.
    """

    message_id: str
    type: str
    event: str
    timestamp: datetime
    received_at: datetime
    user_id: str | None = None
    anonymous_id: str | None = None
    name: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    integrations: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    enrichment: Enrichment | None = None
    profile_id: int | None = None
    enriched: tuple[str | None, ...] | None = None


def enrichment_values(message: Message) -> tuple[str | None, ...]:
    """The message's enrichment as a tuple in ``ENRICHMENT_FIELDS`` order."""
    if message.enriched is not None:
        return message.enriched
    enrichment = message.enrichment
    if enrichment is None:
        return _NOT_ENRICHED
    return tuple([getattr(enrichment, name) for name in ENRICHMENT_FIELDS])


_NOT_ENRICHED: tuple[str | None, ...] = (None,) * len(ENRICHMENT_FIELDS)


@dataclass(slots=True)
class Rejection:
    """A message that was not accepted: where it was (index in its batch or line in its file),
    which field was wrong and why."""

    index: int
    field: str
    reason: str
    raw: Any = None
