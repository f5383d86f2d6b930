"""Rendering SQL for an engine with DuckDB's meaning kept (PRODUCT B7).

Compiled definitions are sqlglot trees whose functions mean what they mean in DuckDB, the
engine the reference evaluator is checked against first. sqlglot translates syntax between
dialects, but a few functions keep their name and change their meaning on the way; those are
rewritten here, before rendering, into the target engine's functions of the same meaning.

ClickHouse:
- ``JSONExtractScalar`` (DuckDB's ``->>``): the value at a path as text — a string unquoted,
  a number or boolean as its JSON text, NULL when missing or JSON ``null``. sqlglot renders
  it as ``JSONExtractString``, which gives ``''`` for every non-string.
- ``JSONType``: DuckDB's type names (``VARCHAR``, ``BIGINT``, ``UBIGINT``, ``DOUBLE``,
  ``BOOLEAN``, ``NULL``, ``ARRAY``, ``OBJECT``), NULL when the path is missing. (A
  non-negative integer is ``UBIGINT`` on DuckDB and ``BIGINT`` here when it fits in 63 bits;
  compiled SQL takes both as numbers. An integer beyond 64 bits is a ``DOUBLE`` on DuckDB
  and, since ClickHouse reads it as a string, a ``VARCHAR`` here.)
- ``TRY_CAST`` to a number, date or timestamp: NULL for text that is not one. ClickHouse's
  ``CAST`` to ``Nullable`` raises on bad text instead, and its lenient parsers roll
  impossible dates over (``2024-02-30`` becomes 1 March): a parsed date counts only when it
  prints back as the text it came from.
- ``LOWER`` and ``SUBSTRING`` work on characters; ClickHouse's work on bytes (``lower``
  leaves ``É`` as it is), its ``lowerUTF8`` and ``substringUTF8`` on characters.
- ``TIMESTAMP`` / ``DATE``: ClickHouse's ``DateTime`` has whole seconds and ``Date`` starts
  in 1970; they become ``DateTime64(6)`` and ``Date32`` (1900-01-01 to 2299-12-31, so a date
  outside those years is not a date on ClickHouse).

Spark (sqlglot renders ``->>`` as ``GET_JSON_OBJECT``, which means the same):
- ``JSONType`` does not exist: the type is read from the value's JSON text, through
  Spark 4's VARIANT type (integers are ``BIGINT``, other numbers ``DOUBLE``).
- ``TRY_CAST`` is rendered as ``CAST`` by sqlglot, which raises on bad text when the session
  is in ANSI mode (Spark 4's default): it stays ``TRY_CAST``.
- Regular expressions are Java's: ``$`` also matches before a final line end and ``.`` stops
  at ``\r`` too; patterns are rewritten to RE2's meaning (``definitions.regex.java_pattern``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from segmint.definitions.regex import java_pattern


def render(expression: exp.Expr, dialect: str, *, pretty: bool = False) -> str:
    """``expression`` as SQL of ``dialect``, with DuckDB's meaning of the functions above."""
    # The rewrites and sqlglot's generator change the tree they work on: one copy for both
    # (the caller's tree stays as it was), where each pass and the generator copied before.
    expression = expression.copy()
    rewrite = _RULES.get(dialect)
    if rewrite is not None:
        expression = _rewritten(expression, rewrite)
    return expression.sql(dialect=dialect, pretty=pretty, copy=False)


