"""One test per kind of mistake: each is refused with the JSON path of the exact node."""

from __future__ import annotations

from typing import Any

import pytest

from segmint.definitions import Definition, DefinitionError, parse_definition
from segmint.errors import InvalidInput


def refused(root: Any, **kwargs: Any) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"version": 1, "root": root}, **kwargs)
    return caught.value


def ev(**fields: Any) -> dict[str, Any]:
    return {"kind": "event", "event": "x", **fields}


def trait(operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node = {"kind": "trait", "trait": "plan", "operator": operator, **extra}
    return node if value is None else {**node, "value": value}


def in_and(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "and", "conditions": [ev(), *nodes]}


def test_definition_error_is_invalid_input_with_path() -> None:
    error = refused(in_and({"kind": "nope"}))
    assert isinstance(error, InvalidInput)
    assert error.to_dict()["field"] == "root.conditions[1]"


def test_unknown_condition_kind() -> None:
    error = refused(in_and({"kind": "weather", "operator": "equals"}))
    assert error.path == "root.conditions[1]"
    assert "unknown kind 'weather'" in error.message and "'event'" in error.message


def test_missing_kind() -> None:
    assert refused(in_and({"event": "x"})).path == "root.conditions[1]"


def test_unknown_field() -> None:
    assert refused(in_and(ev(windw={"last": 3}))).path == "root.conditions[1].windw"


def test_missing_required_field() -> None:
    error = refused(in_and({"kind": "trait", "operator": "is_set"}))
    assert error.path == "root.conditions[1].trait"
    assert "required" in error.message


def test_empty_group() -> None:
    assert refused({"kind": "or", "conditions": []}).path == "root.conditions"


def test_unknown_operator() -> None:
    assert refused(in_and(trait("resembles", "x"))).path == "root.conditions[1].operator"


@pytest.mark.parametrize(
    ("node", "field", "phrase"),
    [
        (trait("gt", "abc"), "value", "needs a number"),
        (trait("between", [5, 1]), "value", "wrong order"),
        (trait("between", [1]), "value", "two numbers"),
        (trait("contains", 3), "value", "needs a text value"),
        (trait("in", []), "value", "non-empty list"),
        (trait("in", ["a", 1]), "value", "not a mix"),
        (trait("is_set", "x"), "value", "takes no value"),
        (trait("equals", [1, 2]), "value", "text, number or boolean"),
        (trait("before", "last week"), "value", "needs a date"),
        (trait("gt", 3, case_insensitive=True), "case_insensitive", "text comparisons only"),
        (
            {"kind": "demographic", "field": "country", "operator": "gt", "value": 3},
            "operator",
            "field is text",
        ),
        (
            {"kind": "demographic", "field": "age", "operator": "contains", "value": "3"},
            "operator",
            "field is a number",
        ),
        (
            {"kind": "demographic", "field": "country", "operator": "equals", "value": 3},
            "value",
            "needs a text value",
        ),
        (
            {"kind": "technology", "field": "os", "operator": "after", "value": "2025-01-01"},
            "operator",
            "date-valued traits only",
        ),
    ],
)
def test_operator_that_does_not_fit_the_value_type(
    node: dict[str, Any], field: str, phrase: str
) -> None:
    error = refused(in_and(node))
    assert error.path == f"root.conditions[1].{field}"
    assert phrase in error.message


def test_bad_operator_in_event_filter() -> None:
    node = ev(
        filters=[
            {"property": "a", "operator": "is_set"},
            {"property": "b", "operator": "lt", "value": "x"},
        ]
    )
    assert refused(in_and(node)).path == "root.conditions[1].filters[1].value"


def test_bad_aggregate_comparison() -> None:
    node = {
        "kind": "aggregate",
        "event": "x",
        "property": "p",
        "function": "sum",
        "operator": "gt",
        "value": [1, 2],
    }
    assert refused(node).path == "root.value"


@pytest.mark.parametrize(
    ("window", "field", "phrase"),
    [
        ({"type": "relative", "last": -3}, "last", "at least 1"),
        ({"type": "relative", "last": 0}, "last", "at least 1"),
        ({"type": "relative", "from_ago": 3, "to_ago": 7}, "from_ago", "larger than to_ago"),
        ({"type": "relative", "last": 3, "from_ago": 5}, "last", "not both"),
        ({"type": "relative", "unit": "days"}, "last", "needs 'last'"),
        ({"type": "relative", "last": 3, "unit": "fortnights"}, "unit", "must be one of"),
        (
            {"type": "calendar", "unit": "day", "from_ago": 1, "to_ago": 3},
            "from_ago",
            "at least to_ago",
        ),
        ({"type": "calendar", "unit": "day", "from_ago": -1}, "from_ago", "at least 0"),
        ({"type": "absolute", "from": "2025-02-01", "to": "2025-01-01"}, "from", "before 'to'"),
        ({"type": "absolute", "from": "2025-02-01", "to": "2025-02-01"}, "from", "before 'to'"),
        ({"type": "absolute"}, None, "needs 'from', 'to'"),
        ({"type": "absolute", "from": "yesterday"}, "from", ""),
        ({"last": 3}, None, "'type' is missing"),
    ],
)
def test_bad_window(window: dict[str, Any], field: str | None, phrase: str) -> None:
    error = refused(in_and(ev(window=window)))
    expected = "root.conditions[1].window" + (f".{field}" if field else "")
    assert error.path == expected
    assert phrase in error.message


def test_bad_window_inside_in_window_value() -> None:
    node = trait("in_window", {"type": "relative", "from_ago": 1, "to_ago": 2})
    assert refused(in_and(node)).path == "root.conditions[1].value.from_ago"


def test_window_on_first_touch_utm() -> None:
    node = {
        "kind": "utm",
        "parameter": "source",
        "touch": "first",
        "operator": "equals",
        "value": "google",
        "window": {"type": "relative", "last": 7},
    }
    assert refused(in_and(node)).path == "root.conditions[1].window"


@pytest.mark.parametrize(
    "pattern",
    ["(unclosed", "[a-", "\\d+", "a{2,1}", "(?i)abc", "(?=x)", "a\\1", "*a", "x{", "[[:alpha:]]"],
)
def test_regex_outside_the_portable_subset(pattern: str) -> None:
    error = refused(in_and(trait("matches_regex", pattern)))
    assert error.path == "root.conditions[1].value"
    assert "regular expression" in error.message


def test_unknown_audience() -> None:
    error = refused(
        in_and({"kind": "audience", "audience": "vips"}), resolve_audience=lambda name: None
    )
    assert error.path == "root.conditions[1].audience"
    assert "unknown audience 'vips'" in error.message


def test_audience_cycle() -> None:
    stored = {
        "a": Definition.model_validate({"root": {"kind": "audience", "audience": "b"}}),
        "b": Definition.model_validate({"root": {"kind": "audience", "audience": "c"}}),
        "c": Definition.model_validate({"root": {"kind": "audience", "audience": "a"}}),
    }
    error = refused(
        in_and({"kind": "audience", "audience": "b"}), resolve_audience=stored.get, name="a"
    )
    assert error.path == "root.conditions[1].audience"
    assert "a → b → c → a" in error.message


def test_self_reference() -> None:
    error = refused(
        {"kind": "audience", "audience": "me"}, resolve_audience=lambda n: None, name="me"
    )
    assert "refers back to itself" in error.message


def test_bad_audience_name() -> None:
    assert refused({"kind": "audience", "audience": "Big Spenders"}).path == "root.audience"


def test_bad_property_path() -> None:
    node = ev(filters=[{"property": "a..b", "operator": "is_set"}])
    assert refused(node).path == "root.filters[0].property"


def test_duplicate_node_ids() -> None:
    error = refused({"kind": "and", "conditions": [ev(id="a"), ev(id="a")]})
    assert error.path == "root.conditions[1].id"


def test_unknown_version() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"version": 2, "root": ev()})
    assert caught.value.path == "version"
