"""The SQL compiler: a definition becomes one sqlglot query returning member profile ids.

Each condition kind compiles in its own module to a set of ``profile_id``; ``tree`` combines
them with INTERSECT / UNION / EXCEPT. Windows are computed in Python from ``as_of`` and the
workspace time zone and enter as literals, like every user value.
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from segmint.compiler.context import CompileContext
from segmint.compiler.sets import ProfileSet, members
from segmint.compiler.tree import compile_node
from segmint.compiler.windows import Bounds, Clock, window_bounds
from segmint.definitions.model import Definition, Node
from segmint.definitions.validation import AudienceResolver


def compile_definition(
    definition: Definition,
    *,
    as_of: dt.datetime,
    timezone: str,
    dialect: str = "duckdb",
    resolve_audience: AudienceResolver | None = None,
) -> exp.Select:
    """A query selecting ``profile_id`` of every member of ``definition`` at ``as_of``.

    ``as_of`` is an instant (naive means UTC), ``timezone`` the workspace IANA zone;
    ``resolve_audience`` maps audience names used by ``kind: audience`` to definitions.
    The expression is dialect-neutral; ``dialect`` is accepted for symmetry with
    :func:`to_sql`, which renders it."""
    del dialect  # rendering happens in to_sql
    return compile_node_query(
        definition.root, as_of=as_of, timezone=timezone, resolve_audience=resolve_audience
    )


def compile_node_query(
    node: Node,
    *,
    as_of: dt.datetime,
    timezone: str,
    resolve_audience: AudienceResolver | None = None,
) -> exp.Select:
    """Like :func:`compile_definition` for one node of a tree (diagnostics, explain)."""
    context = CompileContext(Clock.create(as_of, timezone), resolve_audience)
    return members(compile_node(node, context))


def to_sql(expression: exp.Expr, dialect: str = "duckdb", *, pretty: bool = False) -> str:
    """Render a compiled query in a sqlglot dialect (``duckdb``, ``clickhouse``, ``spark``)."""
    return expression.sql(dialect=dialect, pretty=pretty)


__all__ = [
    "Bounds",
    "Clock",
    "CompileContext",
    "ProfileSet",
    "compile_definition",
    "compile_node_query",
    "to_sql",
    "window_bounds",
]
