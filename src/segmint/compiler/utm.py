"""``kind: utm``: a UTM parameter at first touch, last touch, or any touch in a window."""

from __future__ import annotations

from sqlglot import exp

from segmint.compiler import build
from segmint.compiler.context import CompileContext
from segmint.compiler.events import in_window
from segmint.compiler.sets import EVENTS, PROFILE_ID, ProfileSet, profiles_where
from segmint.compiler.values import column_field, compare
from segmint.definitions.model import UtmCondition


def compile_utm(condition: UtmCondition, context: CompileContext) -> ProfileSet:
    """First / last touch read the profile's columns; any touch needs an event in the window
    whose UTM column satisfies the comparison."""
    column = f"utm_{condition.parameter}"
    if condition.touch != "any":
        column = f"{condition.touch}_{column}"

    def predicate() -> exp.Expr:
        return compare(
            column_field(column),
            condition.operator,
            condition.value,
            case_insensitive=condition.case_insensitive,
            clock=context.clock,
        )

    if condition.touch != "any":
        return profiles_where(predicate())
    where = build.and_(*in_window(context.bounds(condition.window)), predicate())
    query = build.select(PROFILE_ID, source=EVENTS, where=where, distinct=True)
    # Touches are collected events (segment events are not), which all belong to a profile.
    return ProfileSet(query, within_universe=True)
