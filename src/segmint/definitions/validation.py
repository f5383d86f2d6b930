"""Checks a parsed definition beyond its shape: its size (see limits.py), operators that fit
the value type, windows that make sense, portable regexes, known audiences without cycles,
unique node ids.

Each mistake raises :class:`DefinitionError` with the JSON path of the exact node or field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal

from segmint.definitions.errors import DefinitionError
from segmint.definitions.limits import (
    MAX_DEPTH_WITH_REFERENCES,
    MAX_NODES_WITH_REFERENCES,
    check_size,
    depth_of,
)
from segmint.definitions.model import (
    DATE_OPERATORS,
    EQUALITY_OPERATORS,
    LIST_OPERATORS,
    NUMBER_OPERATORS,
    SET_OPERATORS,
    STRING_OPERATORS,
    AbsoluteWindow,
    AggregateCondition,
    AudienceCondition,
    CalendarWindow,
    ComparedNode,
    Comparison,
    Condition,
    Definition,
    DemographicCondition,
    EventCondition,
    Group,
    PropertyFilter,
    RelativeWindow,
    SequenceCondition,
    TechnologyCondition,
    TraitCondition,
    UtmCondition,
    Window,
    iter_nodes,
)
from segmint.definitions.regex import check_pattern

AudienceResolver = Callable[[str], Definition | None]
# What a compared field holds: JSON (properties / traits), a text column, or a number (age).
FieldType = Literal["property", "trait", "text", "number"]


def validate_definition(
    definition: Definition,
    *,
    resolve_audience: AudienceResolver | None = None,
    name: str | None = None,
) -> Definition:
    """Check ``definition``; return it unchanged when it is valid, else raise
    :class:`DefinitionError` naming the first bad node. ``resolve_audience`` maps an audience
    name to its definition (``None`` when unknown); without it audience references are not
    checked. ``name`` is this definition's own audience name, to refuse self-references."""
    check_size(definition.root)
    seen: dict[str, str] = {}
    for path, node in iter_nodes(definition.root):
        assert node.id is not None  # filled in by Definition
        if node.id in seen:
            raise DefinitionError(
                f"node id {node.id!r} is already used by {seen[node.id]}; give each node "
                "its own id",
                path=f"{path}.id",
            )
        seen[node.id] = path
        if not isinstance(node, Group):
            _check_condition(node, path)
    if resolve_audience is not None:
        _check_audiences(definition, resolve_audience, name)
    return definition


def _check_condition(node: Condition, path: str) -> None:
    if isinstance(node, EventCondition | AggregateCondition):
        _check_filters(node.filters, f"{path}.filters")
        _check_window(node.window, f"{path}.window")
    if isinstance(node, AggregateCondition):
        _check_aggregate(node, path)
    elif isinstance(node, SequenceCondition):
        _check_filters(node.first.filters, f"{path}.first.filters")
        _check_filters(node.then.filters, f"{path}.then.filters")
        _check_window(node.window, f"{path}.window")
    elif isinstance(node, TraitCondition):
        check_comparison(node, "trait", path)
    elif isinstance(node, UtmCondition):
        check_comparison(node, "text", path)
        if node.touch != "any" and node.window is not None:
            raise DefinitionError(
                f"a window applies only to touch 'any'; remove it or set touch to 'any' "
                f"(first and last touch are the profile's {node.touch}-touch columns)",
                path=f"{path}.window",
            )
        _check_window(node.window, f"{path}.window")
    elif isinstance(node, DemographicCondition):
        check_comparison(node, "number" if node.field == "age" else "text", path)
    elif isinstance(node, TechnologyCondition):
        check_comparison(node, "text", path)


def _check_filters(filters: list[PropertyFilter], path: str) -> None:
    for index, item in enumerate(filters):
        check_comparison(item, "property", f"{path}[{index}]")


