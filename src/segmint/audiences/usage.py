"""Usage metering (PRODUCT R11): each refresh consumes events equal to the audience's size at
that refresh — 5,000 members refreshed every 3 days is 5,000 events every 3 days.

The refresh module writes one ledger row per refresh with :func:`record_usage`; the rest
reads the ledger (per audience, per day, in total) or forecasts the next 30 days from the
current sizes and schedules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from segmint.audiences.service import (
    WARMUP_PERIOD,
    Schedulable,
    describe_schedule,
    next_interval,
)
from segmint.catalog import Catalog
from segmint.catalog.models import Audience, UsageRecord
from segmint.errors import Conflict, InvalidInput

FORECAST_DAYS = 30
MAX_DAYS = 3660  # a per-day listing longer than ten years is a mistake in the range


@dataclass(frozen=True)
class AudienceUsage:
    """Events consumed by one audience in a period, and by how many refreshes."""

    audience_id: int
    name: str | None
    status: str
    events: int
    refreshes: int


@dataclass(frozen=True)
class DayUsage:
    """Events consumed on one day (the workspace-time-zone day of the refresh)."""

    day: dt.date
    events: int
    refreshes: int


@dataclass(frozen=True)
class ForecastRow:
    """One active audience's expected consumption over the forecast period."""

    audience_id: int
    name: str | None
    is_dynamic: bool
    size: int | None
    schedule: str
    refreshes: int
    events: int
    note: str = ""


@dataclass(frozen=True)
class UsageForecast:
    """Expected consumption from ``start`` to ``end`` (30 days) at the current settings."""

    start: dt.datetime
    end: dt.datetime
    rows: list[ForecastRow]
    total: int
    assumptions: str


# --- writing ---------------------------------------------------------------------------------


def record_usage(
    session: Session,
    audience_id: int,
    refresh_id: str,
    day: dt.date,
    events: int,
    now: dt.datetime,
) -> bool:
    """Record that refresh ``refresh_id`` of ``audience_id`` consumed ``events`` on ``day``,
    inside the caller's transaction. Idempotent on ``refresh_id``: a second call for the same
    refresh records nothing and returns ``False``."""
    if events < 0:
        raise InvalidInput(f"a refresh cannot consume {events} events", path="events")
    existing = session.scalars(
        select(UsageRecord).where(UsageRecord.refresh_id == refresh_id)
    ).first()
    if existing is not None:
        if existing.audience_id != audience_id:
            raise Conflict(
                f"refresh {refresh_id} is already recorded for audience {existing.audience_id}, "
                f"not {audience_id}"
            )
        return False
    session.add(
        UsageRecord(
            audience_id=audience_id,
            refresh_id=refresh_id,
            day=day,
            recorded_at=now,
            events=events,
        )
    )
    session.flush()
    return True


# --- reading the ledger ----------------------------------------------------------------------


def usage_per_audience(
    catalog: Catalog, *, start: dt.date | None = None, end: dt.date | None = None
) -> list[AudienceUsage]:
    """Events and refreshes per audience from ``start`` to ``end`` (both days included;
    open-ended when omitted), largest consumer first. Deleted audiences are included."""
    _check_range(start, end)
    query = (
        select(
            Audience.id,
            Audience.name,
            Audience.status,
            func.coalesce(func.sum(UsageRecord.events), 0),
            func.count(UsageRecord.id),
        )
        .join(UsageRecord, UsageRecord.audience_id == Audience.id)
        .where(*_day_filter(start, end))
        .group_by(Audience.id, Audience.name, Audience.status)
    )
    with catalog.session() as session:
        rows = [
            AudienceUsage(audience_id, name, status, int(events), int(refreshes))
            for audience_id, name, status, events, refreshes in session.execute(query)
        ]
    return sorted(rows, key=lambda row: (-row.events, row.name or "", row.audience_id))


