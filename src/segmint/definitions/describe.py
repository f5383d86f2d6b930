"""Plain-English labels for definition nodes.

``describe(node)`` gives one short line per node ("order_completed at least 1 time in the
last 30 days", "NOT country equals CA", "any of 3 conditions"). Labels appear in run
diagnostics, explain output, the CLI, and as accessible names of builder buttons, so they
say what the node checks without JSON vocabulary and never depend on the data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from segmint.definitions.model import (
    AbsoluteWindow,
    AggregateCondition,
    AudienceCondition,
    CalendarWindow,
    ComparedValue,
    CountThreshold,
    DemographicCondition,
    Duration,
    EventCondition,
    EventStep,
    Group,
    Node,
    PropertyFilter,
    RelativeWindow,
    SequenceCondition,
    TechnologyCondition,
    TraitCondition,
    UtmCondition,
    Window,
)

_OPERATOR_WORDS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "in": "is one of",
    "not_in": "is not one of",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "matches_regex": "matches the pattern",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "between": "is between",
    "is_set": "is set",
    "is_not_set": "is not set",
    "before": "is before",
    "after": "is after",
    "in_window": "is",
}
_FUNCTION_WORDS = {
    "sum": "total",
    "avg": "average",
    "min": "smallest",
    "max": "largest",
    "count_distinct": "number of distinct",
}
_AGGREGATE_OPERATORS = {
    "equals": "=",
    "not_equals": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
}
_THRESHOLD_WORDS = {"at_least": "at least", "at_most": "at most", "exactly": "exactly"}
_FIELD_WORDS = {"device_type": "device type", "os": "OS"}


def describe(node: Node) -> str:
    """A one-line plain-English label for ``node``, its ``negate`` shown as a leading NOT."""
    label = _describe_positive(node)
    return f"NOT {label}" if node.negate else label


def _describe_positive(node: Node) -> str:
    if isinstance(node, Group):
        count = len(node.conditions)
        noun = "condition" if count == 1 else "conditions"
        return f"{'all' if node.kind == 'and' else 'any'} of {count} {noun}"
    if isinstance(node, EventCondition):
        return describe_event(node)
    if isinstance(node, AggregateCondition):
        return describe_aggregate(node)
    if isinstance(node, SequenceCondition):
        return describe_sequence(node)
    if isinstance(node, TraitCondition):
        return f"trait {node.trait} {_comparison(node.operator, node.value, node.case_insensitive)}"
    if isinstance(node, UtmCondition):
        return describe_utm(node)
    if isinstance(node, DemographicCondition | TechnologyCondition):
        field = _FIELD_WORDS.get(node.field, node.field)
        return f"{field} {_comparison(node.operator, node.value, node.case_insensitive)}"
    if isinstance(node, AudienceCondition):
        return f"{'member' if node.member else 'not a member'} of audience {node.audience}"
    raise TypeError(f"not a definition node: {type(node).__name__}")


def describe_event(node: EventCondition) -> str:
    """``order_completed where plan equals pro at least 2 times in the last 30 days``."""
    subject = _step(node.event, node.filters)
    suffix = _window_suffix(node.window)
    if not node.performed and node.count.operator == "at_least" and node.count.value == 1:
        return f"no {subject}{suffix}"
    phrase = f"{subject} {describe_threshold(node.count)}{suffix}"
    return phrase if node.performed else f"not {phrase}"


def describe_threshold(count: CountThreshold) -> str:
    """``at least 1 time``, ``exactly 3 times``."""
    times = "time" if count.value == 1 else "times"
    return f"{_THRESHOLD_WORDS[count.operator]} {count.value} {times}"


def describe_aggregate(node: AggregateCondition) -> str:
    """``total revenue of order_completed in the last 90 days > 500``."""
    subject = (
        f"{_FUNCTION_WORDS[node.function]} {node.property} of {_step(node.event, node.filters)}"
    )
    if node.operator == "between" and isinstance(node.value, list):
        comparison = f"between {_number(node.value[0])} and {_number(node.value[1])}"
    else:
        assert not isinstance(node.value, list)
        comparison = f"{_AGGREGATE_OPERATORS[node.operator]} {_number(node.value)}"
    return f"{subject}{_window_suffix(node.window)} {comparison}"


def describe_sequence(node: SequenceCondition) -> str:
    """``product_viewed then order_completed within 1 day`` / ``... not followed by ...``."""
    first, then = _step_of(node.first), _step_of(node.then)
    link = "then" if node.followed else "not followed by"
    span = f" within {describe_duration(node.within)}" if node.within else ""
    return f"{first} {link} {then}{span}{_window_suffix(node.window)}"


def describe_utm(node: UtmCondition) -> str:
    """``first-touch utm_source equals google``, ``utm_medium equals cpc in the last 7 days``."""
    touch = {"first": "first-touch ", "last": "last-touch ", "any": ""}[node.touch]
    comparison = _comparison(node.operator, node.value, node.case_insensitive)
    return f"{touch}utm_{node.parameter} {comparison}{_window_suffix(node.window)}"


def describe_duration(duration: Duration) -> str:
    """``1 day``, ``3 hours``."""
    return _amount(duration.amount, duration.unit)


def describe_window(window: Window | None) -> str:
    """``in the last 30 days``, ``yesterday``, ``from 2025-01-01 to 2025-02-01``, or
    ``ever`` when there is no window."""
    if window is None:
        return "ever"
    if isinstance(window, RelativeWindow):
        return _relative(window)
    if isinstance(window, CalendarWindow):
        return _calendar(window)
    return _absolute(window)


def describe_events(
    event: str, filters: Sequence[PropertyFilter] = (), window: Window | None = None
) -> str:
    """Which events a step selects, without a threshold: ``order_completed where plan
    equals pro in the last 30 days``."""
    return f"{_step(event, filters)}{_window_suffix(window)}"


def describe_filter(item: PropertyFilter) -> str:
    """``plan equals pro``."""
    return f"{item.property} {_comparison(item.operator, item.value, item.case_insensitive)}"


# --- pieces ----------------------------------------------------------------------------------


def _step(event: str, filters: Sequence[PropertyFilter]) -> str:
    if not filters:
        return event
    return f"{event} where " + " and ".join(describe_filter(f) for f in filters)


def _step_of(step: EventStep) -> str:
    return _step(step.event, step.filters)


def _window_suffix(window: Window | None) -> str:
    return "" if window is None else f" {describe_window(window)}"


def _comparison(operator: str, value: ComparedValue, case_insensitive: bool) -> str:
    words = _OPERATOR_WORDS.get(operator, operator)
    if operator in ("is_set", "is_not_set"):
        return words
    if operator == "in_window" and isinstance(
        value, RelativeWindow | CalendarWindow | AbsoluteWindow
    ):
        text = describe_window(value)
    elif operator == "between" and isinstance(value, list) and len(value) == 2:
        text = f"{_value(value[0])} and {_value(value[1])}"
    else:
        text = _value(value)
    suffix = " (ignoring case)" if case_insensitive else ""
    return f"{words} {text}{suffix}"


def _value(value: ComparedValue) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, RelativeWindow | CalendarWindow | AbsoluteWindow):
        return describe_window(value)
    if value is None:
        return "(nothing)"
    return str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _amount(amount: int, unit: str) -> str:
    singular = unit[:-1] if unit.endswith("s") else unit
    return f"{amount:,} {singular if amount == 1 else singular + 's'}"


def _relative(window: RelativeWindow) -> str:
    start, end = window.bounds_ago()
    if end == 0:
        if start == 1:
            return f"in the last {window.unit[:-1]}"
        return f"in the last {_amount(start, window.unit)}"
    return f"between {start:,} and {_amount(end, window.unit)} ago"


_CALENDAR_NAMES = {
    ("day", 0): "today",
    ("day", 1): "yesterday",
    ("week", 0): "this week",
    ("week", 1): "last week",
    ("month", 0): "this month",
    ("month", 1): "last month",
    ("year", 0): "this year",
    ("year", 1): "last year",
}


def _calendar(window: CalendarWindow) -> str:
    first, last = window.bounds_ago()
    if first == last:
        return _CALENDAR_NAMES.get(
            (window.unit, first), f"the calendar {window.unit} {first} {window.unit}s ago"
        )
    end = _CALENDAR_NAMES.get((window.unit, last), f"{_amount(last, window.unit)} ago")
    return f"from {_amount(first, window.unit)} ago through {end} (calendar {window.unit}s)"


def _absolute(window: AbsoluteWindow) -> str:
    start = window.from_.isoformat() if window.from_ is not None else None
    end = window.to.isoformat() if window.to is not None else None
    if start and end:
        return f"from {start} to {end}"
    if start:
        return f"since {start}"
    if end:
        return f"before {end}"
    return "ever"
