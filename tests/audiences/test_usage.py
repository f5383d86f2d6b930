"""Usage metering (R11): the ledger per audience, per day and in total, and the 30-day
forecast, with hand-checked numbers — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from segmint.audiences.service import activate, archive, create_draft, delete
from segmint.audiences.usage import (
    forecast_monthly,
    record_usage,
    refresh_times,
    total_usage,
    usage_per_audience,
    usage_per_day,
)
from segmint.catalog import Catalog, open_catalog
from segmint.catalog.models import Audience
from segmint.errors import Conflict, InvalidInput

T0 = dt.datetime(2025, 6, 1, 9, 0)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
D1, D2, D3 = dt.date(2025, 6, 1), dt.date(2025, 6, 2), dt.date(2025, 6, 3)


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    catalog = open_catalog(catalog_url)
    yield catalog
    catalog.dispose()


def rolling() -> dict[str, Any]:
    window = {"type": "relative", "last": 30, "unit": "days"}
    return {"root": {"kind": "event", "event": "product_viewed", "window": window}}


def fixed() -> dict[str, Any]:
    window = {"type": "absolute", "from": "2025-10-01", "to": "2026-01-01"}
    return {"root": {"kind": "event", "event": "order_completed", "window": window}}


def audience(
    catalog: Catalog,
    name: str,
    *,
    definition: dict[str, Any] | None = None,
    interval: dt.timedelta | None = DAY,
    warmup: bool = True,
    activated_at: dt.datetime = T0,
    **refreshed: Any,
) -> int:
    """An active audience activated at ``activated_at``; ``refreshed`` sets the columns the
    refresh module maintains (size, last_refresh_at, next_refresh_at)."""
    info = create_draft(catalog, definition or rolling(), by="ana", now=activated_at)
    activate(
        catalog,
        info.id,
        name=name,
        refresh_interval=interval,
        warmup=warmup,
        by="ana",
        now=activated_at,
    )
    with catalog.session() as session:
        row = session.get(Audience, info.id)
        assert row is not None
        for key, value in refreshed.items():
            setattr(row, key, value)
    return info.id


def record(catalog: Catalog, audience_id: int, refresh_id: str, day: dt.date, events: int) -> bool:
    with catalog.session() as session:
        return record_usage(session, audience_id, refresh_id, day, events, T0)


# --- the ledger ------------------------------------------------------------------------------


def test_record_usage_is_idempotent_on_the_refresh_id(catalog: Catalog) -> None:
    a = audience(catalog, "viewers")
    assert record(catalog, a, "r1", D1, 5000)
    assert not record(catalog, a, "r1", D1, 5000)
    assert total_usage(catalog) == 5000


def test_record_usage_refuses_a_refresh_of_another_audience_and_negative_counts(
    catalog: Catalog,
) -> None:
    a, b = audience(catalog, "a"), audience(catalog, "b")
    record(catalog, a, "r1", D1, 10)
    with pytest.raises(Conflict, match="already recorded for audience"):
        record(catalog, b, "r1", D1, 10)
    with pytest.raises(InvalidInput, match="-1 events"):
        record(catalog, a, "r2", D1, -1)


def test_usage_per_audience_per_day_and_in_total(catalog: Catalog) -> None:
    a, b = audience(catalog, "viewers"), audience(catalog, "buyers")
    record(catalog, a, "a1", D1, 5000)
    record(catalog, a, "a2", D3, 5200)
    record(catalog, b, "b1", D1, 300)
    delete(catalog, b, by="ana", now=T0)  # deleted audiences keep their usage

    assert [(u.name, u.status, u.events, u.refreshes) for u in usage_per_audience(catalog)] == [
        ("viewers", "active", 10200, 2),
        ("buyers", "deleted", 300, 1),
    ]
    assert [(u.name, u.events) for u in usage_per_audience(catalog, start=D2)] == [
        ("viewers", 5200)
    ]
    assert [(d.day, d.events, d.refreshes) for d in usage_per_day(catalog, start=D1, end=D3)] == [
        (D1, 5300, 2),
        (D2, 0, 0),
        (D3, 5200, 1),
    ]
    per_day_a = usage_per_day(catalog, start=D1, end=D2, audience_id=a)
    assert [d.events for d in per_day_a] == [5000, 0]
    assert total_usage(catalog) == 10500
    assert total_usage(catalog, start=D1, end=D1) == 5300
    assert total_usage(catalog, audience_id=b) == 300


def test_a_range_that_ends_before_it_starts_is_refused(catalog: Catalog) -> None:
    with pytest.raises(InvalidInput, match="swap the dates") as caught:
        usage_per_day(catalog, start=D3, end=D1)
    assert caught.value.path == "end"


# --- the forecast ----------------------------------------------------------------------------


class Schedule:
    def __init__(self, interval: dt.timedelta, warmup: bool, activated_at: dt.datetime) -> None:
        self.is_dynamic = True
        self.refresh_interval_seconds = int(interval.total_seconds())
        self.warmup = warmup
        self.activated_at = activated_at


def test_refresh_times_follow_the_warm_up_then_the_interval() -> None:
    times = refresh_times(Schedule(7 * DAY, True, T0), T0, T0 + 30 * DAY)
    assert [(t - T0) / DAY for t in times] == [0, 1, 2, 3, 10, 17, 24]


def test_forecast_multiplies_sizes_by_refreshes_in_the_next_30_days(catalog: Catalog) -> None:
    # just activated, weekly, warm-up on: refreshes on days 0, 1, 2, 3, 10, 17, 24 → 7
    weekly = audience(catalog, "a_weekly", interval=7 * DAY, size=5000, next_refresh_at=T0)
    # every 3 days, no warm-up, next due tomorrow: days 1, 4, …, 28 → 10 (R11's example)
    every3 = audience(
        catalog,
        "b_every3",
        interval=3 * DAY,
        warmup=False,
        activated_at=T0 - 60 * DAY,
        size=5000,
        next_refresh_at=T0 + DAY,
    )
    # activated 2 days ago, weekly: day 0 (still warming up), then 1, 8, 15, 22, 29 → 6
    late = audience(
        catalog,
        "c_late",
        interval=7 * DAY,
        activated_at=T0 - 2 * DAY,
        size=200,
        next_refresh_at=T0 - HOUR,  # overdue: runs now
    )
    # every 6 hours: the warm-up changes nothing: 4 a day → 120
    hourly6 = audience(catalog, "d_6h", interval=6 * HOUR, size=10, next_refresh_at=T0)
    # static, already computed: nothing more
    static_done = audience(
        catalog,
        "e_static",
        definition=fixed(),
        interval=None,
        size=1000,
        last_refresh_at=T0,
        next_refresh_at=None,
    )
    # static, activated but not computed yet: one refresh of unknown size
    static_due = audience(catalog, "f_static_due", definition=fixed(), interval=None)
    # archived: nothing
    gone = audience(catalog, "g_archived", size=99999)
    archive(catalog, gone, by="ana", now=T0)

    forecast = forecast_monthly(catalog, T0)
    rows = {row.audience_id: (row.refreshes, row.events) for row in forecast.rows}
    assert rows == {
        weekly: (7, 35000),
        every3: (10, 50000),
        late: (6, 1200),
        hourly6: (120, 1200),
        static_done: (0, 0),
        static_due: (1, 0),
    }
    assert forecast.total == 35000 + 50000 + 1200 + 1200 == 87400
    assert (forecast.start, forecast.end) == (T0, T0 + 30 * DAY)
    notes = {row.name: row.note for row in forecast.rows}
    assert "size is unknown" in notes["f_static_due"]
    assert "computed once" in notes["e_static"]
    by_name = {row.name: row.schedule for row in forecast.rows}
    assert by_name["a_weekly"] == "daily for the first 3 days (until 2025-06-04), then every 7 days"
    assert "each refresh consumes events equal to the audience's size" in (
        forecast.assumptions.lower()
    )
    assert "archived" in forecast.assumptions and "warm-up" in forecast.assumptions


def test_forecast_is_empty_without_active_audiences(catalog: Catalog) -> None:
    forecast = forecast_monthly(catalog, T0)
    assert forecast.rows == [] and forecast.total == 0