def usage_per_day(
    catalog: Catalog,
    *,
    start: dt.date,
    end: dt.date,
    audience_id: int | None = None,
) -> list[DayUsage]:
    """Events per day from ``start`` to ``end`` (both included), every day listed (zero when
    nothing ran), for one audience or all of them."""
    _check_range(start, end)
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"list at most {MAX_DAYS} days at a time", path="start")
    query = (
        select(UsageRecord.day, func.sum(UsageRecord.events), func.count(UsageRecord.id))
        .where(*_day_filter(start, end))
        .group_by(UsageRecord.day)
    )
    if audience_id is not None:
        query = query.where(UsageRecord.audience_id == audience_id)
    with catalog.session() as session:
        found = {day: (int(events), int(count)) for day, events, count in session.execute(query)}
    days = (start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    return [DayUsage(day, *found.get(day, (0, 0))) for day in days]


def total_usage(
    catalog: Catalog,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    audience_id: int | None = None,
) -> int:
    """All events consumed from ``start`` to ``end`` (both included; open-ended when
    omitted), by one audience or all of them."""
    _check_range(start, end)
    query = select(func.coalesce(func.sum(UsageRecord.events), 0)).where(*_day_filter(start, end))
    if audience_id is not None:
        query = query.where(UsageRecord.audience_id == audience_id)
    with catalog.session() as session:
        return int(session.execute(query).scalar_one())


def _check_range(start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            f"the range ends ({end}) before it starts ({start}); swap the dates", path="end"
        )


def _day_filter(start: dt.date | None, end: dt.date | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(UsageRecord.day >= start)
    if end is not None:
        conditions.append(UsageRecord.day <= end)
    return conditions


# --- forecast --------------------------------------------------------------------------------


def refresh_times(
    audience: Schedulable, first: dt.datetime, until: dt.datetime
) -> list[dt.datetime]:
    """The refreshes of a dynamic audience from ``first`` (its next due time) up to, not
    including, ``until``, following the schedule and its warm-up (:func:`next_interval`)."""
    times: list[dt.datetime] = []
    instant = first
    while instant < until:
        times.append(instant)
        step = next_interval(audience, instant)
        if step is None:
            break
        instant += step
    return times


def forecast_monthly(catalog: Catalog, now: dt.datetime) -> UsageForecast:
    """Expected consumption over the 30 days from ``now`` at the current settings: for each
    active audience, its size × its refreshes in that period (see ``assumptions``)."""
    end = now + dt.timedelta(days=FORECAST_DAYS)
    with catalog.session() as session:
        audiences = list(
            session.scalars(
                select(Audience).where(Audience.status == "active").order_by(Audience.name)
            )
        )
        rows = [_forecast_row(audience, now, end) for audience in audiences]
    return UsageForecast(
        start=now,
        end=end,
        rows=rows,
        total=sum(row.events for row in rows),
        assumptions=_assumptions(now, end),
    )


def _forecast_row(audience: Audience, now: dt.datetime, end: dt.datetime) -> ForecastRow:
    size = audience.size
    note = "" if size is not None else "not refreshed yet: its size is unknown and counted as 0"
    if audience.is_dynamic:
        due = audience.next_refresh_at
        first = now if due is None or due < now else due
        refreshes = len(refresh_times(audience, first, end))
    else:
        computed = audience.last_refresh_at is not None and (
            audience.activated_at is None or audience.last_refresh_at >= audience.activated_at
        )
        refreshes = 0 if computed else 1
        if computed:
            note = "static: computed once at activation, consumes nothing more"
    return ForecastRow(
        audience_id=audience.id,
        name=audience.name,
        is_dynamic=audience.is_dynamic,
        size=size,
        schedule=describe_schedule(audience, now),
        refreshes=refreshes,
        events=(size or 0) * refreshes,
        note=note,
    )


def _assumptions(start: dt.datetime, end: dt.datetime) -> str:
    warmup_days = WARMUP_PERIOD.days
    return (
        f"Forecast for {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC. Each refresh "
        "consumes events equal to the audience's size, taken as its size at the last refresh "
        "(sizes are assumed not to change). Dynamic audiences refresh when next due and then "
        f"at their interval, daily while their {warmup_days}-day warm-up after activation "
        "lasts. Static audiences are computed once at activation and consume nothing after "
        "that. Drafts, archived and deleted audiences consume nothing. Failed refreshes and "
        "manual refreshes are not counted."
    )
