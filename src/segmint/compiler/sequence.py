"""``kind: sequence``: A then B (within a span), or A not followed by B (abandonment).

One scan of events yields the A and B rows; ordering ties so that, at equal timestamps,
B rows sort before A rows makes "strictly before / strictly after" exact with ROWS frames.
"""

from __future__ import annotations

from sqlglot import exp

from segmint.compiler.context import CompileContext
from segmint.compiler.events import filter_predicates, in_window
from segmint.compiler.sets import EVENTS, PROFILE_ID, ProfileSet
from segmint.compiler.values import lit, timestamp
from segmint.definitions.model import SequenceCondition

TS = "timestamp"
B_ROLE, A_ROLE = 1, 2


def _step(condition: SequenceCondition, which: str, context: CompileContext) -> exp.Expression:
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


def _roles(condition: SequenceCondition, context: CompileContext) -> exp.Query:
    """A rows and B rows (an event that is both appears twice), tagged with a role."""
    flags = exp.Subquery(this=_flags(condition, context), alias=exp.TableAlias(this=exp.to_identifier("s")))
    b_rows = exp.select(PROFILE_ID, TS, exp.alias_(lit(B_ROLE), "role")).from_(flags.copy()).where("is_b")
    a_rows = exp.select(PROFILE_ID, TS, exp.alias_(lit(A_ROLE), "role")).from_(flags).where("is_a")
    return exp.union(b_rows, a_rows, distinct=False)


def _role_ts(role: int) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=exp.EQ(this=exp.column("role"), expression=lit(role)), true=exp.column(TS))])


def _over(function: exp.Expression, *, following: bool) -> exp.Window:
    spec = exp.WindowSpec(
        kind="ROWS",
        start="CURRENT ROW" if following else "UNBOUNDED",
        start_side=None if following else "PRECEDING",
        end="UNBOUNDED" if following else "CURRENT ROW",
        end_side="FOLLOWING" if following else None,
    )
    return exp.Window(
        this=function,
        partition_by=[exp.column(PROFILE_ID)],
        order=exp.Order(expressions=[exp.Ordered(this=exp.column(TS)), exp.Ordered(this=exp.column("role"))]),
        spec=spec,
    )


def _span(seconds: int) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(seconds)), unit=exp.var("SECOND"))


def compile_sequence(condition: SequenceCondition, context: CompileContext) -> ProfileSet:
    """Profiles with an A event then a B event (or an A event not followed by B)."""
    within = condition.within.to_timedelta() if condition.within else None
    if within is None:
        return _without_span(condition, context)
    seconds = int(within.total_seconds())
    roles = exp.Subquery(this=_roles(condition, context), alias=exp.TableAlias(this=exp.to_identifier("r")))
    ts = exp.column(TS)
    if condition.followed:
        last_a = _over(exp.Max(this=_role_ts(A_ROLE)), following=False)
        ranked = exp.select(PROFILE_ID, TS, "role", exp.alias_(last_a, "last_a")).from_(roles)
        pairs = exp.Subquery(this=ranked, alias=exp.TableAlias(this=exp.to_identifier("w")))
        found = exp.and_(
            exp.EQ(this=exp.column("role"), expression=lit(B_ROLE)),
            exp.LTE(this=ts, expression=exp.Add(this=exp.column("last_a"), expression=_span(seconds))),
        )
        return ProfileSet(exp.select(PROFILE_ID).distinct().from_(pairs).where(found))
    next_b = _over(exp.Min(this=_role_ts(B_ROLE)), following=True)
    ranked = exp.select(PROFILE_ID, TS, "role", exp.alias_(next_b, "next_b")).from_(roles)
    pairs = exp.Subquery(this=ranked, alias=exp.TableAlias(this=exp.to_identifier("w")))
    observed_until = context.bounds(condition.window).end - within
    found = exp.and_(
        exp.EQ(this=exp.column("role"), expression=lit(A_ROLE)),
        exp.LT(this=ts.copy(), expression=timestamp(observed_until)),
        exp.or_(
            exp.Is(this=exp.column("next_b"), expression=exp.Null()),
            exp.GT(this=exp.column("next_b"), expression=exp.Add(this=ts.copy(), expression=_span(seconds))),
        ),
    )
    return ProfileSet(exp.select(PROFILE_ID).distinct().from_(pairs).where(found))


def _without_span(condition: SequenceCondition, context: CompileContext) -> ProfileSet:
    """No span: compare the first A with the last B (followed), or the last A with the last
    B (not followed), per profile: one GROUP BY."""
    first_a = exp.Min(this=_flag_ts("is_a"))
    last_a = exp.Max(this=_flag_ts("is_a"))
    last_b = exp.Max(this=_flag_ts("is_b"))
    if condition.followed:
        having: exp.Expression = exp.LT(this=first_a, expression=last_b)
    else:
        having = exp.and_(
            exp.Not(this=exp.Is(this=last_a, expression=exp.Null())),
            exp.or_(
                exp.Is(this=last_b.copy(), expression=exp.Null()),
                exp.GTE(this=last_a.copy(), expression=last_b.copy()),
            ),
        )
    flags = exp.Subquery(this=_flags(condition, context), alias=exp.TableAlias(this=exp.to_identifier("s")))
    return ProfileSet(exp.select(PROFILE_ID).from_(flags).group_by(PROFILE_ID).having(having))


def _flag_ts(flag: str) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=exp.column(flag), true=exp.column(TS))])
