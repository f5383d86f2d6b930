"""Query building without sqlglot's parsing and copying.

sqlglot's builders (``exp.select``, ``Select.where``, ``exp.and_`` …) parse a name given as
text, and by default copy the query and each argument on every call: a compile spent more
time there than anywhere else. The compiler builds each tree from nodes made for it, so the
helpers here take names as column / table nodes and use what they are given as it is.

A node given to them becomes part of the new tree. One that is used again elsewhere must be
copied first (``node.copy()``): a node has one parent.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

Part = str | exp.Expr


def column(part: Part) -> exp.Expr:
    """A column node for a name; an expression as it is."""
    return exp.column(part) if isinstance(part, str) else part


def table(part: Part) -> exp.Expr:
    """A table node for a name; an expression (a subquery, a table) as it is."""
    return exp.table_(part) if isinstance(part, str) else part


def select(
    *columns: Part,
    source: Part,
    where: exp.Expr | None = None,
    group_by: Iterable[Part] = (),
    having: exp.Expr | None = None,
    distinct: bool = False,
) -> exp.Select:
    """``SELECT [DISTINCT] columns FROM source [WHERE …] [GROUP BY …] [HAVING …]``."""
    query = exp.Select(expressions=[column(part) for part in columns])
    query = query.from_(table(source), copy=False)
    if distinct:
        query = query.distinct(copy=False)
    if where is not None:
        query = query.where(where, copy=False)
    grouping = [column(part) for part in group_by]
    if grouping:
        query = query.group_by(*grouping, copy=False)
    if having is not None:
        query = query.having(having, copy=False)
    return query


def and_(*parts: exp.Expr) -> exp.Expr:
    """``a AND b AND …`` (connectors among the parts parenthesized)."""
    return exp.and_(*parts, copy=False)


def or_(*parts: exp.Expr) -> exp.Expr:
    """``a OR b OR …`` (connectors among the parts parenthesized)."""
    return exp.or_(*parts, copy=False)


def alias(expression: exp.Expr, name: str) -> exp.Alias:
    """``expression AS name``."""
    return exp.Alias(this=expression, alias=exp.to_identifier(name))
