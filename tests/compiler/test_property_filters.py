"""Event property filters read JSON exactly like traits; raw JSON edge cases and safety."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compiler.fixtures import Warehouse, at, ev

RAW: dict[int, str | None] = {
    1: '{"price": 19.99, "tag": "Ünïcode ✓"}',
    2: '{"price": "19.99"}',
    3: '{"price": 1E3}',
    4: '{"price": null}',
    5: "{}",
    6: None,  # properties column NULL
    7: '{"price": "19.99 "}',
    8: '{"price": -0.5, "nested": {"deep": {"flag": true}}}',
    9: '{"price": "it\'s \\"quoted\\""}',
    10: '{"my-key": "dash", "$weird": 1}',
}


@pytest.fixture
def raw(wh: Warehouse) -> Warehouse:
    for pid, properties in RAW.items():
        wh.profile(pid)
        wh.event(pid, "x", at(1), properties)
    return wh


def where(prop: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"property": prop, "operator": operator, **extra}
    if value is not None:
        item["value"] = value
    return ev("x", filters=[item])


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (where("price", "equals", 19.99), {1, 2}),
        (where("price", "gt", 100), {3}),
        (where("price", "lt", 0), {8}),
        (where("price", "is_set"), {1, 2, 3, 7, 8, 9}),
        (where("price", "is_not_set"), {4, 5, 6, 10}),
        (where("price", "not_equals", 19.99), {3, 8}),
        (where("price", "equals", "19.99"), {2}),  # a text value compares text only
        (where("price", "equals", 'it\'s "quoted"'), {9}),
        (where("price", "contains", "'"), {9}),
        (where("tag", "equals", "ünïcode ✓", case_insensitive=True), {1}),
        (where("nested.deep.flag", "equals", True), {8}),
        (where("my-key", "equals", "dash"), {10}),
        (where("$weird", "equals", 1), {10}),
    ],
)
def test_property_filter(raw: Warehouse, node: dict[str, Any], expected: set[int]) -> None:
    assert raw.members(node) == expected


def test_user_values_cannot_change_the_query(raw: Warehouse) -> None:
    value = "'); DROP TABLE events; --"
    assert raw.members(where("price", "equals", value)) == set()
    assert raw.members(ev("x")) == set(RAW)


def test_event_names_with_quotes_are_literals(wh: Warehouse) -> None:
    wh.profile(1)
    wh.event(1, "it's", at(1))
    assert wh.members(ev("it's")) == {1}
