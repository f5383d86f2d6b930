"""The Usage page (R11): events consumed per day and per audience, and the monthly forecast."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from segmint.audiences import usage
from segmint.web.auth import current_user
from segmint.web.deps import runtime_of, utcnow
from segmint.web.pages.audiences import _script_json
from segmint.web.templating import render

router = APIRouter(dependencies=[Depends(current_user)])

PERIODS = (7, 30, 90, 365)


@router.get("/usage")
async def usage_page(request: Request, days: Annotated[int, Query(ge=1, le=366)] = 30) -> Response:
    rt = runtime_of(request)
    now = utcnow()

    def build() -> dict[str, Any]:
        today = now.date()
        start = today - dt.timedelta(days=days - 1)
        per_day = usage.usage_per_day(rt.catalog, start=start, end=today)
        per_audience = usage.usage_per_audience(rt.catalog, start=start, end=today)
        forecast = usage.forecast_monthly(rt.catalog, now)
        chart = {
            "x": [int(dt.datetime.combine(d.day, dt.time(), dt.UTC).timestamp()) for d in per_day],
            "daily": True,
            "series": [{"label": "Events", "values": [d.events for d in per_day], "bars": True}],
        }
        return {
            "days": days,
            "periods": PERIODS,
            "start": start,
            "end": today,
            "per_day": per_day,
            "per_audience": per_audience,
            "total": sum(d.events for d in per_day),
            "forecast": forecast,
            "chart": _script_json(chart),
        }

    data = await run_in_threadpool(build)
    return render(request, "usage/page.html", data)
