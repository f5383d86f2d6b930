"""The SQL compiler: a definition becomes one sqlglot query returning member profile ids.

Each condition kind compiles in its own module to a set of ``profile_id``; ``tree`` combines
them with INTERSECT / UNION / EXCEPT. Windows are computed in Python from ``as_of`` and the
workspace time zone and enter as literals, like every user value. The query is compiled for
one dialect (DuckDB by default) and may use that engine's own constructs (ASOF joins for
sequences in DuckDB and ClickHouse); ``dialect=None`` gives SQL every dialect runs.
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from segmint.compiler.context import ASOF_DIALECTS, CompileContext
from segmint.compiler.sets import ProfileSet, members
from segmint.compiler.tree import compile_node
from segmint.compiler.windows import Bounds, Clock, window_bounds
from segmint.definitions.model import Definition, Node
from segmint.definitions.validation import AudienceResolver
from segmint.warehouse.dialects import render


def compile_definition(
    definition: Definition,
    *,
    as_of: dt.datetime,
    timezone: str,
    dialect: str | None = "duckdb",
    resolve_audience: AudienceResolver | None = None,
) -> exp.Select:
    """A query selecting ``profile_id`` of every member of ``definition`` at ``as_of``.

    ``as_of`` is an instant (naive means UTC), ``timezone`` the workspace IANA zone;
    ``resolve_audience`` maps audience names used by ``kind: audience`` to definitions.
    ``dialect`` is the sqlglot dialect the query will be rendered in (with :func:`to_sql`):
    where that engine has a faster form of a condition (ASOF joins for sequences in DuckDB
    and ClickHouse) the query uses it, so render it in that dialect only. ``None`` gives
    portable SQL that renders in every supported dialect."""
    return compile_node_query(
        definition.root,
        as_of=as_of,
        timezone=timezone,
        dialect=dialect,
        resolve_audience=resolve_audience,
    )


def compile_node_query(
    node: Node,
    *,
    as_of: dt.datetime,
    timezone: str,
    dialect: str | None = "duckdb",
    resolve_audience: AudienceResolver | None = None,
) -> exp.Select:
    """Like :func:`compile_definition` for one node of a tree (diagnostics, explain)."""
    context = CompileContext(Clock.create(as_of, timezone), resolve_audience, dialect=dialect)
    return members(compile_node(node, context))


def to_sql(expression: exp.Expr, dialect: str = "duckdb", *, pretty: bool = False) -> str:
    """Render a compiled query in a sqlglot dialect (``duckdb``, ``clickhouse``, ``spark``).

    A query compiled for an engine with ASOF joins cannot be rendered for one without:
    that raises ``ValueError`` (compile it with that ``dialect``, or with ``None``)."""
    if dialect not in ASOF_DIALECTS and any(
        _is_asof(join) for join in expression.find_all(exp.Join)
    ):
        raise ValueError(
            f"this query uses an ASOF join, which {dialect} does not have: compile the "
            f"definition with dialect={dialect!r} (or None for portable SQL)"
        )
    return render(expression, dialect, pretty=pretty)


def _is_asof(join: exp.Join) -> bool:
    return "ASOF" in (join.method.upper(), join.kind.upper())


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
