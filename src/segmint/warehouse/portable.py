"""The warehouse tables audience queries read, described for other engines (PRODUCT B7).

Compiled definitions read ``events``, ``profiles`` and the segment events a refresh emits
(``segment_events`` with their refresh's marker in ``audience_refreshes``). Another engine
that answers audience queries (segmint.warehouse.clickhouse, segmint.warehouse.spark) holds
the same tables with the same columns; the columns are read from the DuckDB warehouse's own
schema (its migrations are the one definition of them), so the engines cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segmint.warehouse.engine import Engine

READ_TABLES = ("events", "profiles", "audience_refreshes", "segment_events")


@dataclass(frozen=True)
class Column:
    """One column: its name, its DuckDB type (``VARCHAR``, ``JSON``, ``BIGINT``,
    ``INTEGER``, ``TIMESTAMP``, ``BOOLEAN``) and whether it may be NULL."""

    name: str
    duckdb_type: str
    nullable: bool


@cache
def read_tables() -> dict[str, tuple[Column, ...]]:
    """The columns of each of READ_TABLES, in order, as the warehouse schema creates them."""
    from segmint.warehouse.duckdb import open_warehouse

    engine = open_warehouse(None)
    try:
        return {
            table: tuple(
                Column(name, kind, nullable == "YES")
                for name, kind, nullable, *_ in engine.rows(f"DESCRIBE {table}")
            )
            for table in READ_TABLES
        }
    finally:
        engine.close()


def column_types(table: str, types: dict[str, str]) -> list[tuple[Column, str]]:
    """Each column of ``table`` with its type in another engine (``types`` maps DuckDB's
    type names to that engine's); a type it does not map is a ``ValueError``."""
    columns = read_tables()[table]
    missing = sorted({c.duckdb_type for c in columns} - types.keys())
    if missing:
        raise ValueError(f"no type for DuckDB's {', '.join(missing)} in table {table}")
    return [(column, types[column.duckdb_type]) for column in columns]


def copy_read_tables(source: Engine, target: Engine) -> dict[str, int]:
    """Replace the rows of READ_TABLES in ``target`` by those of ``source`` (a warehouse);
    return the rows copied per table. Each table passes through memory whole, as Arrow: for
    a laptop-sized warehouse, or a sample; at scale, load the engine from Parquet exports."""
    copied = {}
    for table in READ_TABLES:
        target.execute(f"TRUNCATE TABLE {table}")
        copied[table] = target.append(table, source.arrow(f"SELECT * FROM {table}"))
    return copied
