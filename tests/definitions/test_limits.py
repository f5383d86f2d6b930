"""How big a definition may be: nodes and nesting, on its own and with the audiences it refers
to inlined. Every way a definition enters refuses an oversized one with the path of the node
at fault, never with a RecursionError."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from segmint.definitions import (
    Definition,
    DefinitionError,
    EventCondition,
    Group,
    iter_nodes,
    load_definition,
    parse_definition,
    validate_definition,
)
from segmint.definitions.limits import (
    MAX_DEPTH,
    MAX_DEPTH_WITH_REFERENCES,
    MAX_NODES,
    MAX_NODES_WITH_REFERENCES,
)


def ev(index: int = 0) -> dict[str, Any]:
    return {"kind": "event", "event": f"e{index}"}


def any_of(count: int) -> dict[str, Any]:
    """An OR group of ``count`` event conditions: ``count + 1`` nodes."""
    return {"kind": "or", "conditions": [ev(i) for i in range(count)]}


def nested(depth: int, leaf: dict[str, Any] | None = None) -> dict[str, Any]:
    """``leaf`` (an event condition) nested in ``depth`` groups."""
    node = leaf or ev()
    for level in range(depth):
        node = {"kind": "and" if level % 2 else "or", "conditions": [node]}
    return node


def from_data(root: dict[str, Any]) -> Definition:
    return parse_definition({"version": 1, "root": root})


def from_json(root: dict[str, Any]) -> Definition:
    return load_definition(json.dumps({"version": 1, "root": root}))


def from_yaml(root: dict[str, Any]) -> Definition:
    return load_definition(yaml.safe_dump({"version": 1, "root": root}))


def from_model(root: dict[str, Any]) -> Definition:
    """A model built without the loaders (pydantic alone), checked by validate_definition."""
    return validate_definition(Definition.model_validate({"version": 1, "root": root}))


ENTRIES = [from_data, from_json, from_yaml, from_model]


@pytest.mark.parametrize("enter", ENTRIES)
def test_a_definition_at_the_limits_is_accepted(
    enter: Callable[[dict[str, Any]], Definition],
) -> None:
    assert len(iter_nodes(enter(any_of(MAX_NODES - 1)).root)) == MAX_NODES
    deepest = max(path.count(".conditions[") for path, _ in iter_nodes(enter(nested(10)).root))
    assert deepest == MAX_DEPTH


@pytest.mark.parametrize("enter", ENTRIES)
@pytest.mark.parametrize("count", [MAX_NODES, 300])
def test_too_many_nodes_are_refused_at_the_list_that_passes_the_limit(
    enter: Callable[[dict[str, Any]], Definition], count: int
) -> None:
    with pytest.raises(DefinitionError) as caught:
        enter(any_of(count))
    assert caught.value.path == "root.conditions"
    assert f"has {count + 1} nodes" in caught.value.reason
    assert f"at most {MAX_NODES}" in caught.value.reason
    assert "{kind: audience, audience: NAME}" in caught.value.reason  # how to split it


def test_nodes_of_every_group_count_together() -> None:
    halves = {"kind": "and", "conditions": [any_of(60), any_of(60)]}
    with pytest.raises(DefinitionError) as caught:
        from_data(halves)
    assert caught.value.path == "root.conditions[1].conditions"
    assert "has 123 nodes" in caught.value.reason


@pytest.mark.parametrize("enter", ENTRIES)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100])
def test_too_deep_nesting_is_refused_at_the_first_node_too_deep(
    enter: Callable[[dict[str, Any]], Definition], depth: int
) -> None:
    with pytest.raises(DefinitionError) as caught:
        enter(nested(depth))
    assert caught.value.path == "root" + ".conditions[0]" * (MAX_DEPTH + 1)
    assert f"nested {MAX_DEPTH + 1} groups deep" in caught.value.reason
    assert f"at most {MAX_DEPTH} levels" in caught.value.reason


def test_a_deep_model_built_in_code_is_refused_without_recursion() -> None:
    node: Group | EventCondition = EventCondition(kind="event", event="x", id="leaf")
    for level in range(5000):  # far past Python's recursion limit
        node = Group(kind="and", conditions=[node], id=f"g{level}")
    definition = Definition.model_construct(version=1, root=node)
    assert len(iter_nodes(definition.root)) == 5001
    with pytest.raises(DefinitionError, match="groups deep"):
        validate_definition(definition)


@pytest.mark.parametrize(
    "text",
    ["[" * 500 + "]" * 500, "root: " + "{a: " * 500 + "1" + "}" * 500],
    ids=["json", "yaml"],
)
def test_text_nested_past_the_parser_is_refused_not_a_recursion_error(text: str) -> None:
    with pytest.raises(DefinitionError, match="nests lists or objects hundreds of levels"):
        load_definition(text)


# --- with the audiences it refers to inlined ----------------------------------------------


def refers_to(*names: str) -> dict[str, Any]:
    return {"kind": "or", "conditions": [{"kind": "audience", "audience": n} for n in names]}


def resolver(audiences: dict[str, dict[str, Any]]) -> Callable[[str], Definition | None]:
    saved = {name: from_data(root) for name, root in audiences.items()}
    return saved.get


def test_references_count_the_nodes_of_the_audiences_they_inline() -> None:
    big = any_of(MAX_NODES - 1)
    fits = resolver({f"a{i}": big for i in range(4)})
    parse_definition({"root": refers_to("a0", "a1", "a2", "a3")}, resolve_audience=fits)
    too_many = resolver({f"a{i}": big for i in range(5)})
    with pytest.raises(DefinitionError) as caught:
        parse_definition(
            {"root": refers_to("a0", "a1", "a2", "a3", "a4")}, resolve_audience=too_many
        )
    assert caught.value.path == "root"
    assert f"has {1 + 5 + 5 * MAX_NODES} nodes" in caught.value.reason
    assert f"at most {MAX_NODES_WITH_REFERENCES}" in caught.value.reason


def test_an_audience_referred_to_twice_counts_twice() -> None:
    resolve = resolver({"big": any_of(MAX_NODES - 1)})
    root = refers_to(*["big"] * 5)
    with pytest.raises(DefinitionError, match=f"at most {MAX_NODES_WITH_REFERENCES}"):
        parse_definition({"root": root}, resolve_audience=resolve)


def test_references_multiplying_through_levels_are_refused() -> None:
    # each level refers to the one below 10 times: 10^4 inlined conditions from 4 small ones
    audiences = {"l0": ev()} | {f"l{i}": refers_to(*[f"l{i - 1}"] * 10) for i in range(1, 4)}
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"root": refers_to("l3")}, resolve_audience=resolver(audiences))
    assert caught.value.path == "root" and "nodes" in caught.value.reason


def test_a_long_chain_of_references_is_refused_naming_the_reference() -> None:
    length = 2000  # deeper than Python's recursion limit if walked naively
    audiences = {f"c{i}": refers_to(f"c{i + 1}") for i in range(length)} | {f"c{length}": ev()}
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"root": refers_to("c0")}, resolve_audience=resolver(audiences))
    assert caught.value.path == "root.conditions[0].audience"
    assert f"{MAX_DEPTH_WITH_REFERENCES}" in caught.value.reason


def test_depth_through_references_adds_up() -> None:
    # 9 audiences, each referring to the next from 5 groups deep: 6 levels more each
    def level(i: int) -> dict[str, Any]:
        return nested(5, {"kind": "audience", "audience": f"d{i + 1}"} if i < 8 else None)

    resolve = resolver({f"d{i}": level(i) for i in range(9)})
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"root": refers_to("d0")}, resolve_audience=resolve)
    assert caught.value.path == "root.conditions[0].audience"
    assert "levels deep" in caught.value.reason
    parse_definition({"root": refers_to("d4")}, resolve_audience=resolve)  # half the chain fits


def test_cycles_and_unknown_audiences_are_still_named() -> None:
    resolve = resolver({"a": refers_to("b"), "b": refers_to("a"), "c": refers_to("nope")})
    with pytest.raises(DefinitionError, match=r"refers back to itself \(a → b → a\)"):
        parse_definition({"root": refers_to("a")}, resolve_audience=resolve)
    with pytest.raises(DefinitionError, match="'c' refers to unknown audience 'nope'"):
        parse_definition({"root": refers_to("c")}, resolve_audience=resolve)
