"""kind: aggregate — sum / avg / min / max / count_distinct, with empty-set rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compiler.fixtures import Warehouse, at, last


@pytest.fixture
def revenue(wh: Warehouse) -> Warehouse:
    # 1: 300 + 250 (as text "250") = 550 in the last 90 days, plus 1000 long ago
    # 2: 100 and an order without revenue; 3: only a non-numeric revenue; 4: no orders
    for pid in (1, 2, 3, 4):
        wh.profile(pid)
    wh.event(1, "order_completed", at(5), {"revenue": 300, "sku": "A"})
    wh.event(1, "order_completed", at(50), {"revenue": "250", "sku": "B"})
    wh.event(1, "order_completed", at(200), {"revenue": 1000, "sku": "C"})
    wh.event(2, "order_completed", at(5), {"revenue": 100, "sku": "A"})
    wh.event(2, "order_completed", at(6), {"sku": "A"})
    wh.event(3, "order_completed", at(5), {"revenue": "n/a", "sku": 7})
    wh.event(4, "product_viewed", at(5), {"revenue": 5000})
    return wh


def agg(
    function: str, operator: str, value: Any, prop: str = "revenue", **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "aggregate",
        "event": "order_completed",
        "property": prop,
        "function": function,
        "operator": operator,
        "value": value,
        "window": last(90),
        **extra,
    }


@pytest.mark.parametrize(
    ("function", "operator", "value", "expected"),
    [
        ("sum", "gt", 500, {1}),
        ("sum", "equals", 550, {1}),
        ("sum", "lt", 200, {2, 3, 4}),  # the sum of nothing is 0
        ("sum", "equals", 0, {3, 4}),
        ("sum", "between", [0, 100], {2, 3, 4}),
        ("sum", "not_equals", 100, {1, 3, 4}),
        ("avg", "equals", 275, {1}),
        ("avg", "lt", 1000, {1, 2}),  # no values: no average, never matches
        ("min", "lte", 100, {2}),
        ("max", "gte", 300, {1}),
        ("max", "not_equals", 1, {1, 2}),
    ],
)
def test_numeric_aggregates(
    revenue: Warehouse, function: str, operator: str, value: Any, expected: set[int]
) -> None:
    assert revenue.members(agg(function, operator, value)) == expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("equals", 2, {1}),  # "A", "B"
        ("equals", 1, {2, 3}),  # 2: "A" twice; 3: the number 7
        ("lt", 1, {4}),  # no orders at all: 0 distinct values
        ("gte", 1, {1, 2, 3}),
    ],
)
def test_count_distinct(revenue: Warehouse, operator: str, value: Any, expected: set[int]) -> None:
    assert revenue.members(agg("count_distinct", operator, value, prop="sku")) == expected


def test_count_distinct_keeps_strings_and_numbers_apart(wh: Warehouse) -> None:
    wh.profile(1)
    for value in ("5", 5, 5.0, True, None):
        wh.event(1, "order_completed", at(1), {"sku": value})
    assert wh.members(agg("count_distinct", "equals", 2, prop="sku")) == {1}


def test_aggregate_applies_filters_and_window(revenue: Warehouse) -> None:
    node = agg("sum", "gte", 300, filters=[{"property": "sku", "operator": "equals", "value": "A"}])
    assert revenue.members(node) == {1}
    assert revenue.members({**agg("sum", "gt", 1000), "window": None}) == {1}
