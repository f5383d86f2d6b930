"""The Audiences list (Active / Drafts / Archived / Deleted tabs, R13–R14) and the audience
page: definition, versions with diffs, size over time (R12), members, destinations."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from segmint.audiences import history, operations, service
from segmint.audiences.service import AudienceInfo
from segmint.catalog.accounts import WebUser
from segmint.definitions.describe import describe
from segmint.definitions.model import Group
from segmint.errors import Conflict, InvalidInput
from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync.worker import after_refresh
from segmint.web.auth import current_user, verify_csrf
from segmint.web.deps import runtime_of, utcnow
from segmint.web.templating import render

router = APIRouter(dependencies=[Depends(current_user), Depends(verify_csrf)])

TABS = {"active": "Active", "drafts": "Drafts", "archived": "Archived", "deleted": "Deleted"}
TAB_STATUS = {"active": "active", "drafts": "draft", "archived": "archived", "deleted": "deleted"}
MEMBERS_PAGE = 25
AudienceId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The audience's id")]
User = Annotated[WebUser, Depends(current_user)]


# --- the list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkState:
    """One linked destination of a row and how its latest sync went."""

    destination: str
    platform: str
    mode: str
    state: str  # never synced | ok | failed | running ...
    last_synced_at: dt.datetime | None


@dataclass(frozen=True)
class Row:
    audience: AudienceInfo
    schedule: str
    links: list[LinkState]


def _links(rt: Runtime, audience_id: int) -> list[LinkState]:
    links = sync_catalog.list_links(rt.catalog, audience_id=audience_id)
    if not links:
        return []
    latest: dict[int, str] = {}
    for entry in sync_catalog.list_sync_logs(rt.catalog, audience_id, limit=50):
        latest.setdefault(entry.link_id, entry.status)
    return [
        LinkState(
            destination=link.destination_name,
            platform=link.platform,
            mode=link.mode,
            state=latest.get(link.id, "never synced"),
            last_synced_at=link.last_synced_at,
        )
        for link in links
    ]


def _row(rt: Runtime, audience: AudienceInfo, now: dt.datetime) -> Row:
    return Row(audience, service.describe_schedule(audience, now), _links(rt, audience.id))


def _check_tab(tab: str) -> str:
    if tab not in TABS:
        raise InvalidInput(f"unknown tab {tab!r}: use one of {', '.join(TABS)}", path="tab")
    return tab


def _list_data(rt: Runtime, tab: str, now: dt.datetime) -> dict[str, Any]:
    """What the list shows: the rows of ``tab`` and how many audiences each tab has."""
    everything = service.list_audiences(rt.catalog) + service.list_audiences(rt.catalog, "deleted")
    counts = {
        key: sum(a.status == status for a in everything) for key, status in TAB_STATUS.items()
    }
    shown = [a for a in everything if a.status == TAB_STATUS[tab]]
    return {"tab": tab, "tabs": TABS, "rows": [_row(rt, a, now) for a in shown], "counts": counts}


@router.get("/audiences")
async def audiences_page(
    request: Request, tab: Annotated[str, Query(max_length=20)] = "active"
) -> Response:
    _check_tab(tab)
    rt = runtime_of(request)
    data = await run_in_threadpool(_list_data, rt, tab, utcnow())
    return render(request, "audiences/list.html", data)


@router.post("/audiences/{audience_id}/status")
async def set_status(
    request: Request,
    audience_id: AudienceId,
    user: User,
    active: Annotated[str | None, Form(max_length=10)] = None,
    view: Annotated[str, Form(max_length=10)] = "row",
    tab: Annotated[str, Form(max_length=20)] = "active",
) -> Response:
    """The status switch (R13): unchecked archives, checked re-activates with the same name
    and refresh settings. Answers for htmx with the updated header (``view=header``), or
    with the list's tab ``tab`` again: counts updated, the audience gone from a tab it left."""
    _check_tab(tab)
    rt = runtime_of(request)
    turn_on = active in ("on", "true", "1")

    def run() -> tuple[AudienceInfo, str]:
        audience = service.get(rt.catalog, audience_id)
        if turn_on:
            if audience.status == "active":
                return audience, f"{audience.label} is already active."
            if audience.status != "archived":
                raise Conflict(
                    f"audience {audience.label} is {audience.status} and cannot be switched on "
                    "here: reload the page; a deleted audience is restored from the Deleted tab"
                )
            result = operations.activate_audience(
                rt.warehouse,
                rt.catalog,
                audience_id,
                name=None,
                refresh_interval=audience.refresh_interval,
                warmup=audience.warmup,
                by=user.username,
                timezone=rt.settings.timezone,
                on_refreshed=after_refresh(request.app.state),
            )
            size = f" with {result.refresh.size:,} members" if result.refresh is not None else ""
            return result.audience, f"{result.audience.label} is active again{size}."
        if audience.status != "active":
            return audience, f"{audience.label} is already {audience.status}."
        archived = service.archive(rt.catalog, audience_id, by=user.username, now=utcnow())
        return archived, (
            f"{archived.label} is archived: it no longer refreshes or syncs. "
            "Find it in the Archived tab."
        )

    audience, message = await run_in_threadpool(run)
    now = utcnow()
    shown = {"message": message, "oob_message": True}
    if view == "header":
        row = await run_in_threadpool(_row, rt, audience, now)
        return render(request, "audiences/_header_status.html", {"row": row, **shown})
    data = await run_in_threadpool(_list_data, rt, tab, now)
    return render(request, "audiences/_list.html", {**data, **shown})


