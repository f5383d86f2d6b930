"""Hand-checked cases for the reference evaluator itself (docs/definition-semantics.md).

The differential test trusts the evaluator; these cases pin down what it says on the
examples the semantics page spells out, worked by hand.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from segmint.definitions import Definition, RelativeWindow, parse_definition
from tests.reference.evaluator import (
    MISSING,
    boolean_value,
    date_value,
    evaluate,
    local_to_instant,
    number_value,
    window_interval,
)

AS_OF = dt.datetime(2025, 3, 15, 12, 0)  # a Saturday, UTC


def members(
    root: dict[str, Any],
    *,
    events: list[dict[str, Any]] = (),  # type: ignore[assignment]
    profiles: list[dict[str, Any]] | None = None,
    as_of: dt.datetime = AS_OF,
    timezone: str = "UTC",
    audiences: dict[str, Definition] | None = None,
) -> set[int]:
    definition = parse_definition({"version": 1, "root": root})
    if profiles is None:
        profiles = [{"profile_id": p, "traits": {}} for p in (1, 2, 3)]
    return evaluate(
        definition,
        events=events,
        profiles=profiles,
        as_of=as_of,
        timezone=timezone,
        audiences=audiences,
    ).members


def event(profile_id: int, name: str, at: dt.datetime, **properties: Any) -> dict[str, Any]:
    return {"profile_id": profile_id, "event": name, "timestamp": at, "properties": properties}


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (19.99, 19.99),
        ("19.99", 19.99),
        ("1e3", 1000.0),
        ("-2.5", -2.5),
        ("007", 7.0),
        (5, 5.0),
        (True, None),
        (" 5", None),
        ("+5", None),
        ("5.", None),
        (".5", None),
        ("NaN", None),
        ("inf", None),
        ("1e400", None),
        ("pro", None),
        ([1], None),
    ],
)
def test_number_value(raw: Any, expected: float | None) -> None:
    assert number_value(raw) == expected


def test_boolean_value_takes_json_booleans_and_lowercase_texts() -> None:
    assert [boolean_value(v) for v in (True, False, "true", "false", "True", 1)] == [
        True,
        False,
        True,
        False,
        None,
        None,
    ]


def test_date_value_forms() -> None:
    berlin = "Europe/Berlin"
    assert date_value("2025-03-10", berlin) == dt.datetime(2025, 3, 9, 23, 0)
    assert date_value("2025-03-10T07:00:00", berlin) == dt.datetime(2025, 3, 10, 7, 0)
    assert date_value("2025-03-10 07:00:00.5Z", berlin) == dt.datetime(2025, 3, 10, 7, 0, 0, 500000)
    assert date_value("2025-03-10T07:00:00+02:00", berlin) is None
    assert date_value("2025-02-30", berlin) is None
    assert date_value("2025-3-1", berlin) is None


# --- windows -----------------------------------------------------------------------------------


def test_spring_forward_gap_uses_the_offset_before_the_change() -> None:
    assert local_to_instant(dt.datetime(2025, 3, 9, 2, 30), "America/New_York") == dt.datetime(
        2025, 3, 9, 7, 30
    )


def test_last_day_across_spring_forward_is_23_hours() -> None:
    as_of = dt.datetime(2024, 3, 10, 12, 0)  # 08:00 EDT; the day before 08:00 EST = 13:00 UTC
    window = RelativeWindow(last=1, unit="days")
    interval = window_interval(window, as_of, "America/New_York")
    assert interval.start == dt.datetime(2024, 3, 9, 13, 0)
    assert interval.end == as_of


def test_month_steps_clamp_to_the_last_day() -> None:
    as_of = dt.datetime(2025, 3, 31, 12, 0)
    interval = window_interval(RelativeWindow(last=1, unit="months"), as_of, "UTC")
    assert interval.start == dt.datetime(2025, 2, 28, 12, 0)


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        ({"type": "calendar", "unit": "day", "from_ago": 0}, (3, 14, 23), None),  # today
        ({"type": "calendar", "unit": "day", "from_ago": 1}, (3, 13, 23), (3, 14, 23)),
        ({"type": "calendar", "unit": "week", "from_ago": 1}, (3, 2, 23), (3, 9, 23)),
        ({"type": "calendar", "unit": "month", "from_ago": 1}, (1, 31, 23), (2, 28, 23)),
        ({"type": "calendar", "unit": "day", "from_ago": 14, "to_ago": 7}, (2, 28, 23), (3, 8, 23)),
    ],
)
def test_calendar_windows_in_berlin(
    window: dict[str, Any], start: tuple[int, int, int], end: tuple[int, int, int] | None
) -> None:
    definition = parse_definition({"kind": "event", "event": "x", "window": window})
    interval = window_interval(definition.root.window, AS_OF, "Europe/Berlin")  # type: ignore[union-attr]
    assert interval.start == dt.datetime(2025, *start, 0)
    assert interval.end == (AS_OF if end is None else dt.datetime(2025, *end, 0))


def test_window_start_is_inclusive_and_end_exclusive() -> None:
    root = {
        "kind": "event",
        "event": "buy",
        "window": {"type": "absolute", "from": "2025-03-01", "to": "2025-03-02"},
    }
    events = [
        event(1, "buy", dt.datetime(2025, 3, 1)),
        event(2, "buy", dt.datetime(2025, 3, 2)),
        event(3, "buy", dt.datetime(2025, 3, 1, 23, 59, 59, 999999)),
    ]
    assert members(root, events=events) == {1, 3}


def test_events_at_or_after_as_of_are_ignored() -> None:
    events = [event(1, "buy", AS_OF), event(2, "buy", AS_OF - dt.timedelta(microseconds=1))]
    assert members({"kind": "event", "event": "buy"}, events=events) == {2}


# --- operators ---------------------------------------------------------------------------------


def trait_members(comparison: dict[str, Any], values: list[Any]) -> set[int]:
    profiles = [
        {"profile_id": i, "traits": {} if v is MISSING else {"plan": v}}
        for i, v in enumerate(values, start=1)
    ]
    return members({"kind": "trait", "trait": "plan", **comparison}, profiles=profiles)


def test_not_equals_is_false_on_missing_and_other_types() -> None:
    values = ["pro", "free", MISSING, None, 5]
    assert trait_members({"operator": "not_equals", "value": "pro"}, values) == {2}


def test_is_set_takes_any_json_type_but_null() -> None:
    values = ["", [], {}, None, MISSING, False]
    assert trait_members({"operator": "is_set"}, values) == {1, 2, 3, 6}


def test_numbers_stored_as_text_compare_as_numbers() -> None:
    values = ["19.99", 19.99, "19.990", " 19.99", True]
    assert trait_members({"operator": "equals", "value": 19.99}, values) == {1, 2, 3}


def test_case_insensitive_contains_and_regex_end() -> None:
    values = ["CAFÉ au lait", "cafe", "pro\n", "pro"]
    ci = {"operator": "contains", "value": "café", "case_insensitive": True}
    assert trait_members(ci, values) == {1}
    assert trait_members({"operator": "matches_regex", "value": "pro$"}, values) == {4}


def test_contains_treats_like_wildcards_literally() -> None:
    values = ["a%b", "axb", "a_b"]
    assert trait_members({"operator": "contains", "value": "%"}, values) == {1}
    assert trait_members({"operator": "starts_with", "value": "a_"}, values) == {3}


def test_date_operators_on_traits() -> None:
    values = ["2025-03-10", "2025-03-09T23:00:00", "2025-03-09T22:59:59", "soon"]
    # Berlin midnight of 10 March is 09 March 23:00 UTC; before is strict.
    profiles = [{"profile_id": i, "traits": {"d": v}} for i, v in enumerate(values, 1)]
    root = {"kind": "trait", "trait": "d", "operator": "before", "value": "2025-03-10"}
    assert members(root, profiles=profiles, timezone="Europe/Berlin") == {3}


# --- conditions --------------------------------------------------------------------------------


def test_event_counts_include_profiles_without_events() -> None:
    events = [event(1, "buy", AS_OF - dt.timedelta(days=1))] * 2 + [
        event(2, "buy", AS_OF - dt.timedelta(days=1))
    ]
    at_most_1 = {"kind": "event", "event": "buy", "count": {"operator": "at_most", "value": 1}}
    assert members(at_most_1, events=events) == {2, 3}
    not_performed = {"kind": "event", "event": "buy", "performed": False}
    assert members(not_performed, events=events) == {3}
    assert members({**not_performed, "negate": True}, events=events) == {1, 2}


def test_aggregates_of_nothing() -> None:
    day = AS_OF - dt.timedelta(days=1)
    events = [event(1, "buy", day, revenue="19.99"), event(1, "buy", day, revenue=5)]
    events.append(event(2, "buy", day, revenue="n/a"))
    base = {"kind": "aggregate", "event": "buy", "property": "revenue"}
    sum_lt = {**base, "function": "sum", "operator": "lt", "value": 1}
    assert members(sum_lt, events=events) == {2, 3}  # the sum of nothing is 0
    avg_ne = {**base, "function": "avg", "operator": "not_equals", "value": 1}
    assert members(avg_ne, events=events) == {1}  # no numbers: no average, never true


def test_count_distinct_keeps_texts_and_numbers_apart() -> None:
    day = AS_OF - dt.timedelta(days=1)
    values: list[Any] = ["5", 5, 5.0, True, None, "5"]
    events = [event(1, "buy", day, sku=v) for v in values]
    root = {
        "kind": "aggregate",
        "event": "buy",
        "property": "sku",
        "function": "count_distinct",
        "operator": "equals",
        "value": 2,
    }
    assert members(root, events=events) == {1}


def test_sequence_needs_a_strictly_later_step_within_the_span() -> None:
    t = AS_OF - dt.timedelta(days=3)
    events = [
        event(1, "view", t),
        event(1, "buy", t + dt.timedelta(days=1)),  # exactly the span: followed
        event(2, "view", t),
        event(2, "buy", t),  # same instant: not after
        event(3, "view", t),
        event(3, "buy", t + dt.timedelta(days=1, microseconds=1)),
    ]
    followed = {
        "kind": "sequence",
        "first": {"event": "view"},
        "then": {"event": "buy"},
        "within": {"amount": 1, "unit": "days"},
    }
    assert members(followed, events=events) == {1}
    assert members({**followed, "followed": False}, events=events) == {2, 3}


def test_abandonment_waits_for_the_whole_span() -> None:
    events = [event(1, "cart", AS_OF - dt.timedelta(hours=1))]
    events.append(event(2, "cart", AS_OF - dt.timedelta(days=2)))
    root = {
        "kind": "sequence",
        "first": {"event": "cart"},
        "then": {"event": "buy"},
        "within": {"amount": 1, "unit": "days"},
        "followed": False,
    }
    assert members(root, events=events) == {2}


def test_age_from_a_leap_day_birthday() -> None:
    profiles = [
        {"profile_id": 1, "traits": {"birthday": "2000-02-29"}},
        {"profile_id": 2, "traits": {"age": "30", "birthday": "2000-02-29"}},
        {"profile_id": 3, "traits": {"age": "abc"}},
    ]
    root = {"kind": "demographic", "field": "age", "operator": "gte", "value": 25}
    # 28 February 2025: not yet 25; 1 March 2025: 25.
    assert members(root, profiles=profiles, as_of=dt.datetime(2025, 2, 28, 12)) == {2}
    assert members(root, profiles=profiles, as_of=dt.datetime(2025, 3, 1, 12)) == {1, 2}
    is_set = {"kind": "demographic", "field": "age", "operator": "is_set"}
    assert members(is_set, profiles=profiles) == {1, 2}


def test_audience_reference_and_node_sets() -> None:
    buyers = parse_definition({"kind": "event", "event": "buy"})
    events = [event(1, "buy", AS_OF - dt.timedelta(days=1))]
    definition = parse_definition(
        {
            "kind": "or",
            "conditions": [
                {"kind": "audience", "audience": "buyers", "member": False},
                {"kind": "trait", "trait": "plan", "operator": "equals", "value": "pro"},
            ],
        },
        resolve_audience={"buyers": buyers}.get,
    )
    profiles = [
        {"profile_id": 1, "traits": {"plan": "pro"}},
        {"profile_id": 2, "traits": {}},
    ]
    result = evaluate(
        definition,
        events=events,
        profiles=profiles,
        as_of=AS_OF,
        timezone="UTC",
        audiences={"buyers": buyers},
    )
    assert result.members == {1, 2}
    assert result.nodes == {
        "root": {1, 2},
        "root.conditions[0]": {2},
        "root.conditions[1]": {1},
    }