def _rewritten(expression: exp.Expr, rewrite: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    """``expression`` (changed in place) with ``rewrite`` applied to every node. A node
    ``rewrite`` replaces (rather than changes) has a new subtree, which the same pass does not
    visit (a TRY_CAST of a JSON value becomes a call holding the JSON node): passes repeat
    until one replaces nothing."""
    replaced = True

    def noting(node: exp.Expr) -> exp.Expr:
        nonlocal replaced
        new = rewrite(node)
        replaced = replaced or new is not node
        return new

    while replaced:
        replaced = False
        expression = expression.transform(noting, copy=False)
    return expression


def statement(sql: str | exp.Expr, params: object, dialect: str, engine: str) -> str:
    """The text of a statement for an engine that takes no bound parameters (ClickHouse,
    Spark): an expression rendered by :func:`render`; parameters are refused."""
    if params:
        raise TypeError(
            f"the {engine} engine takes no bound parameters: build the statement with "
            "sqlglot (values become literals of the statement)"
        )
    return render(sql, dialect) if isinstance(sql, exp.Expr) else sql


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    """``name(args)``, the args taken as they are: a rewrite moves the replaced node's parts
    into its new nodes, and copies a part it uses more than once."""
    return exp.Anonymous(this=name, expressions=list(args))


def _text(value: str) -> exp.Expr:
    return exp.Literal.string(value)


def _json_keys(path: exp.Expr) -> list[exp.Expr]:
    """The keys of a ``$.a.b`` path as ClickHouse's JSON functions take them."""
    if not isinstance(path, exp.JSONPath):
        raise ValueError(f"a JSON path of keys is needed here, not {path.sql()!r}")
    keys: list[exp.Expr] = []
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            continue
        if not isinstance(part, exp.JSONPathKey):
            raise ValueError(f"only keys are supported in JSON paths, not {part!r}")
        keys.append(_text(str(part.this)))
    return keys


def _json_raw(node: exp.JSONExtractScalar | exp.JSONType) -> exp.Expr:
    """The JSON text of the value at the node's path: ``''`` when there is none."""
    return _call("JSONExtractRaw", node.this.copy(), *_json_keys(node.expression))


def _starts(raw: exp.Expr, prefix: str) -> exp.Expr:
    return _call("startsWith", raw.copy(), _text(prefix))


def _json_scalar(node: exp.JSONExtractScalar) -> exp.Expr:
    raw = _json_raw(node)
    missing = exp.Or(
        this=exp.EQ(this=raw.copy(), expression=_text("")),
        expression=exp.EQ(this=raw.copy(), expression=_text("null")),
    )
    string = _call("JSONExtractString", node.this, *_json_keys(node.expression))
    return exp.Case(
        ifs=[
            exp.If(this=missing, true=exp.Null()),
            exp.If(this=_starts(raw, '"'), true=_call("toNullable", string)),
        ],
        default=_call("toNullable", raw),
    )


_FIRST_CHARACTER = (
    ('"', "VARCHAR"),
    ("{", "OBJECT"),
    ("[", "ARRAY"),
    ("t", "BOOLEAN"),
    ("f", "BOOLEAN"),
)


def _type_of_json_text(raw: exp.Expr, numbers: list[exp.If]) -> exp.Expr:
    """DuckDB's type name of the value whose JSON text is ``raw`` (NULL or ``''`` when there
    is none), read from its first character; ``numbers`` name the integer types."""
    return exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=raw.copy(), expression=exp.Null()), true=exp.Null()),
            exp.If(this=exp.EQ(this=raw.copy(), expression=_text("")), true=exp.Null()),
            exp.If(this=exp.EQ(this=raw.copy(), expression=_text("null")), true=_text("NULL")),
            *(
                exp.If(this=_starts(raw, prefix), true=_text(name))
                for prefix, name in _FIRST_CHARACTER
            ),
            *numbers,
        ],
        default=_text("DOUBLE"),
    )


def _json_type(node: exp.JSONType) -> exp.Expr:
    """ClickHouse: the JSON text's first character (its ``JSONType`` calls an integer beyond
    64 bits a string), integers by ``JSONType``."""
    kind = _call("toString", _call("JSONType", node.this, *_json_keys(node.expression)))
    integers = [
        exp.If(this=exp.EQ(this=kind.copy(), expression=_text("Int64")), true=_text("BIGINT")),
        exp.If(this=exp.EQ(this=kind, expression=_text("UInt64")), true=_text("UBIGINT")),
    ]
    return _type_of_json_text(_json_raw(node), integers)


def _spark_json_type(node: exp.JSONType) -> exp.Expr:
    """Spark: the JSON text of the value (through its VARIANT type), integers by pattern."""
    variant = _call("variant_get", _call("try_parse_json", node.this), node.expression)
    raw = _call("to_json", variant)
    integer = exp.RegexpLike(this=raw.copy(), expression=_text("^-?[0-9]+$"))
    return _type_of_json_text(raw, [exp.If(this=integer, true=_text("BIGINT"))])


