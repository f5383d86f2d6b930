"""Run Query (PRODUCT R5, R28): an audience's size, a sample of members, per-node counts, and
plain explanations of why a condition (or the whole audience) matches nobody.

Everything is set-based SQL from the compiler: one query computes, for every profile, whether
it is in each condition's compiled set and in the whole definition's compiled set, and counts
them; groups and their AND / OR steps are counted from the same per-profile flags. A second
query fetches the sample. Only when something matches nobody do a few small queries look at
the data (is the event tracked, in the window, with that property and value?) to say why.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlglot import exp

from segmint.compiler import CompileContext, compile_definition, compile_node_query
from segmint.compiler.demographic import age_expression
from segmint.compiler.events import filter_predicates, in_window
from segmint.compiler.sets import events_from
from segmint.compiler.tree import compile_node
from segmint.compiler.values import Field, column_field, compare, json_field, lit
from segmint.compiler.windows import Bounds, Clock
from segmint.definitions.describe import describe, describe_window
from segmint.definitions.errors import DefinitionError
from segmint.definitions.loading import parse_definition
from segmint.definitions.model import (
    AggregateCondition,
    AudienceCondition,
    Condition,
    Definition,
    DemographicCondition,
    EventCondition,
    Group,
    Node,
    PropertyFilter,
    SequenceCondition,
    TechnologyCondition,
    TraitCondition,
    UtmCondition,
    Window,
    iter_nodes,
)
from segmint.definitions.validation import AudienceResolver, validate_definition
from segmint.warehouse.engine import Engine
from segmint.warehouse.explorer import event_properties, trait_keys

PROFILE_ID = "profile_id"
SAMPLE_TRAITS = 6
EXAMPLE_VALUES = 5
# Traits shown first in a member sample, when present.
PREFERRED_TRAITS = ("first_name", "last_name", "name", "plan", "phone", "city", "age")
# Operators for which "no profile / event has this value" is worth saying.
_VALUE_OPERATORS = frozenset({"equals", "in", "contains", "starts_with", "ends_with"})


# --- results ---------------------------------------------------------------------------------


@dataclass
class MemberSample:
    """One member with the traits a person recognizes them by."""

    profile_id: int
    user_id: str | None
    email: str | None
    country: str | None
    last_seen: dt.datetime | None
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass
class GroupStep:
    """How many profiles remain after combining a group's children up to ``child_path``
    (before the group's own NOT)."""

    child_id: str
    child_path: str
    child_label: str
    count: int


@dataclass
class NodeDiagnostic:
    """One node of the definition: what it is and how many profiles it matches on its own
    (its ``negate`` applied). Groups also list the count after each AND / OR step."""

    id: str
    path: str
    label: str
    kind: str
    negate: bool
    depth: int
    count: int
    steps: list[GroupStep] = field(default_factory=list)


@dataclass
class RunResult:
    """What Run Query shows: size, sample, per-node counts and explanations."""

    size: int
    profiles: int
    as_of: dt.datetime
    timezone: str
    sample: list[MemberSample]
    diagnostics: list[NodeDiagnostic]
    explanations: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (instants as ISO text, UTC)."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    return value


# --- entry points ----------------------------------------------------------------------------


def prepare_definition(
    definition: Definition | Mapping[str, Any], resolve_audience: AudienceResolver | None
) -> Definition:
    """A validated definition from a model or plain data; every audience reference must be
    resolvable. Raises :class:`DefinitionError` naming the JSON path of the problem."""
    if isinstance(definition, Definition):
        definition = validate_definition(definition, resolve_audience=resolve_audience)
    else:
        definition = parse_definition(dict(definition), resolve_audience=resolve_audience)
    if resolve_audience is None:
        for path, node in iter_nodes(definition.root):
            if isinstance(node, AudienceCondition):
                raise DefinitionError(
                    f"unknown audience {node.audience!r}: save it first or pick an existing one",
                    path=f"{path}.audience",
                )
    return definition


def utc_naive(instant: dt.datetime) -> dt.datetime:
    """An instant as naive UTC (a naive input already means UTC)."""
    if instant.tzinfo is None:
        return instant
    return instant.astimezone(dt.UTC).replace(tzinfo=None)


def run_definition(
    warehouse: Engine,
    definition: Definition | Mapping[str, Any],
    *,
    as_of: dt.datetime,
    timezone: str,
    resolve_audience: AudienceResolver | None = None,
    sample_size: int = 20,
) -> RunResult:
    """Evaluate ``definition`` at ``as_of`` in the workspace ``timezone``: its size, up to
    ``sample_size`` members (most recently seen first), every node's own match count, each
    group's count after each AND / OR step, and sentences explaining any condition (or
    result) that matches nobody. Bad definitions raise :class:`DefinitionError`."""
    definition = prepare_definition(definition, resolve_audience)
    as_of = utc_naive(as_of)
    context = CompileContext(
        Clock.create(as_of, timezone), resolve_audience, dialect=warehouse.dialect
    )
    nodes = iter_nodes(definition.root)
    counts = _count_nodes(warehouse, nodes, as_of, timezone, resolve_audience)
    size = counts["root"]
    diagnostics = [_diagnostic(path, node, counts) for path, node in nodes]
    root_query = compile_definition(
        definition, as_of=as_of, timezone=timezone, resolve_audience=resolve_audience
    )
    sample = _sample(warehouse, root_query, sample_size) if size and sample_size > 0 else []
    explainer = _Explainer(warehouse, context, counts)
    explanations = explainer.explain(definition, nodes, size)
    return RunResult(
        size=size,
        profiles=counts["_universe"],
        as_of=as_of,
        timezone=timezone,
        sample=sample,
        diagnostics=diagnostics,
        explanations=explanations,
    )


# --- counting ---------------------------------------------------------------------------------


def _flag_name(index: int) -> str:
    return f"c{index}"


def node_flags(
    nodes: Sequence[tuple[str, Node]],
    *,
    as_of: dt.datetime,
    timezone: str,
    resolve_audience: AudienceResolver | None,
    dialect: str | None = "duckdb",
) -> tuple[list[exp.Expr], dict[str, exp.Expr]]:
    """Per-profile membership flags: the projection (``profile_id IN (compiled condition)``
    for every condition) and, for every node path, a boolean expression over those flags
    (groups combine their children's flags; NOT applied)."""
    projection: list[exp.Expr] = []
    flags: dict[str, exp.Expr] = {}
    for index, (path, node) in enumerate(nodes):
        if isinstance(node, Group):
            continue
        # The compiled set, complements kept symbolic: NOT IN (positive set) rather than
        # IN (universe EXCEPT positive set), which would materialize most of the universe.
        found = compile_node(
            node,
            CompileContext(Clock.create(as_of, timezone), resolve_audience, dialect=dialect),
        )
        member: exp.Expr = exp.In(this=exp.column(PROFILE_ID), query=exp.Subquery(this=found.query))
        if found.complement:
            member = exp.Not(this=member)
        projection.append(exp.alias_(member, _flag_name(index)))
        flags[path] = exp.column(_flag_name(index))
    for path, node in reversed(list(nodes)):  # children before parents
        if isinstance(node, Group):
            flags[path] = _negated(group_steps(path, node, flags)[-1], node.negate)
    return projection, flags


def group_steps(path: str, group: Group, flags: Mapping[str, exp.Expr]) -> list[exp.Expr]:
    """The group's expression after each child, in order (without the group's NOT)."""
    combine = exp.and_ if group.kind == "and" else exp.or_
    steps: list[exp.Expr] = []
    for index in range(len(group.conditions)):
        child = flags[f"{path}.conditions[{index}]"]
        steps.append(child.copy() if not steps else combine(steps[-1].copy(), child.copy()))
    return steps


def _negated(expression: exp.Expr, negate: bool) -> exp.Expr:
    return exp.Not(this=exp.Paren(this=expression)) if negate else expression


def _count_if(predicate: exp.Expr) -> exp.Expr:
    case = exp.Case(ifs=[exp.If(this=predicate, true=lit(1))], default=lit(0))
    return exp.Coalesce(this=exp.Sum(this=case), expressions=[lit(0)])


def _count_nodes(
    warehouse: Engine,
    nodes: Sequence[tuple[str, Node]],
    as_of: dt.datetime,
    timezone: str,
    resolve_audience: AudienceResolver | None,
) -> dict[str, int]:
    """One query: the count of every node (by path), of every group step (``path#k``) and of
    all profiles (``_universe``). Groups are counted from their children's flags: the same
    set algebra the compiler applies (tests check both agree on random definitions)."""
    projection, flags = node_flags(
        nodes,
        as_of=as_of,
        timezone=timezone,
        resolve_audience=resolve_audience,
        dialect=warehouse.dialect,
    )
    inner = exp.select(PROFILE_ID, *projection).from_("profiles")
    names: list[str] = ["_universe"]
    columns: list[exp.Expr] = [exp.Count(this=exp.Star())]
    for path, node in nodes:
        names.append(path)
        columns.append(_count_if(flags[path].copy()))
        if isinstance(node, Group):
            for index, step in enumerate(group_steps(path, node, flags)):
                names.append(f"{path}#{index}")
                columns.append(_count_if(step))
    aliased = [exp.alias_(column, f"n{i}") for i, column in enumerate(columns)]
    query = exp.select(*aliased).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("flags")))
    )
    (row,) = warehouse.rows(query)
    return {name: int(value or 0) for name, value in zip(names, row, strict=True)}


