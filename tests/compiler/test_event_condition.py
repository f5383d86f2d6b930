"""kind: event — performed / not performed, count thresholds, filters, windows."""

from __future__ import annotations

import pytest

from tests.compiler.fixtures import AS_OF, Warehouse, at, ev, last


@pytest.fixture
def orders(wh: Warehouse) -> Warehouse:
    # 1: three orders this week; 2: one order 10 days ago; 3: one order 40 days ago;
    # 4: nothing at all; 5: an order exactly at AS_OF (ignored: events at or after as_of).
    for pid in range(1, 6):
        wh.profile(pid)
    for days in (1, 2, 3):
        wh.event(1, "order_completed", at(days), {"revenue": 10})
    wh.event(2, "order_completed", at(10), {"revenue": 99})
    wh.event(3, "order_completed", at(40), {"revenue": 5})
    wh.event(5, "order_completed", AS_OF, {"revenue": 1})
    wh.event(4, "product_viewed", at(1))
    return wh


def test_performed_at_all(orders: Warehouse) -> None:
    assert orders.members(ev("order_completed")) == {1, 2, 3}


def test_event_name_is_exact_and_case_sensitive(orders: Warehouse) -> None:
    assert orders.members(ev("Order_Completed")) == set()


def test_performed_in_last_30_days(orders: Warehouse) -> None:
    assert orders.members(ev("order_completed", window=last(30))) == {1, 2}


def test_not_performed_in_window_includes_profiles_without_events(orders: Warehouse) -> None:
    node = ev("order_completed", performed=False, window=last(30))
    assert orders.members(node) == {3, 4, 5}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("at_least", 2, {1}),
        ("at_least", 1, {1, 2}),
        ("at_least", 0, {1, 2, 3, 4, 5}),
        ("at_most", 1, {2, 3, 4, 5}),
        ("at_most", 0, {3, 4, 5}),
        ("exactly", 3, {1}),
        ("exactly", 1, {2}),
        ("exactly", 0, {3, 4, 5}),
    ],
)
def test_count_thresholds(orders: Warehouse, operator: str, value: int, expected: set[int]) -> None:
    node = ev("order_completed", count={"operator": operator, "value": value}, window=last(30))
    assert orders.members(node) == expected


def test_not_performed_at_least_twice_is_the_complement(orders: Warehouse) -> None:
    node = ev("order_completed", count={"operator": "at_least", "value": 2}, performed=False)
    assert orders.members(node) == {2, 3, 4, 5}


def test_negate_and_performed_false_cancel_out(orders: Warehouse) -> None:
    node = ev("order_completed", performed=False, negate=True, window=last(30))
    assert orders.members(node) == {1, 2}


def test_property_filters_are_all_applied(orders: Warehouse) -> None:
    node = ev(
        "order_completed",
        filters=[
            {"property": "revenue", "operator": "gte", "value": 10},
            {"property": "revenue", "operator": "lt", "value": 99},
        ],
    )
    assert orders.members(node) == {1}


def test_count_counts_only_events_passing_filters(orders: Warehouse) -> None:
    orders.event(2, "order_completed", at(5), {"revenue": 1})
    node = ev(
        "order_completed",
        filters=[{"property": "revenue", "operator": "gt", "value": 5}],
        count={"operator": "at_least", "value": 2},
    )
    assert orders.members(node) == {1}


def test_segment_events_of_merged_away_profiles_are_ignored(wh: Warehouse) -> None:
    # A refresh writes removed_from_segment for a member merged away since: its profile id
    # is no longer in the universe (the only events that can outlive their profile).
    wh.profile(1)
    wh.event(1, "removed_from_segment", at(2))
    wh.event(99, "removed_from_segment", at(1))
    wh.event(99, "removed_from_segment", at(3))
    assert wh.members(ev("removed_from_segment", window=last(7))) == {1}
    twice = ev("removed_from_segment", count={"operator": "at_least", "value": 2})
    assert wh.members(twice) == set()
    assert wh.members(ev("removed_from_segment", performed=False)) == set()


def test_window_start_is_inclusive_and_end_exclusive(wh: Warehouse) -> None:
    wh.profile(1)
    wh.profile(2)
    wh.profile(3)
    wh.event(1, "x", at(7))  # exactly the start of "last 7 days"
    wh.event(2, "x", at(7, microseconds=1))  # one microsecond before the start
    wh.event(3, "x", at(0, microseconds=1))  # just before as_of
    assert wh.members(ev("x", window=last(7))) == {1, 3}


def test_absolute_window_end_is_exclusive(wh: Warehouse) -> None:
    wh.profile(1)
    wh.profile(2)
    wh.event(1, "x", at(0).replace(day=1, hour=0))  # 2025-03-01 00:00 UTC
    wh.event(2, "x", at(0).replace(month=2, day=28, hour=23, minute=59))
    window = {"type": "absolute", "from": "2025-02-01", "to": "2025-03-01"}
    assert wh.members(ev("x", window=window)) == {2}


def test_no_profiles_no_members(wh: Warehouse) -> None:
    assert wh.members(ev("x", performed=False)) == set()
