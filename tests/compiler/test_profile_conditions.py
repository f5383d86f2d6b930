"""kind: utm, demographic, technology — profile columns, event UTM columns, age and gender."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.compiler.fixtures import Warehouse, at, last


@pytest.fixture
def people(wh: Warehouse) -> Warehouse:
    wh.profile(
        1,
        {"age": 34, "gender": "female"},
        country="US",
        region="CA",
        city="San Francisco",
        language="en",
        browser="Chrome",
        os="macOS",
        device_type="desktop",
        first_utm_source="google",
        last_utm_source="newsletter",
        first_utm_campaign="spring",
    )
    wh.profile(
        2,
        {"birthday": "2007-03-15", "gender": "Male"},  # 18 on as_of (2025-03-15)
        country="FR",
        city="Paris",
        language="fr",
        browser="Firefox",
        os="Windows",
        device_type="mobile",
        first_utm_source="facebook",
        last_utm_source="facebook",
    )
    wh.profile(3, {"birthday": "2007-03-16", "age": "n/a"}, country="us")  # 17: birthday tomorrow
    wh.profile(4, {"birthday": "2008-02-29"})  # 17 on 2025-03-15
    wh.profile(5, {"age": "40", "birthday": "1990-01-01"})  # declared age wins
    wh.event(1, "page", at(3), utm_source="google", utm_medium="cpc")
    wh.event(2, "page", at(40), utm_source="google")
    wh.event(3, "page", at(1), utm_source="Google")
    wh.event(4, "page", at(1))
    return wh


def demo(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node = {"kind": "demographic", "field": field, "operator": operator, **extra}
    return node if value is None else {**node, "value": value}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (demo("country", "equals", "US"), {1}),
        (demo("country", "equals", "US", case_insensitive=True), {1, 3}),
        (demo("country", "in", ["US", "FR"]), {1, 2}),
        (demo("country", "not_in", ["US"]), {2, 3}),
        (demo("country", "is_not_set"), {4, 5}),
        (demo("region", "is_set"), {1}),
        (demo("city", "contains", "San"), {1}),
        (demo("city", "starts_with", "Par"), {2}),
        (demo("language", "not_equals", "en"), {2}),
        (demo("gender", "equals", "male", case_insensitive=True), {2}),
        (demo("gender", "ends_with", "male"), {1}),
        (demo("gender", "is_set"), {1, 2}),
        (demo("age", "gte", 18), {1, 2, 5}),
        (demo("age", "lt", 18), {3, 4}),
        (demo("age", "equals", 17), {3, 4}),
        (demo("age", "between", [30, 40]), {1, 5}),
        (demo("age", "in", [18, 40]), {2, 5}),
        (demo("age", "not_equals", 34), {2, 3, 4, 5}),
        (demo("age", "is_set"), {1, 2, 3, 4, 5}),
    ],
)
def test_demographic(people: Warehouse, node: dict[str, Any], expected: set[int]) -> None:
    assert people.members(node) == expected


def test_age_uses_the_local_date_of_as_of(wh: Warehouse) -> None:
    wh.profile(1, {"birthday": "2007-03-16"})
    node = demo("age", "gte", 18)
    # 2025-03-16 01:00 UTC is still 2025-03-15 in New York: not 18 yet there
    as_of = dt.datetime(2025, 3, 16, 1)
    assert wh.members(node, as_of=as_of) == {1}
    assert wh.members(node, as_of=as_of, timezone="America/New_York") == set()


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"field": "browser", "operator": "equals", "value": "Chrome"}, {1}),
        ({"field": "os", "operator": "matches_regex", "value": "^(mac|Win)"}, {1, 2}),
        ({"field": "device_type", "operator": "in", "value": ["mobile", "tablet"]}, {2}),
        ({"field": "device_type", "operator": "is_not_set"}, {3, 4, 5}),
        ({"field": "browser", "operator": "not_contains", "value": "fox"}, {1}),
    ],
)
def test_technology(people: Warehouse, node: dict[str, Any], expected: set[int]) -> None:
    assert people.members({"kind": "technology", **node}) == expected


def utm(
    parameter: str, touch: str, operator: str, value: Any = None, **extra: Any
) -> dict[str, Any]:
    node = {"kind": "utm", "parameter": parameter, "touch": touch, "operator": operator, **extra}
    return node if value is None else {**node, "value": value}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (utm("source", "first", "equals", "google"), {1}),
        (utm("source", "last", "equals", "newsletter"), {1}),
        (utm("source", "last", "equals", "facebook"), {2}),
        (utm("campaign", "first", "is_set"), {1}),
        (utm("source", "any", "equals", "google"), {1, 2}),
        (utm("source", "any", "equals", "google", window=last(30)), {1}),
        (utm("source", "any", "equals", "google", case_insensitive=True, window=last(30)), {1, 3}),
        (utm("medium", "any", "equals", "cpc"), {1}),
        # any touch + is_not_set: some event in the window has no value
        (utm("source", "any", "is_not_set", window=last(30)), {4}),
        (utm("source", "any", "is_set", negate=True), {4, 5}),
    ],
)
def test_utm(people: Warehouse, node: dict[str, Any], expected: set[int]) -> None:
    assert people.members(node) == expected
