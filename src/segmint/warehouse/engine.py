"""The small interface every warehouse engine implements (DuckDB now; ClickHouse, Spark later).

Callers hand it SQL in the engine's dialect (a string or a sqlglot expression, rendered with
the engine's dialect) with bound parameters, append Arrow tables in bulk, and read results as
rows or Arrow. Nothing above this layer knows which engine runs underneath.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import pyarrow as pa
from sqlglot import exp

Params = Sequence[Any] | dict[str, Any] | None
SQL = str | exp.Expression


class Engine(Protocol):
    """A warehouse engine. ``dialect`` is the sqlglot dialect name its SQL is written in."""

    dialect: str

    def execute(self, sql: SQL, params: Params = None) -> None:
        """Run a statement that returns nothing of interest."""

    def rows(self, sql: SQL, params: Params = None) -> list[tuple[Any, ...]]:
        """Run a query and return all its rows as tuples."""

    def arrow(self, sql: SQL, params: Params = None) -> pa.Table:
        """Run a query and return its result as an Arrow table."""

    def append(self, table: str, data: pa.Table) -> int:
        """Append rows in bulk (columns matched by name); return the number appended."""

    def transaction(self) -> AbstractContextManager[None]:
        """All statements inside commit together, or none of them does."""

    def close(self) -> None:
        """Release the engine's resources."""


def iter_batches(table: pa.Table, size: int) -> Iterator[pa.Table]:
    """Slice an Arrow table into pieces of at most ``size`` rows."""
    for offset in range(0, table.num_rows, size):
        yield table.slice(offset, size)


def naive_utc(table: pa.Table) -> pa.Table:
    """``table`` with its UTC timestamps naive, as every engine returns them (ClickHouse and
    Spark give them the session's zone, UTC)."""
    schema = pa.schema(
        [
            field.with_type(pa.timestamp(field.type.unit))
            if pa.types.is_timestamp(field.type) and field.type.tz is not None
            else field
            for field in table.schema
        ]
    )
    return table if schema.equals(table.schema) else table.cast(schema)


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of an Arrow table as tuples."""
    columns = [column.to_pylist() for column in table.columns]
    return list(zip(*columns, strict=True)) if columns else []
