"""``/api/v1/audiences``: the audience lifecycle, history, cohorts and usage over HTTP.

Thin: every handler validates its input and calls one service function. ``{ref}`` is an
audience id or name.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool

from segmint.api.auth import require_api_key
from segmint.audiences import history, operations, service, usage
from segmint.audiences.files import parse_interval
from segmint.audiences.service import AudienceInfo
from segmint.sync.worker import after_refresh

router = APIRouter(prefix="/api/v1", tags=["audiences"])
Caller = Depends(require_api_key)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateBody(_Body):
    definition: dict[str, Any]
    name: str | None = None
    description: str = ""


class DefinitionBody(_Body):
    definition: dict[str, Any]
    note: str = ""
    apply: Literal["from_now", "recompute_history"] = Field(
        "from_now",
        description="from_now: members change at the next refresh, history stays as it was; "
        "recompute_history: past membership is re-evaluated with the new definition.",
    )


class ImpactBody(_Body):
    definition: dict[str, Any]


class ActivateBody(_Body):
    name: str | None = None
    # strict: pydantic would otherwise take true for 1 second
    refresh_interval: StrictStr | StrictInt | None = Field(
        None, description="'1h' … '30d' (or seconds); leave out for static audiences."
    )
    warmup: bool = True
    definition: dict[str, Any] | None = None


class RestoreBody(_Body):
    name: str | None = None


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


def _now() -> dt.datetime:
    return operations.utcnow()


def audience_json(info: AudienceInfo) -> dict[str, Any]:
    """The public shape of an audience."""
    return {
        "id": info.id,
        "name": info.name,
        "description": info.description,
        "status": info.status,
        "type": "dynamic" if info.is_dynamic else "static",
        "version": info.current_version,
        "refresh_interval_seconds": info.refresh_interval_seconds,
        "warmup": info.warmup,
        "schedule": service.describe_schedule(info, _now()) if info.status == "active" else None,
        "size": info.size,
        "last_refresh_at": info.last_refresh_at,
        "next_refresh_at": info.next_refresh_at,
        "consecutive_failures": info.consecutive_failures,
        "last_error": info.last_error,
        "created_at": info.created_at,
        "created_by": info.created_by,
        "updated_at": info.updated_at,
        "activated_at": info.activated_at,
        "archived_at": info.archived_at,
        "deleted_at": info.deleted_at,
        "definition": info.definition.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _interval(value: str | int | None) -> dt.timedelta | None:
    return None if value is None else parse_interval(value)


@router.get("/audiences", summary="List audiences (optionally by status)")
async def list_audiences(
    request: Request,
    status: Literal["draft", "active", "archived", "deleted"] | None = None,
    _: str = Caller,
) -> dict[str, Any]:
    rows = await run_in_threadpool(service.list_audiences, _runtime(request).catalog, status)
    return {"audiences": [audience_json(a) for a in rows]}


@router.post("/audiences", summary="Create a draft audience", status_code=201)
async def create(body: CreateBody, request: Request, who: str = Caller) -> dict[str, Any]:
    info = await run_in_threadpool(
        lambda: service.create_draft(
            _runtime(request).catalog,
            body.definition,
            by=who,
            now=_now(),
            name=body.name,
            description=body.description,
        )
    )
    return audience_json(info)


@router.get("/audiences/usage", summary="Usage per audience, per day and in total (R11)")
async def usage_report(
    request: Request,
    start: dt.date | None = None,
    end: dt.date | None = None,
    _: str = Caller,
) -> dict[str, Any]:
    catalog = _runtime(request).catalog
    today = _now().date()
    first = start or today - dt.timedelta(days=29)
    last = end or today

    def build() -> dict[str, Any]:
        return {
            "start": first,
            "end": last,
            "total": usage.total_usage(catalog, start=first, end=last),
            "per_audience": [
                a.__dict__ for a in usage.usage_per_audience(catalog, start=first, end=last)
            ],
            "per_day": [d.__dict__ for d in usage.usage_per_day(catalog, start=first, end=last)],
        }

    return await run_in_threadpool(build)


@router.get("/audiences/usage/forecast", summary="Forecast of the next 30 days' usage")
async def usage_forecast(request: Request, _: str = Caller) -> dict[str, Any]:
    forecast = await run_in_threadpool(usage.forecast_monthly, _runtime(request).catalog, _now())
    return {
        "start": forecast.start,
        "end": forecast.end,
        "total": forecast.total,
        "assumptions": forecast.assumptions,
        "audiences": [row.__dict__ for row in forecast.rows],
    }


@router.get("/audiences/overlap", summary="Overlap of two audiences' members")
async def overlap(
    request: Request,
    a: str = Query(..., description="id or name"),
    b: str = Query(..., description="id or name"),
    as_of: dt.datetime | None = None,
    _: str = Caller,
) -> dict[str, Any]:
    rt = _runtime(request)

    def build() -> dict[str, Any]:
        first = operations.resolve_ref(rt.catalog, a)
        second = operations.resolve_ref(rt.catalog, b)
        result = history.overlap(rt.warehouse, first.id, second.id, as_of=as_of)
        return {
            "a": first.label,
            "b": second.label,
            "both": result.both,
            "only_a": result.only_a,
            "only_b": result.only_b,
            "union": result.union,
        }

    return await run_in_threadpool(build)


@router.get("/audiences/{ref}", summary="One audience")
async def show(ref: str, request: Request, _: str = Caller) -> dict[str, Any]:
    info = await run_in_threadpool(operations.resolve_ref, _runtime(request).catalog, ref)
    return audience_json(info)


@router.put("/audiences/{ref}/definition", summary="Save a new version of the definition")
async def update(
    ref: str, body: DefinitionBody, request: Request, who: str = Caller
) -> dict[str, Any]:
    rt = _runtime(request)

    def save() -> dict[str, Any]:
        saved = operations.save_definition(
            rt.warehouse,
            rt.catalog,
            ref,
            body.definition,
            by=who,
            timezone=rt.settings.timezone,
            note=body.note,
            apply=body.apply,
        )
        return {
            "audience": audience_json(saved.audience),
            "version": saved.version,
            "applies": body.apply,
            "recomputed_refreshes": saved.recomputed_refreshes,
        }

    return await run_in_threadpool(save)


@router.post("/audiences/{ref}/impact", summary="Impact of an edit before saving (B3)")
async def impact(ref: str, body: ImpactBody, request: Request, _: str = Caller) -> dict[str, Any]:
    rt = _runtime(request)

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(rt.catalog, ref)
        plan = service.plan_edit(rt.catalog, audience.id, body.definition)
        result = operations.preview_impact(
            rt.warehouse, rt.catalog, ref, body.definition, timezone=rt.settings.timezone
        )
        return {
            "summary": result.summary,
            "current": result.current,
            "new_size": result.new_size,
            "entering": result.entering,
            "leaving": result.leaving,
            "sample_entering": result.sample_entering,
            "sample_leaving": result.sample_leaving,
            "destinations": result.destinations,
            "changes": plan.diff.summary,
            "needs_activation": plan.needs_activation,
            "apply_choices": {
                "from_now": "members change at the next refresh; history is kept as it was",
                "recompute_history": "past membership is re-evaluated with the new definition "
                "(events already sent stay; the next refresh reconciles current members)",
            },
        }

    return await run_in_threadpool(build)


@router.post("/audiences/{ref}/activate", summary="Save & Activate (computes it now)")
async def activate(
    ref: str, body: ActivateBody, request: Request, who: str = Caller
) -> JSONResponse:
    rt = _runtime(request)
    result = await run_in_threadpool(
        lambda: operations.activate_audience(
            rt.warehouse,
            rt.catalog,
            ref,
            name=body.name,
            refresh_interval=_interval(body.refresh_interval),
            warmup=body.warmup,
            by=who,
            timezone=rt.settings.timezone,
            definition=body.definition,
            on_refreshed=after_refresh(request.app.state),
        )
    )
    payload: dict[str, Any] = {"audience": audience_json(result.audience)}
    if result.refresh is not None:
        payload["refresh"] = result.refresh.__dict__
    if result.error:
        payload["refresh_error"] = result.error
    return JSONResponse(jsonable(payload))


@router.post("/audiences/{ref}/archive", summary="Turn off: stop refreshing and syncing")
async def archive(ref: str, request: Request, who: str = Caller) -> dict[str, Any]:
    return await _transition(request, ref, "archive", who)


@router.delete("/audiences/{ref}", summary="Delete (restorable)")
async def delete(ref: str, request: Request, who: str = Caller) -> dict[str, Any]:
    return await _transition(request, ref, "delete", who)


@router.post("/audiences/{ref}/restore", summary="Restore an archived or deleted audience")
async def restore(
    ref: str, request: Request, body: RestoreBody | None = None, who: str = Caller
) -> dict[str, Any]:
    catalog = _runtime(request).catalog

    def run() -> AudienceInfo:
        audience = operations.resolve_ref(catalog, ref, deleted=True)
        return service.restore(
            catalog, audience.id, by=who, now=_now(), name=body.name if body else None
        )

    return audience_json(await run_in_threadpool(run))


async def _transition(request: Request, ref: str, verb: str, who: str) -> dict[str, Any]:
    catalog = _runtime(request).catalog
    action = {"archive": service.archive, "delete": service.delete}[verb]

    def run() -> AudienceInfo:
        audience = operations.resolve_ref(catalog, ref)
        return action(catalog, audience.id, by=who, now=_now())

    return audience_json(await run_in_threadpool(run))


@router.post("/audiences/{ref}/refresh", summary="Refresh now")
async def refresh(ref: str, request: Request, _: str = Caller) -> JSONResponse:
    rt = _runtime(request)
    result = await run_in_threadpool(
        lambda: operations.refresh_by_ref(
            rt.warehouse,
            rt.catalog,
            ref,
            timezone=rt.settings.timezone,
            on_refreshed=after_refresh(request.app.state),
        )
    )
    return JSONResponse(jsonable(result.__dict__))


@router.get("/audiences/{ref}/versions", summary="Every version, with who and when")
async def versions(ref: str, request: Request, _: str = Caller) -> dict[str, Any]:
    catalog = _runtime(request).catalog

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(catalog, ref)
        return {
            "versions": [
                {
                    "version": v.version,
                    "created_at": v.created_at,
                    "created_by": v.created_by,
                    "note": v.note,
                    "definition": v.definition.model_dump(
                        mode="json", by_alias=True, exclude_none=True
                    ),
                }
                for v in service.versions(catalog, audience.id)
            ]
        }

    return await run_in_threadpool(build)


@router.get("/audiences/{ref}/versions/{old}/diff/{new}", summary="What changed")
async def diff(ref: str, old: int, new: int, request: Request, _: str = Caller) -> dict[str, Any]:
    catalog = _runtime(request).catalog

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(catalog, ref)
        result = service.diff_versions(catalog, audience.id, old, new)
        return {"changes": result.summary, "text": result.text}

    return await run_in_threadpool(build)


@router.get("/audiences/{ref}/history", summary="Size over time, entered and left (R12)")
async def size_history(ref: str, request: Request, _: str = Caller) -> dict[str, Any]:
    rt = _runtime(request)

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(rt.catalog, ref)
        points = history.size_over_time(rt.warehouse, audience.id)
        return {"audience": audience.label, "refreshes": [p.__dict__ for p in points]}

    return await run_in_threadpool(build)


@router.get("/audiences/{ref}/retention", summary="How many of a cohort stayed (B2)")
async def retention(
    ref: str,
    request: Request,
    refresh_id: str | None = Query(
        None,
        max_length=100,
        description="The refresh whose entrants are the cohort (default: the first).",
    ),
    _: str = Caller,
) -> dict[str, Any]:
    """The cohort that entered in one refresh, and for it and every later refresh how many
    of them were members then."""
    rt = _runtime(request)

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(rt.catalog, ref)
        points = history.cohort_retention(rt.warehouse, audience.id, refresh_id or None)
        start = points[0]
        return {
            "audience": audience.label,
            "cohort": {
                "refresh_id": start.refresh_id,
                "as_of": start.as_of,
                "size": start.cohort_size,
            },
            "points": [
                {
                    "refresh_id": p.refresh_id,
                    "as_of": p.as_of,
                    "retained": p.retained,
                    "rate": round(p.rate, 4),
                }
                for p in points
            ],
        }

    return await run_in_threadpool(build)


@router.get("/audiences/{ref}/members", summary="Members now, or as of an instant")
async def members(
    ref: str,
    request: Request,
    as_of: dt.datetime | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    _: str = Caller,
) -> dict[str, Any]:
    rt = _runtime(request)

    def build() -> dict[str, Any]:
        audience = operations.resolve_ref(rt.catalog, ref)
        instant = as_of or _now()
        ids = history.members_as_of(rt.warehouse, audience.id, instant, limit=limit)
        total = history.size_as_of(rt.warehouse, audience.id, instant)
        return {"audience": audience.label, "as_of": instant, "total": total, "profile_ids": ids}

    return await run_in_threadpool(build)


def jsonable(value: Any) -> Any:
    """Datetimes and dates as ISO text, recursively."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
