"""Groups (and / or, nested), negate on any node, and kind: audience."""

from __future__ import annotations

from typing import Any

import pytest

from segmint.compiler import compile_definition, to_sql
from segmint.definitions import DefinitionError, parse_definition
from tests.compiler.fixtures import AS_OF, Warehouse, at, ev, last


@pytest.fixture
def shop(wh: Warehouse) -> Warehouse:
    # 1: viewed + ordered (US); 2: viewed, no order (US); 3: viewed, no order (FR);
    # 4: ordered only (US); 5: nothing (US)
    for pid, country in ((1, "US"), (2, "US"), (3, "FR"), (4, "US"), (5, "US")):
        wh.profile(pid, country=country)
    for pid in (1, 2, 3):
        wh.event(pid, "product_viewed", at(2))
    for pid in (1, 4):
        wh.event(pid, "order_completed", at(1))
    return wh


VIEWED = ev("product_viewed", window=last(30))
ORDERED = ev("order_completed", window=last(30))
US = {"kind": "demographic", "field": "country", "operator": "equals", "value": "US"}


def group(kind: str, *conditions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "conditions": list(conditions), **extra}


def no(node: dict[str, Any]) -> dict[str, Any]:
    return {**node, "negate": True}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (group("and", VIEWED, ORDERED), {1}),
        (group("or", VIEWED, ORDERED), {1, 2, 3, 4}),
        # the standard 3-condition audience
        (group("and", VIEWED, {**ORDERED, "performed": False}, US), {2}),
        (group("and", VIEWED, no(ORDERED), US), {2}),
        (no(group("and", VIEWED, ORDERED)), {2, 3, 4, 5}),
        (no(group("or", VIEWED, ORDERED)), {5}),
        (group("and", no(VIEWED), no(ORDERED)), {5}),
        (group("or", no(VIEWED), ORDERED), {1, 4, 5}),
        (group("or", no(VIEWED), no(US)), {3, 4, 5}),
        (group("and", no(VIEWED)), {4, 5}),
        (group("or", VIEWED), {1, 2, 3}),
        (group("and", US, group("or", ORDERED, no(VIEWED))), {1, 4, 5}),
        (group("or", group("and", VIEWED, no(US)), group("and", ORDERED, no(VIEWED))), {3, 4}),
        (no(group("and", US, no(group("or", VIEWED, ORDERED)))), {1, 2, 3, 4}),
    ],
)
def test_groups_and_negation(shop: Warehouse, node: dict[str, Any], expected: set[int]) -> None:
    assert shop.members(node) == expected


def test_audience_membership_inlines_the_referenced_definition(shop: Warehouse) -> None:
    audiences = {
        "buyers": ORDERED,
        "us_buyers": group("and", US, {"kind": "audience", "audience": "buyers"}),
    }
    assert shop.members({"kind": "audience", "audience": "us_buyers"}, audiences=audiences) == {
        1,
        4,
    }
    node = {"kind": "audience", "audience": "buyers", "member": False}
    assert shop.members(node, audiences=audiences) == {2, 3, 5}
    assert shop.members(group("and", VIEWED, no(node)), audiences=audiences) == {1}


def test_audience_cycle_is_refused_when_compiling(shop: Warehouse) -> None:
    audiences = {
        "a": {"kind": "audience", "audience": "b"},
        "b": {"kind": "audience", "audience": "a"},
    }
    with pytest.raises(DefinitionError, match="refers back to itself"):
        shop.members({"kind": "audience", "audience": "a"}, audiences=audiences)


SAFARI = {"kind": "technology", "field": "browser", "operator": "equals", "value": "Safari"}


@pytest.fixture
def browsers(wh: Warehouse) -> Warehouse:
    # country / browser, NULL for unknown; everybody viewed except 6
    rows = ((1, "US", "Chrome"), (2, "FR", "Safari"), (3, "FR", None), (4, None, None))
    rows += ((5, None, "Safari"), (6, "DE", "Chrome"))
    for pid, country, browser in rows:
        wh.profile(pid, country=country, browser=browser)
        if pid != 6:
            wh.event(pid, "product_viewed", at(2))
    return wh


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        # unknown country / browser is "not US" / "not Safari" (NOT of a NULL comparison)
        (no(group("or", US, SAFARI)), {3, 4, 6}),
        (group("and", VIEWED, no(group("or", US, SAFARI))), {3, 4}),
        (group("and", no(US), no(SAFARI)), {3, 4, 6}),
        (group("or", VIEWED, group("and", no(US), SAFARI)), {1, 2, 3, 4, 5}),
        (no(group("and", no(US), no(SAFARI))), {1, 2, 5}),
        (group("or", US, no(SAFARI)), {1, 3, 4, 6}),
    ],
)
def test_profile_conditions_combine_with_unknown_values(
    browsers: Warehouse, node: dict[str, Any], expected: set[int]
) -> None:
    assert browsers.members(node) == expected


def test_profile_conditions_of_a_group_share_one_profiles_scan(browsers: Warehouse) -> None:
    definition = parse_definition(
        {"version": 1, "root": group("and", VIEWED, no(group("or", US, SAFARI)))}
    )
    sql = to_sql(compile_definition(definition, as_of=AS_OF, timezone="UTC"))
    assert sql.count("FROM profiles") == 1 and "EXCEPT" not in sql