def _diagnostic(path: str, node: Node, counts: Mapping[str, int]) -> NodeDiagnostic:
    steps: list[GroupStep] = []
    if isinstance(node, Group):
        for index, child in enumerate(node.conditions):
            child_path = f"{path}.conditions[{index}]"
            steps.append(
                GroupStep(
                    child_id=str(child.id),
                    child_path=child_path,
                    child_label=describe(child),
                    count=counts[f"{path}#{index}"],
                )
            )
    return NodeDiagnostic(
        id=str(node.id),
        path=path,
        label=describe(node),
        kind=node.kind,
        negate=node.negate,
        depth=path.count(".conditions["),
        count=counts[path],
        steps=steps,
    )


# --- sample ------------------------------------------------------------------------------------


def _sample(warehouse: Engine, root_query: exp.Select, size: int) -> list[MemberSample]:
    """The ``size`` most recently seen members. The ids are picked first over narrow columns,
    then only their rows are read in full (wide ``traits`` JSON stays unread otherwise)."""
    newest_first = [exp.Ordered(this=exp.column("last_seen"), desc=True), exp.column(PROFILE_ID)]
    picked = (
        exp.select(PROFILE_ID)
        .from_("profiles")
        .where(exp.In(this=exp.column(PROFILE_ID), query=exp.Subquery(this=root_query)))
        .order_by(*[o.copy() for o in newest_first])
        .limit(size)
    )
    query = (
        exp.select(PROFILE_ID, "user_id", "email", "country", "last_seen", "traits")
        .from_("profiles")
        .where(exp.In(this=exp.column(PROFILE_ID), query=exp.Subquery(this=picked)))
        .order_by(*newest_first)
    )
    return [
        MemberSample(
            profile_id=int(profile_id),
            user_id=user_id,
            email=email,
            country=country,
            last_seen=last_seen,
            traits=key_traits(traits),
        )
        for profile_id, user_id, email, country, last_seen, traits in warehouse.rows(query)
    ]


