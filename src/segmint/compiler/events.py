"""``kind: event``: performed (or not) an event, with filters, a count threshold, a window."""

from __future__ import annotations

from sqlglot import exp

from segmint.compiler.context import CompileContext
from segmint.compiler.sets import EVENTS, PROFILE_ID, ProfileSet, everybody
from segmint.compiler.values import Extractions, compare, json_field, lit, timestamp
from segmint.compiler.windows import Bounds
from segmint.definitions.model import CountThreshold, EventCondition, PropertyFilter

TIMESTAMP = "timestamp"


def in_window(bounds: Bounds) -> list[exp.Expr]:
    """Predicates keeping events inside ``[start, end)``."""
    ts = exp.column(TIMESTAMP)
    found: list[exp.Expr] = [exp.LT(this=ts, expression=timestamp(bounds.end))]
    if bounds.start is not None:
        found.insert(0, exp.GTE(this=ts.copy(), expression=timestamp(bounds.start)))
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
    where = exp.and_(named, *in_window(bounds))
    if not extractions:
        return exp.select(PROFILE_ID).from_(EVENTS).where(where)
    scan = exp.select(PROFILE_ID, *extractions.columns()).from_(EVENTS).where(where)
    alias = exp.TableAlias(this=exp.to_identifier("e"))
    query = exp.select(PROFILE_ID).from_(exp.Subquery(this=scan, alias=alias))
    return query.where(exp.and_(*checks)) if checks else query


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
    if _count_holds(0, threshold):
        if threshold.operator == "at_least":  # at least 0: everybody
            result = everybody()
        else:
            failing = matches.group_by(PROFILE_ID).having(_having(threshold, holds=False))
            result = ProfileSet(failing, complement=True)
    elif threshold.operator == "at_least" and threshold.value == 1:
        result = ProfileSet(matches.distinct())
    else:
        result = ProfileSet(matches.group_by(PROFILE_ID).having(_having(threshold, holds=True)))
    return result if condition.performed else result.negated()


# --- one scan for several event conditions ------------------------------------------------


def mergeable(node: object) -> bool:
    """Event conditions without property filters can share one scan of the events."""
    return isinstance(node, EventCondition) and not node.filters


def _threshold_expr(count: exp.Expr, threshold: CountThreshold) -> exp.Expr:
    kind = {"at_least": exp.GTE, "at_most": exp.LTE, "exactly": exp.EQ}[threshold.operator]
    return kind(this=count, expression=lit(threshold.value))


def _holds_when_zero(condition: EventCondition) -> bool:
    holds = _count_holds(0, condition.count)
    holds = holds if condition.performed else not holds
    return not holds if condition.negate else holds


def _is_event_eq(predicate: exp.Expr) -> bool:
    return (
        isinstance(predicate, exp.EQ)
        and isinstance(predicate.this, exp.Column)
        and predicate.this.name == "event"
    )


def merged_event_scan(
    conditions: list[EventCondition], context: CompileContext, *, kind: str
) -> ProfileSet | None:
    """One scan of ``events`` counting each condition's matching events per profile, the
    conditions combined with ``kind`` (and / or) in HAVING. Each condition's own ``negate``
    is applied. Only sound when every profile the combination accepts has at least one
    scanned event: for AND, some condition must fail on zero events; for OR, all must.
    Returns ``None`` when that does not hold (the caller falls back to set algebra)."""
    zero = [_holds_when_zero(c) for c in conditions]
    if (kind == "and" and all(zero)) or (kind == "or" and any(zero)):
        return None
    conjuncts = [
        [
            exp.EQ(this=exp.column("event"), expression=lit(c.event)),
            *in_window(context.bounds(c.window)),
        ]
        for c in conditions
    ]
    # Conjuncts every condition shares (usually the window) go to WHERE once.
    shared_sql = set.intersection(*({p.sql() for p in parts} for parts in conjuncts))
    shared = [p for p in conjuncts[0] if p.sql() in shared_sql]
    own = [[p for p in parts if p.sql() not in shared_sql] for parts in conjuncts]
    checks: list[exp.Expr] = []
    for condition, parts in zip(conditions, own, strict=True):
        count: exp.Expr = (
            exp.CountIf(this=exp.and_(*(p.copy() for p in parts)))
            if parts
            else exp.Count(this=exp.Star())
        )
        check = _threshold_expr(count, condition.count)
        if not condition.performed:
            check = exp.Not(this=exp.Paren(this=check))
        if condition.negate:
            check = exp.Not(this=exp.Paren(this=check))
        checks.append(exp.Paren(this=check))
    having = exp.and_(*checks) if kind == "and" else exp.or_(*checks)
    where = [p.copy() for p in shared]
    names = [parts[0].expression for parts in own if len(parts) == 1 and _is_event_eq(parts[0])]
    if len(names) == len(own):  # only the event names differ: event IN (…)
        where.append(exp.In(this=exp.column("event"), expressions=[n.copy() for n in names]))
    elif all(own):  # a condition with no own conjunct counts every scanned row
        where.append(exp.or_(*(exp.Paren(this=exp.and_(*parts)) for parts in own)))
    query = (
        exp.select(PROFILE_ID)
        .from_(EVENTS)
        .where(exp.and_(*where))
        .group_by(PROFILE_ID)
        .having(having)
    )
    return ProfileSet(query)
