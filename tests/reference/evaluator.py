"""The reference evaluator: what a definition means, in plain Python loops.

A deliberately simple, independent reading of docs/definition-semantics.md (section numbers
below refer to it). It shares nothing with ``segmint.compiler``: it walks the definition tree,
and for each condition loops over the profiles and their events. It is slow on purpose; it
exists so the compiled SQL can be checked against it on generated data.

Rows are plain dicts shaped like the warehouse tables (src/segmint/warehouse/schema.py):

- event: ``profile_id``, ``event``, ``timestamp`` (naive UTC ``datetime``), ``properties``
  (a dict, or ``None``), ``utm_source`` … ``utm_content`` (text or ``None``);
- profile: ``profile_id``, ``traits`` (a dict), ``country``, ``region``, ``city``,
  ``language``, ``browser``, ``os``, ``device_type``, ``first_utm_*`` / ``last_utm_*``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from segmint.definitions.model import (
    AbsoluteWindow,
    AggregateCondition,
    AudienceCondition,
    CalendarWindow,
    Comparison,
    Definition,
    DemographicCondition,
    EventCondition,
    EventStep,
    Group,
    PropertyFilter,
    RelativeWindow,
    SequenceCondition,
    TechnologyCondition,
    TraitCondition,
    UtmCondition,
)
from segmint.definitions.regex import python_pattern

# Emitted by refreshes; they are events for conditions, but not touches for `utm`.
SEGMENT_EVENT_NAMES = ("added_to_segment", "removed_from_segment")

Row = Mapping[str, Any]
AnyWindow = RelativeWindow | CalendarWindow | AbsoluteWindow


class _Missing:
    """A field that leads to no value (missing key, NULL column, JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Interval:
    """A half-open interval [start, end) of naive UTC instants; ``start=None`` is −∞."""

    start: dt.datetime | None
    end: dt.datetime

    def contains(self, instant: dt.datetime) -> bool:
        return (self.start is None or self.start <= instant) and instant < self.end


@dataclass
class Evaluation:
    """The members of a definition, and the set of profiles matching each node (by id)."""

    members: set[int]
    nodes: dict[str, set[int]] = field(default_factory=dict)


# --- time (§3) -----------------------------------------------------------------------------

UTC = dt.UTC


def utc_naive(instant: dt.datetime) -> dt.datetime:
    """An instant as a naive UTC datetime (a naive input already is one)."""
    if instant.tzinfo is None:
        return instant
    return instant.astimezone(UTC).replace(tzinfo=None)


def local_to_instant(local: dt.datetime, timezone: str) -> dt.datetime:
    """Local wall time in ``timezone`` → naive UTC instant, with fold=0 (§3)."""
    aware = local.replace(tzinfo=ZoneInfo(timezone), fold=0)
    return aware.astimezone(UTC).replace(tzinfo=None)


def instant_to_local(instant: dt.datetime, timezone: str) -> dt.datetime:
    """Naive UTC instant → naive local wall time in ``timezone``."""
    return instant.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def add_months(local: dt.datetime, months: int) -> dt.datetime:
    """Step the calendar month, keeping the day-of-month clamped to the month's last day."""
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(local.day, _days_in_month(year, month))
    return local.replace(year=year, month=month, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


def point_to_instant(value: dt.date | dt.datetime, timezone: str) -> dt.datetime:
    """A window end or date operand: a date is local midnight, a naive date-time local wall
    time, an aware date-time that instant."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return utc_naive(value)
        return local_to_instant(value, timezone)
    return local_to_instant(dt.datetime(value.year, value.month, value.day), timezone)


def _relative_point(local_now: dt.datetime, ago: int, unit: str) -> dt.datetime:
    if unit == "days":
        return local_now - dt.timedelta(days=ago)
    if unit == "weeks":
        return local_now - dt.timedelta(days=7 * ago)
    return add_months(local_now, -ago)


def _calendar_unit_start(today: dt.date, unit: str, ago: int) -> dt.date:
    """The first day of the calendar unit ``ago`` units before the one holding ``today``
    (``ago = -1`` is the next unit)."""
    if unit == "day":
        return today - dt.timedelta(days=ago)
    if unit == "week":
        return today - dt.timedelta(days=today.weekday() + 7 * ago)
    if unit == "month":
        index = today.year * 12 + (today.month - 1) - ago
        return dt.date(index // 12, index % 12 + 1, 1)
    return dt.date(today.year - ago, 1, 1)


def window_bounds(
    window: AnyWindow, as_of: dt.datetime, timezone: str
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The window's [start, end) before capping at ``as_of``; ``None`` is −∞ / +∞."""
    as_of = utc_naive(as_of)
    if isinstance(window, RelativeWindow):
        start_ago, end_ago = window.bounds_ago()
        if window.unit in ("minutes", "hours"):
            step = dt.timedelta(**{window.unit: 1})
            return as_of - start_ago * step, as_of - end_ago * step
        local_now = instant_to_local(as_of, timezone)
        return (
            local_to_instant(_relative_point(local_now, start_ago, window.unit), timezone),
            local_to_instant(_relative_point(local_now, end_ago, window.unit), timezone),
        )
    if isinstance(window, CalendarWindow):
        first_ago, last_ago = window.bounds_ago()
        today = instant_to_local(as_of, timezone).date()
        start = _calendar_unit_start(today, window.unit, first_ago)
        end = _calendar_unit_start(today, window.unit, last_ago - 1)
        return point_to_instant(start, timezone), point_to_instant(end, timezone)
    start_abs = None if window.from_ is None else point_to_instant(window.from_, timezone)
    end_abs = None if window.to is None else point_to_instant(window.to, timezone)
    return start_abs, end_abs


def window_interval(window: AnyWindow | None, as_of: dt.datetime, timezone: str) -> Interval:
    """The effective interval of a window: its bounds with the end capped at ``as_of``."""
    as_of = utc_naive(as_of)
    if window is None:
        return Interval(None, as_of)
    start, end = window_bounds(window, as_of, timezone)
    return Interval(start, as_of if end is None else min(end, as_of))


# --- values (§4) ---------------------------------------------------------------------------

_NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_DATE_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME_TEXT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?Z?"
)


def json_path(document: Any, path: str) -> Any:
    """The value at a dot-separated path, or MISSING (JSON null counts as missing)."""
    value = document
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return MISSING if value is None else value


def column(row: Row, name: str) -> Any:
    value = row.get(name)
    return MISSING if value is None else value


def text_value(raw: Any) -> str | None:
    return raw if isinstance(raw, str) else None


def number_value(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    numeric_text = isinstance(raw, str) and _NUMBER_TEXT.fullmatch(raw) is not None
    if not (isinstance(raw, int | float) or numeric_text):
        return None
    number = float(raw)
    return number if math.isfinite(number) else None


def boolean_value(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if raw == "true":
        return True
    if raw == "false":
        return False
    return None


def date_value(raw: Any, timezone: str) -> dt.datetime | None:
    """A trait's date value as a naive UTC instant (§4), or None."""
    if not isinstance(raw, str):
        return None
    try:
        if match := _DATE_TEXT.fullmatch(raw):
            year, month, day = (int(part) for part in match.groups())
            return local_to_instant(dt.datetime(year, month, day), timezone)
        if match := _DATETIME_TEXT.fullmatch(raw):
            parts = [int(part) for part in match.groups()[:6]]
            fraction = match.group(7)
            micros = int(fraction[1:].ljust(6, "0")) if fraction else 0
            return dt.datetime(*parts, micros)  # type: ignore[misc]
    except ValueError:  # not a real date (2025-02-30, 24:00:00 ...)
        return None
    return None


def parse_date_operand(value: Any) -> dt.date | dt.datetime:
    """The operand of before / after: a date or date-time object, or its ISO text."""
    if isinstance(value, dt.date):
        return value
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    return dt.datetime.fromisoformat(value)


# --- operators (§5, §6) --------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lower(text: str, case_insensitive: bool) -> str:
    return text.lower() if case_insensitive else text


def compare(comparison: Comparison, raw: Any, *, as_of: dt.datetime, timezone: str) -> bool:
    """Apply a comparison to the raw value of a field (MISSING when it has none)."""
    op, value, ci = comparison.operator, comparison.value, comparison.case_insensitive
    if op == "is_set":
        return raw is not MISSING
    if op == "is_not_set":
        return raw is MISSING
    if raw is MISSING:
        return False
    if op in ("before", "after", "in_window"):
        return _compare_date(op, value, raw, as_of=as_of, timezone=timezone)
    if op in ("gt", "gte", "lt", "lte", "between"):
        return _compare_number(op, value, number_value(raw))
    if op in ("equals", "not_equals"):
        same = _scalar_equals(value, raw, ci)
        if same is None:
            return False
        return same if op == "equals" else not same
    if op in ("in", "not_in"):
        found = _in_list(value, raw, ci)
        if found is None:
            return False
        return found if op == "in" else not found
    text = text_value(raw)
    if text is None:
        return False
    text, needle = _lower(text, ci), _lower(value, ci)
    if op == "contains":
        return needle in text
    if op == "not_contains":
        return needle not in text
    if op == "starts_with":
        return text.startswith(needle)
    if op == "ends_with":
        return text.endswith(needle)
    if op == "matches_regex":
        return re.search(python_pattern(needle), text) is not None
    raise AssertionError(f"unknown operator {op}")


def _scalar_equals(value: Any, raw: Any, ci: bool) -> bool | None:
    """raw = value in the value's type; None when raw has no value of that type."""
    if isinstance(value, bool):
        flag = boolean_value(raw)
        return None if flag is None else flag == value
    if _is_number(value):
        number = number_value(raw)
        return None if number is None else number == float(value)
    text = text_value(raw)
    return None if text is None else _lower(text, ci) == _lower(value, ci)


def _in_list(values: list[Any], raw: Any, ci: bool) -> bool | None:
    if all(isinstance(v, str) for v in values):
        text = text_value(raw)
        if text is None:
            return None
        return _lower(text, ci) in {_lower(v, ci) for v in values}
    number = number_value(raw)
    if number is None:
        return None
    return number in {float(v) for v in values}


def _compare_number(op: str, value: Any, number: float | None) -> bool:
    if number is None:
        return False
    if op == "between":
        low, high = value
        return float(low) <= number <= float(high)
    if op == "equals":
        return number == float(value)
    if op == "not_equals":
        return number != float(value)
    target = float(value)
    return {
        "gt": number > target,
        "gte": number >= target,
        "lt": number < target,
        "lte": number <= target,
    }[op]


def _compare_date(op: str, value: Any, raw: Any, *, as_of: dt.datetime, timezone: str) -> bool:
    instant = date_value(raw, timezone)
    if instant is None:
        return False
    if op == "in_window":
        return window_interval(value, as_of, timezone).contains(instant)
    operand = point_to_instant(parse_date_operand(value), timezone)
    return instant < operand if op == "before" else instant > operand


# --- conditions (§7) -----------------------------------------------------------------------


@dataclass
class _Context:
    as_of: dt.datetime
    timezone: str
    profiles: dict[int, Row]
    events: dict[int, list[Row]]  # per profile, only events before as_of
    audiences: Mapping[str, Definition]

    def cmp(self, comparison: Comparison, raw: Any) -> bool:
        return compare(comparison, raw, as_of=self.as_of, timezone=self.timezone)

    def step_events(
        self, profile_id: int, event: str, filters: list[PropertyFilter], interval: Interval
    ) -> list[Row]:
        """E(p): the profile's events of that name, in the interval, passing every filter."""
        found = []
        for row in self.events[profile_id]:
            if row["event"] != event or not interval.contains(row["timestamp"]):
                continue
            properties = row.get("properties")
            if all(self.cmp(f, json_path(properties, f.property)) for f in filters):
                found.append(row)
        return found


def _event_matches(node: EventCondition, ctx: _Context, profile_id: int) -> bool:
    interval = window_interval(node.window, ctx.as_of, ctx.timezone)
    count = len(ctx.step_events(profile_id, node.event, node.filters, interval))
    threshold = node.count.value
    matched = {
        "at_least": count >= threshold,
        "at_most": count <= threshold,
        "exactly": count == threshold,
    }[node.count.operator]
    return matched if node.performed else not matched


def _aggregate_value(node: AggregateCondition, rows: list[Row]) -> float | None:
    raws = [json_path(row.get("properties"), node.property) for row in rows]
    if node.function == "count_distinct":
        distinct: set[tuple[str, Any]] = set()
        for raw in raws:
            if isinstance(raw, str):
                distinct.add(("text", raw))
            elif _is_number(raw):
                distinct.add(("number", float(raw)))
        return float(len(distinct))
    numbers = [n for n in (number_value(raw) for raw in raws) if n is not None]
    if node.function == "sum":
        return math.fsum(numbers)
    if not numbers:
        return None
    if node.function == "avg":
        return math.fsum(numbers) / len(numbers)
    return min(numbers) if node.function == "min" else max(numbers)


def _aggregate_matches(node: AggregateCondition, ctx: _Context, profile_id: int) -> bool:
    interval = window_interval(node.window, ctx.as_of, ctx.timezone)
    rows = ctx.step_events(profile_id, node.event, node.filters, interval)
    return _compare_number(node.operator, node.value, _aggregate_value(node, rows))


def _sequence_matches(node: SequenceCondition, ctx: _Context, profile_id: int) -> bool:
    interval = window_interval(node.window, ctx.as_of, ctx.timezone)

    def times(step: EventStep) -> list[dt.datetime]:
        rows = ctx.step_events(profile_id, step.event, step.filters, interval)
        return [row["timestamp"] for row in rows]

    firsts, thens = times(node.first), times(node.then)
    within = node.within.to_timedelta() if node.within is not None else None
    for a in firsts:
        followed = any(a < b and (within is None or b - a <= within) for b in thens)
        if node.followed and followed:
            return True
        observed = within is None or a + within < interval.end
        if not node.followed and not followed and observed:
            return True
    return False


def _age(profile: Row, ctx: _Context) -> Any:
    traits = profile.get("traits") or {}
    age = number_value(json_path(traits, "age"))
    if age is not None:
        return age
    birthday = json_path(traits, "birthday")
    if not isinstance(birthday, str) or not _DATE_TEXT.fullmatch(birthday):
        return MISSING
    try:
        born = dt.date.fromisoformat(birthday)
    except ValueError:
        return MISSING
    today = instant_to_local(ctx.as_of, ctx.timezone).date()
    before_birthday = (today.month, today.day) < (born.month, born.day)
    return float(today.year - born.year - (1 if before_birthday else 0))


def _demographic_raw(node: DemographicCondition, profile: Row, ctx: _Context) -> Any:
    if node.field == "age":
        return _age(profile, ctx)
    if node.field == "gender":
        # §4: gender is a JSON path into traits, so is_set holds for any JSON type; the text
        # operators see only its text value (see tests/reference/AMBIGUITIES.md).
        return json_path(profile.get("traits") or {}, "gender")
    return column(profile, node.field)


def _utm_matches(node: UtmCondition, ctx: _Context, profile_id: int) -> bool:
    profile = ctx.profiles[profile_id]
    if node.touch in ("first", "last"):
        return ctx.cmp(node, column(profile, f"{node.touch}_utm_{node.parameter}"))
    interval = window_interval(node.window, ctx.as_of, ctx.timezone)
    return any(
        ctx.cmp(node, column(row, f"utm_{node.parameter}"))
        for row in ctx.events[profile_id]
        if interval.contains(row["timestamp"]) and row["event"] not in SEGMENT_EVENT_NAMES
    )


def _condition_matches(node: Any, ctx: _Context, profile_id: int) -> bool:
    profile = ctx.profiles[profile_id]
    if isinstance(node, EventCondition):
        return _event_matches(node, ctx, profile_id)
    if isinstance(node, AggregateCondition):
        return _aggregate_matches(node, ctx, profile_id)
    if isinstance(node, SequenceCondition):
        return _sequence_matches(node, ctx, profile_id)
    if isinstance(node, TraitCondition):
        return ctx.cmp(node, json_path(profile.get("traits") or {}, node.trait))
    if isinstance(node, UtmCondition):
        return _utm_matches(node, ctx, profile_id)
    if isinstance(node, DemographicCondition):
        return ctx.cmp(node, _demographic_raw(node, profile, ctx))
    if isinstance(node, TechnologyCondition):
        return ctx.cmp(node, column(profile, node.field))
    raise AssertionError(f"unknown condition {node!r}")


def _node_set(node: Any, ctx: _Context, nodes: dict[str, set[int]]) -> set[int]:
    universe = set(ctx.profiles)
    if isinstance(node, Group):
        children = [_node_set(child, ctx, nodes) for child in node.conditions]
        matched = set.intersection(*children) if node.kind == "and" else set.union(*children)
    elif isinstance(node, AudienceCondition):
        referenced = ctx.audiences[node.audience]
        inner = _node_set(referenced.root, ctx, {})
        matched = inner if node.member else universe - inner
    else:
        matched = {p for p in sorted(universe) if _condition_matches(node, ctx, p)}
    if node.negate:
        matched = universe - matched
    assert node.id is not None
    nodes[node.id] = matched
    return matched


def evaluate(
    definition: Definition,
    *,
    events: Iterable[Row],
    profiles: Iterable[Row],
    as_of: dt.datetime,
    timezone: str,
    audiences: Mapping[str, Definition] | None = None,
) -> Evaluation:
    """The member profile ids of ``definition`` at ``as_of`` in the workspace ``timezone``,
    and the profiles matching each node. ``audiences`` resolves ``kind: audience`` names."""
    as_of = utc_naive(as_of)
    by_id = {int(p["profile_id"]): p for p in profiles}
    per_profile: dict[int, list[Row]] = {p: [] for p in by_id}
    for row in events:
        if row["profile_id"] in per_profile and row["timestamp"] < as_of:
            per_profile[row["profile_id"]].append(row)
    ctx = _Context(as_of, timezone, by_id, per_profile, audiences or {})
    nodes: dict[str, set[int]] = {}
    members = _node_set(definition.root, ctx, nodes)
    return Evaluation(members=members, nodes=nodes)


def resolver(audiences: Mapping[str, Definition]) -> Callable[[str], Definition | None]:
    """An audience resolver (name → definition) over a plain mapping."""
    return audiences.get
