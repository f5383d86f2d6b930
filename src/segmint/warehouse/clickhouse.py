"""ClickHouse engine for audience evaluation (PRODUCT B7): the tables audience queries read,
in ClickHouse's types, and an engine that runs compiled definitions on them.

Embedded through chDB (ClickHouse built as a library, ``pip install 'segmint[clickhouse]'``):
the same SQL engine a ClickHouse server runs, in this process. Collection, refreshes and sync
stay on the DuckDB warehouse; this engine answers audience queries over events and profiles
loaded into it (``append`` takes Arrow tables shaped like the DuckDB warehouse's).

Every session gets standard SQL's meanings (``SETTINGS``): an outer join fills unmatched
columns with NULL rather than the type's default (``join_use_nulls``; compiled sequences do
not depend on it, SQL written by hand against these tables may), a bare ``UNION`` means
``UNION DISTINCT``, text becomes a timestamp in UTC whatever the machine's time zone, and a
query may be longer and larger than ClickHouse's defaults allow (``max_query_size``,
``max_ast_elements``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from uuid import uuid4

import pyarrow as pa
from sqlglot import exp

from segmint.errors import SegmintError
from segmint.warehouse.portable import READ_TABLES, SharedServerEngine, column_types, read_tables

# Session settings giving standard SQL's meanings (see the module's docstring).
SETTINGS = {
    "join_use_nulls": 1,
    "union_default_mode": "'DISTINCT'",
    # Timestamps are naive UTC, as in the DuckDB warehouse, whatever the machine's zone.
    "session_timezone": "'UTC'",
    # A definition with many conditions compiles to a long query, longer on ClickHouse,
    # where JSON values and strict casts are spelled out (warehouse.dialects): by default
    # ClickHouse refuses to parse a query over 256 KiB or of more than 50,000 syntax tree
    # elements (80 conditions with property filters make ~53 KB).
    "max_query_size": 64 * 1024 * 1024,
    "max_ast_elements": 5_000_000,
    "max_expanded_ast_elements": 50_000_000,
}

# ClickHouse's type for each DuckDB type of the read tables (JSON is text, which ClickHouse's
# JSON functions read; timestamps are naive UTC with microseconds, as in DuckDB).
TYPES = {
    "VARCHAR": "String",
    "JSON": "String",
    "BIGINT": "Int64",
    "INTEGER": "Int32",
    "TIMESTAMP": "DateTime64(6)",
    "BOOLEAN": "Bool",
}
# Sort keys: events are read by name, then profile and time.
_ORDER = {
    "events": "(event, profile_id, timestamp)",
    "profiles": "profile_id",
    "audience_refreshes": "refresh_id",
    "segment_events": "(refresh_seq, profile_id)",
}


def _definitions(table: str) -> list[str]:
    """Each column of ``table`` as ClickHouse defines it (name, type, nullability)."""
    return [
        f"`{column.name}` " + (f"Nullable({kind})" if column.nullable else kind)
        for column, kind in column_types(table, TYPES)
    ]


def create_statements() -> list[str]:
    """The statements creating READ_TABLES and the view of segment events as event rows."""
    statements = []
    for table in READ_TABLES:
        columns = ",\n    ".join(_definitions(table))
        engine = f"ENGINE = MergeTree ORDER BY {_ORDER[table]}"
        statements.append(f"CREATE TABLE `{table}` (\n    {columns}\n) {engine}")
    return [*statements, SEGMENT_EVENT_ROWS]


# The segment events shaped like ``events`` rows, as the DuckDB warehouse's view of the same
# name (properties: the audience id as a JSON number, its name, the refresh id).
SEGMENT_EVENT_ROWS = """
CREATE VIEW segment_event_rows AS
SELECT concat(r.refresh_id, ':', toString(s.profile_id), ':',
              if(s.added, 'added', 'removed')) AS message_id,
       s.profile_id AS profile_id,
       'track' AS type,
       if(s.added, 'added_to_segment', 'removed_from_segment') AS event,
       r.as_of AS `timestamp`,
       r.committed_at AS received_at,
       concat('{"audience_id":', toString(r.audience_id),
              ',"audience_name":', if(isNull(r.audience_name), 'null',
                                      toJSONString(assumeNotNull(r.audience_name))),
              ',"refresh_id":', toJSONString(r.refresh_id), '}') AS properties,
       'segmint' AS source
