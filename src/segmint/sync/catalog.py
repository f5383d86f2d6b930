"""Destinations, audience links and sync logs in the catalog (issue 5 points 2, 4, 6, 7, 9).

Service functions over :mod:`segmint.catalog.sync_models`; interfaces (API, CLI, pages) call
these and nothing below them. Credentials are encrypted with a :class:`SecretBox` on the way
in; every read returns a redacted view, and only :func:`destination_credentials` decrypts —
for the sync that is about to use them.

Times are naive UTC like the rest of the catalog; callers may pass ``now`` (tests do).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmint.catalog.db import Catalog
from segmint.catalog.models import Audience
from segmint.catalog.sync_models import AudienceLink, Destination, SyncLog
from segmint.destinations import registry
from segmint.errors import Conflict, InvalidInput, NotFound, SegmintError
from segmint.sync.errors import (
    AuthExpired,
    BadRequest,
    RateLimited,
    Transient,
    auth_expired_message,
)
from segmint.sync.members import check_source
from segmint.sync.secrets import REDACTED, SecretBox

# --- platforms -----------------------------------------------------------------------------

PLATFORM_LABELS: dict[str, str] = {
    "meta": "Meta Ads",
    "google_ads": "Google Ads",
    "linkedin": "LinkedIn Ads",
    "tiktok": "TikTok",
    "dv360": "Google DV360",
    "klaviyo": "Klaviyo",
    "ga4": "GA4",
    "webhook": "Webhook",
    "file": "File export",
}
PLATFORMS: tuple[str, ...] = tuple(PLATFORM_LABELS)

# Where each platform identifier comes from on a profile (docs/warehouse.md `profiles`).
IDENTIFIER_SOURCES: dict[str, str] = {
    "email": "email",
    "phone": "phone",
    "first_name": "traits.first_name",
    "last_name": "traits.last_name",
    "crm_id": "user_id",
    "device_id": "device_id",
    "user_id": "user_id",
    "client_id": "ga",
    "anonymous_id": "anonymous_id",
}
_ALL_IDENTIFIERS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "crm_id",
    "device_id",
    "user_id",
    "anonymous_id",
)

# R18: the identifiers each platform accepts, in its order of preference.
PLATFORM_IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "meta": ("email", "phone", "first_name", "last_name"),
    "google_ads": ("email", "phone", "crm_id"),
    "linkedin": ("email", "first_name", "last_name"),
    "tiktok": ("email", "phone"),
    "dv360": ("email", "phone", "device_id"),
    "klaviyo": ("email", "phone"),
    "ga4": ("client_id", "user_id"),
    "webhook": _ALL_IDENTIFIERS,
    "file": _ALL_IDENTIFIERS,
}

# The sync modes each platform takes; the first is the default (R16, R17).
PLATFORM_MODES: dict[str, tuple[str, ...]] = {
    **{name: ("list",) for name in ("meta", "google_ads", "linkedin", "tiktok", "dv360")},
    "klaviyo": ("list",),
    "ga4": ("event",),
    "webhook": ("event", "list"),
    "file": ("list", "event"),
}

# R20: the shortest time a platform allows between two Instant Syncs.
INSTANT_SYNC_INTERVALS: dict[str, timedelta] = {"tiktok": timedelta(minutes=30)}

DESTINATION_STATUSES = ("active", "auth_expired", "error", "disabled")
LINK_STATUSES = ("active", "unlinked", "deleted")
SYNC_STATUSES = ("running", "succeeded", "failed", "refused", "pending")


def utc_now() -> datetime:
    """The current instant as naive UTC, the catalog's convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def check_settings(
    platform: str,
    name: str,
    credentials: Mapping[str, Any],
    config: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings of destination ``name`` checked where Segmint runs, before anything is
    saved and without calling the platform (``check`` tries the login): every key one the
    platform takes, in credentials or config as it belongs, of the right type and none
    missing; the adapter built from them, so its own rules apply (a webhook URL, a DV360
    duration, a file format); and the checks that need no network (the file export writes a
    probe file in its directory). Returns them typed (``"500"`` for a whole number becomes
    500). Raises :class:`InvalidInput` naming the setting (``config.format``) and what to put
    there."""
    check_platform(platform)
    label = PLATFORM_LABELS[platform]
    credentials, config = registry.check_settings(platform, credentials, config, label=label)
    adapter = registry.create(platform, **config, **credentials, destination_name=name)
    try:
        check_locally = getattr(adapter, "check_locally", None)
        if callable(check_locally):
            check_locally()
    finally:
        close = getattr(adapter, "close", None)
        if callable(close):
            close()
    return credentials, config


def check_platform(platform: str) -> None:
    """Raise :class:`InvalidInput` unless ``platform`` is one Segmint syncs to."""
    if platform not in PLATFORM_LABELS:
        raise InvalidInput(
            f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}",
            path="platform",
        )


def default_identifier_mapping(platform: str) -> dict[str, str]:
    """R18's default mapping for ``platform``: platform identifier → profile field."""
    check_platform(platform)
    return {name: IDENTIFIER_SOURCES[name] for name in PLATFORM_IDENTIFIERS[platform]}


