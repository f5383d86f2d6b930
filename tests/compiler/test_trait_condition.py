"""kind: trait — every operator over every JSON type (docs/definition-semantics.md §4-§5).

The same extraction serves event property filters; test_property_filters.py checks that path.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.compiler.fixtures import Warehouse

# profile id → the value of trait "v" (MISSING: no key at all)
MISSING = object()
VALUES: dict[int, Any] = {
    1: "Pro",
    2: "pro",
    3: 19.99,
    4: "19.99",
    5: True,
    6: "true",
    7: None,
    8: MISSING,
    9: "",
    10: [1, 2],
    11: {"a": 1},
    12: "1e3",
    13: " 5",
    14: False,
    15: 5,
    16: "professional",
    17: "é-Pro",
}
ALL = set(VALUES)
TEXTS = {1, 2, 4, 6, 9, 12, 13, 16, 17}
NUMBERS = {3, 4, 12, 15}  # JSON numbers and numeric-looking strings ("19.99", "1e3")


@pytest.fixture
def traits(wh: Warehouse) -> Warehouse:
    for pid, value in VALUES.items():
        wh.profile(pid, {} if value is MISSING else {"v": value})
    return wh


def trait(operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "trait", "trait": "v", "operator": operator, **extra}
    if value is not None:
        node["value"] = value
    return node


CASES: list[tuple[str, Any, dict[str, Any], set[int]]] = [
    ("is_set", None, {}, ALL - {7, 8}),
    ("is_not_set", None, {}, {7, 8}),
    ("equals", "pro", {}, {2}),
    ("equals", "pro", {"case_insensitive": True}, {1, 2}),
    ("equals", "", {}, {9}),
    ("not_equals", "pro", {}, TEXTS - {2}),
    ("not_equals", "pro", {"case_insensitive": True}, TEXTS - {1, 2}),
    ("equals", 19.99, {}, {3, 4}),
    ("equals", 5, {}, {15}),  # " 5" is not a number: no spaces allowed
    ("equals", 1000, {}, {12}),
    ("not_equals", 5, {}, NUMBERS - {15}),
    ("equals", True, {}, {5, 6}),
    ("equals", False, {}, {14}),
    ("not_equals", True, {}, {14}),
    ("in", ["pro", "Pro", "x"], {}, {1, 2}),
    ("in", ["PRO"], {"case_insensitive": True}, {1, 2}),
    ("not_in", ["pro", ""], {}, TEXTS - {2, 9}),
    ("in", [5, 19.99], {}, {3, 4, 15}),
    ("not_in", [5, 19.99], {}, {12}),
    ("contains", "ro", {}, {1, 2, 16, 17}),
    ("contains", "PRO", {"case_insensitive": True}, {1, 2, 16, 17}),
    ("not_contains", "ro", {}, TEXTS - {1, 2, 16, 17}),
    ("contains", "", {}, TEXTS),
    ("starts_with", "pro", {}, {2, 16}),
    ("starts_with", "PRO", {"case_insensitive": True}, {1, 2, 16}),
    ("ends_with", "Pro", {}, {1, 17}),
    ("ends_with", "é-pro", {"case_insensitive": True}, {17}),
    ("matches_regex", "^pro(fessional)?$", {}, {2, 16}),
    ("matches_regex", "^PRO", {"case_insensitive": True}, {1, 2, 16}),
    ("matches_regex", "[0-9]\\.[0-9]", {}, {4}),
    ("matches_regex", "^$", {}, {9}),
    ("matches_regex", "é", {}, {17}),
    ("gt", 5, {}, {3, 4, 12}),
    ("gte", 5, {}, {3, 4, 12, 15}),
    ("lt", 19.99, {}, {15}),
    ("lte", 19.99, {}, {3, 4, 15}),
    ("between", [5, 19.99], {}, {3, 4, 15}),
    ("between", [6, 1000], {}, {3, 4, 12}),
]


@pytest.mark.parametrize(("operator", "value", "extra", "expected"), CASES)
def test_trait_operator(
    traits: Warehouse, operator: str, value: Any, extra: dict[str, Any], expected: set[int]
) -> None:
    assert traits.members(trait(operator, value, **extra)) == expected


def test_negated_not_equals_includes_missing_values(traits: Warehouse) -> None:
    # "not equals" is false on a missing value; its negation therefore includes it.
    assert traits.members(trait("equals", "pro", negate=True)) == ALL - {2}


def test_nested_trait_path(wh: Warehouse) -> None:
    wh.profile(1, {"address": {"city": "Paris"}})
    wh.profile(2, {"address": "Paris"})
    wh.profile(3, {"address": {"city": None}})
    node = {"kind": "trait", "trait": "address.city", "operator": "equals", "value": "Paris"}
    assert wh.members(node) == {1}
    node = {"kind": "trait", "trait": "address.city", "operator": "is_set"}
    assert wh.members(node) == {1}


def test_regex_dollar_is_end_of_text_only(wh: Warehouse) -> None:
    wh.profile(1, {"v": "abc\n"})
    wh.profile(2, {"v": "abc"})
    assert wh.members(trait("matches_regex", "c$")) == {2}


# --- dates -----------------------------------------------------------------------------

DATES: dict[int, Any] = {
    1: "2025-03-14",  # yesterday (UTC)
    2: "2025-03-15T08:00:00Z",  # today, before as_of
    3: "2025-03-15 13:00:00",  # today, after as_of (12:00)
    4: "2025-02-10",
    5: "2025-02-30",  # not a date
    6: "14/03/2025",  # not a supported format
    7: 20250314,  # a number, not a date
    8: "2025-03-08T23:59:59.999999",
}


@pytest.fixture
def dates(wh: Warehouse) -> Warehouse:
    for pid, value in DATES.items():
        wh.profile(pid, {"d": value})
    return wh


def date_trait(operator: str, value: Any) -> dict[str, Any]:
    return {"kind": "trait", "trait": "d", "operator": operator, "value": value}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("before", "2025-03-14", {4, 8}),
        ("after", "2025-03-14", {2, 3}),  # strictly after midnight: "2025-03-14" itself is not
        ("before", "2025-03-15T08:00:00", {1, 4, 8}),
        ("after", "2025-03-15T08:00:00", {3}),
        ("in_window", {"type": "relative", "last": 7, "unit": "days"}, {1, 2, 8}),
        ("in_window", {"type": "calendar", "unit": "day", "from_ago": 1}, {1}),
        ("in_window", {"type": "calendar", "unit": "day", "from_ago": 0}, {2}),  # capped at as_of
        ("in_window", {"type": "calendar", "unit": "week", "from_ago": 1}, {8}),
        ("in_window", {"type": "calendar", "unit": "month", "from_ago": 1}, {4}),
        ("in_window", {"type": "absolute", "from": "2025-02-10", "to": "2025-02-11"}, {4}),
    ],
)
def test_date_operators(dates: Warehouse, operator: str, value: Any, expected: set[int]) -> None:
    assert dates.members(date_trait(operator, value)) == expected


def test_date_only_traits_are_local_midnight(wh: Warehouse) -> None:
    # In New York, as_of 2025-03-15 12:00 UTC is 08:00 local; "yesterday" is 2025-03-14 local.
    wh.profile(1, {"d": "2025-03-14"})
    wh.profile(2, {"d": "2025-03-14T03:00:00Z"})  # 2025-03-13 23:00 in New York
    node = date_trait("in_window", {"type": "calendar", "unit": "day", "from_ago": 1})
    assert wh.members(node, timezone="America/New_York") == {1}
    assert wh.members(node) == {1, 2}