FROM segment_events AS s
INNER JOIN audience_refreshes AS r ON r.seq = s.refresh_seq
"""


class ClickHouseUnavailable(SegmintError):
    """chDB is not installed, or this process's ClickHouse cannot open the data asked for."""


# chDB runs one ClickHouse server per process, which every session shares (tables made in
# one are seen by all): each engine works in a database of its own, selected before each of
# its statements under this lock.
_SERVER = threading.RLock()


class ChDBEngine(SharedServerEngine):
    """Embedded ClickHouse (chDB) holding the tables audience queries read (READ_TABLES).

    ``path`` is a directory for the data, kept between runs, with the tables in ``database``
    (``segmint`` by default); without a path the data is in a temporary directory and in a
    database of the engine's own, dropped at ``close``. ClickHouse has no multi-statement
    transactions: ``transaction`` only serializes the statements inside it, and a failure does
    not undo the ones before it."""

    dialect = "clickhouse"
    label = "ClickHouse"
    guard = _SERVER

    def __init__(self, path: str | Path | None = None, *, database: str | None = None) -> None:
        try:
            from chdb import session
        except ImportError:  # pragma: no cover - depends on the installation
            raise ClickHouseUnavailable(
                "the ClickHouse engine needs chDB: pip install 'segmint[clickhouse]'"
            ) from None
        self.path = path
        self._temporary = database is None and path is None
        self.database = database or ("segmint" if path is not None else f"segmint_{uuid4().hex}")
        with _SERVER:
            try:
                self._session = session.Session(str(path) if path is not None else None)
            except RuntimeError as exc:
                if "already initialized" not in str(exc):
                    raise
                raise ClickHouseUnavailable(
                    "chDB runs one ClickHouse per process, and this process's keeps its data "
                    "elsewhere: open every engine of a process on the same path (or none), or "
                    f"use another process for {path or 'temporary data'}"
                ) from None
            for name, value in SETTINGS.items():
                self._session.query(f"SET {name} = {value}")
            self._session.query(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")

    @classmethod
    def with_tables(
        cls, path: str | Path | None = None, *, database: str | None = None
    ) -> ChDBEngine:
        """An engine with the tables audience queries read (READ_TABLES), created empty
        (tables of the same names in its database are replaced)."""
        engine = cls(path, database=database)
        engine._replace_tables(create_statements())
        return engine

    def _use(self) -> None:
        self._session.query(f"USE `{self.database}`")

    def _run(self, text: str, *, result: bool) -> pa.Table | None:
        if not result:
            self._session.query(text)
            return None
        table: pa.Table = self._session.query(text, "ArrowTable")
        return table

    def _load_file(self, table: str, path: Path) -> None:
        """Append a Parquet file's rows, read by ClickHouse's ``file`` function with the
        table's own column types (a JSON column is read as the text it was written as)."""
        names = ", ".join(f"`{column.name}`" for column in read_tables()[table])
        source, structure = (
            exp.Literal.string(text).sql(dialect="clickhouse")
            for text in (str(path), ", ".join(_definitions(table)))
        )
        self.execute(
            f"INSERT INTO `{table}` ({names}) SELECT {names} "
            f"FROM file({source}, Parquet, {structure})"
        )

    def append(self, table: str, data: pa.Table) -> int:
        if not data.num_rows:
            return 0
        names = ", ".join(f"`{name}`" for name in data.column_names)
        with _SERVER:
            self._use()
            # chDB's Python() table function reads the Arrow table held in this frame.
            source = data  # noqa: F841 - named in the statement below
            self._session.query(
                f"INSERT INTO `{table}` ({names}) SELECT {names} FROM Python(source)"
            )
        return data.num_rows
