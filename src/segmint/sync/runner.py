"""Delivering an audience's membership changes to its destinations (issue 5 points 5–7).

One sync of one link: read the changes pending since the link's cursor from the outbox,
send them with the platform's adapter, and move the cursor only once the platform accepted
all of them, recording the attempt in the sync log (R23). Every failure leaves the cursor
where it was, so the next sync sends the same changes again (platform add/remove are
idempotent): at-least-once, nothing lost.

Rules applied before anything is sent: the link must be active, its audience active and its
destination neither disabled nor waiting for re-authentication (R21: the changes stay pending
and go out after it); an Instant Sync respects the platform's interval (R20); a List Sync
waits while fewer members than the platform's minimum would be sent (R19, logged as
``pending: N of M needed``). An expired login met mid-sync marks the destination
``auth_expired`` with R21's message and stops the link; what was not accepted stays pending.

Syncs run automatically after each refresh (in the server through
:class:`segmint.sync.worker.SyncWorker`; in the CLI's refresh commands in line through
:func:`sync_after_refresh`) and on demand (:func:`sync_link` with ``trigger="instant"``).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from segmint.catalog.db import Catalog
from segmint.catalog.models import Audience
from segmint.destinations import registry
from segmint.destinations.base import Destination, MembersChange
from segmint.errors import Conflict, InvalidInput, SegmintError
from segmint.sync import catalog as sync_catalog
from segmint.sync.catalog import (
    InstantSyncTooSoon,
    LinkInfo,
    SyncLogEntry,
    SyncOutcome,
    failure_outcome,
    utc_now,
)
from segmint.sync.errors import AuthExpired, BadRequest, DestinationError
from segmint.sync.ledger import adopt, forget, record_sent, sent_members, sent_profile_ids
from segmint.sync.members import (
    MembershipEvents,
    count_identified,
    has_identifier,
    list_members,
    membership_events,
    merged_survivors,
)
from segmint.sync.normalize import ListMember
from segmint.sync.outbox import OutboxDelta, advance_cursor, link_changes, mark_in_flight
from segmint.sync.ratelimit import limiter_for
from segmint.sync.retry import RetryPolicy
from segmint.sync.secrets import SecretBox
from segmint.warehouse.engine import Engine

log = logging.getLogger(__name__)

CHECK_RETRY = RetryPolicy(attempts=3, initial=0.5, maximum=2.0)
"""How hard a credentials check tries: someone is waiting for it, so three attempts within
about two seconds (a sync's policy backs off for a minute against a host it cannot reach)."""
TRIGGERS = ("refresh", "instant", "manual", "schedule", "retry")
SEND_CHUNK = 100_000
"""Members handed to an adapter per call (it splits them to the platform's own limits)."""


@dataclass
class SyncContext:
    """What a sync needs: both stores, the credentials box, and (tests) a retry policy."""

    warehouse: Engine
    catalog: Catalog
    secrets: SecretBox
    retry: RetryPolicy | None = None

    @classmethod
    def of(cls, runtime: Any, **kwargs: Any) -> SyncContext:
        """The context of a :class:`segmint.runtime.Runtime`."""
        return cls(runtime.warehouse, runtime.catalog, runtime.secrets, **kwargs)


class SyncRefused(SegmintError):
    """A sync that may not run now; the message says why and what to do."""

    status_code = 409
    code = "sync_refused"


def new_adapter(
    platform: str,
    name: str,
    credentials: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
) -> Destination:
    """A platform adapter built from credentials and settings (``config``) as keyword
    arguments; ``retry`` and ``timeout`` go to adapters that take them. Settings that do not
    fit the platform (a missing key, a wrong type) raise :class:`InvalidInput` saying so."""
    factory = registry.get_factory(platform)
    kwargs: dict[str, Any] = {**config, **credentials, "destination_name": name}
    if retry is not None and _accepts(factory, "retry"):
        kwargs["retry"] = retry
    if timeout is not None and _accepts(factory, "timeout"):
        kwargs["timeout"] = timeout
    try:
        return registry.create(platform, **kwargs)
    except InvalidInput as exc:  # saved before settings were checked on save
        raise InvalidInput(
            f"the settings of destination {name} do not fit: {exc.message}; fix them in "
            f"Destinations → {name} → Configuration Settings (or `segmint destinations "
            "reauth`)",
            path=exc.path,
        ) from None


def try_credentials(
    platform: str,
    name: str,
    credentials: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
) -> None:
    """Build the adapter from unsaved credentials and make its one cheap authenticated call,
    so a destination is saved only once they work. Raises what the platform said
    (:class:`AuthExpired`, :class:`BadRequest` ...) or :class:`InvalidInput`."""
    credentials, config = sync_catalog.check_settings(platform, name, credentials, config)
    adapter = new_adapter(
        platform, name, credentials, config, retry=retry or CHECK_RETRY, timeout=timeout
    )
    try:
        adapter.check_credentials()
    finally:
        _close(adapter)


def build_adapter(ctx: SyncContext, destination: str | int) -> Destination:
    """The platform adapter for a saved destination, with its credentials decrypted, paced to
    the platform's rate limit."""
    info = sync_catalog.get_destination(ctx.catalog, destination)
    credentials = sync_catalog.destination_credentials(ctx.catalog, ctx.secrets, info.id)
    adapter = new_adapter(info.platform, info.name, credentials, info.config, retry=ctx.retry)
    _pace(adapter, info.id, explicit_retry=ctx.retry is not None)
    return adapter


def _close(adapter: Destination) -> None:
    close = getattr(adapter, "close", None)
    if callable(close):
        close()


def _accepts(factory: Any, parameter: str) -> bool:
    """Whether ``factory`` takes the keyword ``parameter`` (adapters without network calls,
    such as the file export, have no retry policy)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    return parameter in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _pace(adapter: Destination, destination_id: int, *, explicit_retry: bool) -> None:
    """Give the adapter's retry policy the destination's shared rate limiter, when the
    platform publishes a limit (tests passing their own policy run unpaced)."""
    rate = adapter.limits.requests_per_second
    retry = getattr(adapter, "retry", None)
    if rate is None or explicit_retry or not isinstance(retry, RetryPolicy):
        return
    limiter = limiter_for(destination_id, rate, adapter.limits.burst)
    adapter.retry = dataclasses.replace(retry, limiter=limiter)  # type: ignore[attr-defined]


@contextmanager
def _adapter(ctx: SyncContext, destination: str | int) -> Iterator[Destination]:
    adapter = build_adapter(ctx, destination)
    try:
        yield adapter
    finally:
        _close(adapter)


def _refusal(ctx: SyncContext, link: LinkInfo) -> str | None:
    """Why the link may not sync now, or ``None``."""
    if link.status != "active":
        return f"the link is {link.status}; link the audience again to sync it"
    destination = sync_catalog.get_destination(ctx.catalog, link.destination_id)
    if destination.status == "auth_expired":
        return destination.last_error or sync_catalog.auth_expired_message(destination.name)
    if destination.status == "disabled":
        return (
            f"destination {destination.name} is disabled; enable it in Destinations → "
            f"{destination.name} to sync"
        )
    with ctx.catalog.session() as session:
        audience = session.get(Audience, link.audience_id)
        status = audience.status if audience is not None else "deleted"
    if status != "active":
        return f"the audience is {status}; restore and activate it to sync (R13)"
    return None


def _audience_name(ctx: SyncContext, audience_id: int) -> str:
    with ctx.catalog.session() as session:
        audience = session.get(Audience, audience_id)
        return (audience.name if audience is not None else None) or f"audience_{audience_id}"


def _own_remote_audience(ctx: SyncContext, adapter: Destination, link: LinkInfo, name: str) -> str:
    """The remote audience this link's audience syncs into, found or created by name. Audience
    names are unique only among audiences not deleted, so the remote audience called ``name``
    may belong to another Segmint audience (a deleted one whose link kept it): then this one
    gets its own, ``name (#id)``, rather than mixing members with it and sharing its Delete."""
    remote_id = adapter.ensure_audience(name)
    if not _held_by_another_audience(ctx, link, remote_id):
        return remote_id
    own_name = f"{name} (#{link.audience_id})"
    log.info(
        "the remote audience %r on %s belongs to another audience; syncing into %r",
        name,
        link.destination_name,
        own_name,
    )
    remote_id = adapter.ensure_audience(own_name)
    if _held_by_another_audience(ctx, link, remote_id):
        raise BadRequest(
            f"the remote audiences {name!r} and {own_name!r} on {link.destination_name} are "
            "both synced from other audiences; rename this audience and sync again"
        )
    return remote_id


def _event_audience_name(ctx: SyncContext, adapter: Destination, link: LinkInfo, name: str) -> str:
    """The audience name an Event Sync link's events carry: the audience's name, or
    ``NAME (#ID)`` while another audience's link (a deleted audience of the same name) holds
    that name on the destination. Receivers key audiences by this name (the file export makes
    it the folder), so two audiences never share one there either."""
    if _held_by_another_audience(ctx, link, adapter.ensure_audience(name)):
        return f"{name} (#{link.audience_id})"
    return name


def _held_by_another_audience(ctx: SyncContext, link: LinkInfo, remote_id: str) -> bool:
    """True when a link of another audience to the same destination (active, or unlinked
    with its remote audience kept) syncs into ``remote_id``."""
    return any(
        other.remote_audience_id == remote_id
        and other.audience_id != link.audience_id
        and other.status != "deleted"
        for other in sync_catalog.list_links(
            ctx.catalog, destination=link.destination_id, include_ended=True
        )
    )


def current_members(ctx: SyncContext, audience_id: int) -> list[int]:
    """Profile ids of the audience's members now, ascending."""
    return [
        int(row[0])
        for row in ctx.warehouse.rows(
            "SELECT profile_id FROM audience_members WHERE audience_id = ? ORDER BY 1",
            [audience_id],
        )
    ]


def sendable_count(ctx: SyncContext, link: LinkInfo) -> int:
    """Current members with at least one identifier the link maps (what R19 counts)."""
    return count_identified(ctx.warehouse, link.audience_id, link.identifier_mapping)


def sync_link(
    ctx: SyncContext,
    link_id: int,
    *,
    trigger: str = "manual",
    now: datetime | None = None,
) -> SyncLogEntry:
    """Sync one link now and return its log entry. ``trigger="instant"`` is the user's
    Instant Sync: it is refused (raising :class:`InstantSyncTooSoon`, and logged) when the
    platform's interval has not passed (R20). Other refusals (link, audience or destination
    not in a state to sync) are logged as ``refused`` and returned; platform failures are
    logged as ``failed`` and returned, never raised."""
    if trigger not in TRIGGERS:
        raise InvalidInput(f"unknown sync trigger {trigger!r}; use one of {', '.join(TRIGGERS)}")
    now = now or utc_now()
    link = sync_catalog.get_link(ctx.catalog, link_id)
    refusal = _refusal(ctx, link)
    if refusal is not None:
        return _refused(ctx, link, trigger, refusal, now)
    if trigger == "instant":
        try:
            link = sync_catalog.claim_instant_sync(ctx.catalog, link_id, now=now)
        except InstantSyncTooSoon as exc:
            log_id = sync_catalog.start_sync_log(ctx.catalog, link_id, trigger, now=now)
            sync_catalog.finish_sync_log(
                ctx.catalog, log_id, failure_outcome(exc, link.destination_name), now=now
            )
            raise
    log_id = sync_catalog.start_sync_log(ctx.catalog, link_id, trigger, now=now)
    try:
        outcome = _deliver(ctx, link, now, check_login=trigger in ("instant", "manual"))
    except AuthExpired as exc:
        sync_catalog.mark_auth_expired(ctx.catalog, link.destination_id, now=now)
        outcome = failure_outcome(exc, link.destination_name)
        outcome = SyncOutcome(
            "failed",
            error_class=outcome.error_class,
            error_message=sync_catalog.auth_expired_message(link.destination_name),
            remedy=outcome.remedy,
        )
    except (DestinationError, SegmintError, httpx.HTTPError) as exc:
        log.warning("sync of link %s failed: %s", link_id, exc)
        outcome = failure_outcome(exc, link.destination_name)
        if isinstance(exc, BadRequest):
            sync_catalog.mark_destination_error(
                ctx.catalog, link.destination_id, exc.message, now=now
            )
        if isinstance(exc, httpx.HTTPError):  # retries ran out on a network error
            outcome = SyncOutcome(
                "failed",
                error_class="Unreachable",
                error_message=f"{link.destination_name} could not be reached: {exc}",
                remedy="nothing: the changes stay pending and the next sync retries",
            )
    except Exception as exc:  # an unexpected bug: logged with its traceback, cursor kept
        log.exception("sync of link %s failed unexpectedly", link_id)
        outcome = failure_outcome(exc, link.destination_name)
    return sync_catalog.finish_sync_log(ctx.catalog, log_id, outcome, now=utc_now())


def sync_link_within(
    ctx: SyncContext, link_id: int, *, wait: float, trigger: str = "instant"
) -> SyncLogEntry | None:
    """:func:`sync_link` on a thread of its own, waiting at most ``wait`` seconds for it:
    its log entry (or its exception) when it finished by then, else None — the sync goes on
    in the background and its outcome is in the link's log like any other (a large first
    sync can take minutes; a request should not)."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["entry"] = sync_link(ctx, link_id, trigger=trigger)
        except BaseException as exc:  # handed to the caller if it is still waiting
            outcome["error"] = exc
            if isinstance(exc, SegmintError):
                log.info("sync of link %s refused: %s", link_id, exc)
            else:
                log.exception("sync of link %s failed unexpectedly", link_id)

    worker = threading.Thread(target=work, name=f"segmint-sync-link-{link_id}", daemon=True)
    worker.start()
    worker.join(wait)
    if worker.is_alive():
        return None
    if "error" in outcome:
        raise outcome["error"]
    entry: SyncLogEntry = outcome["entry"]
    return entry


def _refused(
    ctx: SyncContext, link: LinkInfo, trigger: str, reason: str, now: datetime
) -> SyncLogEntry:
    log_id = sync_catalog.start_sync_log(ctx.catalog, link.id, trigger, now=now)
    outcome = SyncOutcome(
        "refused",
        error_class="SyncRefused",
        error_message=reason,
        remedy=reason.split("; ", 1)[-1] if "; " in reason else reason,
    )
    return sync_catalog.finish_sync_log(ctx.catalog, log_id, outcome, now=now)


MAX_STEPS = 50
"""Steps one sync may take: finishing an interrupted delivery, then catching up."""


def _deliver(ctx: SyncContext, link: LinkInfo, now: datetime, *, check_login: bool) -> SyncOutcome:
    """Send the link's pending changes, in steps: an interrupted delivery (``in_flight``) is
    finished first with exactly the changes it was sending, then the changes up to the latest
    refresh follow. With nothing to send, a sync the user asked for still tries the login, so
    an expired one is reported at once (R21)."""
    name = _audience_name(ctx, link.audience_id)
    added = removed = 0
    reasons: Counter[str] = Counter()
    target: str | None = None
    with _adapter(ctx, link.destination_id) as adapter:
        if link.mode == "list":
            pending = _below_minimum(ctx, link, adapter)
            if pending is not None:
                return pending
        label: str | None = None  # the name events carry (Event Sync), found once
        for _ in range(MAX_STEPS):
            link = sync_catalog.get_link(ctx.catalog, link.id)
            delta = _step(ctx, link)
            if delta.to_refresh_id is None:
                return SyncOutcome(
                    "refused",
                    error_class="SyncRefused",
                    error_message="the audience has not been computed yet; nothing to send",
                    remedy="wait for its first refresh (or refresh it now); the sync follows it",
                )
            target = delta.to_refresh_id
            if delta.is_empty and link.cursor == target:
                if check_login and added == removed == 0:
                    adapter.check_credentials()
                break
            mark_in_flight(ctx.catalog, link.id, target)
            if label is None:
                label = (
                    _event_audience_name(ctx, adapter, link, name) if link.mode == "event" else name
                )
            remote_id = link.remote_audience_id
            if remote_id is None:  # both modes: so Delete (R22) can remove it later
                remote_id = (
                    _own_remote_audience(ctx, adapter, link, name)
                    if link.mode == "list"
                    else adapter.ensure_audience(label)
                )
                sync_catalog.update_link(ctx.catalog, link.id, remote_audience_id=remote_id)
                if link.mode == "list":
                    _adopt_kept_ledger(ctx, link, remote_id)
            if link.mode == "list" and delta.is_full:
                delta = _with_stale_members(ctx, link, delta)
            if link.mode == "event":
                step_added, step_removed = _send_events(ctx, adapter, link, label, delta, reasons)
            else:
                step_added, step_removed = _send_members(
                    ctx, adapter, link, remote_id, delta, reasons, now
                )
            added, removed = added + step_added, removed + step_removed
            try:
                advance_cursor(
                    ctx.catalog, link.id, target, expected=delta.from_refresh_id, now=now
                )
            except Conflict as exc:  # another sync delivered meanwhile: harmless, re-sent
                log.info("link %s: %s", link.id, exc)
                break
            if link.mode == "list":  # delivered: a replay can no longer need what was sent
                forget(ctx.warehouse, link.id, delta.removed)
    return SyncOutcome(
        "succeeded",
        added=added,
        removed=removed,
        skipped_reasons=dict(reasons),
        refresh_id=target,
    )


def _adopt_kept_ledger(ctx: SyncContext, link: LinkInfo, remote_id: str) -> None:
    """When this link syncs into a remote audience that an unlinked link of the same audience
    left on the platform (R22 Unlink keeps it, members and all), take over what that link
    sent, so the members who left since are removed too."""
    kept = [
        other.id
        for other in sync_catalog.list_links(
            ctx.catalog, audience_id=link.audience_id, include_ended=True
        )
        if other.id != link.id
        and other.status == "unlinked"
        and other.destination_id == link.destination_id
        and other.remote_audience_id == remote_id
    ]
    if kept:
        log.info("link %s: adopting what links %s sent to %s", link.id, kept, remote_id)
        adopt(ctx.warehouse, kept, link.id)


def _with_stale_members(ctx: SyncContext, link: LinkInfo, delta: OutboxDelta) -> OutboxDelta:
    """A full sync sends every member; whoever the link's ledger says the platform holds
    besides them (sent by an earlier link into the same remote audience) is removed."""
    members = set(delta.added)
    stale = [pid for pid in sent_profile_ids(ctx.warehouse, link.id) if pid not in members]
    return dataclasses.replace(delta, removed=stale) if stale else delta


def _step(ctx: SyncContext, link: LinkInfo) -> OutboxDelta:
    """The next step's changes: up to the interrupted target if there is one, else the
    latest refresh. A target that no longer exists (history recomputed) is dropped."""
    if link.in_flight is not None:
        try:
            return link_changes(ctx.catalog, ctx.warehouse, link.id, until=link.in_flight)
        except (Conflict, InvalidInput) as exc:
            log.warning("link %s: dropping the interrupted target: %s", link.id, exc)
            mark_in_flight(ctx.catalog, link.id, None)
    return link_changes(ctx.catalog, ctx.warehouse, link.id)


def _below_minimum(ctx: SyncContext, link: LinkInfo, adapter: Destination) -> SyncOutcome | None:
    """R19: a List Sync waits while fewer members than the platform's minimum can be sent."""
    minimum = adapter.limits.min_list_size
    if not minimum:
        return None
    size = sendable_count(ctx, link)
    if size >= minimum:
        return None
    return SyncOutcome(
        "pending",
        error_class="BelowMinimumSize",
        error_message=f"pending: {size} of {minimum} needed",
        remedy=(
            f"{adapter_label(link)} serves lists of at least {minimum} matched people; the "
            "sync waits and starts once the audience is big enough"
        ),
    )


def _send_events(
    ctx: SyncContext,
    adapter: Destination,
    link: LinkInfo,
    name: str,
    delta: OutboxDelta,
    reasons: Counter[str],
) -> tuple[int, int]:
    events = membership_events(
        ctx.warehouse,
        MembershipEvents(link.audience_id, name, delta.to_refresh_id, delta.to_as_of),
        delta.added,
        delta.removed,
    )
    if not events:
        return 0, 0
    accepted = adapter.send_events(events)
    if accepted < len(events):
        reasons["no id the platform can use (e.g. no _ga cookie)"] += len(events) - accepted
    added = sum(1 for event in events if event["event"] == "added_to_segment")
    return added, len(events) - added


def _send_members(
    ctx: SyncContext,
    adapter: Destination,
    link: LinkInfo,
    remote_id: str,
    delta: OutboxDelta,
    reasons: Counter[str],
    now: datetime,
) -> tuple[int, int]:
    def sent(members: list[ListMember]) -> None:
        record_sent(ctx.warehouse, link.id, members, now)

    added = _send(ctx, adapter.add_members, remote_id, delta.added, link, reasons, on_sent=sent)
    exact, current = _leavers(ctx, link, delta.removed, reasons)
    removed = _send(ctx, adapter.remove_members, remote_id, current, link, reasons)
    for start in range(0, len(exact), SEND_CHUNK):
        removed += _send_known(
            adapter.remove_members, remote_id, exact[start : start + SEND_CHUNK], reasons
        )
    return added, removed


def _leavers(
    ctx: SyncContext, link: LinkInfo, profile_ids: Sequence[int], reasons: Counter[str]
) -> tuple[list[ListMember], list[int]]:
    """What to remove for the leavers: the identifiers sent for them (the ledger), or, for
    members sent before the ledger existed, the current identifiers of the profile they live
    on (a leaver merged into another profile has none of its own). A leaver merged into a
    profile that is still a member is the same person, rightly on the list: nothing is
    removed for them."""
    sent = sent_members(ctx.warehouse, link.id, profile_ids)
    survivors = merged_survivors(ctx.warehouse, profile_ids)
    members = set(current_members(ctx, link.audience_id)) if survivors else set()
    exact: list[ListMember] = []
    current: set[int] = set()
    for profile_id in profile_ids:
        survivor = survivors.get(profile_id)
        if survivor is not None and survivor in members:
            reasons["merged into a profile that is still a member"] += 1
        elif profile_id in sent:
            exact.append(sent[profile_id])
        else:
            current.add(survivor if survivor is not None else profile_id)
    return exact, sorted(current)


def adapter_label(link: LinkInfo) -> str:
    """The platform's display name."""
    return sync_catalog.PLATFORM_LABELS.get(link.platform, link.platform)


def _send(
    ctx: SyncContext,
    operation: Callable[[str, Sequence[ListMember]], MembersChange],
    remote_id: str,
    profile_ids: Sequence[int],
    link: LinkInfo,
    reasons: Counter[str],
    *,
    on_sent: Callable[[list[ListMember]], None] | None = None,
) -> int:
    """Send members in chunks; members without any identifier are skipped and counted
    (R16); values the adapter set aside are counted per reason (B5). ``on_sent`` gets each
    chunk the platform accepted. Returns members sent."""
    sent = 0
    for start in range(0, len(profile_ids), SEND_CHUNK):
        members = list_members(
            ctx.warehouse, profile_ids[start : start + SEND_CHUNK], link.identifier_mapping
        )
        known = [member for member in members if has_identifier(member)]
        anonymous = len(members) - len(known)
        if anonymous:
            reasons["anonymous (no identifier the platform accepts)"] += anonymous
        if not known:
            continue
        sent += _send_known(operation, remote_id, known, reasons)
        if on_sent is not None:
            on_sent(known)
    return sent


def _send_known(
    operation: Callable[[str, Sequence[ListMember]], MembersChange],
    remote_id: str,
    members: Sequence[ListMember],
    reasons: Counter[str],
) -> int:
    change = operation(remote_id, members)
    for item in change.set_aside:
        reasons[item.reason] += 1
    return change.sent


# --- around a refresh, and whole audiences ---------------------------------------------------


def sync_audience(
    ctx: SyncContext, audience_id: int, *, trigger: str = "refresh", now: datetime | None = None
) -> list[SyncLogEntry]:
    """Sync every active link of the audience (after its refresh); failures are logged per
    link and never stop the others."""
    entries = []
    for link in sync_catalog.list_links(ctx.catalog, audience_id=audience_id):
        try:
            entries.append(sync_link(ctx, link.id, trigger=trigger, now=now))
        except SegmintError as exc:  # e.g. the link ended meanwhile
            log.info("sync of link %s skipped: %s", link.id, exc)
    return entries


def sync_after_refresh(ctx: SyncContext) -> Callable[[int], None]:
    """A hook for the refresh paths: sync the audience's links after each committed refresh.
    Errors are logged, never raised into the refresh that already committed."""

    def hook(audience_id: int) -> None:
        try:
            sync_audience(ctx, audience_id, trigger="refresh")
        except Exception:
            log.exception("sync after the refresh of audience %s failed", audience_id)

    return hook


# --- unlink and delete (R22) -----------------------------------------------------------------


def unlink(ctx: SyncContext, link_id: int, *, now: datetime | None = None) -> LinkInfo:
    """R22 Unlink: stop syncing; the remote audience stays on the platform as it is. What
    the link sent is kept (segmint.sync.ledger), so linking the audience to that remote
    audience again also removes the members who left meanwhile."""
    return sync_catalog.unlink_audience(ctx.catalog, link_id, now=now)


def delete_link(ctx: SyncContext, link_id: int, *, now: datetime | None = None) -> LinkInfo:
    """R22 Delete: delete the remote audience on the platform, then stop syncing. If the
    platform refuses, nothing changes here and the error says why."""
    link = sync_catalog.get_link(ctx.catalog, link_id)
    if link.status != "active":
        raise Conflict(f"link {link_id} is already {link.status}")
    if link.remote_audience_id is not None:
        with _adapter(ctx, link.destination_id) as adapter:
            try:
                adapter.delete_audience(link.remote_audience_id)
            except AuthExpired:
                sync_catalog.mark_auth_expired(ctx.catalog, link.destination_id, now=now)
                raise
    info = sync_catalog.record_link_deleted(ctx.catalog, link_id, now=now)
    forget(ctx.warehouse, link_id)
    return info


def check_destination(ctx: SyncContext, destination: str | int) -> sync_catalog.DestinationInfo:
    """Try the destination's credentials with one cheap call. Success makes a destination that
    was failing ``active`` again; an expired login marks it ``auth_expired`` and raises
    :class:`AuthExpired` with R21's message; other refusals are raised as they are."""
    info = sync_catalog.get_destination(ctx.catalog, destination)
    checking = dataclasses.replace(ctx, retry=ctx.retry or CHECK_RETRY)
    with _adapter(checking, info.id) as adapter:
        try:
            adapter.check_credentials()
        except AuthExpired:
            sync_catalog.mark_auth_expired(ctx.catalog, info.id)
            raise
    if info.status in ("error", "auth_expired"):
        return sync_catalog.enable_destination(ctx.catalog, info.id)
    return info
