"""``kind: sequence``: A then B (within a span), or A not followed by B (abandonment).

One scan of events yields, per profile and timestamp, whether an A and / or a B event
happened; window functions over those rows find the latest A before each B (or the next B
after each A). No self-join, no correlated subquery.
"""

from __future__ import annotations

from sqlglot import exp

from segmint.compiler.context import CompileContext
from segmint.compiler.events import filter_predicates, in_window
from segmint.compiler.sets import EVENTS, PROFILE_ID, ProfileSet
from segmint.compiler.values import lit, timestamp
from segmint.definitions.model import SequenceCondition

TS = "timestamp"


def _step(condition: SequenceCondition, which: str, context: CompileContext) -> exp.Expr:
    step = condition.first if which == "a" else condition.then
    named = exp.EQ(this=exp.column("event"), expression=lit(step.event))
    return exp.and_(named, *filter_predicates(step.filters, context))


def _flags(condition: SequenceCondition, context: CompileContext) -> exp.Select:
    """One scan: profile, timestamp, is_a, is_b for events of either step in the window."""
    is_a, is_b = _step(condition, "a", context), _step(condition, "b", context)
    names = sorted({condition.first.event, condition.then.event})
    where = exp.and_(
        exp.In(this=exp.column("event"), expressions=[lit(n) for n in names]),
        *in_window(context.bounds(condition.window)),
    )
    return (
        exp.select(
            PROFILE_ID,
            TS,
            exp.alias_(exp.Coalesce(this=is_a, expressions=[exp.false()]), "is_a"),
            exp.alias_(exp.Coalesce(this=is_b, expressions=[exp.false()]), "is_b"),
        )
        .from_(EVENTS)
        .where(where)
    )


def _instants(condition: SequenceCondition, context: CompileContext) -> exp.Subquery:
    """One row per (profile, timestamp) with whether an A and / or a B event happened then.
    Timestamps being unique per profile, ROWS frames that skip the current row mean exactly
    "strictly before" / "strictly after"."""
    flags = exp.Subquery(
        this=_flags(condition, context), alias=exp.TableAlias(this=exp.to_identifier("s"))
    )
    grouped = (
        exp.select(
            PROFILE_ID,
            TS,
            exp.alias_(exp.func("BOOL_OR", exp.column("is_a")), "has_a"),
            exp.alias_(exp.func("BOOL_OR", exp.column("is_b")), "has_b"),
        )
        .from_(flags)
        .group_by(PROFILE_ID, TS)
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
        return _without_span(condition, context)
    seconds = int(within.total_seconds())
    ts = exp.column(TS)
    if condition.followed:
        last_a = _over(exp.Max(this=_flag_ts("has_a")), following=False)
        ranked = exp.select(PROFILE_ID, TS, "has_b", exp.alias_(last_a, "last_a_before"))
        found = exp.and_(
            exp.column("has_b"),
            exp.LTE(
                this=ts,
                expression=exp.Add(this=exp.column("last_a_before"), expression=_span(seconds)),
            ),
        )
    else:
        next_b = _over(exp.Min(this=_flag_ts("has_b")), following=True)
        ranked = exp.select(PROFILE_ID, TS, "has_a", exp.alias_(next_b, "next_b_after"))
        observed_until = context.bounds(condition.window).end - within
        found = exp.and_(
            exp.column("has_a"),
            exp.LT(this=ts.copy(), expression=timestamp(observed_until)),
            exp.or_(
                exp.Is(this=exp.column("next_b_after"), expression=exp.Null()),
                exp.GT(
                    this=exp.column("next_b_after"),
                    expression=exp.Add(this=ts.copy(), expression=_span(seconds)),
                ),
            ),
        )
    windowed = _subquery(ranked.from_(_instants(condition, context)), "w")
    return ProfileSet(exp.select(PROFILE_ID).distinct().from_(windowed).where(found))


def _without_span(condition: SequenceCondition, context: CompileContext) -> ProfileSet:
    """No span: compare the first A with the last B (followed), or the last A with the last
    B (not followed), per profile: one GROUP BY."""
    first_a = exp.Min(this=_flag_ts("is_a"))
    last_a = exp.Max(this=_flag_ts("is_a"))
    last_b = exp.Max(this=_flag_ts("is_b"))
    if condition.followed:
        having: exp.Expr = exp.LT(this=first_a, expression=last_b)
    else:
        having = exp.and_(
            exp.Not(this=exp.Is(this=last_a, expression=exp.Null())),
            exp.or_(
                exp.Is(this=last_b.copy(), expression=exp.Null()),
                exp.GTE(this=last_a.copy(), expression=last_b.copy()),
            ),
        )
    flags = exp.Subquery(
        this=_flags(condition, context), alias=exp.TableAlias(this=exp.to_identifier("s"))
    )
    return ProfileSet(exp.select(PROFILE_ID).from_(flags).group_by(PROFILE_ID).having(having))
