"""Explain membership (PRODUCT B1): why one profile is in or out of an audience at ``as_of``.

Every node's true/false value comes from the node's own compiled SQL (the same queries that
compute membership), restricted to the profile, so the root's value is the membership itself.
Next to each value stand the facts behind it: how many matching events in the window against
the threshold, the aggregate against the comparison, whether a qualifying pair of events
exists, the profile's actual trait / UTM / demographic / technology value, and which
children of each group held.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlglot import exp

from segmint.audiences.run import (
    PROFILE_ID,
    _jsonable,
    aggregate_expression,
    prepare_definition,
    utc_naive,
)
from segmint.compiler import CompileContext, compile_node_query
from segmint.compiler.demographic import age_expression
from segmint.compiler.events import filter_predicates, in_window, matching_events
from segmint.compiler.sets import events_from
from segmint.compiler.values import column_field, json_field, lit
from segmint.compiler.windows import Clock
from segmint.definitions.describe import (
    describe,
    describe_aggregate,
    describe_duration,
    describe_events,
    describe_threshold,
    describe_window,
)
from segmint.definitions.model import (
    AggregateCondition,
    AudienceCondition,
    CountThreshold,
    Definition,
    DemographicCondition,
    EventCondition,
    EventStep,
    Group,
    Node,
    SequenceCondition,
    TechnologyCondition,
    TraitCondition,
    UtmCondition,
    iter_nodes,
)
from segmint.definitions.validation import AudienceResolver
from segmint.errors import InvalidInput, NotFound
from segmint.identifiers import normalize_email, normalize_phone
from segmint.warehouse.engine import Engine

_COMPLEMENT = {"at_least": "fewer than", "at_most": "more than", "exactly": "other than"}


@dataclass
class NodeVerdict:
    """One node's value for the profile. ``held`` is the value before the node's own NOT,
    ``matched`` after it; ``detail`` is the sentence shown, ``facts`` its numbers."""

    id: str
    path: str
    label: str
    kind: str
    negate: bool
    depth: int
    held: bool
    matched: bool
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    """Why ``profile_id`` is (``member``) or is not a member at ``as_of``; ``profile`` says
    whom the reference given named, and how."""

    profile_id: int
    as_of: dt.datetime
    timezone: str
    member: bool
    nodes: list[NodeVerdict]
    profile: ProfileMatch

    def lines(self) -> list[str]:
        """The verdicts as indented lines, the tree's shape kept."""
        return ["  " * node.depth + node.detail for node in self.nodes]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (instants as ISO text, UTC)."""
        return dict(_jsonable(asdict(self)))


def explain_membership(
    warehouse: Engine,
    definition: Definition | Mapping[str, Any],
    profile_id: int | str,
    *,
    as_of: dt.datetime,
    timezone: str,
    resolve_audience: AudienceResolver | None = None,
) -> Explanation:
    """The value of every node of ``definition`` for one profile at ``as_of``, with the counts
    behind it. ``profile_id`` is a profile id, or a user id, email or anonymous id that
    identifies one, or one of them prefixed (see :func:`resolve_profile`). Unknown profiles
    raise :class:`NotFound`, text naming two profiles :class:`InvalidInput`; bad definitions
    raise :class:`DefinitionError`."""
    definition = prepare_definition(definition, resolve_audience)
    as_of = utc_naive(as_of)
    profile = resolve_profile(warehouse, profile_id)
    found = profile.profile_id
    nodes = iter_nodes(definition.root)
    values = _node_values(warehouse, nodes, found, as_of, timezone, resolve_audience)
    context = CompileContext(
        Clock.create(as_of, timezone), resolve_audience, dialect=warehouse.dialect
    )
    facts = _Facts(warehouse, context, found)
    verdicts = [facts.verdict(path, node, values) for path, node in nodes]
    return Explanation(
        profile_id=found,
        as_of=as_of,
        timezone=timezone,
        member=values["root"],
        nodes=verdicts,
        profile=profile,
    )


# How a reference can say what it is: ``user:7`` is the user id 7, ``profile:7`` the profile
# id 7. Unprefixed, a reference is tried as each, and refused when two profiles answer.
PREFIXES = {
    "profile": "profile id",
    "user": "user id",
    "email": "email",
    "anonymous": "anonymous id",
    "phone": "phone",
}
# kind → (column of profiles, id_type of identities, normalization)
_IDENTIFIERS: dict[str, tuple[str, str, Callable[[str], str | None]]] = {
    "user": ("user_id", "user_id", lambda text: text),
    "email": ("email", "email", normalize_email),
    "anonymous": ("anonymous_id", "anonymous_id", lambda text: text),
    "phone": ("phone", "phone", normalize_phone),
}


@dataclass(frozen=True)
class ProfileMatch:
    """The profile a reference named, and how: ``matched_by`` is a key of :data:`PREFIXES`
    (``"user"``: the reference is the profile's user id). ``merged_from`` is the profile id
    the reference gave when that profile was merged into this one. ``user_id`` and ``email``
    are the profile's, to show whom it is."""

    profile_id: int
    matched_by: str
    user_id: str | None = None
    email: str | None = None
    merged_from: int | None = None

    def label(self) -> str:
        """``profile 6 (user id 100006, ann@example.com)``."""
        known = [f"user id {self.user_id}" if self.user_id else "", self.email or ""]
        shown = ", ".join(part for part in known if part) or "no user id or email"
        return f"profile {self.profile_id} ({shown})"

    def how(self) -> str:
        """How the reference led to the profile, as a clause for messages."""
        if self.merged_from is not None:
            return f"profile {self.merged_from}, merged into {self.label()}"
        if self.matched_by == "profile":
            return self.label()
        return f"the {PREFIXES[self.matched_by]} of {self.label()}"


def find_profile(warehouse: Engine, reference: int | str) -> int:
    """The profile id of ``reference`` (see :func:`resolve_profile`)."""
    return resolve_profile(warehouse, reference).profile_id


def resolve_profile(warehouse: Engine, reference: int | str) -> ProfileMatch:
    """The profile ``reference`` names: a profile id (one merged into another gives the
    profile it was merged into), a user id, an email, an anonymous id or a phone — or, with a
    prefix, only that: ``profile:7``, ``user:7``, ``email:…``, ``anonymous:…``, ``phone:…``.
    Unprefixed text that names two profiles (profile 7, and the user id "7" of profile 565)
    raises :class:`InvalidInput` naming both and the prefixes that choose; unknown text
    raises :class:`NotFound` with a hint."""
    text = str(reference).strip()
    prefix, colon, rest = text.partition(":")
    if colon and prefix.lower() in PREFIXES:
        kind = prefix.lower()
        found = _lookup(warehouse, kind, rest.strip())
        if found is None:
            raise NotFound(
                f"no profile with {PREFIXES[kind]} {rest.strip()!r} in the warehouse (if "
                f"{text!r} is itself the {PREFIXES[kind]}, write {kind}:{text})",
                path="profile_id",
            )
        return found
    matches = [m for kind in PREFIXES if (m := _lookup(warehouse, kind, text)) is not None]
    if not matches:
        raise NotFound(
            f"no profile {text!r} in the warehouse: give a profile id (Run Query's sample lists "
            "members' ids), a user id, an email or an anonymous id",
            path="profile_id",
        )
    choices: dict[int, ProfileMatch] = {}  # the first match of each profile
    for match in matches:
        choices.setdefault(match.profile_id, match)
    if len(choices) > 1:
        raise InvalidInput(
            f"{text!r} names {len(choices)} profiles: "
            f"{'; and '.join(m.how() for m in choices.values())}. Say which with a prefix: "
            f"{' or '.join(f'{m.matched_by}:{text}' for m in choices.values())}",
            path="profile_id",
        )
    return matches[0]


def _lookup(warehouse: Engine, kind: str, text: str) -> ProfileMatch | None:
    """The profile whose ``kind`` identifier (see :data:`PREFIXES`) is ``text``."""
    if kind == "profile":
        return _by_profile_id(warehouse, text)
    column, id_type, normalize = _IDENTIFIERS[kind]
    value = normalize(text)
    if not value:
        return None
    rows = warehouse.rows(
        f"SELECT profile_id FROM profiles WHERE {column} = ? ORDER BY last_seen DESC LIMIT 1",
        [value],
    ) or warehouse.rows(
        "SELECT profile_id FROM identities WHERE id_type = ? AND id_value = ? LIMIT 1",
        [id_type, value],
    )
    return _match(warehouse, int(rows[0][0]), kind) if rows else None


def _by_profile_id(warehouse: Engine, text: str) -> ProfileMatch | None:
    """The profile with id ``text``, or the one it was merged into (merges chain)."""
    if not (text.isascii() and text.isdigit()) or int(text) >= 2**63:
        return None
    number = current = int(text)
    followed = {number}
    while not warehouse.rows("SELECT 1 FROM profiles WHERE profile_id = ?", [current]):
        merged = warehouse.rows(
            "SELECT into_profile_id FROM profile_merges WHERE merged_profile_id = ? "
            "ORDER BY merged_at DESC LIMIT 1",
            [current],
        )
        if not merged or int(merged[0][0]) in followed:
            return None
        current = int(merged[0][0])
        followed.add(current)
    return _match(warehouse, current, "profile", merged_from=None if current == number else number)


def _match(
    warehouse: Engine, profile_id: int, kind: str, *, merged_from: int | None = None
) -> ProfileMatch:
    rows = warehouse.rows("SELECT user_id, email FROM profiles WHERE profile_id = ?", [profile_id])
    user_id, email = rows[0] if rows else (None, None)
    return ProfileMatch(profile_id, kind, user_id, email, merged_from)


def _node_values(
    warehouse: Engine,
    nodes: Sequence[tuple[str, Node]],
    profile_id: int,
    as_of: dt.datetime,
    timezone: str,
    resolve_audience: AudienceResolver | None,
) -> dict[str, bool]:
    """Every node's value for the profile, from each node's compiled query: one SQL query."""
    checks: list[exp.Expr] = []
    for index, (_, node) in enumerate(nodes):
        query = compile_node_query(
            node, as_of=as_of, timezone=timezone, resolve_audience=resolve_audience
        )
        alias = exp.TableAlias(this=exp.to_identifier("m"))
        probe = (
            exp.select(lit(1))
            .from_(exp.Subquery(this=query, alias=alias))
            .where(exp.EQ(this=exp.column(PROFILE_ID, table="m"), expression=lit(profile_id)))
        )
        checks.append(exp.alias_(exp.Exists(this=probe), f"v{index}"))
    (row,) = warehouse.rows(exp.select(*checks))
    return {path: bool(value) for (path, _), value in zip(nodes, row, strict=True)}


def _verdict_word(value: bool) -> str:
    return "matched" if value else "NOT matched"


class _Facts:
    """The numbers behind each node's value, for one profile (one small query per condition)."""

    def __init__(self, warehouse: Engine, context: CompileContext, profile_id: int) -> None:
        self.warehouse = warehouse
        self.context = context
        self.profile_id = profile_id

    def verdict(self, path: str, node: Node, values: Mapping[str, bool]) -> NodeVerdict:
        matched = values[path]
        held = matched != node.negate
        if isinstance(node, Group):
            facts, text = self._group(path, node, values)
        else:
            facts, text = self._condition(node, held)
        detail = f"{text} → {_verdict_word(held)}"
        if node.negate:
            detail = f"NOT [{detail}] → {_verdict_word(matched)}"
        return NodeVerdict(
            id=str(node.id),
            path=path,
            label=describe(node),
            kind=node.kind,
            negate=node.negate,
            depth=path.count(".conditions["),
            held=held,
            matched=matched,
            detail=detail,
            facts=facts,
        )

    # -- groups --

    def _group(
        self, path: str, group: Group, values: Mapping[str, bool]
    ) -> tuple[dict[str, Any], str]:
        held = [values[f"{path}.conditions[{index}]"] for index in range(len(group.conditions))]
        total = len(held)
        word = "all" if group.kind == "and" else "any"
        facts = {"held": sum(held), "of": total, "children": held}
        noun = "condition" if total == 1 else "conditions"
        return facts, f"{word} of {total} {noun}: {sum(held)} of {total} held"

    # -- conditions --

    def _condition(self, node: Node, held: bool) -> tuple[dict[str, Any], str]:
        if isinstance(node, EventCondition):
            return self._event(node)
        if isinstance(node, AggregateCondition):
            return self._aggregate(node)
        if isinstance(node, SequenceCondition):
            return self._sequence(node, held)
        if isinstance(node, TraitCondition):
            value = self._profile_value(json_field("traits", node.trait).raw())
            return {"value": value}, self._compared(describe(_positive(node)), value)
        if isinstance(node, UtmCondition):
            return self._utm(node)
        if isinstance(node, DemographicCondition | TechnologyCondition):
            return self._profile_field(node)
        if isinstance(node, AudienceCondition):
            is_member = held == node.member
            facts = {"member": is_member}
            answer = "a member" if is_member else "not a member"
            return facts, f"{describe(_positive(node))}: the profile is {answer}"
        raise TypeError(f"not a condition: {type(node).__name__}")

    def _count_events(self, step: EventStep, window: Any) -> int:
        events = matching_events(
            step.event, step.filters, self.context.bounds(window), self.context
        )
        query = (
            exp.select(exp.Count(this=exp.Star()))
            .from_(exp.Subquery(this=events, alias=exp.TableAlias(this=exp.to_identifier("e"))))
            .where(_this_profile(self.profile_id, table="e"))
        )
        return int(self.warehouse.rows(query)[0][0])

    def _event(self, node: EventCondition) -> tuple[dict[str, Any], str]:
        step = EventStep(event=node.event, filters=node.filters)
        count = self._count_events(step, node.window)
        needs = _needs(node.count, performed=node.performed)
        subject = describe_events(node.event, node.filters, node.window)
        times = "time" if count == 1 else "times"
        facts = {"events": count, "needs": needs}
        return facts, f"{subject}: {count} {times} (needs {needs})"

    def _aggregate(self, node: AggregateCondition) -> tuple[dict[str, Any], str]:
        where = exp.and_(
            _this_profile(self.profile_id),
            exp.EQ(this=exp.column("event"), expression=lit(node.event)),
            *in_window(self.context.bounds(node.window)),
            *filter_predicates(node.filters, self.context),
        )
        counted = exp.select(aggregate_expression(node), exp.Count(this=exp.Star()))
        query = counted.from_(events_from(node.event))
        value, events = self.warehouse.rows(query.where(where))[0]
        if value is None and node.function in ("sum", "count_distinct"):
            value = 0.0
        shown = "no value" if value is None else f"{float(value):g}"
        facts = {"value": None if value is None else float(value), "events": int(events)}
        return facts, f"{describe_aggregate(_positive(node))}: {shown} over {events} events"

    def _sequence(self, node: SequenceCondition, held: bool) -> tuple[dict[str, Any], str]:
        first = self._count_events(node.first, node.window)
        then = self._count_events(node.then, node.window)
        span = f" within {describe_duration(node.within)}" if node.within else ""
        if node.followed:
            found = "a qualifying pair exists" if held else "no qualifying pair"
        else:
            found = (
                f"a {node.first.event} not followed by {node.then.event}{span} exists"
                if held
                else f"every {node.first.event} was followed{span} (or is too recent)"
            )
        facts = {"first_events": first, "then_events": then, "pair": held}
        text = (
            f"{describe(_positive(node))}: {first} {node.first.event}, {then} {node.then.event}"
            f"{' ' + describe_window(node.window) if node.window else ''}; {found}"
        )
        return facts, text

    def _utm(self, node: UtmCondition) -> tuple[dict[str, Any], str]:
        label = describe(_positive(node))
        column = f"utm_{node.parameter}"
        if node.touch != "any":
            value = self._profile_value(column_field(f"{node.touch}_{column}").raw())
            return {"value": value}, self._compared(label, value)
        where = exp.and_(
            _this_profile(self.profile_id), *in_window(self.context.bounds(node.window))
        )
        rows = self.warehouse.rows(
            exp.select(exp.column(column), exp.Count(this=exp.Star()))
            .from_("events")
            .where(where)
            .group_by(exp.column(column))
            .order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True))
            .limit(6)
        )
        values = {str(v) if v is not None else None: int(n) for v, n in rows}
        shown = ", ".join(f"{'(none)' if v is None else repr(v)} × {n}" for v, n in values.items())
        return {"values": values}, f"{label}: events in the window carry {shown or 'nothing'}"

    def _profile_field(
        self, node: DemographicCondition | TechnologyCondition
    ) -> tuple[dict[str, Any], str]:
        label = describe(_positive(node))
        if isinstance(node, DemographicCondition) and node.field == "age":
            value: Any = self._profile_value(age_expression(self.context))
        elif isinstance(node, DemographicCondition) and node.field == "gender":
            value = self._profile_value(json_field("traits", "gender").raw())
        else:
            value = self._profile_value(column_field(node.field).raw())
        return {"value": value}, self._compared(label, value)

    def _profile_value(self, expression: exp.Expr) -> Any:
        query = exp.select(expression).from_("profiles").where(_this_profile(self.profile_id))
        return self.warehouse.rows(query)[0][0]

    @staticmethod
    def _compared(label: str, value: Any) -> str:
        if value is None:
            return f"{label}: the profile has no value"
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        return f"{label}: the profile has {shown}"


def _this_profile(profile_id: int, table: str | None = None) -> exp.Expr:
    return exp.EQ(this=exp.column(PROFILE_ID, table=table), expression=lit(profile_id))


def _needs(threshold: CountThreshold, *, performed: bool) -> str:
    if not performed and threshold.operator == "at_least" and threshold.value == 1:
        return "none"
    if performed:
        return f"{describe_threshold(threshold).rsplit(' ', 1)[0]}"
    return f"{_COMPLEMENT[threshold.operator]} {threshold.value}"


def _positive(node: Any) -> Any:
    """The node without its own NOT."""
    return node.model_copy(update={"negate": False})
