"""Window bounds from as_of + workspace zone, including DST changes in New York
(2025-03-09 spring forward, 2025-11-02 fall back)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from segmint.compiler.windows import Bounds, Clock, window_bounds
from segmint.definitions.errors import DefinitionError
from segmint.definitions.model import AbsoluteWindow, CalendarWindow, RelativeWindow
from tests.compiler.fixtures import Warehouse, ev

NY = "America/New_York"
UTC = dt.datetime


def bounds(window: Any, as_of: dt.datetime, zone: str = NY) -> Bounds:
    return window_bounds(window, Clock.create(as_of, zone))


def rel(**fields: Any) -> RelativeWindow:
    return RelativeWindow(**fields)


def cal(unit: str, from_ago: int = 0, to_ago: int | None = None) -> CalendarWindow:
    return CalendarWindow(unit=unit, from_ago=from_ago, to_ago=to_ago)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("window", "as_of", "start", "end"),
    [
        # exact units
        (
            rel(last=90, unit="minutes"),
            UTC(2025, 3, 9, 7, 30),
            UTC(2025, 3, 9, 6, 0),
            UTC(2025, 3, 9, 7, 30),
        ),
        (rel(last=24, unit="hours"), UTC(2025, 3, 9, 12), UTC(2025, 3, 8, 12), UTC(2025, 3, 9, 12)),
        # a local day across spring forward is 23 hours
        (rel(last=1, unit="days"), UTC(2025, 3, 9, 12), UTC(2025, 3, 8, 13), UTC(2025, 3, 9, 12)),
        # ... and across fall back 25 hours
        (
            rel(last=1, unit="days"),
            UTC(2025, 11, 2, 12),
            UTC(2025, 11, 1, 11),
            UTC(2025, 11, 2, 12),
        ),
        # a start in the spring-forward gap (02:30 local) uses the offset before the change
        (
            rel(last=1, unit="days"),
            UTC(2025, 3, 10, 6, 30),
            UTC(2025, 3, 9, 7, 30),
            UTC(2025, 3, 10, 6, 30),
        ),
        # an ambiguous start (01:30 local on 11-02) is its first (daylight) occurrence
        (
            rel(last=1, unit="days"),
            UTC(2025, 11, 3, 6, 30),
            UTC(2025, 11, 2, 5, 30),
            UTC(2025, 11, 3, 6, 30),
        ),
        (
            rel(last=1, unit="weeks"),
            UTC(2025, 3, 12, 12),
            UTC(2025, 3, 5, 13),
            UTC(2025, 3, 12, 12),
        ),
        # months step calendar months, clamping the day
        (
            rel(last=1, unit="months"),
            UTC(2025, 3, 31, 16),
            UTC(2025, 2, 28, 17),
            UTC(2025, 3, 31, 16),
        ),
        (
            rel(from_ago=14, to_ago=7, unit="days"),
            UTC(2025, 3, 20, 12),
            UTC(2025, 3, 6, 13),
            UTC(2025, 3, 13, 12),
        ),
        # calendar: yesterday = the 23-hour 2025-03-09
        (cal("day", 1), UTC(2025, 3, 10, 12), UTC(2025, 3, 9, 5), UTC(2025, 3, 10, 4)),
        # today on the 25-hour 2025-11-02, capped at as_of
        (cal("day", 0), UTC(2025, 11, 2, 12), UTC(2025, 11, 2, 4), UTC(2025, 11, 2, 12)),
        (cal("day", 1), UTC(2025, 11, 3, 12), UTC(2025, 11, 2, 4), UTC(2025, 11, 3, 5)),
        # weeks start on Monday: 2025-03-12 is a Wednesday; last week = Mar 3 .. Mar 10
        (cal("week", 1), UTC(2025, 3, 12, 12), UTC(2025, 3, 3, 5), UTC(2025, 3, 10, 4)),
        (cal("month", 1), UTC(2025, 3, 12, 12), UTC(2025, 2, 1, 5), UTC(2025, 3, 1, 5)),
        (cal("month", 0), UTC(2025, 11, 12, 12), UTC(2025, 11, 1, 4), UTC(2025, 11, 12, 12)),
        (cal("year", 1), UTC(2025, 3, 12, 12), UTC(2024, 1, 1, 5), UTC(2025, 1, 1, 5)),
        # calendar days 14 to 7 ago, both included
        (cal("day", 14, 7), UTC(2025, 3, 20, 12), UTC(2025, 3, 6, 5), UTC(2025, 3, 14, 4)),
        # local date of as_of: 2025-03-10 03:00 UTC is still 2025-03-09 in New York
        (cal("day", 0), UTC(2025, 3, 10, 3), UTC(2025, 3, 9, 5), UTC(2025, 3, 10, 3)),
    ],
)
def test_window_bounds_in_new_york(
    window: Any, as_of: dt.datetime, start: dt.datetime, end: dt.datetime
) -> None:
    assert bounds(window, as_of) == Bounds(start, end)


def test_absolute_dates_are_local_midnight_and_aware_times_kept() -> None:
    window = AbsoluteWindow.model_validate(
        {"from": "2025-03-09", "to": "2025-03-10T12:00:00+00:00"}
    )
    assert bounds(window, UTC(2026, 1, 1)) == Bounds(UTC(2025, 3, 9, 5), UTC(2025, 3, 10, 12))


def test_absolute_window_is_capped_at_as_of() -> None:
    window = AbsoluteWindow.model_validate({"from": "2025-03-01"})
    assert bounds(window, UTC(2025, 3, 5), "UTC") == Bounds(UTC(2025, 3, 1), UTC(2025, 3, 5))


def test_aware_as_of_is_converted_to_utc() -> None:
    as_of = dt.datetime(2025, 3, 9, 8, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
    assert bounds(None, as_of) == Bounds(None, UTC(2025, 3, 9, 12))


def test_yesterday_across_spring_forward_selects_local_day(wh: Warehouse) -> None:
    for pid in (1, 2, 3, 4):
        wh.profile(pid)
    wh.event(1, "x", UTC(2025, 3, 9, 5))  # 00:00 EST on the 9th: first instant of the day
    wh.event(2, "x", UTC(2025, 3, 9, 4, 59))  # 23:59 on the 8th
    wh.event(3, "x", UTC(2025, 3, 10, 3, 59))  # 23:59 EDT on the 9th
    wh.event(4, "x", UTC(2025, 3, 10, 4))  # 00:00 EDT on the 10th
    node = ev("x", window={"type": "calendar", "unit": "day", "from_ago": 1})
    assert wh.members(node, as_of=UTC(2025, 3, 10, 12), timezone=NY) == {1, 3}


def test_today_across_fall_back_is_25_hours(wh: Warehouse) -> None:
    for pid in (1, 2, 3):
        wh.profile(pid)
    wh.event(1, "x", UTC(2025, 11, 2, 4))  # 00:00 EDT
    wh.event(2, "x", UTC(2025, 11, 2, 3, 59))  # 23:59 EDT on the 1st
    wh.event(3, "x", UTC(2025, 11, 3, 4, 59))  # 23:59 EST on the 2nd
    node = ev("x", window={"type": "calendar", "unit": "day", "from_ago": 0})
    assert wh.members(node, as_of=UTC(2025, 11, 3, 4, 59, 30), timezone=NY) == {1, 3}


@pytest.mark.parametrize(
    ("window", "as_of"),
    [
        (rel(last=999_999_999, unit="days"), dt.datetime(2025, 3, 15)),
        (rel(last=30, unit="days"), dt.datetime(1, 1, 5)),
        (rel(last=10**6, unit="months"), dt.datetime(2025, 3, 15)),
        (cal("year", from_ago=3000), dt.datetime(2025, 3, 15)),
    ],
)
def test_a_window_beyond_the_calendar_is_refused_with_what_to_do(
    window: Any, as_of: dt.datetime
) -> None:
    """Python's dates run from year 1 to 9999: a window reaching past them is a definition
    error naming the window, not an overflow deep in date arithmetic."""
    with pytest.raises(DefinitionError, match="reaches outside the years 1 to 9999") as caught:
        bounds(window, as_of)
    assert "ask for fewer units, or use an absolute window" in str(caught.value)