def key_traits(raw: Any, limit: int = SAMPLE_TRAITS) -> dict[str, Any]:
    """A few scalar traits from a profile's ``traits`` JSON, the recognizable ones first."""
    try:
        traits = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    except (ValueError, TypeError):
        return {}
    if not isinstance(traits, dict):
        return {}
    scalars = {
        key: value
        for key, value in traits.items()
        if isinstance(value, str | int | float | bool) and key != "email"
    }
    order = [k for k in PREFERRED_TRAITS if k in scalars] + sorted(
        k for k in scalars if k not in PREFERRED_TRAITS
    )
    return {key: scalars[key] for key in order[:limit]}


# --- explanations ------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return f"'{text}'"


def _listing(values: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _when(instant: Any) -> str:
    if isinstance(instant, dt.datetime):
        return instant.strftime("%Y-%m-%d %H:%M UTC")
    return str(instant)


class _Explainer:
    """Builds R28's sentences for conditions that match nobody (and for an empty result)."""

    def __init__(self, warehouse: Engine, context: CompileContext, counts: Mapping[str, int]):
        self.warehouse = warehouse
        self.context = context
        self.counts = counts
        self._tracked: list[str] | None = None
        self._lines: list[str] = []

    def explain(
        self, definition: Definition, nodes: Sequence[tuple[str, Node]], size: int
    ) -> list[str]:
        """Every explanation, most specific first, without repeats."""
        if self.counts["_universe"] == 0:
            return [
                "The warehouse has no profiles yet: send events to the collection API or "
                "import them (segmint import FILE), then run the query again."
            ]
        for path, node in nodes:
            if not isinstance(node, Group) and self.counts[path] == 0:
                self._condition(path, node)
        if size == 0:
            self._empty_result(definition, nodes)
        return list(dict.fromkeys(self._lines))

    def _say(self, line: str) -> None:
        self._lines.append(line)

    # -- conditions --

    def _condition(self, path: str, node: Condition) -> None:
        label = describe(node)
        self._say(f"“{label}” ({path}) matches no profile.")
        if node.negate:
            self._say(
                f"Every profile matches “{describe(node.model_copy(update={'negate': False}))}”, "
                "so its negation matches nobody."
            )
            return
        if isinstance(node, EventCondition):
            needs_events = node.count.operator != "at_most" and node.count.value > 0
            if node.performed and needs_events:
                self._event_step(node.event, node.filters, node.window)
        elif isinstance(node, AggregateCondition):
            if self._event_step(node.event, node.filters, node.window):
                self._aggregate_range(node)
        elif isinstance(node, SequenceCondition):
            found_first = self._event_step(node.first.event, node.first.filters, node.window)
            found_then = self._event_step(node.then.event, node.then.filters, node.window)
            if found_first and found_then:
                self._say(
                    f"Both steps of “{label}” happen in the window, but never in that order"
                    + (" within the span." if node.within else ".")
                )
        elif isinstance(node, TraitCondition):
            self._trait(node)
        elif isinstance(node, UtmCondition | DemographicCondition | TechnologyCondition):
            self._compared_field(node)
        elif isinstance(node, AudienceCondition):
            self._audience(node)

    def _bounds(self, window: Window | None) -> Bounds:
        return self.context.bounds(window)

    def _tracked_events(self) -> list[str]:
        if self._tracked is None:
            rows = self.warehouse.rows("SELECT DISTINCT event FROM all_events ORDER BY event")
            self._tracked = [str(row[0]) for row in rows]
        return self._tracked

    def _event_step(
        self, event: str, filters: Sequence[PropertyFilter], window: Window | None
    ) -> bool:
        """Explain why no ``event`` (with ``filters``) happens in ``window``; True when some do
        (then the reason lies elsewhere)."""
        named = exp.EQ(this=exp.column("event"), expression=lit(event))
        total_query = exp.select(exp.Count(this=exp.Star()), exp.Max(this=exp.column("timestamp")))
        (total, last) = self.warehouse.rows(total_query.from_(events_from(event)).where(named))[0]
        if not total:
            self._never_tracked(event)
            return False
        bounds = self._bounds(window)
        in_range = exp.and_(named.copy(), *in_window(bounds))
        (windowed,) = self.warehouse.rows(
            exp.select(exp.Count(this=exp.Star())).from_(events_from(event)).where(in_range)
        )[0]
        if not windowed:
            self._say(
                f"No {_quote(event)} event {self._window_words(window)}: "
                f"{_plural(total, 'event')} tracked in all, the last at {_when(last)}."
            )
            return False
        if not filters:
            return True
        before = len(self._lines)
        for item in filters:
            self._property_filter(event, item)
        checks = filter_predicates(list(filters), self.context)
        (passing,) = self.warehouse.rows(
            exp.select(exp.Count(this=exp.Star()))
            .from_(events_from(event))
            .where(exp.and_(in_range.copy(), *checks))
        )[0]
        if not passing:
            if len(self._lines) == before:  # no single filter explains it
                events = _plural(windowed, _quote(event) + " event")
                self._say(
                    f"{events} happened "
                    f"{self._window_words(window)}, but none passes all the property filters."
                )
            return False
        return True

    def _window_words(self, window: Window | None) -> str:
        if window is None:
            return f"before {_when(self.context.clock.as_of)}"
        return f"{describe_window(window)} (as of {_when(self.context.clock.as_of)})"

    def _never_tracked(self, event: str) -> None:
        tracked = self._tracked_events()
        close = difflib.get_close_matches(event, tracked, n=3, cutoff=0.6)
        if close:
            hint = " Did you mean " + " or ".join(_quote(c) for c in close) + "?"
        elif tracked:
            hint = " Tracked events include " + _listing([_quote(t) for t in tracked]) + "."
        else:
            hint = " No events have been tracked yet."
        self._say(f"The event {_quote(event)} has never been tracked.{hint}")

    def _property_filter(self, event: str, item: PropertyFilter) -> None:
        named = exp.EQ(this=exp.column("event"), expression=lit(event))
        value_field = json_field("properties", item.property)
        (seen,) = self.warehouse.rows(
            exp.select(exp.Count(this=exp.Star()))
            .from_(events_from(event))
            .where(exp.and_(named, value_field.is_set()))
        )[0]
        if not seen:
            keys = [k.key for k in event_properties(self.warehouse, event)]
            close = difflib.get_close_matches(item.property, keys, n=1, cutoff=0.6)
            hint = f" Did you mean {_quote(close[0])}?" if close else ""
            listed = _listing(keys) if keys else "none"
            self._say(
                f"No {_quote(event)} event has the property {_quote(item.property)}.{hint} "
                f"Properties seen on it: {listed}."
            )
            return
        if item.operator not in _VALUE_OPERATORS:
            return
        predicate = compare(
            value_field,
            item.operator,
            item.value,
            case_insensitive=item.case_insensitive,
            clock=self.context.clock,
        )
        (matching,) = self.warehouse.rows(
            exp.select(exp.Count(this=exp.Star()))
            .from_(events_from(event))
            .where(exp.and_(named.copy(), predicate))
        )[0]
        if not matching:
            examples = self._examples(events_from(event), value_field, named.copy())
            self._say(
                f"No {_quote(event)} event ever had {describe_filter_text(item)}. "
                f"Values seen for {_quote(item.property)}: {examples}."
            )

    def _examples(
        self, table: str | exp.Expr, value_field: Field, where: exp.Expr | None = None
    ) -> str:
        raw = value_field.raw()
        condition: exp.Expr = exp.Not(this=exp.Is(this=raw.copy(), expression=exp.Null()))
        if where is not None:
            condition = exp.and_(where, condition)
        query = (
            exp.select(exp.alias_(raw, "v"), exp.alias_(exp.Count(this=exp.Star()), "n"))
            .from_(table)
            .where(condition)
            .group_by(exp.column("v"))
            .order_by(exp.Ordered(this=exp.column("n"), desc=True), exp.column("v"))
            .limit(EXAMPLE_VALUES)
        )
        rows = self.warehouse.rows(query)
        if not rows:
            return "none"
        return ", ".join(f"{_quote(str(value))} ({count:,})" for value, count in rows)

    def _aggregate_range(self, node: AggregateCondition) -> None:
        value = aggregate_expression(node)
        where = exp.and_(
            exp.EQ(this=exp.column("event"), expression=lit(node.event)),
            *in_window(self._bounds(node.window)),
            *filter_predicates(node.filters, self.context),
        )
        per_profile = (
            exp.select(exp.alias_(value, "v"))
            .from_(events_from(node.event))
            .where(where)
            .group_by(PROFILE_ID)
        )
        low, high = self.warehouse.rows(
            exp.select(exp.Min(this=exp.column("v")), exp.Max(this=exp.column("v"))).from_(
                exp.Subquery(this=per_profile, alias=exp.TableAlias(this=exp.to_identifier("a")))
            )
        )[0]
        if low is None:
            self._say(
                f"No {_quote(node.event)} event in the window has a number in "
                f"{_quote(node.property)}."
            )
        else:
            self._say(
                f"Per profile, the value ranges from {low:g} to {high:g}; none meets the "
                "comparison."
            )

    def _trait(self, node: TraitCondition) -> None:
        value_field = json_field("traits", node.trait)
        (seen,) = self.warehouse.rows(
            exp.select(exp.Count(this=exp.Star())).from_("profiles").where(value_field.is_set())
        )[0]
        if not seen:
            keys = [k.key for k in trait_keys(self.warehouse)]
            close = difflib.get_close_matches(node.trait, keys, n=1, cutoff=0.6)
            hint = f" Did you mean {_quote(close[0])}?" if close else ""
            listed = _listing(keys) if keys else "none"
            self._say(
                f"No profile has the trait {_quote(node.trait)}.{hint} Trait keys seen: {listed}."
            )
            return
        if node.operator in _VALUE_OPERATORS:
            self._say(
                f"No profile has the trait {_quote(node.trait)} {_comparison_text(node)}. "
                f"Values seen: {self._examples('profiles', value_field)}."
            )

    def _compared_field(
        self, node: UtmCondition | DemographicCondition | TechnologyCondition
    ) -> None:
        if isinstance(node, DemographicCondition) and node.field == "age":
            self._age()
            return
        table, where, name = "profiles", None, ""
        if isinstance(node, UtmCondition):
            name = f"utm_{node.parameter}"
            if node.touch == "any":
                table, where = "events", exp.and_(*in_window(self._bounds(node.window)))
                value_field = column_field(name)
            else:
                name = f"{node.touch}_{name}"
                value_field = column_field(name)
        elif isinstance(node, DemographicCondition) and node.field == "gender":
            name, value_field = "gender", json_field("traits", "gender")
        else:
            name, value_field = node.field, column_field(node.field)
        examples = self._examples(table, value_field, where)
        who = "event in the window" if table == "events" else "profile"
        if examples == "none":
            self._say(f"No {who} has any {name} value.")
        elif node.operator in _VALUE_OPERATORS:
            self._say(f"No {who} has {name} {_comparison_text(node)}. Values seen: {examples}.")

    def _age(self) -> None:
        age = age_expression(self.context)
        low, high = self.warehouse.rows(
            exp.select(exp.Min(this=age), exp.Max(this=age.copy())).from_("profiles")
        )[0]
        if low is None:
            self._say("No profile has an age (a number trait 'age' or a 'birthday' trait).")
        else:
            self._say(f"Known ages range from {low:g} to {high:g}.")

    def _audience(self, node: AudienceCondition) -> None:
        resolver = self.context.resolve_audience
        referenced = resolver(node.audience) if resolver else None
        if referenced is None:
            return
        query = compile_node_query(
            referenced.root,
            as_of=self.context.clock.as_of,
            timezone=self.context.clock.zone.key,
            resolve_audience=resolver,
        )
        (members,) = self.warehouse.rows(
            exp.select(exp.Count(this=exp.Star())).from_(
                exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier("m")))
            )
        )[0]
        if members == 0:
            self._say(f"The audience {_quote(node.audience)} has no members at this time.")
        elif not node.member:
            self._say(f"Every profile is a member of the audience {_quote(node.audience)}.")

    # -- the whole result --

    def _empty_result(self, definition: Definition, nodes: Sequence[tuple[str, Node]]) -> None:
        zero_conditions = [
            path for path, node in nodes if not isinstance(node, Group) and self.counts[path] == 0
        ]
        for path, node in nodes:
            if not isinstance(node, Group):
                continue
            if node.kind == "and":
                self._and_group(path, node)
            if node.negate and self.counts[path] == 0 and not zero_conditions:
                self._say(
                    f"Every profile matches the group at {path}, so its negation matches nobody."
                )
        if not self._lines:
            self._say(f"No profile matches “{describe(definition.root)}”.")

    def _and_group(self, path: str, group: Group) -> None:
        previous: int | None = None
        for index, child in enumerate(group.conditions):
            step = self.counts[f"{path}#{index}"]
            child_count = self.counts[f"{path}.conditions[{index}]"]
            if step == 0 and previous and child_count:
                earlier = " and ".join(f"“{describe(c)}”" for c in group.conditions[:index])
                self._say(
                    f"The conditions of the group at {path} each match someone, but not "
                    f"together: {_plural(previous, 'profile')} match {earlier}, and none of "
                    f"them also matches “{describe(child)}” ({_plural(child_count, 'profile')})."
                )
                return
            previous = step


