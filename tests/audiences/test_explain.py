"""Explain membership (B1): every node's value for one profile, with the facts behind it; the
root's value is the compiled membership, for every profile of random definitions and data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from segmint.audiences.explain import Explanation, explain_membership
from segmint.audiences.run import run_definition
from segmint.compiler import compile_definition, to_sql
from segmint.definitions import Definition, DefinitionError, Group, iter_nodes
from segmint.errors import InvalidInput, NotFound
from segmint.warehouse import DuckDBEngine, open_warehouse
from tests.compiler.fixtures import AS_OF, Warehouse, at, ev, last
from tests.reference.loading import load_scenario
from tests.reference.strategies import Scenario, scenarios


@pytest.fixture
def shop() -> Iterator[Warehouse]:
    engine = open_warehouse(None)
    wh = Warehouse(engine)
    wh.profile(
        1,
        {"plan": "pro", "age": 41},
        country="US",
        user_id="u1",
        email="ann@example.com",
        browser="Chrome",
        first_utm_source="google",
    )
    wh.profile(2, {"plan": "free"}, country="CA", anonymous_id="anon-2")
    wh.event(1, "product_viewed", at(3), {"sku": "A1"}, utm_source="google")
    wh.event(1, "order_completed", at(2, hours=-2), {"revenue": 120.5})
    wh.event(1, "order_completed", at(40), {"revenue": 30})
    wh.event(2, "product_viewed", at(1), {"sku": "B2"})
    try:
        yield wh
    finally:
        engine.close()


def explain(wh: Warehouse, root: dict[str, Any], profile: int | str, **kw: Any) -> Explanation:
    return explain_membership(wh.engine, {"root": root}, profile, as_of=AS_OF, timezone="UTC", **kw)


def detail(wh: Warehouse, root: dict[str, Any], profile: int | str) -> str:
    return explain(wh, root, profile).nodes[0].detail


def test_event_condition_shows_the_count_and_the_threshold(shop: Warehouse) -> None:
    root = ev("order_completed", window=last(30))
    assert detail(shop, root, 2) == (
        "order_completed in the last 30 days: 0 times (needs at least 1) → NOT matched"
    )
    assert detail(shop, root, 1).endswith(": 1 time (needs at least 1) → matched")
    not_done = ev("order_completed", window=last(30), performed=False)
    assert detail(shop, not_done, 1).endswith("1 time (needs none) → NOT matched")
    twice = ev("order_completed", count={"operator": "at_most", "value": 1})
    assert detail(shop, twice, 1) == "order_completed: 2 times (needs at most 1) → NOT matched"


def test_aggregate_shows_the_value_against_the_comparison(shop: Warehouse) -> None:
    root = {
        "kind": "aggregate",
        "event": "order_completed",
        "property": "revenue",
        "function": "sum",
        "operator": "gt",
        "value": 100,
        "window": last(30),
    }
    result = explain(shop, root, 1)
    assert result.member
    assert result.nodes[0].facts == {"value": 120.5, "events": 1}
    assert "120.5 over 1 events → matched" in result.nodes[0].detail
    assert "0 over 0 events → NOT matched" in detail(shop, root, 2)
    average = {**root, "function": "avg"}
    assert "no value over 0 events" in detail(shop, average, 2)


def test_sequence_says_whether_a_qualifying_pair_exists(shop: Warehouse) -> None:
    root = {
        "kind": "sequence",
        "first": {"event": "product_viewed"},
        "then": {"event": "order_completed"},
        "within": {"amount": 2, "unit": "days"},
    }
    assert "1 product_viewed, 2 order_completed; a qualifying pair exists → matched" in detail(
        shop, root, 1
    )
    assert "no qualifying pair → NOT matched" in detail(shop, root, 2)


@pytest.mark.parametrize(
    ("root", "profile", "expected"),
    [
        (
            {"kind": "trait", "trait": "plan", "operator": "equals", "value": "pro"},
            2,
            "trait plan equals pro: the profile has 'free' → NOT matched",
        ),
        (
            {"kind": "demographic", "field": "country", "operator": "equals", "value": "US"},
            1,
            "country equals US: the profile has 'US' → matched",
        ),
        (
            {"kind": "demographic", "field": "age", "operator": "gte", "value": 18},
            1,
            "age >= 18: the profile has 41 → matched",
        ),
        (
            {"kind": "demographic", "field": "age", "operator": "gte", "value": 18},
            2,
            "age >= 18: the profile has no value → NOT matched",
        ),
        (
            {"kind": "technology", "field": "browser", "operator": "equals", "value": "Chrome"},
            1,
            "browser equals Chrome: the profile has 'Chrome' → matched",
        ),
        (
            {
                "kind": "utm",
                "parameter": "source",
                "touch": "first",
                "operator": "equals",
                "value": "google",
            },
            1,
            "first-touch utm_source equals google: the profile has 'google' → matched",
        ),
        (
            {
                "kind": "utm",
                "parameter": "source",
                "operator": "equals",
                "value": "google",
                "window": last(7),
            },
            1,
            "utm_source equals google in the last 7 days: events in the window carry "
            "'google' × 1, (none) × 1 → matched",
        ),
    ],
)
def test_profile_values_are_shown(
    shop: Warehouse, root: dict[str, Any], profile: int, expected: str
) -> None:
    assert detail(shop, root, profile) == expected


def test_audience_reference_says_member_or_not(shop: Warehouse) -> None:
    buyers = Definition.model_validate({"root": ev("order_completed")})
    resolver = {"buyers": buyers}.get
    root = {"kind": "audience", "audience": "buyers"}
    member = explain(shop, root, 1, resolve_audience=resolver).nodes[0]
    assert (member.matched, member.facts) == (True, {"member": True})
    outsider = explain(shop, {**root, "member": False}, 1, resolve_audience=resolver)
    assert outsider.nodes[0].detail.endswith("the profile is a member → NOT matched")


def test_groups_and_negation_show_which_children_held(shop: Warehouse) -> None:
    root = {
        "kind": "and",
        "conditions": [
            ev("product_viewed", window=last(30)),
            {
                "kind": "or",
                "negate": True,
                "conditions": [
                    {
                        "kind": "demographic",
                        "field": "country",
                        "operator": "equals",
                        "value": "US",
                    },
                    ev("order_completed", window=last(30)),
                ],
            },
        ],
    }
    ann = explain(shop, root, "ann@example.com")
    assert ann.profile_id == 1 and not ann.member
    assert ann.lines() == [
        "all of 2 conditions: 1 of 2 held → NOT matched",
        "  product_viewed in the last 30 days: 1 time (needs at least 1) → matched",
        "  NOT [any of 2 conditions: 2 of 2 held → matched] → NOT matched",
        "    country equals US: the profile has 'US' → matched",
        "    order_completed in the last 30 days: 1 time (needs at least 1) → matched",
    ]
    other = explain(shop, root, "anon-2")
    assert other.member and other.nodes[2].held is False and other.nodes[2].matched is True


def test_profiles_are_found_by_user_id_and_unknown_ones_raise_not_found(shop: Warehouse) -> None:
    assert explain(shop, ev("x"), "u1").profile_id == 1
    with pytest.raises(NotFound) as raised:
        explain(shop, ev("x"), 99)
    assert "no profile '99'" in raised.value.message and "user id" in raised.value.message


def test_a_number_that_is_a_profile_id_and_another_profiles_user_id_is_refused(
    shop: Warehouse,
) -> None:
    shop.profile(565, {}, user_id="2", email="seven@example.com")
    with pytest.raises(InvalidInput) as refused:
        explain(shop, ev("x"), "2")
    said = refused.value.message
    assert said.startswith("'2' names 2 profiles: profile 2 (no user id or email); and the ")
    assert "user id of profile 565 (user id 2, seven@example.com)" in said
    assert said.endswith("Say which with a prefix: profile:2 or user:2")
    assert refused.value.path == "profile_id"
    by_user = explain(shop, ev("x"), "user:2").profile
    assert (by_user.profile_id, by_user.matched_by) == (565, "user")
    assert explain(shop, ev("x"), "profile:2").profile_id == 2
    assert explain(shop, ev("x"), 1).profile.label() == "profile 1 (user id u1, ann@example.com)"


def test_a_merged_away_profile_id_is_explained_as_the_profile_it_was_merged_into(
    shop: Warehouse,
) -> None:
    shop.engine.execute(  # 7 into 5, then 5 into 1: the chain is followed
        "INSERT INTO profile_merges VALUES (7, 5, ?, 'identify'), (5, 1, ?, 'identify')",
        [at(9), at(8)],
    )
    found = explain(shop, ev("x"), "7").profile
    assert (found.profile_id, found.merged_from, found.matched_by) == (1, 7, "profile")
    assert found.how() == "profile 7, merged into profile 1 (user id u1, ann@example.com)"


def test_a_prefix_says_what_the_reference_is(shop: Warehouse) -> None:
    assert explain(shop, ev("x"), "email:ANN@example.com").profile.matched_by == "email"
    assert explain(shop, ev("x"), "anonymous:anon-2").profile_id == 2
    with pytest.raises(NotFound) as missing:
        explain(shop, ev("x"), "user:1")
    assert "no profile with user id '1'" in missing.value.message
    assert "write user:user:1" in missing.value.message


def test_bad_definitions_raise_with_the_path(shop: Warehouse) -> None:
    with pytest.raises(DefinitionError) as raised:
        explain(shop, ev("x", window={"type": "relative", "last": 0}), 1)
    assert raised.value.path == "root.window.last"


# --- the differential: explain agrees with membership on random data ---------------------------


def load(engine: DuckDBEngine, scenario: Scenario) -> None:
    load_scenario(engine, scenario.profiles, scenario.events)


@pytest.fixture(scope="module")
def engine() -> Iterator[DuckDBEngine]:
    warehouse = open_warehouse(None)
    try:
        yield warehouse
    finally:
        warehouse.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios(max_depth=2))
def test_explain_and_run_agree_with_membership_for_every_profile(
    engine: DuckDBEngine, scenario: Scenario
) -> None:
    load(engine, scenario)
    query = compile_definition(
        scenario.definition,
        as_of=scenario.as_of,
        timezone=scenario.timezone,
        resolve_audience=scenario.audiences.get,
    )
    members = {row[0] for row in engine.rows(to_sql(query, "duckdb"))}
    run = run_definition(
        engine,
        scenario.definition,
        as_of=scenario.as_of,
        timezone=scenario.timezone,
        resolve_audience=scenario.audiences.get,
        sample_size=3,
    )
    assert run.size == len(members)  # Run Query's counts come from the same sets
    assert {m.profile_id for m in run.sample} <= members
    for profile in scenario.profiles:
        result = explain_membership(
            engine,
            scenario.definition,
            profile["profile_id"],
            as_of=scenario.as_of,
            timezone=scenario.timezone,
            resolve_audience=scenario.audiences.get,
        )
        assert result.member == (profile["profile_id"] in members)
        _assert_groups_combine_their_children(result, scenario.definition)


def _assert_groups_combine_their_children(result: Explanation, definition: Definition) -> None:
    """Each group's value is the AND / OR of its children's values, then its NOT."""
    by_path = {node.path: node for node in result.nodes}
    for path, node in iter_nodes(definition.root):
        verdict = by_path[path]
        assert verdict.matched == (verdict.held != node.negate)
        if isinstance(node, Group):
            children = [
                by_path[f"{path}.conditions[{i}]"].matched for i in range(len(node.conditions))
            ]
            combined = all(children) if node.kind == "and" else any(children)
            assert verdict.held == combined, (path, children)
