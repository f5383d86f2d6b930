"""Reading definitions from YAML / JSON, node ids, the JSON Schema, static vs dynamic."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from segmint.compiler import compile_definition, to_sql
from segmint.definitions import (
    AbsoluteWindow,
    Definition,
    DefinitionError,
    EventCondition,
    Group,
    definition_json_schema,
    dump_definition,
    is_dynamic,
    load_definition,
    parse_definition,
)

YAML = """
version: 1
root:
  kind: and
  conditions:
    - kind: event
      id: viewed
      event: product_viewed
      window: {type: relative, last: 30, unit: days}
    - kind: event
      event: order_completed
      performed: false
      window: {type: absolute, from: 2025-01-01, to: 2025-02-01T12:00:00}
    - kind: demographic
      field: country
      operator: equals
      value: US
"""


def test_yaml_and_json_give_the_same_definition() -> None:
    from_yaml = load_definition(YAML)
    from_json = load_definition(dump_definition(from_yaml))
    assert from_yaml == from_json
    assert isinstance(from_yaml.root, Group)
    window = from_yaml.root.conditions[1].window  # type: ignore[union-attr]
    assert isinstance(window, AbsoluteWindow)
    assert window.from_ == dt.date(2025, 1, 1)
    assert window.to == dt.datetime(2025, 2, 1, 12)


def test_missing_ids_are_filled_from_the_position_and_given_ids_kept() -> None:
    definition = load_definition(YAML)
    assert isinstance(definition.root, Group)
    assert [node.id for node in definition.root.conditions] == [
        "viewed",
        "root.conditions[1]",
        "root.conditions[2]",
    ]
    assert definition.root.id == "root"


def test_ids_are_stable_across_a_round_trip() -> None:
    once = load_definition(YAML)
    twice = load_definition(dump_definition(once))
    assert dump_definition(once) == dump_definition(twice)


def test_a_bare_node_is_accepted_as_root() -> None:
    definition = parse_definition({"kind": "event", "event": "x"})
    assert isinstance(definition.root, EventCondition)


def test_yaml_dates_in_text_values_stay_text() -> None:
    definition = load_definition(
        "root: {kind: trait, trait: d, operator: equals, value: 2025-01-01}"
    )
    assert definition.root.value == "2025-01-01"  # type: ignore[union-attr]


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(DefinitionError, match="line 2"):
        load_definition("root:\n  kind: [and\n")


def test_not_an_object() -> None:
    with pytest.raises(DefinitionError, match="object"):
        load_definition("- 1\n- 2\n")


def test_errors_in_yaml_name_the_path() -> None:
    text = YAML.replace("last: 30", "last: -30")
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    assert caught.value.path == "root.conditions[0].window.last"
    assert caught.value.message.startswith("root.conditions[0].window.last: ")


@pytest.mark.parametrize(
    ("text", "path", "where"),
    [
        (
            "root: {kind: event, event: a}\nroot: {kind: event, event: b}\n",
            "root",
            "duplicate key 'root' at line 2, column 1 (first at line 1, column 1)",
        ),
        (
            "root:\n  kind: event\n  event: a\n  filters:\n"
            "    - {property: sku, operator: equals, value: A1}\n"
            "    - property: sku\n      operator: equals\n      property: price\n"
            "      value: 1\n",
            "root.filters[1].property",
            "duplicate key 'property' at line 8, column 7 (first at line 6, column 7)",
        ),
        (  # JSON text: the same reader
            '{"root": {"kind": "event",\n "event": "a",\n "event": "b"}}',
            "root.event",
            "duplicate key 'event' at line 3, column 2 (first at line 2, column 2)",
        ),
    ],
)
def test_a_key_given_twice_is_refused_with_its_line_and_path(
    text: str, path: str, where: str
) -> None:
    with pytest.raises(DefinitionError) as refused:
        load_definition(text)
    assert refused.value.path == path
    assert where in refused.value.message
    assert "keep one of them" in refused.value.message


def test_the_same_key_in_different_objects_and_yaml_merges_are_accepted() -> None:
    definition = load_definition(
        "root:\n  kind: and\n  conditions:\n"
        "    - &viewed {kind: event, event: product_viewed}\n"
        "    - {<<: *viewed, event: order_completed}\n"
    )
    assert isinstance(definition.root, Group)
    events = [node.event for node in definition.root.conditions]  # type: ignore[union-attr]
    assert events == ["product_viewed", "order_completed"]


def test_json_schema_is_published() -> None:
    schema = definition_json_schema()
    assert schema["title"] == "Segmint audience definition"
    text = json.dumps(schema)
    for kind in (
        "event",
        "aggregate",
        "sequence",
        "trait",
        "utm",
        "demographic",
        "technology",
        "audience",
    ):
        assert f'"{kind}"' in text
    assert "from" in json.dumps(schema["$defs"]["AbsoluteWindow"])


def test_json_schema_accepts_the_example() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads(dump_definition(load_definition(YAML)))
    jsonschema.validate(data, definition_json_schema())


@pytest.mark.parametrize(
    ("root", "dynamic"),
    [
        ({"kind": "event", "event": "x"}, False),
        (
            {"kind": "event", "event": "x", "window": {"type": "absolute", "from": "2025-01-01"}},
            False,
        ),
        ({"kind": "event", "event": "x", "window": {"type": "relative", "last": 3}}, True),
        ({"kind": "event", "event": "x", "window": {"type": "calendar", "unit": "day"}}, True),
        (
            {
                "kind": "or",
                "conditions": [
                    {"kind": "trait", "trait": "plan", "operator": "equals", "value": "pro"},
                    {
                        "kind": "sequence",
                        "first": {"event": "a"},
                        "then": {"event": "b"},
                        "window": {"type": "relative", "last": 2, "unit": "hours"},
                    },
                ],
            },
            True,
        ),
        ({"kind": "trait", "trait": "d", "operator": "before", "value": "2025-01-01"}, False),
        (
            {
                "kind": "trait",
                "trait": "d",
                "operator": "in_window",
                "value": {"type": "relative", "last": 7},
            },
            True,
        ),
        (
            {
                "kind": "utm",
                "parameter": "source",
                "operator": "is_set",
                "window": {"type": "calendar", "unit": "month"},
            },
            True,
        ),
    ],
)
def test_is_dynamic(root: dict[str, object], dynamic: bool) -> None:
    assert is_dynamic(parse_definition({"root": root})) is dynamic


def test_is_dynamic_follows_referenced_audiences() -> None:
    rolling = Definition.model_validate(
        {"root": {"kind": "event", "event": "x", "window": {"type": "relative", "last": 3}}}
    )
    definition = parse_definition({"root": {"kind": "audience", "audience": "recent"}})
    assert is_dynamic(definition) is False
    assert is_dynamic(definition, resolve_audience={"recent": rolling}.get) is True


@pytest.mark.parametrize(
    ("written", "bound"),
    [
        ("2024-03-01T00:00:00+02:00", "2024-02-29 22:00:00"),  # an instant, at midnight there
        ("2024-03-01T00:00:00Z", "2024-03-01 00:00:00"),
        ("2024-03-01", "2024-03-01 05:00:00"),  # local midnight in the workspace's zone
    ],
)
def test_a_midnight_date_time_with_an_offset_keeps_its_offset(written: str, bound: str) -> None:
    definition = parse_definition(
        {"root": {"kind": "event", "event": "x", "window": {"type": "absolute", "from": written}}}
    )
    sql = to_sql(
        compile_definition(definition, as_of=dt.datetime(2024, 6, 1), timezone="America/Bogota"),
        "duckdb",
    )
    assert f"CAST('{bound}' AS TIMESTAMP)" in sql


@pytest.mark.parametrize("number", [2025, 1700000000, 2025.5])
def test_a_number_as_a_window_end_is_refused_not_read_as_a_unix_time(number: float) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition(
            {"root": {"kind": "event", "event": "x", "window": {"type": "absolute", "to": number}}}
        )
    assert "root.window.to" in str(refused.value) and "is a number" in str(refused.value)