@router.post("/audiences/{audience_id}/restore")
async def restore(request: Request, audience_id: AudienceId, user: User) -> RedirectResponse:
    """Restore an archived or deleted audience as a draft (R14), then show it."""
    rt = runtime_of(request)
    await run_in_threadpool(
        lambda: service.restore(rt.catalog, audience_id, by=user.username, now=utcnow())
    )
    return RedirectResponse(f"/audiences/{audience_id}?restored=1", status_code=303)


@router.post("/audiences/{audience_id}/delete")
async def delete(request: Request, audience_id: AudienceId, user: User) -> RedirectResponse:
    """Delete an audience (restorable from the Deleted tab)."""
    rt = runtime_of(request)
    await run_in_threadpool(
        lambda: service.delete(rt.catalog, audience_id, by=user.username, now=utcnow())
    )
    return RedirectResponse("/audiences?tab=deleted", status_code=303)


# --- the audience page -----------------------------------------------------------------------


@dataclass(frozen=True)
class TreeLine:
    """One line of the read-only definition: indentation depth and text."""

    depth: int
    text: str
    group: bool


def definition_lines(node: Any, depth: int = 0) -> list[TreeLine]:
    """The definition as indented plain-English lines (groups say ALL/ANY of)."""
    if isinstance(node, Group):
        word = "All of these (AND)" if node.kind == "and" else "Any of these (OR)"
        if node.negate:
            word = "NOT: " + word[0].lower() + word[1:]
        lines = [TreeLine(depth, word, True)]
        for child in node.conditions:
            lines.extend(definition_lines(child, depth + 1))
        return lines
    return [TreeLine(depth, describe(node), False)]


@dataclass(frozen=True)
class VersionView:
    number: int
    created_at: dt.datetime
    created_by: str
    note: str
    changes: list[str]
    text_diff: str
    current: bool


def _versions(rt: Runtime, audience: AudienceInfo) -> list[VersionView]:
    views = []
    rows = service.versions(rt.catalog, audience.id)
    for row in reversed(rows):
        changes: list[str] = []
        text = ""
        if row.version > 1:
            diff = service.diff_versions(rt.catalog, audience.id, row.version - 1, row.version)
            changes, text = diff.summary, diff.text
        views.append(
            VersionView(
                row.version,
                row.created_at,
                row.created_by,
                row.note,
                changes,
                text,
                row.version == audience.current_version,
            )
        )
    return views


def _chart_json(points: list[history.RefreshPoint]) -> tuple[str, str]:
    xs = [int(p.as_of.replace(tzinfo=dt.UTC).timestamp()) for p in points]
    size = {
        "x": xs,
        "fill": True,
        "series": [{"label": "Members", "values": [p.size for p in points]}],
    }
    moves = {
        "x": xs,
        "height": 200,
        "series": [
            {"label": "Entered", "values": [p.entered for p in points], "bars": True},
            {"label": "Left", "values": [-p.left for p in points], "bars": True},
        ],
    }
    return _script_json(size), _script_json(moves)


