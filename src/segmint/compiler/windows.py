"""Windows → naive UTC instants, computed in Python from ``as_of`` and the workspace zone.

See docs/definition-semantics.md §3. Every window is ``[start, end)`` capped at ``as_of``;
local wall times become instants with ``fold=0`` (first occurrence when ambiguous, the offset
before the transition when in a spring-forward gap).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from segmint.definitions.describe import describe_window
from segmint.definitions.errors import DefinitionError
from segmint.definitions.model import AbsoluteWindow, CalendarWindow, RelativeWindow, Window


@dataclass(frozen=True)
class Clock:
    """The evaluation instant (naive UTC) and the workspace time zone."""

    as_of: dt.datetime
    zone: ZoneInfo

    @classmethod
    def create(cls, as_of: dt.datetime, timezone: str) -> Clock:
        """A clock for ``as_of`` (aware, or naive meaning UTC) in the IANA zone ``timezone``."""
        if as_of.tzinfo is not None:
            as_of = as_of.astimezone(dt.UTC).replace(tzinfo=None)
        return cls(as_of=as_of, zone=ZoneInfo(timezone))

    @property
    def local_now(self) -> dt.datetime:
        """``as_of`` as a naive local wall time in the workspace zone."""
        return self.as_of.replace(tzinfo=dt.UTC).astimezone(self.zone).replace(tzinfo=None)

    def instant(self, local: dt.datetime) -> dt.datetime:
        """A naive local wall time → naive UTC instant (fold=0)."""
        aware = local.replace(tzinfo=self.zone, fold=0)
        return aware.astimezone(dt.UTC).replace(tzinfo=None)

    def midnight(self, day: dt.date) -> dt.datetime:
        """The instant local midnight of ``day`` begins."""
        return self.instant(dt.datetime(day.year, day.month, day.day))

    def to_instant(self, value: dt.date | dt.datetime) -> dt.datetime:
        """A date (local midnight), naive date-time (local) or aware date-time → naive UTC."""
        if not isinstance(value, dt.datetime):
            return self.midnight(value)
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return self.instant(value)

    def first_date_from(self, bound: dt.datetime, *, strict: bool = False) -> dt.date:
        """The first local date whose midnight is at or after (``strict``: after) ``bound``."""
        local = bound.replace(tzinfo=dt.UTC).astimezone(self.zone).date()
        for candidate in (local - dt.timedelta(days=1), local, local + dt.timedelta(days=1)):
            start = self.midnight(candidate)
            if start > bound or (start == bound and not strict):
                return candidate
        return local + dt.timedelta(days=2)  # unreachable for real zones


@dataclass(frozen=True)
class Bounds:
    """An effective window ``[start, end)`` in naive UTC; ``start`` None means unbounded."""

    start: dt.datetime | None
    end: dt.datetime


def window_bounds(window: Window | None, clock: Clock) -> Bounds:
    """The effective interval of ``window`` (no window: everything before ``as_of``)."""
    if window is None:
        return Bounds(None, clock.as_of)
    start: dt.datetime | None
    end: dt.datetime | None
    try:
        if isinstance(window, RelativeWindow):
            start, end = _relative(window, clock)
        elif isinstance(window, CalendarWindow):
            start, end = _calendar(window, clock)
        else:
            start, end = _absolute(window, clock)
    except (OverflowError, ValueError):  # date arithmetic past year 1 or 9999
        shown = describe_window(window)
        as_of = clock.as_of.isoformat(sep=" ", timespec="minutes")
        raise DefinitionError(
            f"the window “{shown}” reaches outside the years 1 to 9999 as of {as_of} UTC: "
            "ask for fewer units, or use an absolute window"
        ) from None
    capped = clock.as_of if end is None else min(end, clock.as_of)
    return Bounds(start, capped)


def _relative(window: RelativeWindow, clock: Clock) -> tuple[dt.datetime, dt.datetime]:
    start_ago, end_ago = window.bounds_ago()
    unit = window.unit
    if unit in ("minutes", "hours"):
        step = dt.timedelta(**{unit: 1})
        return clock.as_of - start_ago * step, clock.as_of - end_ago * step
    local = clock.local_now
    return clock.instant(_back(local, unit, start_ago)), clock.instant(_back(local, unit, end_ago))


def _back(local: dt.datetime, unit: str, amount: int) -> dt.datetime:
    if unit == "days":
        return local - dt.timedelta(days=amount)
    if unit == "weeks":
        return local - dt.timedelta(weeks=amount)
    return add_months(local, -amount)


def add_months(value: dt.datetime, months: int) -> dt.datetime:
    """``value`` moved by whole calendar months, the day clamped to the month's length."""
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def _calendar(window: CalendarWindow, clock: Clock) -> tuple[dt.datetime, dt.datetime]:
    first_ago, last_ago = window.bounds_ago()
    today = clock.local_now.date()
    return (
        clock.midnight(_unit_start(today, window.unit, first_ago)),
        clock.midnight(_unit_start(today, window.unit, last_ago - 1)),
    )


def _unit_start(today: dt.date, unit: str, ago: int) -> dt.date:
    """First day of the calendar unit ``ago`` units before the one holding ``today``
    (negative ``ago``: after)."""
    if unit == "day":
        return today - dt.timedelta(days=ago)
    if unit == "week":
        return today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=ago)
    if unit == "month":
        moved = add_months(dt.datetime(today.year, today.month, 1), -ago)
        return moved.date()
    return dt.date(today.year - ago, 1, 1)


def _absolute(
    window: AbsoluteWindow, clock: Clock
) -> tuple[dt.datetime | None, dt.datetime | None]:
    start = None if window.from_ is None else clock.to_instant(window.from_)
    end = None if window.to is None else clock.to_instant(window.to)
    return start, end
