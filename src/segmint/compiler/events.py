"""``kind: event``: performed (or not) an event, with filters, a count threshold, a window."""

from __future__ import annotations

from sqlglot import exp

from segmint.compiler.context import CompileContext
from segmint.compiler.sets import EVENTS, PROFILE_ID, ProfileSet, everybody
from segmint.compiler.values import compare, json_field, lit, timestamp
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


def filter_predicates(filters: list[PropertyFilter], context: CompileContext) -> list[exp.Expr]:
    """One predicate per property filter (all must hold)."""
    return [
        compare(
            json_field("properties", item.property),
            item.operator,
            item.value,
            case_insensitive=item.case_insensitive,
            clock=context.clock,
        )
        for item in filters
    ]


def step_predicates(
    event: str, filters: list[PropertyFilter], bounds: Bounds, context: CompileContext
) -> list[exp.Expr]:
    """Events named ``event`` in the window whose properties pass every filter."""
    named = exp.EQ(this=exp.column("event"), expression=lit(event))
    return [named, *in_window(bounds), *filter_predicates(filters, context)]


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
    where = exp.and_(
        *step_predicates(
            condition.event, condition.filters, context.bounds(condition.window), context
        )
    )
    threshold = condition.count
    matches = exp.select(PROFILE_ID).from_(EVENTS).where(where)
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
