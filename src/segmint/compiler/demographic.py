"""``kind: demographic``: country, region, city, language (columns), gender and age (traits).

Age is ``traits.age`` when it is a number, otherwise whole years since ``traits.birthday``
(``YYYY-MM-DD``) on the local date of ``as_of``; the year and month-day of that date enter as
literals, so no date arithmetic runs in SQL.
"""

from __future__ import annotations

from sqlglot import exp

from segmint.compiler.context import CompileContext
from segmint.compiler.sets import ProfileSet, profiles_where
from segmint.compiler.values import column_field, compare, compare_number, json_field, lit
from segmint.definitions.model import DemographicCondition


def age_expression(context: CompileContext) -> exp.Expr:
    """The profile's age as of ``as_of`` (NULL when unknown)."""
    declared = json_field("traits", "age").number()
    birthday = json_field("traits", "birthday")
    text = birthday.text()
    today = context.clock.local_now.date()
    birth_year = exp.cast(
        exp.Substring(this=text.copy(), start=lit(1), length=lit(4)), exp.DataType.Type.INT
    )
    birth_day = exp.Substring(this=text.copy(), start=lit(6), length=lit(5))  # "MM-DD"
    not_yet = exp.Case(
        ifs=[
            exp.If(
                this=exp.GT(this=birth_day, expression=lit(today.strftime("%m-%d"))), true=lit(1)
            )
        ],
        default=lit(0),
    )
    computed = exp.Sub(
        this=exp.Sub(this=lit(today.year), expression=birth_year), expression=not_yet
    )
    valid = exp.Not(this=exp.Is(this=birthday.date_only(), expression=exp.Null()))
    from_birthday = exp.Case(
        ifs=[exp.If(this=valid, true=exp.cast(computed, exp.DataType.Type.DOUBLE))]
    )
    return exp.Coalesce(this=declared, expressions=[from_birthday])


def compile_demographic(condition: DemographicCondition, context: CompileContext) -> ProfileSet:
    """Profiles whose demographic field satisfies the comparison."""
    if condition.field == "age":
        age = age_expression(context)
        if condition.operator in ("is_set", "is_not_set"):
            missing = exp.Is(this=age, expression=exp.Null())
            return profiles_where(
                missing if condition.operator == "is_not_set" else exp.Not(this=missing)
            )
        return profiles_where(compare_number(age, condition.operator, condition.value))
    field = (
        json_field("traits", "gender")
        if condition.field == "gender"
        else column_field(condition.field)
    )
    return profiles_where(
        compare(
            field,
            condition.operator,
            condition.value,
            case_insensitive=condition.case_insensitive,
            clock=context.clock,
        )
    )