def _check_aggregate(node: AggregateCondition, path: str) -> None:
    if node.operator == "between":
        if not isinstance(node.value, list) or len(node.value) != 2:
            raise DefinitionError(
                "'between' needs a value of two numbers [low, high]", path=f"{path}.value"
            )
        if node.value[0] > node.value[1]:
            raise DefinitionError(
                "'between' bounds are in the wrong order: write [low, high]",
                path=f"{path}.value",
            )
    elif isinstance(node.value, list):
        raise DefinitionError(
            f"{node.operator!r} compares with one number, not a list", path=f"{path}.value"
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_comparison(item: Comparison | ComparedNode, field: FieldType, path: str) -> None:
    """Refuse an operator / value combination that does not fit a field of type ``field``."""
    op, value = item.operator, item.value
    where = f"{path}.value"
    if item.case_insensitive and not _is_text_comparison(op, value):
        raise DefinitionError(
            "case_insensitive applies to text comparisons only; remove it",
            path=f"{path}.case_insensitive",
        )
    if op in SET_OPERATORS:
        if value is not None:
            raise DefinitionError(f"{op!r} takes no value; remove it", path=where)
        return
    if op in DATE_OPERATORS:
        _check_date_operator(op, value, field, path)
        return
    if op in EQUALITY_OPERATORS:
        _check_scalar(op, value, field, where)
    elif op in LIST_OPERATORS:
        _check_list(op, value, field, where)
    elif op in STRING_OPERATORS:
        if field == "number":
            raise DefinitionError(
                f"{op!r} compares text, but this field is a number; use equals, gt, lt, "
                "between ...",
                path=f"{path}.operator",
            )
        if not isinstance(value, str):
            raise DefinitionError(f"{op!r} needs a text value", path=where)
        if op == "matches_regex":
            problem = check_pattern(value)
            if problem:
                raise DefinitionError(
                    f"the regular expression is not usable: {problem}", path=where
                )
    elif op in NUMBER_OPERATORS:
        _check_number_operator(op, value, field, path)


def _is_text_comparison(op: str, value: object) -> bool:
    if op in STRING_OPERATORS:
        return True
    if op in EQUALITY_OPERATORS:
        return isinstance(value, str)
    if op in LIST_OPERATORS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return False


def _check_scalar(op: str, value: object, field: FieldType, where: str) -> None:
    if field == "text" and not isinstance(value, str):
        raise DefinitionError(f"{op!r} on this field needs a text value", path=where)
    if field == "number" and not _is_number(value):
        raise DefinitionError(f"{op!r} on this field needs a number", path=where)
    if not isinstance(value, str | bool | int | float):
        raise DefinitionError(
            f"{op!r} needs a text, number or boolean value (quote dates: '2025-01-31')",
            path=where,
        )


def _check_list(op: str, value: object, field: FieldType, where: str) -> None:
    if not isinstance(value, list) or not value:
        raise DefinitionError(f"{op!r} needs a non-empty list of values", path=where)
    texts = all(isinstance(v, str) for v in value)
    numbers = all(_is_number(v) for v in value)
    if not (texts or numbers):
        raise DefinitionError(
            f"{op!r} needs a list of texts or a list of numbers, not a mix (or booleans)",
            path=where,
        )
    if field == "text" and not texts:
        raise DefinitionError(f"{op!r} on this field needs a list of texts", path=where)
    if field == "number" and not numbers:
        raise DefinitionError(f"{op!r} on this field needs a list of numbers", path=where)


def _check_number_operator(op: str, value: object, field: FieldType, path: str) -> None:
    if field == "text":
        raise DefinitionError(
            f"{op!r} compares numbers, but this field is text; use equals, in, contains ...",
            path=f"{path}.operator",
        )
    where = f"{path}.value"
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))):
            raise DefinitionError("'between' needs two numbers [low, high]", path=where)
        if value[0] > value[1]:
            raise DefinitionError(
                "'between' bounds are in the wrong order: write [low, high]", path=where
            )
    elif not _is_number(value):
        raise DefinitionError(f"{op!r} needs a number", path=where)


def _check_date_operator(op: str, value: object, field: FieldType, path: str) -> None:
    if field != "trait":
        raise DefinitionError(f"{op!r} applies to date-valued traits only", path=f"{path}.operator")
    where = f"{path}.value"
    if op == "in_window":
        if not isinstance(value, RelativeWindow | CalendarWindow | AbsoluteWindow):
            raise DefinitionError(
                "'in_window' needs a window, e.g. {type: relative, last: 30, unit: days}",
                path=where,
            )
        _check_window(value, where)
        return
    if parse_date_value(value) is None:
        raise DefinitionError(
            f"{op!r} needs a date (2025-01-31) or a date-time (2025-01-31T09:00:00)",
            path=where,
        )


