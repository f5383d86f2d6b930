"""``kind: event``: performed (or not) an event, with filters, a count threshold, a window."""

from __future__ import annotations

from sqlglot import exp

from segmint.compiler import build
from segmint.compiler.context import CompileContext
from segmint.compiler.sets import PROFILE_ID, ProfileSet, events_from, everybody, profile_bound
from segmint.compiler.values import Extractions, compare, json_field, lit, timestamp
from segmint.compiler.windows import Bounds
from segmint.definitions.model import CountThreshold, EventCondition, Group, PropertyFilter

TIMESTAMP = "timestamp"


def in_window(bounds: Bounds) -> list[exp.Expr]:
    """Predicates keeping events inside ``[start, end)``."""
    ts = exp.column(TIMESTAMP)
    found: list[exp.Expr] = [exp.LT(this=ts, expression=timestamp(bounds.end))]
    if bounds.start is not None:
        found.insert(0, exp.GTE(this=exp.column(TIMESTAMP), expression=timestamp(bounds.start)))
    return found


def filter_predicates(
    filters: list[PropertyFilter],
    context: CompileContext,
    extractions: Extractions | None = None,
) -> list[exp.Expr]:
    """One predicate per property filter (all must hold)."""
    return [
        compare(
            json_field("properties", item.property, extractions),
            item.operator,
            item.value,
            case_insensitive=item.case_insensitive,
            clock=context.clock,
        )
        for item in filters
    ]


def matching_events(
    event: str,
    filters: list[PropertyFilter],
    bounds: Bounds,
    context: CompileContext,
    extractions: Extractions | None = None,
) -> exp.Select:
    """``SELECT profile_id FROM (scan) WHERE filters``: events named ``event`` in the window
    whose properties pass every filter. Property values are extracted once per event in the
    scan's projection; callers that need more values (aggregates) register them in
    ``extractions`` before calling."""
    extractions = extractions if extractions is not None else Extractions()
    checks = filter_predicates(filters, context, extractions)
    named = exp.EQ(this=exp.column("event"), expression=lit(event))
    where = build.and_(named, *in_window(bounds))
    source = events_from(event)
    if not extractions:
        return build.select(PROFILE_ID, source=source, where=where)
    scan = build.select(PROFILE_ID, *extractions.columns(), source=source, where=where)
    alias = exp.TableAlias(this=exp.to_identifier("e"))
    return build.select(
        PROFILE_ID,
        source=exp.Subquery(this=scan, alias=alias),
        where=build.and_(*checks) if checks else None,
    )


def by_profile(matches: exp.Select, having: exp.Expr) -> exp.Select:
    """``matches`` (changed in place) grouped by profile, keeping the groups ``having`` holds
    for."""
    return matches.group_by(exp.column(PROFILE_ID), copy=False).having(having, copy=False)


def _count_holds(count: int, threshold: CountThreshold) -> bool:
    if threshold.operator == "at_least":
        return count >= threshold.value
    if threshold.operator == "at_most":
        return count <= threshold.value
    return count == threshold.value


def _having(threshold: CountThreshold, *, holds: bool) -> exp.Expr:
    count = exp.Count(this=exp.Star())
    value = lit(threshold.value)
    comparisons: dict[str, tuple[type[exp.Binary], type[exp.Binary]]] = {
        "at_least": (exp.GTE, exp.LT),
        "at_most": (exp.LTE, exp.GT),
        "exactly": (exp.EQ, exp.NEQ),
    }
    kind = comparisons[threshold.operator][0 if holds else 1]
    return kind(this=count, expression=value)


def compile_event(condition: EventCondition, context: CompileContext) -> ProfileSet:
    """Profiles whose count of matching events in the window meets the threshold. When zero
    events meet it, the set is computed as the complement of the profiles that fail it."""
    bounds = context.bounds(condition.window)
    matches = matching_events(condition.event, condition.filters, bounds, context)
    threshold = condition.count
    bound = profile_bound(condition.event)
    if _count_holds(0, threshold):
        if threshold.operator == "at_least":  # at least 0: everybody
            result = everybody()
        else:
            failing = by_profile(matches, _having(threshold, holds=False))
            result = ProfileSet(failing, complement=True)
    elif threshold.operator == "at_least" and threshold.value == 1:
        result = ProfileSet(matches.distinct(copy=False), within_universe=bound)
    else:
        having = _having(threshold, holds=True)
        result = ProfileSet(by_profile(matches, having), within_universe=bound)
    return result if condition.performed else result.negated()


# --- one scan for several event conditions ------------------------------------------------