def describe_filter_text(item: PropertyFilter) -> str:
    """``plan equals 'pro'`` for messages (values quoted)."""
    return f"{item.property} {_comparison_text(item)}"


def _comparison_text(item: Any) -> str:
    value = item.value
    shown = (
        "[" + ", ".join(_quote(str(v)) for v in value) + "]"
        if isinstance(value, list)
        else _quote(str(value))
    )
    words = {
        "equals": "equal to",
        "in": "in",
        "contains": "containing",
        "starts_with": "starting with",
        "ends_with": "ending with",
    }.get(item.operator, item.operator.replace("_", " "))
    suffix = " (ignoring case)" if item.case_insensitive else ""
    return f"{words} {shown}{suffix}"


# --- aggregates ---------------------------------------------------------------------------------

# JSON_TYPE names of JSON numbers (DuckDB), as in the compiler.
_NUMBER_TYPES = ("BIGINT", "UBIGINT", "DOUBLE", "HUGEINT")


def aggregate_expression(node: AggregateCondition) -> exp.Expr:
    """The aggregate of ``node`` over grouped event rows, as the compiler defines it
    (docs/definition-semantics.md §7): NULL when avg/min/max have no number values."""
    value_field = json_field("properties", node.property)
    if node.function == "count_distinct":
        json_type = exp.JSONType(
            this=exp.column("properties"),
            expression=exp.JSONPath(
                expressions=[
                    exp.JSONPathRoot(),
                    *(exp.JSONPathKey(this=key) for key in node.property.split(".")),
                ]
            ),
        )
        is_number = exp.In(this=json_type, expressions=[lit(t) for t in _NUMBER_TYPES])
        numbers = exp.Case(ifs=[exp.If(this=is_number, true=value_field.number())])
        texts = exp.Count(this=exp.Distinct(expressions=[value_field.text()]))
        return exp.Add(this=texts, expression=exp.Count(this=exp.Distinct(expressions=[numbers])))
    functions: dict[str, type[exp.AggFunc]] = {
        "sum": exp.Sum,
        "avg": exp.Avg,
        "min": exp.Min,
        "max": exp.Max,
    }
    return functions[node.function](this=value_field.number())
