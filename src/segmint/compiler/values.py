"""Field values and comparisons as SQL (docs/definition-semantics.md §4, §5).

A :class:`Field` knows how to produce, as fresh sqlglot expressions, the text, number,
boolean and date values of one field (a JSON path in a JSON column, or a text column) and
whether it is set. :func:`compare` turns an operator + value into a predicate over a field.
Each value is NULL when the field has no value of that type, so SQL's three-valued logic in
WHERE / HAVING gives "false on a missing value" for every operator except is_set/is_not_set.

User values only ever enter as literals built by sqlglot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from segmint.compiler.build import and_, or_
from segmint.compiler.windows import Bounds, Clock, window_bounds
from segmint.definitions.model import (
    AbsoluteWindow,
    CalendarWindow,
    ComparedValue,
    RelativeWindow,
)
from segmint.definitions.validation import parse_date_value

NUMBER_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?\z"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\z"
DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?Z?\z"
)
MAX_DOUBLE = 1.7976931348623157e308

Expr = exp.Expr


def lit(value: object) -> Expr:
    """A SQL literal for a Python value (text, number, boolean), built by sqlglot."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(repr(float(value)) if isinstance(value, float) else value)
    return exp.Literal.string(str(value))


def number(value: float) -> Expr:
    """A DOUBLE literal (a bare ``19.99`` would be a DECIMAL in some engines)."""
    return exp.cast(exp.Literal.number(repr(float(value))), exp.DataType.Type.DOUBLE, copy=False)


def timestamp(value: dt.datetime) -> Expr:
    """A TIMESTAMP literal for a naive UTC instant."""
    text = exp.Literal.string(value.isoformat(sep=" "))
    return exp.cast(text, exp.DataType.Type.TIMESTAMP, copy=False)


def date(value: dt.date) -> Expr:
    """A DATE literal."""
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE, copy=False)


def regexp(text: Expr, pattern: str) -> Expr:
    """True when ``pattern`` matches somewhere in ``text`` (RE2 semantics)."""
    return exp.RegexpLike(this=text, expression=exp.Literal.string(pattern))


def _case(condition: Expr, then: Expr) -> Expr:
    return exp.Case(ifs=[exp.If(this=condition, true=then)])


@dataclass(frozen=True)
class Field:
    """One compared field. ``raw`` gives the field's text as stored (any JSON type rendered
    as text, NULL when missing or JSON null); ``text`` its text value (JSON strings only)."""

    raw: Callable[[], Expr]
    text: Callable[[], Expr]
    is_json: bool

    def number(self) -> Expr:
        """The number value: JSON numbers and numeric-looking strings, else NULL."""
        raw = self.raw()
        value = exp.TryCast(this=raw.copy(), to=exp.DataType.build(exp.DataType.Type.DOUBLE))
        finite = exp.LTE(this=exp.Abs(this=value.copy()), expression=number(MAX_DOUBLE))
        return _case(and_(regexp(raw, NUMBER_PATTERN), finite), value)

    def boolean_is(self, flag: bool) -> Expr:
        """True when the boolean value is ``flag`` (JSON true/false or "true"/"false")."""
        return exp.EQ(this=self.raw(), expression=lit("true" if flag else "false"))

    def is_set(self) -> Expr:
        """True when the field is present and not null."""
        return exp.Not(this=exp.Is(this=self.raw(), expression=exp.Null()))

    def date_only(self) -> Expr:
        """The date of a ``YYYY-MM-DD`` text value, else NULL."""
        text = self.text()
        parsed = exp.TryCast(this=text.copy(), to=exp.DataType.build(exp.DataType.Type.DATE))
        return _case(regexp(text, DATE_PATTERN), parsed)

    def date_time(self) -> Expr:
        """The UTC instant of a ``YYYY-MM-DDTHH:MM:SS[.f][Z]`` text value, else NULL."""
        text = self.text()
        cleaned = exp.func(
            "REPLACE",
            exp.func("REPLACE", text.copy(), lit("T"), lit(" ")),
            lit("Z"),
            lit(""),
        )
        parsed = exp.TryCast(this=cleaned, to=exp.DataType.build(exp.DataType.Type.TIMESTAMP))
        return _case(regexp(text, DATETIME_PATTERN), parsed)


