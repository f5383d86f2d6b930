"""``kind: aggregate``: sum / avg / min / max / count distinct of an event property."""

from __future__ import annotations

from sqlglot import exp

from segmint.compiler.context import CompileContext
from segmint.compiler.events import by_profile, matching_events
from segmint.compiler.sets import ProfileSet, profile_bound
from segmint.compiler.values import Extractions, compare_number, json_field, json_type
from segmint.definitions.model import AggregateCondition, ComparedValue

# JSON_TYPE names of JSON numbers (DuckDB).
NUMBER_TYPES = ("BIGINT", "UBIGINT", "DOUBLE", "HUGEINT")


def _aggregate(condition: AggregateCondition, extractions: Extractions) -> exp.Expr:
    field = json_field("properties", condition.property, extractions)
    if condition.function == "count_distinct":
        is_number = exp.In(
            this=json_type("properties", condition.property, extractions),
            expressions=[exp.Literal.string(t) for t in NUMBER_TYPES],
        )
        numbers = exp.Case(ifs=[exp.If(this=is_number, true=field.number())])
        texts = exp.Count(this=exp.Distinct(expressions=[field.text()]))
        return exp.Add(this=texts, expression=exp.Count(this=exp.Distinct(expressions=[numbers])))
    functions: dict[str, type[exp.AggFunc]] = {
        "sum": exp.Sum,
        "avg": exp.Avg,
        "min": exp.Min,
        "max": exp.Max,
    }
    value = functions[condition.function](this=field.number())
    if condition.function == "sum":  # the sum of nothing is 0
        zero = exp.cast(exp.Literal.number(0), exp.DataType.Type.DOUBLE, copy=False)
        return exp.Coalesce(this=value, expressions=[zero])
    return value


def _zero_matches(condition: AggregateCondition) -> bool:
    """Does the aggregate of no events (0 for sum and count_distinct) meet the comparison?"""
    if condition.function not in ("sum", "count_distinct"):
        return False  # avg / min / max of nothing has no value
    value = condition.value
    if condition.operator == "between":
        assert isinstance(value, list)
        return value[0] <= 0 <= value[1]
    assert not isinstance(value, list)
    return {
        "equals": value == 0,
        "not_equals": value != 0,
        "gt": value < 0,
        "gte": value <= 0,
        "lt": value > 0,
        "lte": value >= 0,
    }[condition.operator]


def compile_aggregate(condition: AggregateCondition, context: CompileContext) -> ProfileSet:
    """Profiles whose aggregate over the matching events meets the comparison; when the empty
    aggregate meets it, the complement of the profiles whose aggregate fails it."""
    bounds = context.bounds(condition.window)
    extractions = Extractions()
    aggregate = _aggregate(condition, extractions)  # registers its extractions first
    matches = matching_events(condition.event, condition.filters, bounds, context, extractions)
    value: ComparedValue = (
        list(condition.value) if isinstance(condition.value, list) else condition.value
    )
    holds = compare_number(aggregate, condition.operator, value)
    if _zero_matches(condition):
        # NOT(holds) is never NULL here: sum and count_distinct always have a value.
        failing = by_profile(matches, exp.Not(this=exp.Paren(this=holds)))
        return ProfileSet(failing, complement=True)
    return ProfileSet(by_profile(matches, holds), within_universe=profile_bound(condition.event))
