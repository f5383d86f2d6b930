"""The audience page's Destinations and Logs tabs (R16–R23, R29), served as htmx fragments.

The audience page (``audience/destinations.html``) loads ``/audiences/{id}/sync-panel`` into
itself; every action here (link, Instant Sync, unlink, delete) answers with the refreshed
panel plus a message for the page's live region (``#sync-announce``). "Why isn't this
syncing?" answers with the checks of :func:`segmint.sync.checks.why_not_syncing` for one
link. Opened without htmx, the routes send the browser back to the audience page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from segmint.audiences import operations
from segmint.audiences.service import AudienceInfo
from segmint.errors import InvalidInput, NotFound, SegmintError
from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync import checks, runner
from segmint.sync.catalog import DestinationInfo, InstantSyncTooSoon, LinkInfo, SyncLogEntry
from segmint.web.auth import current_user, verify_csrf
from segmint.web.deps import runtime_of
from segmint.web.templating import render

router = APIRouter(dependencies=[Depends(current_user), Depends(verify_csrf)])

AudienceId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The audience's id")]
LinkId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The link's id")]
MODE_LABELS = {"list": "List Sync", "event": "Event Sync"}
MODE_HELP = {
    "list": "sends known people's identifiers, hashed; anonymous members are skipped (R16)",
    "event": "sends added_to_segment / removed_from_segment events; works for anonymous "
    "visitors too (R17)",
}
IDENTIFIER_LABELS = {
    "email": "Email",
    "phone": "Phone",
    "first_name": "First name",
    "last_name": "Last name",
    "crm_id": "CRM id",
    "device_id": "Device id",
    "user_id": "User id",
    "client_id": "Client id",
    "anonymous_id": "Anonymous id",
}
LOG_LIMIT = 50


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


@dataclass(frozen=True)
class LinkView:
    """One active link with what the panel shows about it."""

    link: LinkInfo
    destination: DestinationInfo
    preview: checks.MatchRatePreview | None
    preview_error: str | None
    last_log: SyncLogEntry | None
    wait: str | None  # R20: time left before the next Instant Sync is allowed


@dataclass
class LinkForm:
    """The "Link to a destination" form's state."""

    destination_id: int | None = None
    mode: str = ""
    mapping: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class Announcement:
    text: str
    kind: str = "ok"  # ok | warn | error


def _ctx(rt: Runtime) -> runner.SyncContext:
    return runner.SyncContext.of(rt)