def _check_mapping(platform: str, mapping: Mapping[str, str]) -> dict[str, str]:
    accepted = PLATFORM_IDENTIFIERS[platform]
    for name, source in mapping.items():
        if name not in accepted:
            raise InvalidInput(
                f"{PLATFORM_LABELS[platform]} does not accept the identifier {name!r}; it "
                f"accepts {', '.join(accepted)}",
                path=f"identifier_mapping.{name}",
            )
        if not isinstance(source, str) or not source.strip():
            raise InvalidInput(
                f"map {name!r} to a profile field, e.g. {IDENTIFIER_SOURCES[name]!r}",
                path=f"identifier_mapping.{name}",
            )
        check_source(source, path=f"identifier_mapping.{name}")
    if not mapping:
        raise InvalidInput(
            f"map at least one identifier, e.g. {json.dumps(default_identifier_mapping(platform))}",
            path="identifier_mapping",
        )
    return dict(mapping)


# --- destinations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DestinationInfo:
    """A destination as anyone may see it: its credentials are never included."""

    id: int
    name: str
    platform: str
    status: str
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_error: str | None
    credentials: str = REDACTED

    @property
    def label(self) -> str:
        """The platform's display name (``TikTok``)."""
        return PLATFORM_LABELS.get(self.platform, self.platform)


def _destination_info(row: Destination) -> DestinationInfo:
    return DestinationInfo(
        row.id,
        row.name,
        row.platform,
        row.status,
        json.loads(row.config),
        row.created_at,
        row.updated_at,
        row.last_error,
    )


_MAX_ID = 2**63 - 1
"""Ids beyond a BIGINT cannot exist; looking them up would overflow the database driver."""


def _find_destination(session: Session, ref: str | int, *, lock: bool = False) -> Destination:
    if isinstance(ref, int) and not 0 < ref <= _MAX_ID:
        raise NotFound(f"no destination {ref!r}; see the list under Destinations")
    column = Destination.id if isinstance(ref, int) else Destination.name
    query = select(Destination).where(column == ref)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFound(f"no destination {ref!r}; see the list under Destinations")
    return row


