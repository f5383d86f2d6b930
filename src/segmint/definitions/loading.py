"""Reading definitions from JSON / YAML text or plain data, and the published JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from segmint.definitions.errors import DefinitionError
from segmint.definitions.limits import MAX_DEPTH, check_data_size
from segmint.definitions.model import Definition
from segmint.definitions.validation import AudienceResolver, validate_definition

_TAGS = ("kind", "type")
# Text nested deeper than the YAML parser can follow is far deeper than a definition may be.
TOO_DEEP_TEXT = (
    "the text nests lists or objects hundreds of levels deep; the groups of a definition nest "
    f"at most {MAX_DEPTH} levels deep: flatten it"
)


class _TextDatesLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: ``2025-01-31`` stays text, as in JSON; the model
    parses it where a date is expected. A key given twice in one object is refused
    (:class:`DefinitionError` naming it, its line and its path): YAML and JSON parsers keep
    the last one silently, so a second ``root:`` or ``property:`` would hide the first. JSON
    text is read by this loader too (YAML is a superset of JSON)."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        refuse_duplicate_keys(node)
        return self.construct_document(node)


_TextDatesLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


_MERGE_TAG = "tag:yaml.org,2002:merge"  # ``<<: *defaults``: later keys override on purpose


def refuse_duplicate_keys(document: yaml.Node) -> None:
    """Raise :class:`DefinitionError` for the first key (in reading order) that an object of
    the parsed ``document`` holds twice, with the key, its line and column, and its path
    (``root.conditions[0].filters[0].property``). Walks without recursion: a deep document
    stays an error about its depth, not a :class:`RecursionError` here."""
    stack: list[tuple[yaml.Node, str]] = [(document, "")]
    walked: set[int] = set()  # an alias repeats a node: walk it once
    while stack:
        node, path = stack.pop()
        if id(node) in walked:
            continue
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            children = _mapping_children(node, path)
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{index}]") for index, item in enumerate(node.value)]
        else:
            continue
        stack.extend(reversed(children))


def _mapping_children(node: yaml.MappingNode, path: str) -> list[tuple[yaml.Node, str]]:
    """The values of a mapping with their paths; a key given twice raises."""
    children: list[tuple[yaml.Node, str]] = []
    first_marks: dict[tuple[str, str], str] = {}
    for key, value in node.value:
        child = path
        if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
            child = f"{path}.{key.value}" if path else str(key.value)
            where = f"line {key.start_mark.line + 1}, column {key.start_mark.column + 1}"
            if (key.tag, key.value) in first_marks:
                raise DefinitionError(
                    f"duplicate key {key.value!r} at {where} (first at "
                    f"{first_marks[key.tag, key.value]}): an object takes each key once; keep "
                    "one of them",
                    path=child,
                )
            first_marks[key.tag, key.value] = where
        children.append((value, child))
    return children


def parse_definition(
    data: Any,
    *,
    resolve_audience: AudienceResolver | None = None,
    name: str | None = None,
) -> Definition:
    """Build and validate a definition from plain data (dicts and lists, as parsed from JSON).

    Raises :class:`DefinitionError` with the JSON path of the first problem."""
    if isinstance(data, dict) and "root" not in data and "kind" in data:
        data = {"version": 1, "root": data}  # a bare node is accepted as the root
    if isinstance(data, dict):
        check_data_size(data.get("root"))  # before the model is built from an oversized tree
    try:
        definition = Definition.model_validate(data)
    except ValidationError as exc:
        raise _from_pydantic(exc, data) from None
    return validate_definition(definition, resolve_audience=resolve_audience, name=name)


def load_definition(
    text: str,
    *,
    resolve_audience: AudienceResolver | None = None,
    name: str | None = None,
) -> Definition:
    """Parse a definition from JSON or YAML text (YAML is a superset of JSON) and validate it."""
    try:
        data = yaml.load(text, Loader=_TextDatesLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DefinitionError(f"the text is not valid YAML or JSON{where}: {exc}") from None
    except RecursionError:  # PyYAML builds nested collections recursively
        raise DefinitionError(TOO_DEEP_TEXT) from None
    if not isinstance(data, dict):
        raise DefinitionError("a definition is an object with 'version' and 'root'", path="root")
    return parse_definition(data, resolve_audience=resolve_audience, name=name)


def dump_definition(definition: Definition) -> str:
    """The definition as JSON text (stable field names; unset optional fields left out)."""
    data = definition.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(data, indent=2, ensure_ascii=False)


def definition_json_schema() -> dict[str, Any]:
    """The JSON Schema of a definition document (published in docs/definitions.md)."""
    schema = Definition.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Segmint audience definition"
    return schema


def _from_pydantic(exc: ValidationError, data: Any) -> DefinitionError:
    error = _most_specific(exc)
    path = _json_path(error["loc"], data)
    return DefinitionError(_friendly(error), path=path)


def _most_specific(exc: ValidationError) -> Any:
    errors = exc.errors()
    tagged = [e for e in errors if e["type"] == "union_tag_invalid"]
    # Smart unions report one error per member; the deepest location is the most useful.
    return tagged[0] if tagged else max(errors, key=lambda e: len(e["loc"]))


def _json_path(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic location into a JSON path over the input, dropping union tags."""
    parts: list[str] = []
    current = data
    tag_used = False
    for item in loc:
        if isinstance(current, dict):
            is_tag = any(current.get(tag) == item for tag in _TAGS)
            if is_tag and not tag_used:
                tag_used = True
                continue
            if item in current:
                parts.append(f".{item}" if parts else str(item))
                current = current[item]
                tag_used = False
                continue
            if isinstance(item, str) and not parts:
                parts.append(item)
            elif isinstance(item, str) and item.isidentifier() and "[" not in item:
                parts.append(f".{item}")
            break
        if isinstance(current, list) and isinstance(item, int) and item < len(current):
            parts.append(f"[{item}]")
            current = current[item]
            tag_used = False
            continue
        # A union member name (``str``, ``list[...]``): not part of the input.
        continue
    return "".join(parts) or "root"


def _friendly(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        expected = ctx.get("expected_tags")
        field = ctx.get("discriminator", "kind").strip("'")
        return f"unknown {field} {tag!r}: use one of {expected}"
    if kind == "union_tag_not_found":
        field = ctx.get("discriminator", "'kind'").strip("'")
        if field == "type":
            return "'type' is missing: say which window this is (relative, calendar, absolute)"
        return f"'{field}' is missing: say which kind of node this is (and, or, event, ...)"
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field: remove it or check its spelling"
    if kind == "string_pattern_mismatch":
        return (
            "invalid name: use letters, digits, '_', '-' and '$', with '.' between nested keys"
            if "A-Za-z0-9_" in str(ctx.get("pattern", ""))
            else "invalid name: lowercase letters, digits and '_', starting with a letter"
        )
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "value_error":  # our own validators' messages, without pydantic's prefix
        return str(ctx.get("error", error["msg"]))
    return str(error["msg"])