def _java_regex(node: exp.Expr) -> bool:
    """A regex match whose RE2 pattern has not been made a Java one yet."""
    pattern = node.expression if isinstance(node, exp.RegexpLike) else None
    return (
        isinstance(pattern, exp.Literal)
        and pattern.is_string
        and not pattern.this.startswith(_JAVA_PREFIX)
    )


_JAVA_PREFIX = java_pattern("")


def _spark_rewritten(node: exp.Expr) -> bool:
    """Whether ``_for_spark`` replaces ``node`` (by nodes it leaves alone) or changes it."""
    if isinstance(node, exp.JSONType) or _java_regex(node):
        return True
    return isinstance(node, exp.TryCast) and not node.args.get("safe")


def _for_spark(node: exp.Expr) -> exp.Expr:
    if not _spark_rewritten(node):
        return node
    if isinstance(node, exp.JSONType):
        return _spark_json_type(node)
    if isinstance(node, exp.RegexpLike):
        node.set("expression", _text(java_pattern(node.expression.this)))
    else:
        node.set("safe", True)  # TRY_CAST whether or not the session is in ANSI mode
    return node


def _strict_date(text: exp.Expr) -> exp.Expr:
    """The Date32 of ``YYYY-MM-DD`` text, NULL unless it prints back as that text."""
    parsed = _call("toDate32OrNull", text)
    same = exp.EQ(this=_call("toString", parsed), expression=text.copy())
    return exp.Case(ifs=[exp.If(this=same, true=parsed.copy())])


def _strict_timestamp(text: exp.Expr) -> exp.Expr:
    """The DateTime64(6) of ``YYYY-MM-DD HH:MM:SS[.f]`` text whose date part is a real date
    (the time part's ranges are the caller's to check), else NULL."""
    parsed = _call("toDateTime64OrNull", text, exp.Literal.number(6))
    day = exp.Substring(
        this=text.copy(), start=exp.Literal.number(1), length=exp.Literal.number(10)
    )
    real_day = exp.Not(this=exp.Is(this=_strict_date(day), expression=exp.Null()))
    return exp.Case(ifs=[exp.If(this=real_day, true=parsed)])


_TRIED = (exp.DataType.Type.DOUBLE, exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP)
_CAST = (exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP)


def _try_cast(node: exp.TryCast) -> exp.Expr:
    if node.to.is_type(exp.DataType.Type.DOUBLE):
        return _call("toFloat64OrNull", node.this)
    if node.to.is_type(exp.DataType.Type.DATE):
        return _strict_date(node.this)
    return _strict_timestamp(node.this)


_DATE32 = exp.DataType.build("Date32", dialect="clickhouse")
_DATETIME64 = exp.DataType.build("DateTime64(6)", dialect="clickhouse")


def _cast(node: exp.Cast) -> exp.Expr:
    kind = _DATE32 if node.to.is_type(exp.DataType.Type.DATE) else _DATETIME64
    return exp.cast(node.this, kind.copy(), copy=False, dialect="clickhouse")


def _substring(node: exp.Substring) -> exp.Expr:
    length = node.args.get("length")
    return _call("substringUTF8", node.this, node.args["start"], *([length] if length else []))


def _clickhouse_rewritten(node: exp.Expr) -> bool:
    """Whether ``_for_clickhouse`` replaces ``node`` (by nodes it leaves alone)."""
    if isinstance(node, exp.JSONExtractScalar | exp.JSONType | exp.Lower | exp.Substring):
        return True
    if isinstance(node, exp.TryCast):
        return node.to.is_type(*_TRIED)
    return isinstance(node, exp.Cast) and node.to.is_type(*_CAST)


def _for_clickhouse(node: exp.Expr) -> exp.Expr:
    if not _clickhouse_rewritten(node):
        return node
    if isinstance(node, exp.JSONExtractScalar):
        return _json_scalar(node)
    if isinstance(node, exp.JSONType):
        return _json_type(node)
    if isinstance(node, exp.Lower):
        return _call("lowerUTF8", node.this)
    if isinstance(node, exp.Substring):
        return _substring(node)
    if isinstance(node, exp.TryCast):
        return _try_cast(node)
    assert isinstance(node, exp.Cast)
    return _cast(node)


_RULES: dict[str, Callable[[exp.Expr], exp.Expr]] = {
    "clickhouse": _for_clickhouse,
    "spark": _for_spark,
}