def create_destination(
    catalog: Catalog,
    box: SecretBox,
    name: str,
    platform: str,
    credentials: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> DestinationInfo:
    """Create the destination ``name`` on ``platform`` with its credentials encrypted; it
    starts ``active``. The settings are checked first (:func:`check_settings`: InvalidInput
    names a wrong one) and saved typed. Raises :class:`Conflict` when the name is taken."""
    name = _destination_name(name)
    credentials, config = check_settings(platform, name, credentials, config or {})
    now = now or utc_now()
    row = Destination(
        name=name,
        platform=platform,
        status="active",
        credentials=box.encrypt(credentials),
        config=json.dumps(config, sort_keys=True),
        created_at=now,
        updated_at=now,
    )
    try:
        with catalog.session() as session:
            session.add(row)
    except IntegrityError:
        raise Conflict(f"a destination named {name!r} exists; choose another name") from None
    return _destination_info(row)


def _destination_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a destination needs a name of 1 to 100 characters", path="name")
    if is_destination_id(name):
        raise InvalidInput(
            f"a destination name cannot be only digits: {name!r} would read as the id of a "
            f"destination; add a word, e.g. 'Export {name}'",
            path="name",
        )
    return name


def is_destination_id(ref: str) -> bool:
    """Whether ``ref`` as typed (in a URL, on the command line) means a destination's id:
    ASCII digits only. Names never look like that (:func:`create_destination` refuses them),
    so every reference means one destination, as with audiences."""
    return ref.isascii() and ref.isdigit()


def destination_ref(ref: str | int) -> str | int:
    """A destination reference as typed: its id (digits) or its name."""
    if isinstance(ref, int):
        return ref
    return int(ref) if is_destination_id(ref) else ref


def rename_destination(
    catalog: Catalog, ref: str | int, name: str, *, now: datetime | None = None
) -> DestinationInfo:
    """Give the destination a new name (links, logs and credentials follow: they refer to
    its id). Raises :class:`Conflict` when another destination has the name."""
    name = _destination_name(name)
    try:
        with catalog.session() as session:
            row = _find_destination(session, ref, lock=True)
            if row.name != name:
                row.name = name
                row.updated_at = now or utc_now()
                session.flush()
            info = _destination_info(row)
    except IntegrityError:
        raise Conflict(f"a destination named {name!r} exists; choose another name") from None
    return info


def get_destination(catalog: Catalog, ref: str | int) -> DestinationInfo:
    """The destination by name or id (redacted)."""
    with catalog.session() as session:
        return _destination_info(_find_destination(session, ref))


def list_destinations(catalog: Catalog) -> list[DestinationInfo]:
    """Every destination by name (redacted)."""
    with catalog.session() as session:
        rows = session.scalars(select(Destination).order_by(Destination.name)).all()
        return [_destination_info(row) for row in rows]


def destination_credentials(catalog: Catalog, box: SecretBox, ref: str | int) -> dict[str, Any]:
    """The destination's credentials decrypted, for the sync about to use them. Never log or
    return them to a user."""
    with catalog.session() as session:
        token = _find_destination(session, ref).credentials
    return box.decrypt(token)


def configure_destination(
    catalog: Catalog,
    ref: str | int,
    config: Mapping[str, Any],
    *,
    box: SecretBox | None = None,
    now: datetime | None = None,
) -> DestinationInfo:
    """Merge ``config`` into the destination's settings; a key set to ``None`` is removed.
    The result is checked before it is saved, as on creation: with ``box`` to decrypt the
    stored credentials, fully (:func:`check_settings`, the file export's directory
    included); without it, the config's names, types and required keys only."""
    with catalog.session() as session:
        row = _find_destination(session, ref, lock=True)
        merged = json.loads(row.config)
        for key, value in config.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if box is None:
            label = PLATFORM_LABELS.get(row.platform, row.platform)
            _, merged = registry.check_settings(row.platform, None, merged, label=label)
        else:
            stored = box.decrypt(row.credentials)
            _, merged = check_settings(row.platform, row.name, stored, merged)
        row.config = json.dumps(merged, sort_keys=True)
        row.updated_at = now or utc_now()
        return _destination_info(row)


def _set_status(
    catalog: Catalog, ref: str | int, status: str, last_error: str | None, now: datetime | None
) -> DestinationInfo:
    with catalog.session() as session:
        row = _find_destination(session, ref, lock=True)
        row.status = status
        row.last_error = last_error
        row.updated_at = now or utc_now()
        return _destination_info(row)


def reauthenticate_destination(
    catalog: Catalog,
    box: SecretBox,
    ref: str | int,
    credentials: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> DestinationInfo:
    """Replace the credentials and make the destination ``active`` again (R21: the changes
    pending on its links go out with the next sync, since their cursors did not move). They
    are checked with the stored config first (:func:`check_settings`)."""
    with catalog.session() as session:
        row = _find_destination(session, ref, lock=True)
        credentials, _ = check_settings(row.platform, row.name, credentials, json.loads(row.config))
        row.credentials = box.encrypt(credentials)
        row.status = "active"
        row.last_error = None
        row.updated_at = now or utc_now()
        return _destination_info(row)


def mark_auth_expired(
    catalog: Catalog, ref: str | int, *, now: datetime | None = None
) -> DestinationInfo:
    """Record that the destination's login expired; ``last_error`` carries R21's message."""
    name = get_destination(catalog, ref).name
    return _set_status(catalog, ref, "auth_expired", auth_expired_message(name), now)


def mark_destination_error(
    catalog: Catalog, ref: str | int, message: str, *, now: datetime | None = None
) -> DestinationInfo:
    """Record that the destination is failing for a reason other than its login."""
    return _set_status(catalog, ref, "error", message, now)


def disable_destination(
    catalog: Catalog, ref: str | int, *, now: datetime | None = None
) -> DestinationInfo:
    """Stop every sync to the destination until it is enabled again."""
    return _set_status(catalog, ref, "disabled", None, now)


def enable_destination(
    catalog: Catalog, ref: str | int, *, now: datetime | None = None
) -> DestinationInfo:
    """Make a disabled (or failing) destination ``active`` again."""
    return _set_status(catalog, ref, "active", None, now)


# --- links ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """An audience linked to a destination (R16–R18, R22)."""

    id: int
    audience_id: int
    destination_id: int
    destination_name: str
    platform: str
    mode: str
    identifier_mapping: dict[str, str]
    remote_audience_id: str | None
    status: str
    cursor: str | None
    last_synced_at: datetime | None
    last_instant_sync_at: datetime | None
    created_at: datetime
    ended_at: datetime | None
    in_flight: str | None = None


def _link_info(row: AudienceLink, destination: Destination) -> LinkInfo:
    return LinkInfo(
        row.id,
        row.audience_id,
        row.destination_id,
        destination.name,
        destination.platform,
        row.mode,
        json.loads(row.identifier_mapping),
        row.remote_audience_id,
        row.status,
        row.cursor,
        row.last_synced_at,
        row.last_instant_sync_at,
        row.created_at,
        row.ended_at,
        row.in_flight,
    )


def _find_link(session: Session, link_id: int, *, lock: bool = False) -> AudienceLink:
    if not 0 < link_id <= _MAX_ID:
        raise NotFound(f"no audience link {link_id}")
    query = select(AudienceLink).where(AudienceLink.id == link_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFound(f"no audience link {link_id}")
    return row


def _resolve_mode(platform: str, mode: str | None) -> str:
    allowed = PLATFORM_MODES[platform]
    if mode is None:
        return allowed[0]
    if mode not in allowed:
        raise InvalidInput(
            f"{PLATFORM_LABELS[platform]} takes {' or '.join(allowed)} sync, not {mode!r}",
            path="mode",
        )
    return mode


def link_audience(
    catalog: Catalog,
    audience_id: int,
    destination: str | int,
    *,
    mode: str | None = None,
    identifier_mapping: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> LinkInfo:
    """Link the audience to the destination with ``mode`` (the platform's default when
    omitted) and ``identifier_mapping`` (R18's defaults when omitted). A new link has no
    cursor: its first sync sends the full membership. Raises :class:`Conflict` when an active
    link between the two exists."""
    with catalog.session() as session:
        audience = session.get(Audience, audience_id)
        if audience is None or audience.status == "deleted":
            raise NotFound(f"no audience {audience_id}")
        dest = _find_destination(session, destination)
        chosen = _resolve_mode(dest.platform, mode)
        mapping = _check_mapping(
            dest.platform,
            default_identifier_mapping(dest.platform)
            if identifier_mapping is None
            else identifier_mapping,
        )
        existing = session.scalars(
            select(AudienceLink.id).where(
                AudienceLink.audience_id == audience_id,
                AudienceLink.destination_id == dest.id,
                AudienceLink.status == "active",
            )
        ).first()
        if existing is not None:
            raise Conflict(
                f"audience {audience_id} is already linked to {dest.name} (link {existing}); "
                "change that link or unlink it first"
            )
        row = AudienceLink(
            audience_id=audience_id,
            destination_id=dest.id,
            mode=chosen,
            identifier_mapping=json.dumps(mapping, sort_keys=True),
            status="active",
            created_at=now or utc_now(),
        )
        session.add(row)
        session.flush()
        return _link_info(row, dest)


def get_link(catalog: Catalog, link_id: int) -> LinkInfo:
    """The link ``link_id``."""
    with catalog.session() as session:
        row = _find_link(session, link_id)
        return _link_info(row, _find_destination(session, row.destination_id))


def list_links(
    catalog: Catalog,
    *,
    audience_id: int | None = None,
    destination: str | int | None = None,
    include_ended: bool = False,
) -> list[LinkInfo]:
    """Links, oldest first, of one audience and/or one destination; only active ones unless
    ``include_ended``."""
    query = select(AudienceLink, Destination).join(
        Destination, Destination.id == AudienceLink.destination_id
    )
    if audience_id is not None:
        query = query.where(AudienceLink.audience_id == audience_id)
    if isinstance(destination, int):
        query = query.where(Destination.id == destination)
    elif destination is not None:
        query = query.where(Destination.name == destination)
    if not include_ended:
        query = query.where(AudienceLink.status == "active")
    with catalog.session() as session:
        rows = session.execute(query.order_by(AudienceLink.id)).all()
        return [_link_info(link, dest) for link, dest in rows]


def update_link(
    catalog: Catalog,
    link_id: int,
    *,
    identifier_mapping: Mapping[str, str] | None = None,
    remote_audience_id: str | None = None,
) -> LinkInfo:
    """Change an active link's identifier mapping, or record the remote audience id the
    platform gave it."""
    with catalog.session() as session:
        row = _find_link(session, link_id, lock=True)
        dest = _find_destination(session, row.destination_id)
        _require_active(row)
        if identifier_mapping is not None:
            mapping = _check_mapping(dest.platform, identifier_mapping)
            row.identifier_mapping = json.dumps(mapping, sort_keys=True)
        if remote_audience_id is not None:
            row.remote_audience_id = remote_audience_id
        return _link_info(row, dest)


def _require_active(row: AudienceLink) -> None:
    if row.status != "active":
        raise Conflict(f"link {row.id} is {row.status}; link the audience again to sync it")


def _end_link(catalog: Catalog, link_id: int, status: str, now: datetime | None) -> LinkInfo:
    with catalog.session() as session:
        row = _find_link(session, link_id, lock=True)
        _require_active(row)
        row.status = status
        row.ended_at = now or utc_now()
        return _link_info(row, _find_destination(session, row.destination_id))


def unlink_audience(catalog: Catalog, link_id: int, *, now: datetime | None = None) -> LinkInfo:
    """R22 Unlink: stop syncing; the remote audience and what it holds stay on the platform
    (its id stays on the link for reference)."""
    return _end_link(catalog, link_id, "unlinked", now)


def record_link_deleted(catalog: Catalog, link_id: int, *, now: datetime | None = None) -> LinkInfo:
    """R22 Delete: record that the caller deleted the remote audience on the platform and
    syncing stopped. Call it after the platform confirmed the deletion."""
    return _end_link(catalog, link_id, "deleted", now)


# --- Instant Sync (R20) ----------------------------------------------------------------------


class InstantSyncTooSoon(SegmintError):
    """The platform allows Instant Syncs only so often; the message says when to retry."""

    status_code = 429
    code = "instant_sync_too_soon"

    def __init__(self, message: str, *, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _minutes(delta: timedelta) -> str:
    minutes = max(1, math.ceil(delta.total_seconds() / 60))
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"


def instant_sync_wait(
    platform: str, last_instant_sync_at: datetime | None, now: datetime
) -> timedelta | None:
    """How long until ``platform`` accepts another Instant Sync, or ``None`` when it does
    now. Pure: the clock is passed in."""
    interval = INSTANT_SYNC_INTERVALS.get(platform)
    if interval is None or last_instant_sync_at is None:
        return None
    left = last_instant_sync_at + interval - now
    return left if left > timedelta(0) else None


def check_instant_sync(platform: str, last_instant_sync_at: datetime | None, now: datetime) -> None:
    """Refuse an Instant Sync that comes too early (R20) with the time left, e.g. "TikTok
    allows one Instant Sync every 30 minutes; try again in 12 minutes"."""
    wait = instant_sync_wait(platform, last_instant_sync_at, now)
    if wait is None:
        return
    interval = INSTANT_SYNC_INTERVALS[platform]
    raise InstantSyncTooSoon(
        f"{PLATFORM_LABELS[platform]} allows one Instant Sync every {_minutes(interval)}; "
        f"try again in {_minutes(wait)}",
        retry_after=wait,
    )


def claim_instant_sync(catalog: Catalog, link_id: int, *, now: datetime | None = None) -> LinkInfo:
    """Check R20's interval for the link and, when allowed, record ``now`` as its last Instant
    Sync, in one locked transaction so two simultaneous clicks cannot both pass."""
    now = now or utc_now()
    with catalog.session() as session:
        row = _find_link(session, link_id, lock=True)
        _require_active(row)
        dest = _find_destination(session, row.destination_id)
        check_instant_sync(dest.platform, row.last_instant_sync_at, now)
        row.last_instant_sync_at = now
        return _link_info(row, dest)


# --- sync logs (R23) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncLogEntry:
    """One sync attempt as the Logs tab shows it."""

    id: int
    link_id: int
    audience_id: int
    destination_id: int
    destination_name: str
    started_at: datetime
    finished_at: datetime | None
    mode: str
    trigger: str
    added: int
    removed: int
    skipped: int
    skipped_reasons: dict[str, int]
    status: str
    error_class: str | None
    error_message: str | None
    remedy: str | None
    refresh_id: str | None = None


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What a finished sync attempt did, for :func:`finish_sync_log`."""

    status: str
    added: int = 0
    removed: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    error_class: str | None = None
    error_message: str | None = None
    remedy: str | None = None
    refresh_id: str | None = None

    @property
    def skipped(self) -> int:
        """Members left out, all reasons together."""
        return sum(self.skipped_reasons.values())


def remedy_for(error: BaseException, destination_name: str) -> str:
    """What the user should do about ``error`` (R23's "remedy" column)."""
    if isinstance(error, AuthExpired):
        return (
            f"re-authenticate in Destinations → {destination_name} → Configuration Settings; "
            "pending changes are kept and go out with the next sync"
        )
    if isinstance(error, RateLimited | Transient):
        return "nothing: the platform was busy or unreachable, and the next sync retries"
    if isinstance(error, InstantSyncTooSoon):
        return "wait, or let the automatic sync after the next refresh deliver the changes"
    if isinstance(error, BadRequest | InvalidInput):
        return (
            f"check the settings of Destinations → {destination_name} and the link's "
            "identifier mapping; the changes stay pending until a sync succeeds"
        )
    return "retry the sync; if it keeps failing, check the server log for this error"


def failure_outcome(error: BaseException, destination_name: str) -> SyncOutcome:
    """The outcome of an attempt that ``error`` ended (``refused`` for R20 refusals)."""
    message = error.message if isinstance(error, SegmintError) else str(error)
    return SyncOutcome(
        status="refused" if isinstance(error, InstantSyncTooSoon) else "failed",
        error_class=type(error).__name__,
        error_message=message,
        remedy=remedy_for(error, destination_name),
    )


def start_sync_log(
    catalog: Catalog, link_id: int, trigger: str, *, now: datetime | None = None
) -> int:
    """Open a log entry (``running``) for a sync of the link started by ``trigger``
    (``refresh``, ``instant``, ``schedule`` ...); return its id."""
    with catalog.session() as session:
        link = _find_link(session, link_id)
        row = SyncLog(
            link_id=link.id,
            audience_id=link.audience_id,
            destination_id=link.destination_id,
            started_at=now or utc_now(),
            mode=link.mode,
            trigger=trigger,
            status="running",
            skipped_reasons="{}",
        )
        session.add(row)
        session.flush()
        return row.id


def finish_sync_log(
    catalog: Catalog, log_id: int, outcome: SyncOutcome, *, now: datetime | None = None
) -> SyncLogEntry:
    """Close the log entry with what the attempt did."""
    if outcome.status not in SYNC_STATUSES[1:]:
        raise InvalidInput(
            f"a finished sync is succeeded, failed, refused or pending, not {outcome.status}"
        )
    with catalog.session() as session:
        row = session.get(SyncLog, log_id)
        if row is None:
            raise NotFound(f"no sync log {log_id}")
        row.finished_at = now or utc_now()
        row.status = outcome.status
        row.added, row.removed, row.skipped = outcome.added, outcome.removed, outcome.skipped
        row.skipped_reasons = json.dumps(outcome.skipped_reasons, sort_keys=True)
        row.error_class = outcome.error_class
        row.error_message = outcome.error_message
        row.remedy = outcome.remedy
        row.refresh_id = outcome.refresh_id
        return _log_entry(row, _find_destination(session, row.destination_id).name)


def _log_entry(row: SyncLog, destination_name: str) -> SyncLogEntry:
    return SyncLogEntry(
        row.id,
        row.link_id,
        row.audience_id,
        row.destination_id,
        destination_name,
        row.started_at,
        row.finished_at,
        row.mode,
        row.trigger,
        row.added,
        row.removed,
        row.skipped,
        json.loads(row.skipped_reasons),
        row.status,
        row.error_class,
        row.error_message,
        row.remedy,
        row.refresh_id,
    )


def list_sync_logs(
    catalog: Catalog,
    audience_id: int,
    *,
    destination: str | int | None = None,
    limit: int = 100,
) -> list[SyncLogEntry]:
    """The audience's sync attempts, newest first (R23's Logs tab)."""
    query = (
        select(SyncLog, Destination.name)
        .join(Destination, Destination.id == SyncLog.destination_id)
        .where(SyncLog.audience_id == audience_id)
    )
    if isinstance(destination, int):
        query = query.where(Destination.id == destination)
    elif destination is not None:
        query = query.where(Destination.name == destination)
    query = query.order_by(SyncLog.started_at.desc(), SyncLog.id.desc()).limit(limit)
    with catalog.session() as session:
        return [_log_entry(row, name) for row, name in session.execute(query).all()]