def parse_date_value(value: object) -> dt.datetime | dt.date | None:
    """The date or date-time a ``before``/``after`` value stands for, or ``None``."""
    if isinstance(value, dt.datetime | dt.date):
        return value
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _check_window(window: Window | None, path: str) -> None:
    if isinstance(window, RelativeWindow):
        if window.last is not None and (window.from_ago is not None or window.to_ago is not None):
            raise DefinitionError(
                "give either 'last' or 'from_ago'/'to_ago', not both", path=f"{path}.last"
            )
        if window.last is None and window.from_ago is None:
            raise DefinitionError(
                "a relative window needs 'last' (e.g. last: 30) or 'from_ago'",
                path=f"{path}.last",
            )
        start, end = window.bounds_ago()
        if window.last is None and start <= end:
            raise DefinitionError(
                f"from_ago ({start}) must be larger than to_ago ({end}): the window starts "
                "further back than it ends",
                path=f"{path}.from_ago",
            )
    elif isinstance(window, CalendarWindow):
        start, end = window.bounds_ago()
        if start < end:
            raise DefinitionError(
                f"from_ago ({start}) must be at least to_ago ({end})", path=f"{path}.from_ago"
            )
    elif isinstance(window, AbsoluteWindow):
        if window.from_ is None and window.to is None:
            raise DefinitionError("an absolute window needs 'from', 'to' or both", path=path)
        both = window.from_ is not None and window.to is not None
        if both and _sort_key(window.from_) >= _sort_key(window.to):  # type: ignore[arg-type]
            raise DefinitionError(
                "'from' must be before 'to' (to is exclusive)", path=f"{path}.from"
            )


def _sort_key(value: dt.datetime | dt.date) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


class _ReferenceProblem(Exception):
    """What is wrong with an audience reference, as said to the definition that makes it."""


# An audience's tree with the audiences it refers to inlined (as the compiler inlines them):
# (how many nodes, how deep its groups and references nest).
_Expanded = tuple[int, int]


def _check_audiences(definition: Definition, resolve: AudienceResolver, name: str | None) -> None:
    """Every referenced audience exists, none refers back, and the tree with them inlined
    stays within the limits with references."""
    start = [name] if name else []
    expanded: dict[str, _Expanded] = {}
    total = 0
    for path, node in iter_nodes(definition.root):
        total += 1
        if not isinstance(node, AudienceCondition):
            continue
        try:
            nodes, depth = _expand(node.audience, start, resolve, expanded, nested=False)
        except _ReferenceProblem as problem:
            raise DefinitionError(str(problem), path=f"{path}.audience") from None
        total += nodes
        depth += depth_of(path) + 1
        if depth > MAX_DEPTH_WITH_REFERENCES:
            raise DefinitionError(
                f"with the audiences it refers to inlined, this reference nests {depth} levels "
                f"deep; at most {MAX_DEPTH_WITH_REFERENCES} are allowed: refer to an audience "
                "with fewer levels of groups and references",
                path=f"{path}.audience",
            )
    if total > MAX_NODES_WITH_REFERENCES:
        raise DefinitionError(
            f"with the audiences it refers to inlined (as they are computed), the definition "
            f"has {total} nodes; at most {MAX_NODES_WITH_REFERENCES} are allowed: refer to "
            "smaller audiences, or to each one fewer times",
            path="root",
        )


def _expand(
    target: str,
    stack: list[str],
    resolve: AudienceResolver,
    expanded: dict[str, _Expanded],
    *,
    nested: bool,
) -> _Expanded:
    """The size of audience ``target``'s tree with its references inlined, referred to from
    the audiences on ``stack``; :class:`_ReferenceProblem` when a reference is unknown or
    refers back. ``expanded`` remembers audiences already measured."""
    if target in stack:
        cycle = " → ".join([*stack, target])
        raise _ReferenceProblem(
            f"audience {target!r} refers back to itself ({cycle}); remove one of the references"
        )
    if target in expanded:
        return expanded[target]
    if len(stack) > MAX_DEPTH_WITH_REFERENCES:  # every reference nests one level deeper
        chain = " → ".join([*stack[:3], "…", target])
        raise _ReferenceProblem(
            f"audiences refer to each other more than {MAX_DEPTH_WITH_REFERENCES} levels deep "
            f"({chain}); refer to an audience with fewer levels of references"
        )
    referenced = resolve(target)
    if referenced is None:
        if nested:
            raise _ReferenceProblem(f"audience {stack[-1]!r} refers to unknown audience {target!r}")
        raise _ReferenceProblem(
            f"unknown audience {target!r}: save it first or pick an existing one"
        )
    nodes, deepest = 0, 0
    for path, node in iter_nodes(referenced.root):
        nodes += 1
        level = depth_of(path)
        if isinstance(node, AudienceCondition):
            inner_nodes, inner_depth = _expand(
                node.audience, [*stack, target], resolve, expanded, nested=True
            )
            nodes += inner_nodes
            level += 1 + inner_depth
        deepest = max(deepest, level)
    expanded[target] = (nodes, deepest)
    return nodes, deepest
