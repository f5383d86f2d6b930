"""``kind: sequence``: A then B (within a span), or A not followed by B (abandonment).

With a span, two forms give the same members (docs/definition-semantics.md §7):

- **ASOF join** (dialects with one, see ``CompileContext.asof_joins``: DuckDB, ClickHouse):
  one scan of events per step; each B event is joined to the latest A event strictly before
  it (followed), or each A event to the next B event strictly after it (not followed).
- **Window functions** (portable: Spark, and any dialect when ``dialect`` is None): one scan
  of events yields, per profile and timestamp, whether an A and / or a B event happened;
  window functions over those rows find the latest A before each B (or the next B after each
  A).

Without a span, one GROUP BY per profile compares the first / last instants of each step.
No correlated subquery in any form.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlglot import exp

from segmint.compiler import build
from segmint.compiler.context import CompileContext
from segmint.compiler.events import filter_predicates, in_window
from segmint.compiler.sets import PROFILE_ID, ProfileSet, events_from, profile_bound
from segmint.compiler.values import lit, timestamp
from segmint.definitions.model import EventStep, SequenceCondition

TS = "timestamp"


def _step_of(condition: SequenceCondition, which: str) -> EventStep:
    return condition.first if which == "a" else condition.then


def _step(condition: SequenceCondition, which: str, context: CompileContext) -> exp.Expr:
    step = _step_of(condition, which)
    named = exp.EQ(this=exp.column("event"), expression=lit(step.event))
    return build.and_(named, *filter_predicates(step.filters, context))


def _flags(condition: SequenceCondition, context: CompileContext) -> exp.Select:
    """One scan: profile, timestamp, is_a, is_b for events of either step in the window."""
    is_a, is_b = _step(condition, "a", context), _step(condition, "b", context)
    names = sorted({condition.first.event, condition.then.event})
    where = build.and_(
        exp.In(this=exp.column("event"), expressions=[lit(n) for n in names]),
        *in_window(context.bounds(condition.window)),
    )
    return build.select(
        PROFILE_ID,
        TS,
        build.alias(exp.Coalesce(this=is_a, expressions=[exp.false()]), "is_a"),
        build.alias(exp.Coalesce(this=is_b, expressions=[exp.false()]), "is_b"),
        source=events_from(*names),
        where=where,
    )


def _instants(condition: SequenceCondition, context: CompileContext) -> exp.Subquery:
    """One row per (profile, timestamp) with whether an A and / or a B event happened then.
    Timestamps being unique per profile, ROWS frames that skip the current row mean exactly
    "strictly before" / "strictly after"."""
    flags = exp.Subquery(
        this=_flags(condition, context), alias=exp.TableAlias(this=exp.to_identifier("s"))
    )
    grouped = build.select(
        PROFILE_ID,
        TS,
        build.alias(exp.func("BOOL_OR", exp.column("is_a")), "has_a"),
        build.alias(exp.func("BOOL_OR", exp.column("is_b")), "has_b"),
        source=flags,
        group_by=[PROFILE_ID, TS],
    )
    return exp.Subquery(this=grouped, alias=exp.TableAlias(this=exp.to_identifier("i")))


def _flag_ts(flag: str) -> exp.Expr:
    return exp.Case(ifs=[exp.If(this=exp.column(flag), true=exp.column(TS))])


def _over(function: exp.Expr, *, following: bool) -> exp.Window:
    one = exp.Literal.number(1)
    spec = (
        exp.WindowSpec(
            kind="ROWS", start=one, start_side="FOLLOWING", end="UNBOUNDED", end_side="FOLLOWING"
        )
        if following
        else exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end=one, end_side="PRECEDING"
        )
    )
    return exp.Window(
        this=function,
        partition_by=[exp.column(PROFILE_ID)],
        order=exp.Order(expressions=[exp.Ordered(this=exp.column(TS))]),
        spec=spec,
    )


def _span(seconds: int) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(seconds)), unit=exp.var("SECOND"))


def _subquery(query: exp.Query, alias: str) -> exp.Subquery:
    return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def compile_sequence(condition: SequenceCondition, context: CompileContext) -> ProfileSet:
    """Profiles with an A event then a B event (or an A event not followed by B)."""
    within = condition.within.to_timedelta() if condition.within else None
    if within is None:
        result = _without_span(condition, context)
    elif context.asof_joins:
        result = _asof(condition, context, within)
    else:
        result = _windowed(condition, context, within)
    bound = profile_bound(condition.first.event, condition.then.event)
    return replace(result, within_universe=bound)


def _windowed(
    condition: SequenceCondition, context: CompileContext, within: dt.timedelta
) -> ProfileSet:
    """The window-function form (portable)."""
    seconds = int(within.total_seconds())
    ts = exp.column(TS)
    if condition.followed:
        last_a = _over(exp.Max(this=_flag_ts("has_a")), following=False)
        ranked: list[build.Part] = [PROFILE_ID, TS, "has_b", build.alias(last_a, "last_a_before")]
        found = build.and_(
            exp.column("has_b"),
            exp.LTE(
                this=ts,
                expression=exp.Add(this=exp.column("last_a_before"), expression=_span(seconds)),
            ),
        )
    else:
        next_b = _over(exp.Min(this=_flag_ts("has_b")), following=True)
        ranked = [PROFILE_ID, TS, "has_a", build.alias(next_b, "next_b_after")]
        observed_until = context.bounds(condition.window).end - within
        found = build.and_(
            exp.column("has_a"),
            exp.LT(this=ts.copy(), expression=timestamp(observed_until)),
            build.or_(
                exp.Is(this=exp.column("next_b_after"), expression=exp.Null()),
                exp.GT(
                    this=exp.column("next_b_after"),
                    expression=exp.Add(this=ts.copy(), expression=_span(seconds)),
                ),
            ),
        )
    windowed = _subquery(build.select(*ranked, source=_instants(condition, context)), "w")
    return ProfileSet(build.select(PROFILE_ID, source=windowed, where=found, distinct=True))


STEP_TS = "ts"


def _step_scan(
    condition: SequenceCondition, which: str, context: CompileContext, *extra: exp.Expr
) -> exp.Select:
    """``SELECT profile_id, "timestamp" AS ts`` of the events of one step: its name, the
    sequence's window, the step's filters and ``extra`` predicates."""
    where = build.and_(
        _step(condition, which, context), *in_window(context.bounds(condition.window)), *extra
    )
    scanned = events_from(_step_of(condition, which).event)
    return build.select(
        PROFILE_ID, build.alias(exp.column(TS), STEP_TS), source=scanned, where=where
    )


def _asof_join(right: exp.Subquery, on: exp.Expr, *, outer: bool) -> exp.Join:
    """``ASOF [LEFT] JOIN right ON on``: each row of the FROM side meets the one row of
    ``right`` closest in time on the side the inequality of ``on`` names (none: the row is
    dropped, or kept with an unmatched right side when ``outer``)."""
    return exp.Join(this=right, on=on, method="ASOF", side="LEFT" if outer else None)


def _asof(
    condition: SequenceCondition, context: CompileContext, within: dt.timedelta
) -> ProfileSet:
    """The ASOF-join form.

    Followed: each B event meets the latest A event strictly before it; some B is within the
    span of that A iff some (A, B) pair is (the latest A minimises the gap).

    Not followed: each A event whose span has been observed meets the next B event strictly
    after it; the A is abandoned iff there is none or it comes after the span. Unmatched rows
    are told apart by ``found``, not by a NULL timestamp: ClickHouse fills unmatched columns
    of a LEFT join with default values (0 / FALSE / epoch) unless ``join_use_nulls`` is on,
    and ``COALESCE(found, FALSE)`` is FALSE for an unmatched row either way."""
    span = _span(int(within.total_seconds()))
    a_ts, b_ts = exp.column(STEP_TS, table="a"), exp.column(STEP_TS, table="b")
    same_profile = exp.EQ(
        this=exp.column(PROFILE_ID, table="a"), expression=exp.column(PROFILE_ID, table="b")
    )
    if condition.followed:
        first = _subquery(_step_scan(condition, "a", context), "a")
        then = _subquery(_step_scan(condition, "b", context), "b")
        on = build.and_(same_profile, exp.GT(this=b_ts, expression=a_ts))
        query = build.select(exp.column(PROFILE_ID, table="b"), source=then, distinct=True)
        query = query.join(_asof_join(first, on, outer=False), copy=False).where(
            exp.LTE(this=b_ts.copy(), expression=exp.Add(this=a_ts.copy(), expression=span)),
            copy=False,
        )
        return ProfileSet(query)
    observed_until = context.bounds(condition.window).end - within
    observed = exp.LT(this=exp.column(TS), expression=timestamp(observed_until))
    first = _subquery(_step_scan(condition, "a", context, observed), "a")
    then_scan = _step_scan(condition, "b", context).select(
        build.alias(exp.true(), "found"), copy=False
    )
    then = _subquery(then_scan, "b")
    on = build.and_(same_profile, exp.LT(this=a_ts, expression=b_ts))
    found = exp.Coalesce(this=exp.column("found", table="b"), expressions=[exp.false()])
    followed_in_span = build.and_(
        found,
        exp.LTE(this=b_ts.copy(), expression=exp.Add(this=a_ts.copy(), expression=span)),
    )
    query = build.select(exp.column(PROFILE_ID, table="a"), source=first, distinct=True)
    query = query.join(_asof_join(then, on, outer=True), copy=False).where(
        exp.Not(this=exp.Paren(this=followed_in_span)), copy=False
    )
    return ProfileSet(query)


def _without_span(condition: SequenceCondition, context: CompileContext) -> ProfileSet:
    """No span: compare the first A with the last B (followed), or the last A with the last
    B (not followed), per profile: one GROUP BY."""
    first_a = exp.Min(this=_flag_ts("is_a"))
    last_a = exp.Max(this=_flag_ts("is_a"))
    last_b = exp.Max(this=_flag_ts("is_b"))
    if condition.followed:
        having: exp.Expr = exp.LT(this=first_a, expression=last_b)
    else:
        having = build.and_(
            exp.Not(this=exp.Is(this=last_a, expression=exp.Null())),
            build.or_(
                exp.Is(this=last_b.copy(), expression=exp.Null()),
                exp.GTE(this=last_a.copy(), expression=last_b.copy()),
            ),
        )
    flags = exp.Subquery(
        this=_flags(condition, context), alias=exp.TableAlias(this=exp.to_identifier("s"))
    )
    return ProfileSet(build.select(PROFILE_ID, source=flags, group_by=[PROFILE_ID], having=having))
