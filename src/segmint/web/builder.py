"""The visual audience builder: the pages ``/audiences/new`` and ``/audiences/{id}/edit`` and
the JSON endpoints under ``/ui/builder`` that its script (``static/builder.js``) calls.

The browser owns the definition being edited (one JSON document, the same schema the REST API
takes); the server is stateless here. It validates a whole document and reports every problem
against the id of the node it belongs to, estimates and runs it (the same services as
``POST /api/v1/audiences/preview``), suggests event names, property keys, trait keys and known
values from the warehouse, checks names, forecasts usage, and saves through the audience
lifecycle services. Every unsafe request needs the session's CSRF token.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from segmint.api.preview import catalog_resolver
from segmint.audiences import operations, service, usage
from segmint.audiences.names import check_name, suggest_name
from segmint.audiences.run import run_definition
from segmint.catalog.accounts import WebUser
from segmint.compiler.windows import Clock, window_bounds
from segmint.definitions import is_dynamic
from segmint.definitions.describe import describe, describe_window
from segmint.definitions.errors import DefinitionError
from segmint.definitions.loading import parse_definition
from segmint.definitions.model import (
    AbsoluteWindow,
    CalendarWindow,
    Definition,
    Group,
    RelativeWindow,
    Window,
    iter_nodes,
    json_ready,
)
from segmint.definitions.validation import AudienceResolver
from segmint.errors import Conflict, InvalidInput, NotFound
from segmint.runtime import Runtime
from segmint.sync.worker import after_refresh
from segmint.warehouse.explorer import event_properties, tracked_events, trait_keys
from segmint.warehouse.schema import GEO_COLUMNS, TECH_COLUMNS, UTM_COLUMNS
from segmint.web.auth import current_user, verify_csrf
from segmint.web.templating import render

router = APIRouter()

User = Annotated[WebUser, Depends(current_user)]
Csrf = Depends(verify_csrf)

MAX_SAMPLE = 50
MAX_VALUES = 50
# Refresh interval choices offered in the Save & Activate dialog (seconds → label).
INTERVAL_CHOICES: tuple[tuple[int, str], ...] = (
    (3600, "Every hour"),
    (6 * 3600, "Every 6 hours"),
    (12 * 3600, "Every 12 hours"),
    (86400, "Every day"),
    (2 * 86400, "Every 2 days"),
    (3 * 86400, "Every 3 days"),
    (7 * 86400, "Every 7 days"),
    (14 * 86400, "Every 14 days"),
    (30 * 86400, "Every 30 days"),
)
# Fields whose known values come from a profile column (the rest are JSON keys).
_VALUE_COLUMNS: dict[str, str] = {
    **{f"demographic.{c}": c for c in GEO_COLUMNS},
    "demographic.language": "language",
    **{f"technology.{c}": c for c in TECH_COLUMNS},
    **{f"utm.{c.removeprefix('utm_')}.first": f"first_{c}" for c in UTM_COLUMNS},
    **{f"utm.{c.removeprefix('utm_')}.last": f"last_{c}" for c in UTM_COLUMNS},
}
_NODE_PATH = re.compile(r"^root((?:\.conditions\[\d+\])*)(.*)$")
# The suggestion at the end of check_name's message (replaced by one that is also free).
_TRY_NAME = re.compile(r"\s*Try '[a-z0-9_]*'\.$")


# --- request bodies ---------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DefinitionBody(_Body):
    """A definition being edited, and the audience it belongs to when editing one."""

    definition: dict[str, Any]
    audience_id: Annotated[int, Field(ge=1, lt=2**31)] | None = None


class RunBody(DefinitionBody):
    sample_size: Annotated[int, Field(ge=0, le=MAX_SAMPLE)] = 20


class NameBody(_Body):
    name: Annotated[str, Field(max_length=1000)]
    audience_id: Annotated[int, Field(ge=1, lt=2**31)] | None = None


Seconds = Annotated[int, Field(ge=1, le=10**9)]


class ForecastBody(DefinitionBody):
    refresh_interval_seconds: Seconds | None = None
    warmup: bool = True
    size: Annotated[int, Field(ge=0, le=10**12)] | None = None


class SaveBody(DefinitionBody):
    name: Annotated[str, Field(max_length=1000)]
    refresh_interval_seconds: Seconds | None = None
    warmup: bool = True
    description: Annotated[str, Field(max_length=2000)] = ""


# --- pages ----------------------------------------------------------------------------------


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _page(request: Request, audience: service.AudienceInfo | None) -> HTMLResponse:
    if audience is None:
        definition: dict[str, Any] = {"version": 1, "root": {"id": "g1", "kind": "and"}}
        info: dict[str, Any] = {}
    else:
        definition = json_ready(audience.definition)
        info = {
            "id": audience.id,
            "name": audience.name,
            "status": audience.status,
            "version": audience.current_version,
            "refresh_interval_seconds": audience.refresh_interval_seconds,
            "warmup": audience.warmup,
            "is_dynamic": audience.is_dynamic,
        }
    data = {
        "definition": definition,
        "audience": info,
        "intervals": [{"seconds": s, "label": label} for s, label in INTERVAL_CHOICES],
        # The warm-up only changes the schedule of intervals longer than this (service.py).
        "warmup_above_seconds": int(service.WARMUP_INTERVAL.total_seconds()),
    }
    return render(
        request,
        "builder/builder.html",
        {"audience": audience, "builder_data": data, "intervals": INTERVAL_CHOICES},
    )


@router.get("/audiences/new", response_class=HTMLResponse)
async def new_audience(request: Request, user: User) -> HTMLResponse:
    """The builder with an empty definition."""
    return _page(request, None)


@router.get("/audiences/{audience_id}/edit", response_class=HTMLResponse)
async def edit_audience(request: Request, audience_id: int, user: User) -> HTMLResponse:
    """The builder loaded with the audience's current definition."""
    audience = await run_in_threadpool(_get_audience, _runtime(request), audience_id)
    if audience.status == "deleted":
        raise Conflict(
            f"audience {audience.label} is deleted: restore it from the Deleted tab, then edit it"
        )
    return _page(request, audience)