class Extractions:
    """JSON extractions computed once per row in a projection (``_j0``, ``_j1`` ...) and
    referenced by name in filters and aggregates, instead of re-parsing the JSON document
    for every use. Register uses first, then build the projection with :meth:`columns`."""

    def __init__(self) -> None:
        self._columns: dict[tuple[str, str, str], tuple[str, Expr]] = {}

    def ref(self, key: tuple[str, str, str], build: Callable[[], Expr]) -> Expr:
        """A reference to the projected column computing ``build()`` (added on first use)."""
        if key not in self._columns:
            self._columns[key] = (f"_j{len(self._columns)}", build())
        return exp.column(self._columns[key][0])

    def columns(self) -> list[Expr]:
        """The projection: every registered extraction with its alias."""
        return [exp.alias_(expr, alias) for alias, expr in self._columns.values()]

    def __bool__(self) -> bool:
        return bool(self._columns)


def json_path(path: str) -> exp.JSONPath:
    """The JSON path of a dotted property / trait path."""
    keys = [exp.JSONPathKey(this=key) for key in path.split(".")]
    return exp.JSONPath(expressions=[exp.JSONPathRoot(), *keys])


def json_type(column: str, path: str, extractions: Extractions | None = None) -> Expr:
    """DuckDB's JSON_TYPE name of the value at ``path`` (``VARCHAR``, ``DOUBLE`` ...)."""

    def build() -> Expr:
        return exp.JSONType(this=exp.column(column), expression=json_path(path))

    return extractions.ref((column, path, "type"), build) if extractions is not None else build()


def json_field(column: str, path: str, extractions: Extractions | None = None) -> Field:
    """The field at dotted ``path`` inside JSON ``column``; with ``extractions``, the JSON is
    read once in a projection and the field refers to the projected columns."""

    def build_raw() -> Expr:
        return exp.JSONExtractScalar(this=exp.column(column), expression=json_path(path))

    def raw() -> Expr:
        return (
            extractions.ref((column, path, "raw"), build_raw)
            if extractions is not None
            else build_raw()
        )

    def text() -> Expr:
        is_text = exp.EQ(this=json_type(column, path, extractions), expression=lit("VARCHAR"))
        return _case(is_text, raw())

    return Field(raw=raw, text=text, is_json=True)


def column_field(column: str, table: str | None = None) -> Field:
    """A plain text column; NULL means not set."""

    def raw() -> Expr:
        return exp.column(column, table=table)

    return Field(raw=raw, text=raw, is_json=False)


def compare(
    field: Field, operator: str, value: ComparedValue, *, case_insensitive: bool, clock: Clock
) -> Expr:
    """The predicate ``field operator value`` (docs/definition-semantics.md §5)."""
    if operator == "is_set":
        return field.is_set()
    if operator == "is_not_set":
        return exp.Not(this=field.is_set())
    if operator in ("before", "after", "in_window"):
        return _compare_date(field, operator, value, clock)
    if isinstance(value, bool):
        flag = value if operator == "equals" else not value
        return field.boolean_is(flag)
    if _is_numbers(value):
        return compare_number(field.number(), operator, value)
    return _compare_text(field, operator, value, case_insensitive)


def _is_numbers(value: ComparedValue) -> bool:
    items = value if isinstance(value, list) else [value]
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in items)