def mergeable(node: object) -> bool:
    """Event conditions without property filters — and groups made only of them — can share
    one scan of the events."""
    if isinstance(node, EventCondition):
        return not node.filters
    if isinstance(node, Group):
        return all(mergeable(child) for child in node.conditions)
    return False


def _leaves(node: EventCondition | Group) -> list[EventCondition]:
    if isinstance(node, EventCondition):
        return [node]
    return [leaf for child in node.conditions for leaf in _leaves(child)]  # type: ignore[arg-type]


def _threshold_expr(count: exp.Expr, threshold: CountThreshold) -> exp.Expr:
    kind = {"at_least": exp.GTE, "at_most": exp.LTE, "exactly": exp.EQ}[threshold.operator]
    return kind(this=count, expression=lit(threshold.value))


def _holds_when_zero(node: EventCondition | Group) -> bool:
    """The node's value for a profile with no matching events at all."""
    if isinstance(node, EventCondition):
        holds = _count_holds(0, node.count)
        holds = holds if node.performed else not holds
    else:
        values = [_holds_when_zero(child) for child in node.conditions]  # type: ignore[arg-type]
        holds = all(values) if node.kind == "and" else any(values)
    return not holds if node.negate else holds


def _is_event_eq(predicate: exp.Expr) -> bool:
    return (
        isinstance(predicate, exp.EQ)
        and isinstance(predicate.this, exp.Column)
        and predicate.this.name == "event"
    )


def _not(expression: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Paren(this=expression))


def _formula(node: EventCondition | Group, checks: dict[int, exp.Expr]) -> exp.Expr:
    """The node as a boolean over the per-condition counts (``checks`` by leaf identity)."""
    if isinstance(node, EventCondition):
        value = checks[id(node)].copy()
        value = value if node.performed else _not(value)
    else:
        parts = [exp.Paren(this=_formula(c, checks)) for c in node.conditions]  # type: ignore[arg-type]
        value = build.and_(*parts) if node.kind == "and" else build.or_(*parts)
    return _not(value) if node.negate else value


def merged_event_scan(
    nodes: list[EventCondition | Group], context: CompileContext, *, kind: str
) -> ProfileSet | None:
    """One scan of ``events`` counting each event condition's matching events per profile;
    the nodes (event conditions, or groups of them) are combined with ``kind`` (and / or) in
    HAVING, every ``negate`` and ``performed`` applied. Only sound when the combination is
    false for a profile without any matching event (every accepted profile then has a row in
    the scan); returns ``None`` otherwise and the caller falls back to set algebra."""
    zero = [_holds_when_zero(node) for node in nodes]
    if all(zero) if kind == "and" else any(zero):
        return None
    leaves = [leaf for node in nodes for leaf in _leaves(node)]
    conjuncts = [
        [
            exp.EQ(this=exp.column("event"), expression=lit(leaf.event)),
            *in_window(context.bounds(leaf.window)),
        ]
        for leaf in leaves
    ]
    # Conjuncts every condition shares (usually the window) go to WHERE once.
    shared_sql = set.intersection(*({p.sql() for p in parts} for parts in conjuncts))
    shared = [p for p in conjuncts[0] if p.sql() in shared_sql]
    own = [[p for p in parts if p.sql() not in shared_sql] for parts in conjuncts]
    checks: dict[int, exp.Expr] = {}
    for leaf, parts in zip(leaves, own, strict=True):
        count: exp.Expr = (
            exp.CountIf(this=build.and_(*(p.copy() for p in parts)))
            if parts
            else exp.Count(this=exp.Star())
        )
        checks[id(leaf)] = exp.Paren(this=_threshold_expr(count, leaf.count))
    formulas = [exp.Paren(this=_formula(node, checks)) for node in nodes]
    having = build.and_(*formulas) if kind == "and" else build.or_(*formulas)
    where = [p.copy() for p in shared]
    names = [parts[0].expression for parts in own if len(parts) == 1 and _is_event_eq(parts[0])]
    if len(names) == len(own):  # only the event names differ: event IN (…)
        unique = list({n.sql(): n for n in names}.values())
        where.append(exp.In(this=exp.column("event"), expressions=[n.copy() for n in unique]))
    elif all(own):  # a condition with no own conjunct counts every scanned row
        where.append(build.or_(*(exp.Paren(this=build.and_(*parts)) for parts in own)))
    events = [leaf.event for leaf in leaves]
    query = build.select(
        PROFILE_ID,
        source=events_from(*events),
        where=build.and_(*where),
        group_by=[PROFILE_ID],
        having=having,
    )
    return ProfileSet(query, within_universe=profile_bound(*events))
