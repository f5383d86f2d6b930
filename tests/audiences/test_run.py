"""Run Query (R5, R28): size, sample, per-node counts, AND / OR steps, and explanations of
conditions that match nobody; plus the plain-English node labels they show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from segmint.audiences.run import RunResult, run_definition
from segmint.compiler import compile_definition, to_sql
from segmint.definitions import Definition, DefinitionError, parse_definition
from segmint.definitions.describe import describe
from segmint.warehouse import open_warehouse
from tests.compiler.fixtures import AS_OF, Warehouse, at, ev, last

US = {"kind": "demographic", "field": "country", "operator": "equals", "value": "US"}


@pytest.fixture
def shop() -> Iterator[Warehouse]:
    """Four profiles: 1 viewed and bought (US), 2 viewed only (US), 3 viewed only (CA),
    4 did nothing recently (US)."""
    engine = open_warehouse(None)
    wh = Warehouse(engine)
    wh.profile(
        1,
        {"plan": "pro", "first_name": "Ann"},
        country="US",
        user_id="u1",
        email="ann@example.com",
        browser="Chrome",
        last_seen=at(1),
    )
    wh.profile(2, {"plan": "free"}, country="US", last_seen=at(2))
    wh.profile(3, {"plan": "free"}, country="CA", last_seen=at(3))
    wh.profile(4, {}, country="US", last_seen=at(90))
    wh.event(1, "product_viewed", at(5), {"sku": "A1", "price": 20})
    wh.event(1, "order_completed", at(4), {"revenue": 120.5, "coupon": "SPRING"})
    wh.event(2, "product_viewed", at(2), {"sku": "B2", "price": 5}, utm_source="google")
    wh.event(3, "product_viewed", at(3), {"sku": "A1", "price": 20})
    wh.event(4, "order_completed", at(80), {"revenue": 10})
    try:
        yield wh
    finally:
        engine.close()


def run(wh: Warehouse, root: dict[str, Any], **kwargs: Any) -> RunResult:
    return run_definition(wh.engine, {"root": root}, as_of=AS_OF, timezone="UTC", **kwargs)


def counts(result: RunResult) -> dict[str, int]:
    return {node.path: node.count for node in result.diagnostics}


VIEWED_NOT_BOUGHT_US = {
    "kind": "and",
    "conditions": [
        ev("product_viewed", window=last(30)),
        ev("order_completed", performed=False, window=last(30)),
        US,
    ],
}


def test_run_gives_size_sample_counts_and_and_steps(shop: Warehouse) -> None:
    result = run(shop, VIEWED_NOT_BOUGHT_US)
    assert result.size == 1
    assert result.profiles == 4
    assert [m.profile_id for m in result.sample] == [2]
    assert counts(result) == {
        "root": 1,
        "root.conditions[0]": 3,
        "root.conditions[1]": 3,
        "root.conditions[2]": 3,
    }
    root = result.diagnostics[0]
    assert root.label == "all of 3 conditions"
    assert [step.count for step in root.steps] == [3, 2, 1]
    assert root.steps[1].child_label == "no order_completed in the last 30 days"
    assert result.explanations == []


def test_or_steps_are_cumulative_unions(shop: Warehouse) -> None:
    root = {
        "kind": "or",
        "conditions": [
            ev("order_completed", window=last(30)),
            {"kind": "demographic", "field": "country", "operator": "equals", "value": "CA"},
            ev("product_viewed", window=last(30)),
        ],
    }
    result = run(shop, root)
    assert [step.count for step in result.diagnostics[0].steps] == [1, 2, 3]
    assert result.size == 3


def test_nested_negated_group_counts_match_the_compiled_sql(shop: Warehouse) -> None:
    root = {
        "kind": "and",
        "conditions": [
            {"kind": "or", "negate": True, "conditions": [US, ev("order_completed")]},
            ev("product_viewed"),
        ],
    }
    result = run(shop, root)
    definition = parse_definition({"root": root})
    compiled = shop.engine.rows(to_sql(compile_definition(definition, as_of=AS_OF, timezone="UTC")))
    assert result.size == len(compiled) == 1
    assert counts(result)["root.conditions[0]"] == 1  # only profile 3 is neither US nor a buyer
    nested = result.diagnostics[1]
    assert nested.negate and nested.label == "NOT any of 2 conditions"
    assert [s.count for s in nested.steps] == [3, 3]  # steps come before the group's NOT


def test_sample_lists_recent_members_first_with_key_traits(shop: Warehouse) -> None:
    result = run(shop, ev("product_viewed"), sample_size=2)
    assert result.size == 3
    assert [m.profile_id for m in result.sample] == [1, 2]
    ann = result.sample[0]
    assert (ann.user_id, ann.email, ann.country) == ("u1", "ann@example.com", "US")
    assert ann.traits == {"first_name": "Ann", "plan": "pro"}
    assert run(shop, ev("product_viewed"), sample_size=0).sample == []


def test_result_is_json_ready(shop: Warehouse) -> None:
    data = run(shop, VIEWED_NOT_BOUGHT_US).to_dict()
    assert data["as_of"] == "2025-03-15T12:00:00Z"
    assert data["sample"][0]["last_seen"].endswith("Z")
    assert data["diagnostics"][0]["steps"][2]["count"] == 1


# --- explanations (R28) -----------------------------------------------------------------------


def explanations(wh: Warehouse, root: dict[str, Any], **kwargs: Any) -> str:
    result = run(wh, root, **kwargs)
    return "\n".join(result.explanations)


def test_an_event_never_tracked_suggests_close_names(shop: Warehouse) -> None:
    text = explanations(shop, ev("order_complete", window=last(30)))
    assert "“order_complete at least 1 time in the last 30 days” (root) matches no profile" in text
    assert "'order_complete' has never been tracked. Did you mean 'order_completed'?" in text


def test_no_event_in_the_window_says_how_many_and_when_last(shop: Warehouse) -> None:
    text = explanations(shop, ev("order_completed", window=last(2)))
    assert "No 'order_completed' event in the last 2 days" in text
    assert "2 events tracked in all, the last at 2025-03-11 12:00 UTC" in text


def test_a_property_never_seen_lists_the_seen_keys(shop: Warehouse) -> None:
    root = ev("order_completed", filters=[{"property": "revnue", "operator": "gt", "value": 1}])
    text = explanations(shop, root)
    assert "No 'order_completed' event has the property 'revnue'. Did you mean 'revenue'?" in text
    assert "Properties seen on it: revenue, coupon." in text
    assert "none passes all the property filters" not in text


def test_a_value_never_seen_shows_example_values(shop: Warehouse) -> None:
    root = ev("product_viewed", filters=[{"property": "sku", "operator": "equals", "value": "a1"}])
    text = explanations(shop, root)
    assert "No 'product_viewed' event ever had sku equal to 'a1'" in text
    assert "'A1' (2), 'B2' (1)" in text


def test_filters_that_only_fail_together_are_explained(shop: Warehouse) -> None:
    filters = [
        {"property": "sku", "operator": "equals", "value": "B2"},
        {"property": "price", "operator": "gt", "value": 10},
    ]
    text = explanations(shop, ev("product_viewed", filters=filters))
    assert "3 'product_viewed' events happened" in text
    assert "none passes all the property filters" in text


def test_a_trait_key_never_seen_suggests_the_close_key(shop: Warehouse) -> None:
    text = explanations(shop, {"kind": "trait", "trait": "plann", "operator": "is_set"})
    assert "No profile has the trait 'plann'. Did you mean 'plan'?" in text


def test_a_trait_value_nobody_has_shows_values_seen(shop: Warehouse) -> None:
    text = explanations(
        shop, {"kind": "trait", "trait": "plan", "operator": "equals", "value": "Pro"}
    )
    assert (
        "No profile has the trait 'plan' equal to 'Pro'. Values seen: 'free' (2), 'pro' (1)" in text
    )


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (
            {"kind": "demographic", "field": "country", "operator": "equals", "value": "USA"},
            "No profile has country equal to 'USA'. Values seen: 'US' (3), 'CA' (1).",
        ),
        (
            {"kind": "technology", "field": "browser", "operator": "in", "value": ["Firefox"]},
            "No profile has browser in ['Firefox']. Values seen: 'Chrome' (1).",
        ),
        (
            {
                "kind": "utm",
                "parameter": "source",
                "operator": "equals",
                "value": "bing",
                "window": last(30),
            },
            "No event in the window has utm_source equal to 'bing'. Values seen: 'google' (1).",
        ),
        (
            {"kind": "utm", "parameter": "campaign", "touch": "first", "operator": "is_set"},
            "No profile has any first_utm_campaign value.",
        ),
        (
            {"kind": "demographic", "field": "age", "operator": "gt", "value": 30},
            "No profile has an age",
        ),
    ],
)
def test_profile_values_nobody_has_show_the_values_seen(
    shop: Warehouse, root: dict[str, Any], expected: str
) -> None:
    assert expected in explanations(shop, root)


def test_an_empty_referenced_audience_is_named(shop: Warehouse) -> None:
    nobody = Definition.model_validate({"root": ev("refund_issued")})
    text = explanations(
        shop,
        {"kind": "audience", "audience": "refunded"},
        resolve_audience={"refunded": nobody}.get,
    )
    assert "The audience 'refunded' has no members at this time." in text


def test_conditions_that_conflict_only_together_are_explained(shop: Warehouse) -> None:
    root = {
        "kind": "and",
        "conditions": [ev("order_completed", window=last(30)), {**US, "value": "CA"}],
    }
    result = run(shop, root)
    assert result.size == 0
    assert any(
        "each match someone, but not together: 1 profile match “order_completed" in line
        and "“country equals CA” (1 profile)" in line
        for line in result.explanations
    ), result.explanations


def test_a_negated_condition_matching_nobody_says_everyone_has_it(shop: Warehouse) -> None:
    text = explanations(
        shop,
        {
            **ev("order_completed", window=last(365)),
            "negate": False,
            "count": {"operator": "at_most", "value": 5},
        },
    )
    assert text == ""
    text = explanations(
        shop,
        {"kind": "trait", "trait": "plan", "operator": "is_not_set", "negate": True, "id": "x"},
    )
    assert text == ""  # profile 4 has no plan: the negation matches 3
    text = explanations(shop, {**US, "operator": "is_set", "value": None, "negate": True})
    assert "Every profile matches “country is set”, so its negation matches nobody." in text


def test_an_empty_warehouse_says_to_send_events_first() -> None:
    engine = open_warehouse(None)
    try:
        result = run_definition(engine, {"root": ev("product_viewed")}, as_of=AS_OF, timezone="UTC")
    finally:
        engine.close()
    assert result.size == 0
    assert "no profiles yet" in result.explanations[0]


def test_as_of_moves_the_windows(shop: Warehouse) -> None:
    earlier = AS_OF - dt.timedelta(days=60)
    result = run_definition(
        shop.engine,
        {"root": ev("order_completed", window=last(30))},
        as_of=earlier,
        timezone="UTC",
    )
    assert result.size == 1  # profile 4's order, 80 days before AS_OF


# --- bad definitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "path"),
    [
        ({"kind": "evnt", "event": "x"}, "root"),
        ({"kind": "trait", "trait": "plan", "operator": "gt", "value": "pro"}, "root"),
        (ev("x", window={"type": "relative", "last": -3}), "root.window.last"),
        (
            {
                "kind": "and",
                "conditions": [
                    ev(
                        "x",
                        filters=[{"property": "sku", "operator": "matches_regex", "value": "\\d+"}],
                    )
                ],
            },
            "root.conditions[0].filters[0]",
        ),
        ({"kind": "audience", "audience": "nobody_saved_this"}, "root.conditions"),
    ],
)
def test_bad_definitions_raise_naming_the_path(
    shop: Warehouse, root: dict[str, Any], path: str
) -> None:
    if root.get("kind") == "audience":
        root = {"kind": "and", "conditions": [root]}
    with pytest.raises(DefinitionError) as raised:
        run(shop, root)
    assert raised.value.path is not None and raised.value.path.startswith(path)


# --- labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "label"),
    [
        (
            ev("order_completed", window=last(30)),
            "order_completed at least 1 time in the last 30 days",
        ),
        ({**US, "value": "CA", "negate": True}, "NOT country equals CA"),
        (
            {
                "kind": "aggregate",
                "event": "order_completed",
                "property": "revenue",
                "function": "sum",
                "operator": "gt",
                "value": 500,
                "window": last(90),
            },
            "total revenue of order_completed in the last 90 days > 500",
        ),
        (
            {
                "kind": "sequence",
                "first": {"event": "product_viewed"},
                "then": {"event": "order_completed"},
                "within": {"amount": 1, "unit": "days"},
            },
            "product_viewed then order_completed within 1 day",
        ),
        (
            {
                "kind": "sequence",
                "first": {"event": "added_to_cart"},
                "followed": False,
                "then": {"event": "order_completed"},
                "within": {"amount": 2, "unit": "hours"},
            },
            "added_to_cart not followed by order_completed within 2 hours",
        ),
        ({"kind": "or", "conditions": [US, US, US]}, "any of 3 conditions"),
        (ev("x", count={"operator": "exactly", "value": 3}), "x exactly 3 times"),
        (
            ev("x", performed=False, window={"type": "calendar", "unit": "day", "from_ago": 1}),
            "no x yesterday",
        ),
        (
            ev(
                "x",
                filters=[{"property": "plan", "operator": "in", "value": ["a", "b"]}],
                window={"type": "relative", "from_ago": 14, "to_ago": 7},
            ),
            "x where plan is one of [a, b] at least 1 time between 14 and 7 days ago",
        ),
        ({"kind": "trait", "trait": "plan", "operator": "is_not_set"}, "trait plan is not set"),
        (
            {
                "kind": "utm",
                "parameter": "source",
                "touch": "first",
                "operator": "equals",
                "value": "google",
                "case_insensitive": True,
            },
            "first-touch utm_source equals google (ignoring case)",
        ),
        (
            {"kind": "technology", "field": "device_type", "operator": "equals", "value": "mobile"},
            "device type equals mobile",
        ),
        (
            {"kind": "audience", "audience": "buyers", "member": False},
            "not a member of audience buyers",
        ),
        (
            ev("x", window={"type": "absolute", "from": "2025-01-01", "to": "2025-02-01"}),
            "x at least 1 time from 2025-01-01 to 2025-02-01",
        ),
    ],
)
def test_describe_gives_plain_english_labels(node: dict[str, Any], label: str) -> None:
    assert describe(parse_definition({"root": node}).root) == label