def compare_number(number_value: Expr, operator: str, value: ComparedValue) -> Expr:
    """A numeric comparison of ``number_value`` (NULL when there is none) with ``value``."""
    if operator == "between":
        assert isinstance(value, list)
        low, high = float(value[0]), float(value[1])
        return exp.Between(this=number_value, low=number(low), high=number(high))
    if operator in ("in", "not_in"):
        assert isinstance(value, list)
        found = exp.In(this=number_value, expressions=[number(float(v)) for v in value])
        return found if operator == "in" else exp.Not(this=found)
    assert isinstance(value, int | float)
    operand = number(float(value))
    builders: dict[str, type[exp.Binary]] = {
        "equals": exp.EQ,
        "not_equals": exp.NEQ,
        "gt": exp.GT,
        "gte": exp.GTE,
        "lt": exp.LT,
        "lte": exp.LTE,
    }
    return builders[operator](this=number_value, expression=operand)


def _unambiguous(operand: str) -> bool:
    """True when no JSON number, boolean, null, array or object renders as ``operand``, so
    equality on the raw extracted text already implies a JSON string (and skips a type check)."""
    return not (
        operand in ("true", "false", "null")
        or operand[:1] in ("[", "{", "-")
        or operand[:1].isdigit()
    )


def _compare_text(
    field: Field, operator: str, value: ComparedValue, case_insensitive: bool
) -> Expr:
    operands = value if isinstance(value, list) else [value]
    direct = operator in ("equals", "in") and all(
        _unambiguous(str(v).lower() if case_insensitive else str(v)) for v in operands
    )
    text = field.raw() if direct else field.text()
    fold: Callable[[str], str] = str.lower if case_insensitive else str
    if case_insensitive:
        text = exp.Lower(this=text)
    if operator in ("in", "not_in"):
        assert isinstance(value, list)
        found = exp.In(this=text, expressions=[lit(fold(str(v))) for v in value])
        return found if operator == "in" else exp.Not(this=found)
    assert isinstance(value, str)
    operand = lit(fold(value))
    if operator == "equals":
        return exp.EQ(this=text, expression=operand)
    if operator == "not_equals":
        return exp.NEQ(this=text, expression=operand)
    if operator in ("contains", "not_contains"):
        position = exp.GT(this=exp.StrPosition(this=text, substr=operand), expression=lit(0))
        return position if operator == "contains" else exp.Not(this=position)
    if operator == "starts_with":
        return exp.StartsWith(this=text, expression=operand)
    if operator == "ends_with":
        return exp.EndsWith(this=text, expression=operand)
    if operator == "matches_regex":
        return regexp(text, fold(value))
    raise ValueError(f"operator {operator!r} does not compare text")


def _compare_date(field: Field, operator: str, value: ComparedValue, clock: Clock) -> Expr:
    if operator == "in_window":
        assert isinstance(value, RelativeWindow | CalendarWindow | AbsoluteWindow)
        return instant_in(field, window_bounds(value, clock), clock)
    parsed = parse_date_value(value)
    assert parsed is not None, "validated: before/after take a date"
    bound = clock.to_instant(parsed)
    if operator == "before":
        return instant_in(field, Bounds(None, bound), clock)
    # after: strictly later than the bound
    dated = exp.GTE(
        this=field.date_only(), expression=date(clock.first_date_from(bound, strict=True))
    )
    timed = exp.GT(this=field.date_time(), expression=timestamp(bound))
    return or_(dated, timed)


def instant_in(field: Field, bounds: Bounds, clock: Clock) -> Expr:
    """True when the field's date value lies in ``[start, end)``. Dates are compared through
    the range of local dates whose midnight falls inside, so no time zone math runs in SQL."""
    dated: list[Expr] = [
        exp.LT(this=field.date_only(), expression=date(clock.first_date_from(bounds.end)))
    ]
    timed: list[Expr] = [exp.LT(this=field.date_time(), expression=timestamp(bounds.end))]
    if bounds.start is not None:
        dated.append(
            exp.GTE(this=field.date_only(), expression=date(clock.first_date_from(bounds.start)))
        )
        timed.append(exp.GTE(this=field.date_time(), expression=timestamp(bounds.start)))
    return or_(and_(*dated), and_(*timed))