def _script_json(value: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/audiences/{audience_id}")
async def audience_page(request: Request, audience_id: AudienceId) -> Response:
    rt = runtime_of(request)
    now = utcnow()

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(rt.catalog, audience_id)
        points = history.size_over_time(rt.warehouse, audience.id)
        size_chart, moves_chart = _chart_json(points)
        return {
            "row": _row(rt, audience, now),
            "audience": audience,
            "lines": definition_lines(audience.definition.root),
            "versions": _versions(rt, audience),
            "points": list(reversed(points)),
            "cohorts": [p for p in points if p.entered],
            "size_chart": size_chart,
            "moves_chart": moves_chart,
            "links": sync_catalog.list_links(rt.catalog, audience_id=audience.id),
        }

    data = await run_in_threadpool(build)
    return render(request, "audiences/detail.html", data)


# A member entered when its latest ``added_to_segment`` event of the audience was emitted.
MEMBER_SQL = """
WITH entered AS (
    SELECT s.profile_id, max(r.as_of) AS entered_at
    FROM segment_events AS s JOIN audience_refreshes AS r ON r.seq = s.refresh_seq
    WHERE r.audience_id = ? AND s.added GROUP BY s.profile_id
)
SELECT m.profile_id, e.entered_at, p.email, p.user_id, p.country, p.city, p.traits
FROM audience_members m
LEFT JOIN entered e ON e.profile_id = m.profile_id
LEFT JOIN profiles p ON p.profile_id = m.profile_id
WHERE m.audience_id = ? {where}
ORDER BY e.entered_at DESC NULLS LAST, m.profile_id
LIMIT ? OFFSET ?
"""
COUNT_SQL = """
SELECT count(*) FROM audience_members m LEFT JOIN profiles p ON p.profile_id = m.profile_id
WHERE m.audience_id = ? {where}
"""
SEARCH = (
    "AND (CAST(m.profile_id AS VARCHAR) = ? OR contains(lower(coalesce(p.email, '')), ?) OR "
    "contains(lower(coalesce(p.user_id, '')), ?) OR "
    "contains(lower(coalesce(CAST(p.traits AS VARCHAR), '')), ?))"
)


@dataclass(frozen=True)
class Member:
    profile_id: int
    entered_at: dt.datetime | None
    email: str | None
    user_id: str | None
    place: str
    traits: list[tuple[str, str]]


def _member(row: tuple[Any, ...]) -> Member:
    profile_id, entered_at, email, user_id, country, city, traits = row
    try:
        parsed = json.loads(traits) if isinstance(traits, str) else (traits or {})
    except ValueError:
        parsed = {}
    shown = (
        [
            (str(k), v if isinstance(v, str) else json.dumps(v))
            for k, v in list(parsed.items())[:4]
            if k not in ("email",)
        ]
        if isinstance(parsed, dict)
        else []
    )
    place = ", ".join(x for x in (city, country) if x)
    return Member(profile_id, entered_at, email, user_id, place, shown)


@router.get("/audiences/{audience_id}/members")
async def members(
    request: Request,
    audience_id: AudienceId,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The members table (an htmx fragment, or the full audience page when opened
    directly): current members, newest first, searchable by id, email, user id or trait."""
    rt = runtime_of(request)
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(f"/audiences/{audience_id}#members", status_code=303)
    term = q.strip()
    where = SEARCH if term else ""
    like = term.lower()
    params: list[Any] = [audience_id]
    if term:
        params += [term, like, like, like]

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(rt.catalog, audience_id)
        (total,) = rt.warehouse.rows(COUNT_SQL.format(where=where), params)[0]
        rows = rt.warehouse.rows(
            MEMBER_SQL.format(where=where),
            [audience_id, *params, MEMBERS_PAGE, (page - 1) * MEMBERS_PAGE],
        )
        return {
            "audience": audience,
            "members": [_member(r) for r in rows],
            "total": int(total),
            "page": page,
            "pages": max(1, -(-int(total) // MEMBERS_PAGE)),
            "q": term,
        }

    data = await run_in_threadpool(build)
    return render(request, "audiences/_members.html", data)


@router.get("/audiences/{audience_id}/retention")
async def retention(
    request: Request,
    audience_id: AudienceId,
    refresh_id: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The retention table of one cohort (an htmx fragment, or the audience page when opened
    directly): the entrants of refresh ``refresh_id`` (default: the first) and how many of
    them were members at each refresh since (B2)."""
    rt = runtime_of(request)
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(f"/audiences/{audience_id}#retention", status_code=303)

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(rt.catalog, audience_id)
        points = history.cohort_retention(rt.warehouse, audience.id, refresh_id or None)
        return {"audience": audience, "start": points[0], "points": points}

    data = await run_in_threadpool(build)
    return render(request, "audiences/_retention.html", data)