def _wait_text(link: LinkInfo) -> str | None:
    wait = sync_catalog.instant_sync_wait(
        link.platform, link.last_instant_sync_at, sync_catalog.utc_now()
    )
    if wait is None:
        return None
    minutes = max(1, -(-int(wait.total_seconds()) // 60))
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"


def _link_fields(destination: DestinationInfo | None, form: LinkForm) -> dict[str, Any]:
    if destination is None:
        return {"chosen": None, "form": form}
    platform = destination.platform
    defaults = sync_catalog.default_identifier_mapping(platform)
    mapping = form.mapping or defaults
    return {
        "chosen": destination,
        "form": form,
        "modes": sync_catalog.PLATFORM_MODES[platform],
        "identifiers": sync_catalog.PLATFORM_IDENTIFIERS[platform],
        "mapping": mapping,
        "defaults": defaults,
    }


def panel_context(rt: Runtime, audience_id: int, form: LinkForm | None = None) -> dict[str, Any]:
    """Everything the panel shows for the audience."""
    ctx = _ctx(rt)
    audience: AudienceInfo = operations.resolve_ref(rt.catalog, audience_id)
    destinations = {d.id: d for d in sync_catalog.list_destinations(rt.catalog)}
    logs = sync_catalog.list_sync_logs(rt.catalog, audience.id, limit=LOG_LIMIT)
    last: dict[int, SyncLogEntry] = {}
    for entry in logs:
        last.setdefault(entry.link_id, entry)
    views = []
    all_links = sync_catalog.list_links(rt.catalog, audience_id=audience.id, include_ended=True)
    active = [link for link in all_links if link.status == "active"]
    for link in active:
        preview, problem = None, None
        try:
            preview = checks.match_rate_preview(ctx, link.id)
        except SegmintError as exc:
            problem = exc.message
        views.append(
            LinkView(
                link,
                destinations[link.destination_id],
                preview,
                problem,
                last.get(link.id),
                _wait_text(link),
            )
        )
    form = form or LinkForm()
    linked = {link.destination_id for link in active}
    choices = [d for d in destinations.values() if d.id not in linked]
    chosen = destinations.get(form.destination_id) if form.destination_id else None
    return {
        "audience": audience,
        "views": views,
        "ended": [link for link in all_links if link.status != "active"],
        "logs": logs,
        "choices": choices,
        "mode_labels": MODE_LABELS,
        "mode_help": MODE_HELP,
        "identifier_labels": IDENTIFIER_LABELS,
        "identifier_sources": sync_catalog.IDENTIFIER_SOURCES,
        **_link_fields(chosen, form),
    }


async def _panel(
    request: Request,
    audience_id: int,
    *,
    form: LinkForm | None = None,
    announce: Announcement | None = None,
    tab: str = "",
) -> Response:
    rt = runtime_of(request)
    data = await run_in_threadpool(panel_context, rt, audience_id, form)
    return render(request, "sync/panel.html", {**data, "announce": announce, "tab": tab})


def _back(audience_id: int) -> RedirectResponse:
    return RedirectResponse(f"/audiences/{audience_id}#destinations", status_code=303)


@router.get("/audiences/{audience_id}/sync-panel")
async def sync_panel(
    request: Request,
    audience_id: AudienceId,
    tab: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The Destinations and Logs tabs of the audience page."""
    if not _is_htmx(request):
        return _back(audience_id)
    return await _panel(request, audience_id, tab=tab if tab in ("links", "logs") else "")


@router.get("/audiences/{audience_id}/link-fields")
async def link_fields(
    request: Request,
    audience_id: AudienceId,
    destination_id: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    """The mode and identifier-mapping inputs for the chosen destination."""
    if not _is_htmx(request):
        return _back(audience_id)
    rt = runtime_of(request)
    chosen = None
    if destination_id.isdigit():
        try:
            chosen = await run_in_threadpool(
                sync_catalog.get_destination, rt.catalog, int(destination_id)
            )
        except NotFound:
            chosen = None
    context = {
        **_link_fields(chosen, LinkForm()),
        "mode_labels": MODE_LABELS,
        "mode_help": MODE_HELP,
        "identifier_labels": IDENTIFIER_LABELS,
        "identifier_sources": sync_catalog.IDENTIFIER_SOURCES,
    }
    return render(request, "sync/_link_fields.html", context)


def _form_mapping(form: Mapping[str, Any], identifiers: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for name in identifiers:
        value = form.get(f"map__{name}")
        if isinstance(value, str) and value.strip():
            mapping[name] = value.strip()[:200]
    return mapping


@router.post("/audiences/{audience_id}/links")
async def create_link(request: Request, audience_id: AudienceId) -> Response:
    """Link the audience to a destination with a mode and an identifier mapping."""
    rt = runtime_of(request)
    raw = await request.form()
    form = LinkForm()
    chosen = raw.get("destination_id")
    if not isinstance(chosen, str) or not chosen.isdigit():
        form.errors["destination_id"] = "choose a destination to link"
    else:
        form.destination_id = int(chosen)
    mode = raw.get("mode")
    form.mode = mode if isinstance(mode, str) else ""

    def run() -> LinkInfo | None:
        if form.destination_id is None:
            return None
        try:
            destination = sync_catalog.get_destination(rt.catalog, form.destination_id)
        except NotFound:
            form.errors["destination_id"] = "that destination no longer exists; choose another"
            form.destination_id = None
            return None
        identifiers = sync_catalog.PLATFORM_IDENTIFIERS[destination.platform]
        form.mapping = _form_mapping(raw, identifiers)
        # Without the mapping inputs (chosen before the page finished loading) R18's
        # defaults apply; with them, an emptied input means "do not send".
        shown = any(key.startswith("map__") for key in raw)
        try:
            return sync_catalog.link_audience(
                rt.catalog,
                audience_id,
                destination.id,
                mode=form.mode or None,
                identifier_mapping=form.mapping if shown else None,
            )
        except SegmintError as exc:
            path = exc.path or ""
            if path.startswith("identifier_mapping."):
                form.errors["map__" + path.split(".", 1)[1]] = exc.message
            elif path == "identifier_mapping":
                form.errors["mapping"] = exc.message
            elif path == "mode":
                form.errors["mode"] = exc.message
            else:
                form.message = exc.message
            return None

    link = await run_in_threadpool(run)
    if link is None:
        if not _is_htmx(request):
            problems = [form.message, *form.errors.values()]
            raise InvalidInput(
                "the audience was not linked: " + "; ".join(p for p in problems if p)
            )
        return await _panel(
            request,
            audience_id,
            form=form,
            announce=Announcement("The audience was not linked: see the form.", "error"),
        )
    if not _is_htmx(request):
        return _back(audience_id)
    return await _panel(
        request,
        audience_id,
        announce=Announcement(
            f"Linked to {link.destination_name} ({MODE_LABELS.get(link.mode, link.mode)}). "
            "It syncs after each refresh; use Instant Sync to send it now."
        ),
    )


def _link_or_404(rt: Runtime, link_id: int) -> LinkInfo:
    return sync_catalog.get_link(rt.catalog, link_id)


def describe_entry(entry: SyncLogEntry) -> Announcement:
    """A sentence about a finished sync attempt."""
    name = entry.destination_name
    if entry.status == "succeeded":
        skipped = f", {entry.skipped:,} skipped" if entry.skipped else ""
        return Announcement(
            f"Synced to {name}: {entry.added:,} added, {entry.removed:,} removed{skipped}."
        )
    remedy = f" What to do: {entry.remedy}" if entry.remedy else ""
    if entry.status == "pending":
        return Announcement(f"Sync to {name} is waiting: {entry.error_message}.{remedy}", "warn")
    if entry.status == "refused":
        return Announcement(f"Sync to {name} did not run: {entry.error_message}.{remedy}", "warn")
    return Announcement(f"Sync to {name} failed: {entry.error_message}.{remedy}", "error")


# How long the Instant Sync button waits for the sync before answering that it is still
# running: a large first sync can take minutes (rate limits, big lists), a page should not.
# The sync goes on; its outcome appears in the Logs tab like any other.
INSTANT_SYNC_WAIT_SECONDS = 20.0


@router.post("/sync/links/{link_id}/instant")
async def instant_sync(request: Request, link_id: LinkId) -> Response:
    """Instant Sync (R20): runs now, or is refused with the time left. The answer is its
    outcome, or that it is still running when it takes longer than a short wait."""
    rt = runtime_of(request)
    link = await run_in_threadpool(_link_or_404, rt, link_id)

    def run() -> Announcement:
        try:
            entry = runner.sync_link_within(_ctx(rt), link_id, wait=INSTANT_SYNC_WAIT_SECONDS)
        except InstantSyncTooSoon as exc:
            return Announcement(
                f"Instant Sync to {link.destination_name} refused: {exc.message}.", "warn"
            )
        except (SegmintError, httpx.HTTPError) as exc:
            message = exc.message if isinstance(exc, SegmintError) else str(exc)
            return Announcement(
                f"Instant Sync to {link.destination_name} failed: {message}", "error"
            )
        if entry is None:
            return Announcement(
                f"Instant Sync to {link.destination_name} is still running; its outcome will "
                "appear in the Logs tab (reload the page to see it)."
            )
        return describe_entry(entry)

    announce = await run_in_threadpool(run)
    if not _is_htmx(request):
        return _back(link.audience_id)
    return await _panel(request, link.audience_id, announce=announce)


@router.get("/sync/links/{link_id}/why")
async def why(request: Request, link_id: LinkId) -> Response:
    """The "Why isn't this syncing?" checks of one link (R29)."""
    rt = runtime_of(request)
    link = await run_in_threadpool(_link_or_404, rt, link_id)
    if not _is_htmx(request):
        return _back(link.audience_id)
    diagnosis = await run_in_threadpool(checks.why_not_syncing, _ctx(rt), link_id)
    return render(request, "sync/_why.html", {"diagnosis": diagnosis, "link": link})


@router.post("/sync/links/{link_id}/unlink")
async def unlink(request: Request, link_id: LinkId) -> Response:
    """R22 Unlink: stop syncing; the audience stays on the platform."""
    rt = runtime_of(request)
    link = await run_in_threadpool(runner.unlink, _ctx(rt), link_id)
    if not _is_htmx(request):
        return _back(link.audience_id)
    return await _panel(
        request,
        link.audience_id,
        announce=Announcement(
            f"Unlinked from {link.destination_name}: syncing stopped; the audience and its "
            f"members stay on {sync_catalog.PLATFORM_LABELS.get(link.platform, link.platform)}."
        ),
    )


@router.post("/sync/links/{link_id}/delete")
async def delete(request: Request, link_id: LinkId) -> Response:
    """R22 Delete: remove the audience on the platform, then stop syncing."""
    rt = runtime_of(request)
    link = await run_in_threadpool(_link_or_404, rt, link_id)
    label = sync_catalog.PLATFORM_LABELS.get(link.platform, link.platform)

    def run() -> Announcement:
        try:
            runner.delete_link(_ctx(rt), link_id)
        except (SegmintError, httpx.HTTPError) as exc:
            message = exc.message if isinstance(exc, SegmintError) else str(exc)
            return Announcement(
                f"The audience was not deleted on {label}: {message}. The link is unchanged.",
                "error",
            )
        return Announcement(
            f"Deleted: the audience is removed from {label} ({link.destination_name}) and no "
            "longer syncs."
        )

    announce = await run_in_threadpool(run)
    if not _is_htmx(request):
        return _back(link.audience_id)
    return await _panel(request, link.audience_id, announce=announce)
