"""Looking at a link before and after syncing: the match-rate preview (R19, PRODUCT B5) and
the "why is my audience not syncing?" check (R29).

Both read only: nothing is sent to the platform and nothing changes in the catalog.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from segmint.catalog.models import Audience
from segmint.destinations import registry
from segmint.sync import catalog as sync_catalog
from segmint.sync.catalog import LinkInfo, utc_now
from segmint.sync.members import has_identifier, list_members
from segmint.sync.normalize import GOOGLE_RULES, IdentifierKind, prepare_members
from segmint.sync.runner import SyncContext, current_members

STALE_RUNNING = timedelta(hours=1)
"""A sync still ``running`` after this long was interrupted (its process stopped)."""


@dataclass(frozen=True, slots=True)
class MatchRatePreview:
    """What a sync of the link would send now."""

    link_id: int
    destination_name: str
    mode: str
    members: int
    """Current members of the audience."""
    would_send: int
    """Members with at least one usable identifier (all members for Event Sync, R17)."""
    anonymous: int
    """Members with no identifier the platform accepts (skipped by List Sync, R16)."""
    identifiers: dict[str, int]
    """Members with a value for each mapped identifier."""
    malformed: dict[str, int]
    """Values set aside per reason (``malformed email`` ...), never failing a batch."""
    min_list_size: int
    pending: str | None
    """``pending: N of M needed`` when the list is below the platform's minimum (R19)."""

    def share(self, identifier: str) -> float:
        """The share of members carrying ``identifier`` (0 when the audience is empty)."""
        return self.identifiers.get(identifier, 0) / self.members if self.members else 0.0


def _min_list_size(platform: str) -> int:
    limits = getattr(registry.get_factory(platform), "limits", None)
    return int(getattr(limits, "min_list_size", 0) or 0)


def match_rate_preview(ctx: SyncContext, link_id: int) -> MatchRatePreview:
    """The share of members with each mapped identifier and how many a sync would send."""
    link = sync_catalog.get_link(ctx.catalog, link_id)
    ids = current_members(ctx, link.audience_id)
    members = list_members(ctx.warehouse, ids, link.identifier_mapping)
    counts: Counter[str] = Counter()
    for name in link.identifier_mapping:
        counts[name] = sum(1 for member in members if getattr(member, name, None))
    if link.mode == "event":
        counts["anonymous_id"] = len(ids)
    known = [member for member in members if has_identifier(member)]
    checked: list[IdentifierKind] = [
        kind for kind in ("email", "phone") if kind in link.identifier_mapping
    ]
    malformed: dict[str, int] = {}
    would_send = len(known)
    if checked:
        prepared = prepare_members(known, checked, GOOGLE_RULES)
        malformed = {
            reason: count
            for reason, count in prepared.reasons().items()
            if reason != "no usable email or phone"  # counted by would_send instead
        }
        others = [
            name for name in ("crm_id", "device_id", "user_id") if name in link.identifier_mapping
        ]
        if not others:
            would_send = len(prepared.rows)
    if link.mode == "event":
        would_send = len(ids)
    minimum = _min_list_size(link.platform) if link.mode == "list" else 0
    pending = f"pending: {would_send} of {minimum} needed" if would_send < minimum else None
    return MatchRatePreview(
        link.id,
        link.destination_name,
        link.mode,
        len(ids),
        would_send,
        0 if link.mode == "event" else len(members) - len(known),
        dict(counts),
        malformed,
        minimum,
        pending,
    )