def _get_audience(runtime: Runtime, audience_id: int) -> service.AudienceInfo:
    if not 0 < audience_id < 2**31:
        raise NotFound(f"there is no audience with id {audience_id}")
    return service.get(runtime.catalog, audience_id)


# --- validation -----------------------------------------------------------------------------


@dataclass
class NodeProblem:
    """One problem, on the node with ``id``; ``field`` is the part of the node at fault
    (``value``, ``window.last``, ``filters[0].value``) or empty for the whole node."""

    id: str
    path: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "path": self.path, "field": self.field, "message": self.message}


def _walk(node: Any, path: str = "root") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node dict of a raw definition tree, pre-order, with its JSON path."""
    if not isinstance(node, dict):
        return
    yield path, node
    children = node.get("conditions")
    if node.get("kind") in ("and", "or") and isinstance(children, list):
        for index, child in enumerate(children):
            yield from _walk(child, f"{path}.conditions[{index}]")


def _node_id(raw: dict[str, Any], path: str) -> str:
    value = raw.get("id")
    return value if isinstance(value, str) and value else path


def _locate(data: Any, error_path: str | None) -> NodeProblem | None:
    """The node a JSON path points into, and the rest of the path (the field)."""
    match = _NODE_PATH.match(error_path or "root")
    if match is None:
        return None
    node_part, rest = match.group(1), match.group(2).lstrip(".")
    node: Any = data.get("root") if isinstance(data, dict) else None
    path = "root"
    for index in re.findall(r"\[(\d+)\]", node_part):
        children = node.get("conditions") if isinstance(node, dict) else None
        if not isinstance(children, list) or int(index) >= len(children):
            break
        node = children[int(index)]
        path += f".conditions[{index}]"
    if not isinstance(node, dict):
        return NodeProblem(id="root", path="root", field=rest, message="")
    return NodeProblem(id=_node_id(node, path), path=path, field=rest, message="")


def find_problems(
    data: dict[str, Any], resolver: AudienceResolver | None, own_name: str | None = None
) -> tuple[list[NodeProblem], Definition | None]:
    """Every problem of a raw definition, each on its node (not only the first one), and the
    parsed definition when there is none. Conditions are checked one by one so that each
    incomplete condition is reported; then the whole tree (ids, audience cycles)."""
    root = data.get("root")
    if not isinstance(root, dict):
        return [NodeProblem("root", "root", "", "the definition has no root group")], None
    problems: list[NodeProblem] = []
    for path, node in _walk(root):
        node_id = _node_id(node, path)
        if node.get("kind") in ("and", "or"):
            children = node.get("conditions")
            if not isinstance(children, list) or not children:
                problems.append(
                    NodeProblem(
                        node_id,
                        path,
                        "conditions",
                        "this group is empty: add a condition to it or remove the group",
                    )
                )
            continue
        try:
            parse_definition({"version": 1, "root": node}, resolve_audience=resolver, name=own_name)
        except DefinitionError as exc:
            located = _locate({"root": node}, exc.path)
            field = located.field if located else ""
            problems.append(NodeProblem(node_id, path, field, exc.reason))
    if problems:
        return problems, None
    try:
        definition = parse_definition(data, resolve_audience=resolver, name=own_name)
    except DefinitionError as exc:
        located = _locate(data, exc.path) or NodeProblem("root", "root", "", "")
        located.message = exc.reason
        return [located], None
    return [], definition


def _windows_of(value: Any, field: str = "") -> Iterator[tuple[str, Window]]:
    """Every window inside a condition (its own, its filters' and steps' ``in_window``
    values), with the field it is in (``window``, ``filters[0].value``)."""
    if isinstance(value, RelativeWindow | CalendarWindow | AbsoluteWindow):
        yield field, value
    elif isinstance(value, BaseModel) and not isinstance(value, Group):
        for name in type(value).model_fields:
            yield from _windows_of(getattr(value, name), f"{field}.{name}" if field else name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _windows_of(item, f"{field}[{index}]")


def _kind(definition: Definition, resolver: AudienceResolver) -> dict[str, bool]:
    """``dynamic`` (R7, R8), and ``windowed``: whether any condition has a window at all, so
    that a static definition without one is not described as "fixed date ranges"."""
    windowed = any(
        True
        for _, node in iter_nodes(definition.root)
        if not isinstance(node, Group)
        for _ in _windows_of(node)
    )
    return {"dynamic": is_dynamic(definition, resolve_audience=resolver), "windowed": windowed}


def _outside_calendar(window: Window) -> str:
    """Why ``window`` cannot be computed, in words (not as the JSON it is)."""
    words = describe_window(window)
    if isinstance(window, AbsoluteWindow):
        return f"the window “{words}” reaches outside the years 1 to 9999: choose other dates"
    return (
        f"the window “{words}” reaches outside the years 1 to 9999: enter a smaller number, "
        "or choose dates (between dates)"
    )


def window_problems(definition: Definition, clock: Clock) -> list[NodeProblem]:
    """The windows that reach outside the calendar Segmint computes with (years 1 to 9999)
    as of ``clock``, each on its condition. The compiler refuses them only when the query
    runs, and without saying which condition holds them."""
    problems: list[NodeProblem] = []
    for path, node in iter_nodes(definition.root):
        if isinstance(node, Group):
            continue
        for field, window in _windows_of(node):
            try:
                window_bounds(window, clock)
            except DefinitionError:
                part = "last" if isinstance(window, RelativeWindow) and window.last else "mode"
                problems.append(
                    NodeProblem(node.id or path, path, f"{field}.{part}", _outside_calendar(window))
                )
    return problems


def _resolver_and_name(
    runtime: Runtime, audience_id: int | None
) -> tuple[AudienceResolver, str | None]:
    own_name = None
    if audience_id is not None:
        own_name = _get_audience(runtime, audience_id).name
    return catalog_resolver(runtime.catalog), own_name


def _checked(runtime: Runtime, body: DefinitionBody) -> tuple[list[NodeProblem], Any]:
    resolver, own_name = _resolver_and_name(runtime, body.audience_id)
    problems, definition = find_problems(body.definition, resolver, own_name)
    if definition is not None:
        problems = window_problems(definition, Clock.create(_now(), runtime.settings.timezone))
        if problems:
            definition = None
    return problems, (definition, resolver)


def _problems_json(problems: list[NodeProblem]) -> dict[str, Any]:
    count = len(problems)
    return {
        "valid": False,
        "errors": [p.to_dict() for p in problems],
        "message": f"{count} problem{'s' if count != 1 else ''} to fix before this can run",
    }


@router.post("/ui/builder/validate", dependencies=[Csrf])
async def validate(body: DefinitionBody, request: Request, user: User) -> dict[str, Any]:
    """Every problem of the definition by node id, or ``valid`` with its static/dynamic type
    and a plain-English summary."""

    def check() -> dict[str, Any]:
        problems, (definition, resolver) = _checked(_runtime(request), body)
        if problems:
            return _problems_json(problems)
        return {
            "valid": True,
            "errors": [],
            **_kind(definition, resolver),
            "summary": describe(definition.root),
        }

    return await run_in_threadpool(check)


@router.post("/ui/builder/estimate", dependencies=[Csrf])
async def estimate(body: DefinitionBody, request: Request, user: User) -> dict[str, Any]:
    """The live size estimate: the size now, or the problems that prevent one."""

    def count() -> dict[str, Any]:
        runtime = _runtime(request)
        problems, (definition, resolver) = _checked(runtime, body)
        if problems:
            return {**_problems_json(problems), "size": None}
        result = run_definition(
            runtime.warehouse,
            definition,
            as_of=_now(),
            timezone=runtime.settings.timezone,
            resolve_audience=resolver,
            sample_size=0,
        )
        return {
            "valid": True,
            "errors": [],
            "size": result.size,
            "profiles": result.profiles,
            **_kind(definition, resolver),
            "as_of": result.as_of.isoformat() + "Z",
        }

    return await run_in_threadpool(count)


@router.post("/ui/builder/run", dependencies=[Csrf])
async def run(body: RunBody, request: Request, user: User) -> dict[str, Any]:
    """Run Query: size, sample members, per-condition counts and explanations (R5, R28)."""

    def execute() -> dict[str, Any]:
        runtime = _runtime(request)
        problems, (definition, resolver) = _checked(runtime, body)
        if problems:
            return _problems_json(problems)
        result = run_definition(
            runtime.warehouse,
            definition,
            as_of=_now(),
            timezone=runtime.settings.timezone,
            resolve_audience=resolver,
            sample_size=body.sample_size,
        )
        return {
            "valid": True,
            "errors": [],
            **_kind(definition, resolver),
            **result.to_dict(),
        }

    return await run_in_threadpool(execute)


# --- names, forecast, save -----------------------------------------------------------------


def _name_problem(runtime: Runtime, name: str, audience_id: int | None) -> dict[str, Any] | None:
    """Why ``name`` cannot be used (with a valid, free suggestion), or ``None``."""
    try:
        check_name(name)
    except InvalidInput as exc:
        if not name.strip():
            return {
                "message": "enter a name: lowercase letters, digits and underscores, "
                "starting with a letter",
                "suggestion": None,
            }
        # The message and the button offer the same name, one no audience has.
        suggestion = _free_name(runtime, suggest_name(name))
        message = f"{_TRY_NAME.sub('', exc.message)} Try {suggestion!r}."
        return {"message": message, "suggestion": suggestion}
    try:
        other = service.get_by_name(runtime.catalog, name)
    except NotFound:
        return None
    if other.id == audience_id:
        return None
    suggestion = _free_name(runtime, name)
    return {
        "message": f"the name {name!r} is already used by {other.status} audience #{other.id}; "
        f"choose another name, e.g. {suggestion!r}",
        "suggestion": suggestion,
    }


def _free_name(runtime: Runtime, base: str) -> str:
    """``base``, or ``base_2``, ``base_3`` … whichever no audience (not deleted) has."""
    taken = {a.name for a in service.list_audiences(runtime.catalog) if a.name}
    if base not in taken:
        return base
    number = 2
    while f"{base[:60]}_{number}" in taken:
        number += 1
    return f"{base[:60]}_{number}"


@router.post("/ui/builder/names/check", dependencies=[Csrf])
async def check_name_endpoint(body: NameBody, request: Request, user: User) -> dict[str, Any]:
    """Whether a name can be used (R6); when not, why and a valid suggestion."""
    problem = await run_in_threadpool(_name_problem, _runtime(request), body.name, body.audience_id)
    if problem is None:
        return {"ok": True, "name": body.name}
    return {"ok": False, **problem}


@dataclass(frozen=True)
class _Plan:
    """An audience as it would be scheduled (for the forecast)."""

    is_dynamic: bool
    refresh_interval_seconds: int | None
    warmup: bool
    activated_at: dt.datetime | None


def _interval(seconds: int | None, dynamic: bool) -> dt.timedelta | None:
    interval = None if seconds is None else dt.timedelta(seconds=seconds)
    service.check_interval(dynamic, interval, label="this audience")
    return interval


@router.post("/ui/builder/forecast", dependencies=[Csrf])
async def forecast(body: ForecastBody, request: Request, user: User) -> dict[str, Any]:
    """Usage forecast for the next 30 days if the audience were activated now with these
    settings (R11): its refreshes × its size, and the workspace total with it."""

    def build() -> dict[str, Any]:
        runtime = _runtime(request)
        problems, (definition, resolver) = _checked(runtime, body)
        if problems:
            return _problems_json(problems)
        dynamic = is_dynamic(definition, resolve_audience=resolver)
        interval = _interval(body.refresh_interval_seconds if dynamic else None, dynamic)
        now = _now()
        size = body.size
        if size is None:
            size = run_definition(
                runtime.warehouse,
                definition,
                as_of=now,
                timezone=runtime.settings.timezone,
                resolve_audience=resolver,
                sample_size=0,
            ).size
        plan = _Plan(dynamic, int(interval.total_seconds()) if interval else None, body.warmup, now)
        end = now + dt.timedelta(days=usage.FORECAST_DAYS)
        refreshes = len(usage.refresh_times(plan, now, end)) if dynamic else 1
        events = refreshes * size
        current = usage.forecast_monthly(runtime.catalog, now)
        already = sum(r.events for r in current.rows if r.audience_id == body.audience_id)
        return {
            "valid": True,
            "dynamic": dynamic,
            "size": size,
            "refreshes": refreshes,
            "events": events,
            "days": usage.FORECAST_DAYS,
            "schedule": service.describe_schedule(plan, now),
            "workspace_total": current.total - already + events,
            "sentence": (
                f"About {events:,} events in the next {usage.FORECAST_DAYS} days: "
                f"{refreshes} refresh{'es' if refreshes != 1 else ''} × {size:,} members"
                if dynamic
                else f"About {events:,} events: computed once at activation ({size:,} members)"
            ),
        }

    return await run_in_threadpool(build)


@router.post("/ui/builder/impact", dependencies=[Csrf])
async def impact(body: DefinitionBody, request: Request, user: User) -> dict[str, Any]:
    """For an edit of an active audience: members entering and leaving if saved now (B3)."""

    def build() -> dict[str, Any]:
        runtime = _runtime(request)
        if body.audience_id is None:
            raise InvalidInput("impact needs the audience being edited", path="audience_id")
        audience = _get_audience(runtime, body.audience_id)
        if audience.status != "active":
            return {"available": False, "reason": f"the audience is {audience.status}"}
        problems, (definition, _) = _checked(runtime, body)
        if problems:
            return _problems_json(problems)
        result = operations.preview_impact(
            runtime.warehouse,
            runtime.catalog,
            audience.id,
            definition,
            timezone=runtime.settings.timezone,
        )
        return {
            "available": True,
            "summary": result.summary,
            "current": result.current,
            "new_size": result.new_size,
            "entering": result.entering,
            "leaving": result.leaving,
        }

    return await run_in_threadpool(build)


@router.post("/ui/builder/save", dependencies=[Csrf])
async def save(body: SaveBody, request: Request, user: User) -> JSONResponse:
    """Save & Activate: a new audience (draft, then activated) or a new version of the one
    being edited, activated with the chosen name and refresh settings; computed at once."""

    def run_save() -> JSONResponse:
        runtime = _runtime(request)
        problems, (definition, resolver) = _checked(runtime, body)
        if problems:
            return JSONResponse(_problems_json(problems), status_code=400)
        name = body.name.strip()
        problem = _name_problem(runtime, name, body.audience_id)
        if problem is not None:
            return JSONResponse({"field": "name", **problem}, status_code=400)
        dynamic = is_dynamic(definition, resolve_audience=resolver)
        interval = _interval(body.refresh_interval_seconds if dynamic else None, dynamic)
        now = _now()
        audience_id = body.audience_id
        if audience_id is None:
            draft = service.create_draft(
                runtime.catalog,
                definition,
                by=user.username,
                now=now,
                name=name,
                description=body.description,
            )
            audience_id, payload = draft.id, None
        else:
            payload = definition
        result = operations.activate_audience(
            runtime.warehouse,
            runtime.catalog,
            audience_id,
            name=name,
            refresh_interval=interval,
            warmup=body.warmup,
            by=user.username,
            timezone=runtime.settings.timezone,
            now=now,
            definition=payload,
            on_refreshed=after_refresh(request.app.state),
        )
        return JSONResponse(
            {
                "ok": True,
                "id": result.audience.id,
                "name": result.audience.name,
                "version": result.audience.current_version,
                "size": result.audience.size,
                "refresh_error": result.error,
                "url": f"/audiences/{result.audience.id}",
            }
        )

    return await run_in_threadpool(run_save)


# --- suggestions from tracked data -----------------------------------------------------------


@router.get("/ui/builder/suggest/events")
async def suggest_events(request: Request, user: User) -> dict[str, Any]:
    """Tracked event names, most frequent first."""
    rows = await run_in_threadpool(tracked_events, _runtime(request).warehouse)
    return {"events": [{"name": r.event, "count": r.count} for r in rows[:500]]}


def _key_json(info: Any) -> dict[str, Any]:
    types = sorted(info.types.items(), key=lambda item: -item[1])
    main = types[0][0] if types else "string"
    if main == "string" and info.numeric_strings and info.numeric_strings >= info.seen * 0.9:
        main = "number"
    return {"key": info.key, "type": main, "examples": info.examples}


@router.get("/ui/builder/suggest/properties")
async def suggest_properties(
    request: Request,
    user: User,
    event: Annotated[str, Query(min_length=1, max_length=500)],
) -> dict[str, Any]:
    """Property keys of one event with their main type and example values."""

    def build() -> list[dict[str, Any]]:
        try:
            return [_key_json(k) for k in event_properties(_runtime(request).warehouse, event)]
        except NotFound:
            return []

    return {"event": event, "properties": await run_in_threadpool(build)}


@router.get("/ui/builder/suggest/traits")
async def suggest_traits(request: Request, user: User) -> dict[str, Any]:
    """Profile trait keys with their main type and example values."""
    keys = await run_in_threadpool(trait_keys, _runtime(request).warehouse)
    return {"traits": [_key_json(k) for k in keys]}


@router.get("/ui/builder/suggest/values")
async def suggest_values(
    request: Request,
    user: User,
    field: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """Known values of a demographic, technology or UTM field (most common first):
    ``field`` is ``demographic.country``, ``technology.browser``, ``utm.source.first`` …"""
    column = _VALUE_COLUMNS.get(field)
    if column is None and field.startswith("utm.") and field.endswith(".any"):
        column = _VALUE_COLUMNS.get(field.removesuffix(".any") + ".last")
    if column is None:
        return {"field": field, "values": []}

    def build() -> list[dict[str, Any]]:
        rows = _runtime(request).warehouse.rows(
            f"SELECT {column}, count(*) FROM profiles WHERE {column} IS NOT NULL "
            f"AND {column} <> '' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {MAX_VALUES}"
        )
        return [{"value": str(value), "count": int(count)} for value, count in rows]

    return {"field": field, "values": await run_in_threadpool(build)}


@router.get("/ui/builder/suggest/audiences")
async def suggest_audiences(request: Request, user: User) -> dict[str, Any]:
    """Saved audiences (not deleted) that can be referenced by name."""
    rows = await run_in_threadpool(service.list_audiences, _runtime(request).catalog)
    return {
        "audiences": [{"name": a.name, "status": a.status, "size": a.size} for a in rows if a.name]
    }
