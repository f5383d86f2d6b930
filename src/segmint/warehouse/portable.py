"""The warehouse tables audience queries read, described for other engines (PRODUCT B7).

Compiled definitions read ``events``, ``profiles`` and the segment events a refresh emits
(``segment_events`` with their refresh's marker in ``audience_refreshes``). Another engine
that answers audience queries (segmint.warehouse.clickhouse, segmint.warehouse.spark) holds
the same tables with the same columns; the columns are read from the DuckDB warehouse's own
schema (its migrations are the one definition of them), so the engines cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import pyarrow as pa
from sqlglot import exp

from segmint.errors import InvalidInput
from segmint.warehouse.dialects import statement
from segmint.warehouse.engine import SQL, Params, naive_utc, rows_of

if TYPE_CHECKING:
    from segmint.warehouse.duckdb import DuckDBEngine
    from segmint.warehouse.engine import Engine

READ_TABLES = ("events", "profiles", "audience_refreshes", "segment_events")
# The view over the last two, shaped like ``events`` rows (each engine writes its own).
SEGMENT_EVENT_ROWS = "segment_event_rows"


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


PARQUET_SUFFIX = ".parquet"


def parquet_files(directory: Path) -> dict[str, Path]:
    """Where an export of READ_TABLES to ``directory`` keeps each table (``events.parquet``
    ...)."""
    return {table: directory / f"{table}{PARQUET_SUFFIX}" for table in READ_TABLES}


def export_read_tables(warehouse: DuckDBEngine, directory: Path) -> dict[str, int]:
    """Write READ_TABLES of ``warehouse`` to Parquet files in ``directory`` (made if need
    be), one per table, from one snapshot of the warehouse; return the rows per table.

    JSON columns are written as text (every engine's JSON functions read text) and
    timestamps as naive UTC microseconds. Each file is written beside its final name and
    renamed when complete, so a file of that name is never half-written; files of an earlier
    export are replaced."""
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"{directory} is a file: name a directory to write the tables in")
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    done: list[tuple[Path, Path]] = []
    try:
        with warehouse.transaction():  # one snapshot: events and profiles agree
            for table, final in parquet_files(directory).items():
                columns = ", ".join(
                    f'"{c.name}"::VARCHAR AS "{c.name}"'
                    if c.duckdb_type == "JSON"
                    else f'"{c.name}"'
                    for c in read_tables()[table]
                )
                part = final.with_name(f".{final.name}.{uuid4().hex}.part")
                done.append((part, final))
                literal = exp.Literal.string(str(part)).sql(dialect="duckdb")
                ((rows,),) = warehouse.rows(
                    f"COPY (SELECT {columns} FROM {table}) TO {literal} (FORMAT parquet)"
                )
                written[table] = int(rows)
        for part, final in done:
            part.replace(final)
    finally:
        for part, _ in done:
            part.unlink(missing_ok=True)
    return written


def require_parquet_files(directory: Path) -> None:
    """Refuse (before anything is loaded) a directory without every table's file."""
    missing = [path.name for path in parquet_files(directory).values() if not path.is_file()]
    if missing:
        raise InvalidInput(
            f"{directory} has no {', '.join(missing)}: write the tables there with "
            "`segmint export DIRECTORY` first"
        )


class SharedServerEngine:
    """What the ClickHouse and Spark engines have in common: statements are literal SQL (no
    bound parameters; expressions rendered with DuckDB's meaning, dialects.render), run one
    at a time, in the engine's own database of a server (chDB) or session (Spark) that every
    engine of the process shares. Subclasses say how to select their database and run a
    statement, and hold the process-wide ``guard``."""

    dialect: str
    label: str  # the engine's name in messages
    guard: AbstractContextManager[Any]
    database: str
    _temporary: bool  # the database is the engine's own, dropped at close
    _drop_database = "DROP DATABASE IF EXISTS `{}`"

    def _use(self) -> None:
        """Make this engine's database the current one (called holding ``guard``)."""
        raise NotImplementedError

    def _run(self, text: str, *, result: bool) -> pa.Table | None:
        """Run one statement (its database current); its rows as Arrow when ``result``."""
        raise NotImplementedError

    def execute(self, sql: SQL, params: Params = None) -> None:
        text = statement(sql, params, self.dialect, self.label)
        with self.guard:
            self._use()
            self._run(text, result=False)

    def arrow(self, sql: SQL, params: Params = None) -> pa.Table:
        text = statement(sql, params, self.dialect, self.label)
        with self.guard:
            self._use()
            table = self._run(text, result=True)
        assert table is not None
        return naive_utc(table)

    def rows(self, sql: SQL, params: Params = None) -> list[tuple[Any, ...]]:
        return rows_of(self.arrow(sql, params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Serializes the statements inside; a failure does not undo those before it (these
        engines have no multi-statement transactions)."""
        with self.guard:
            yield

    def _replace_tables(self, statements: list[str]) -> None:
        """Drop READ_TABLES and the view of segment events, then run ``statements``."""
        self.execute(f"DROP VIEW IF EXISTS `{SEGMENT_EVENT_ROWS}`")
        for table in READ_TABLES:
            self.execute(f"DROP TABLE IF EXISTS `{table}`")
        for created in statements:
            self.execute(created)

    def load_parquet(self, directory: Path) -> dict[str, int]:
        """Replace the rows of READ_TABLES by those of the Parquet files of an export
        (:func:`export_read_tables`) in ``directory``, read by the engine itself (the rows
        do not pass through Python); return the rows loaded per table."""
        require_parquet_files(directory)
        loaded = {}
        with self.guard:
            for table, path in parquet_files(directory).items():
                self.execute(f"TRUNCATE TABLE `{table}`")
                self._load_file(table, path.resolve())
                ((loaded[table],),) = self.rows(f"SELECT count(*) FROM `{table}`")
        return loaded

    def _load_file(self, table: str, path: Path) -> None:
        """Append the rows of the Parquet file ``path`` to ``table``."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop the engine's database when it is its own; the server or session stays for
        the process's other engines."""
        if self._temporary:
            self.execute(self._drop_database.format(self.database))