# --- why not syncing (R29) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One thing looked at: fine or not, what was seen, and what to do about it."""

    name: str
    ok: bool
    detail: str
    action: str | None = None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The answer to "why is this audience not syncing?" for one link."""

    link_id: int
    destination_name: str
    ok: bool
    summary: str
    checks: list[Check] = field(default_factory=list)


def why_not_syncing(ctx: SyncContext, link_id: int) -> Diagnosis:
    """Check destination status, link and audience status, the last refresh and sync, identifier
    coverage, the minimum size and recent errors; say what to do first."""
    link = sync_catalog.get_link(ctx.catalog, link_id)
    checks = [
        _destination_check(ctx, link),
        _link_check(link),
        *_audience_checks(ctx, link),
    ]
    if link.status == "active":
        preview = match_rate_preview(ctx, link_id)
        checks.append(_coverage_check(link, preview))
        if preview.min_list_size:
            checks.append(
                Check(
                    "Minimum size",
                    preview.pending is None,
                    f"{preview.would_send} members can be sent; {link.destination_name} "
                    f"needs at least {preview.min_list_size}"
                    + (f" ({preview.pending})" if preview.pending else ""),
                    None
                    if preview.pending is None
                    else "widen the audience or map more identifiers; the sync starts by itself "
                    "once it is big enough",
                )
            )
    checks.extend(_log_checks(ctx, link))
    problems = [check for check in checks if not check.ok]
    if problems:
        first = problems[0]
        summary = f"{first.name}: {first.detail}" + (f" — {first.action}" if first.action else "")
    else:
        summary = (
            f"Nothing is wrong: the audience syncs to {link.destination_name} after each refresh"
        )
    return Diagnosis(link.id, link.destination_name, not problems, summary, checks)


def _destination_check(ctx: SyncContext, link: LinkInfo) -> Check:
    info = sync_catalog.get_destination(ctx.catalog, link.destination_id)
    if info.status == "active":
        return Check("Destination", True, f"{info.name} is active")
    if info.status == "auth_expired":
        return Check(
            "Destination",
            False,
            info.last_error or sync_catalog.auth_expired_message(info.name),
            f"re-authenticate in Destinations → {info.name} → Configuration Settings",
        )
    if info.status == "disabled":
        return Check(
            "Destination",
            False,
            f"{info.name} is disabled",
            f"enable it in Destinations → {info.name}",
        )
    return Check(
        "Destination",
        False,
        f"{info.name} reported an error: {info.last_error or 'unknown'}",
        f"check the settings in Destinations → {info.name} → Configuration Settings",
    )


def _link_check(link: LinkInfo) -> Check:
    if link.status == "active":
        return Check("Link", True, f"linked in {link.mode} mode")
    return Check(
        "Link", False, f"the link was {link.status}", "link the audience to the destination again"
    )


def _audience_checks(ctx: SyncContext, link: LinkInfo) -> list[Check]:
    with ctx.catalog.session() as session:
        audience = session.get(Audience, link.audience_id)
        if audience is None:
            return [Check("Audience", False, "the audience no longer exists")]
        status, last, error = audience.status, audience.last_refresh_at, audience.last_error
        next_at = audience.next_refresh_at
    checks = []
    if status == "active":
        checks.append(Check("Audience", True, "active"))
    else:
        checks.append(
            Check(
                "Audience",
                False,
                f"the audience is {status}; only active audiences sync",
                "restore it and Save & Activate again"
                if status != "draft"
                else "Save & Activate it",
            )
        )
    if last is None:
        checks.append(
            Check(
                "Last refresh",
                False,
                "the audience has not been computed yet",
                "wait for its first refresh or refresh it now",
            )
        )
    elif error:
        checks.append(
            Check(
                "Last refresh",
                False,
                f"the last refresh failed: {error}",
                f"fix the definition or wait for the retry at {next_at:%Y-%m-%d %H:%M} UTC"
                if next_at
                else "fix the definition and refresh",
            )
        )
    else:
        checks.append(Check("Last refresh", True, f"refreshed at {last:%Y-%m-%d %H:%M} UTC"))
    return checks


def _coverage_check(link: LinkInfo, preview: MatchRatePreview) -> Check:
    if preview.members == 0:
        return Check("Identifiers", True, "the audience has no members right now")
    shares = ", ".join(f"{name} {preview.share(name):.0%}" for name in link.identifier_mapping)
    if preview.would_send == 0:
        return Check(
            "Identifiers",
            False,
            f"no member has an identifier {link.destination_name} accepts ({shares})",
            "map another profile field in the link's identifier mapping, or collect emails",
        )
    return Check(
        "Identifiers",
        True,
        f"{preview.would_send} of {preview.members} members can be sent ({shares})",
    )


def _log_checks(ctx: SyncContext, link: LinkInfo) -> list[Check]:
    logs = [
        entry
        for entry in sync_catalog.list_sync_logs(ctx.catalog, link.audience_id, limit=50)
        if entry.link_id == link.id
    ]
    if not logs:
        return [
            Check(
                "Last sync",
                False,
                "this link has never synced",
                "run an Instant Sync, or wait for the next refresh",
            )
        ]
    last = logs[0]
    checks = []
    if last.status == "running":
        started = f"{last.started_at:%Y-%m-%d %H:%M} UTC"
        if utc_now() - last.started_at < STALE_RUNNING:
            checks.append(Check("Last sync", True, f"running since {started}"))
        else:  # a process that stopped mid-sync (killed, restarted) never closed its entry
            checks.append(
                Check(
                    "Last sync",
                    False,
                    f"started at {started} and never finished: the process running it "
                    "stopped (the changes it was sending are still pending)",
                    "run an Instant Sync, or wait for the next refresh",
                )
            )
        logs = logs[1:]
    elif last.status == "succeeded":
        checks.append(
            Check(
                "Last sync",
                True,
                f"succeeded at {last.started_at:%Y-%m-%d %H:%M} UTC "
                f"(+{last.added} −{last.removed}, {last.skipped} skipped)",
            )
        )
    else:
        checks.append(
            Check(
                "Last sync",
                False,
                f"{last.status} at {last.started_at:%Y-%m-%d %H:%M} UTC"
                + (f": {last.error_message}" if last.error_message else ""),
                last.remedy,
            )
        )
    recent = logs[:10]
    failures = sum(1 for entry in recent if entry.status == "failed")
    since_success = 0
    for entry in recent:
        if entry.status == "succeeded":
            break
        since_success += entry.status == "failed"
    detail = f"{failures} of the last {len(recent)} syncs failed"
    if failures and not since_success:
        detail += "; the latest succeeded, so they were recovered from"
    checks.append(
        Check(
            "Recent errors",
            since_success == 0,
            detail,
            None if since_success == 0 else "see the Logs tab for each error and its remedy",
        )
    )
    return checks
