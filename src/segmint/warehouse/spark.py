"""Spark engine for audience evaluation (PRODUCT B7): the tables audience queries read, in
Spark SQL's types, and an engine that runs compiled definitions on them.

``pip install 'segmint[spark]'`` (PySpark 4, which needs Java 17 or newer). Give it a
``SparkSession`` (a cluster's; its session time zone is set to UTC, as compiled SQL's instants
are), or it uses a local one: two cores, no web UI, tables as Parquet under a temporary
directory. As with ClickHouse, collection, refreshes and
sync stay on the DuckDB warehouse; this engine answers audience queries over events and
profiles loaded into it (``append`` takes Arrow tables shaped like the DuckDB warehouse's).

Compiled SQL relies on standard SQL NULLs and on ``TRY_CAST`` (SQL rendered for Spark by
segmint.warehouse.dialects uses it), so the session's ANSI mode may be on or off.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any
from uuid import uuid4

import pyarrow as pa

from segmint.errors import SegmintError
from segmint.warehouse.portable import READ_TABLES, SharedServerEngine, column_types

# Spark SQL's type for each DuckDB type of the read tables (JSON is text, which Spark's JSON
# functions read). Every column may be NULL: Parquet tables would refuse rows appended
# without a column the DuckDB warehouse fills by default.
TYPES = {
    "VARCHAR": "STRING",
    "JSON": "STRING",
    "BIGINT": "BIGINT",
    "INTEGER": "INT",
    "TIMESTAMP": "TIMESTAMP",
    "BOOLEAN": "BOOLEAN",
}

# The segment events shaped like ``events`` rows, as the DuckDB warehouse's view of the same
# name (properties: the audience id as a JSON number, its name, the refresh id).
SEGMENT_EVENT_ROWS = """
CREATE VIEW segment_event_rows AS
SELECT concat(r.refresh_id, ':', CAST(s.profile_id AS STRING), ':',
              CASE WHEN s.added THEN 'added' ELSE 'removed' END) AS message_id,
       s.profile_id AS profile_id,
       'track' AS type,
       CASE WHEN s.added THEN 'added_to_segment' ELSE 'removed_from_segment' END AS event,
       r.as_of AS `timestamp`,
       r.committed_at AS received_at,
       to_json(named_struct('audience_id', r.audience_id, 'audience_name', r.audience_name,
                            'refresh_id', r.refresh_id)) AS properties,
       'segmint' AS source
FROM segment_events AS s
JOIN audience_refreshes AS r ON r.seq = s.refresh_seq
"""


class SparkUnavailable(SegmintError):
    """PySpark (or the Java it needs) is not installed."""


def create_statements() -> list[str]:
    """The statements creating READ_TABLES (Parquet) and the view of segment events."""
    statements = []
    for table in READ_TABLES:
        columns = ", ".join(
            f"`{column.name}` {kind}" for column, kind in column_types(table, TYPES)
        )
        statements.append(f"CREATE TABLE `{table}` ({columns}) USING parquet")
    return [*statements, SEGMENT_EVENT_ROWS]


# A process has one SparkSession (``getOrCreate``), which every engine in it shares: each
# engine works in a database of its own, made current before each of its statements under
# this lock (the current database belongs to the session).
_SESSION = threading.RLock()
_LOCAL: dict[str, Any] = {}  # the local session this module started, and its directory


def local_session() -> Any:
    """The process's local SparkSession (two cores, no web UI, tables under a temporary
    directory), started on first use and stopped when the process exits."""
    with _SESSION:
        if "session" not in _LOCAL:
            try:
                from pyspark.sql import SparkSession
            except ImportError:  # pragma: no cover - depends on the installation
                raise SparkUnavailable(
                    "the Spark engine needs PySpark: pip install 'segmint[spark]' (and Java 17+)"
                ) from None
            directory = tempfile.mkdtemp(prefix="segmint-spark-")
            try:
                session = (
                    SparkSession.builder.master("local[2]")
                    .appName("segmint")
                    .config("spark.ui.enabled", "false")
                    .config("spark.sql.shuffle.partitions", "2")
                    .config("spark.sql.warehouse.dir", directory)
                    .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={directory}")
                    .getOrCreate()
                )
            except Exception as exc:  # PySpark's own errors when Java cannot start
                shutil.rmtree(directory, ignore_errors=True)
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise SparkUnavailable(
                    f"could not start a local Spark ({first_line or type(exc).__name__}): "
                    "it needs Java 17 or newer on the PATH or in JAVA_HOME"
                ) from None
            session.sparkContext.setLogLevel("ERROR")
            _LOCAL.update(session=session, directory=directory)
            atexit.register(_stop_local)
        return _LOCAL["session"]


def _stop_local() -> None:
    with _SESSION:
        if "session" in _LOCAL:
            _LOCAL.pop("session").stop()
            shutil.rmtree(_LOCAL.pop("directory"), ignore_errors=True)


class SparkEngine(SharedServerEngine):
    """Spark SQL holding the tables audience queries read (READ_TABLES).

    Given a ``session`` (a cluster's), the tables are in ``database`` (``segmint`` by
    default); without one, the engine uses the process's local session and a database of
    its own, dropped at ``close``. Spark has no multi-statement transactions:
    ``transaction`` only serializes the statements inside it, and a failure does not undo
    the ones before it."""

    dialect = "spark"
    label = "Spark"
    guard = _SESSION
    _drop_database = "DROP DATABASE IF EXISTS `{}` CASCADE"

    def __init__(self, session: Any = None, *, database: str | None = None) -> None:
        self._temporary = session is None and database is None
        self._spark = session if session is not None else local_session()
        self.database = database or ("segmint" if session is not None else _own_name())
        with _SESSION:
            # Compiled SQL's instants are UTC; so must be the session's reading of timestamps.
            self._spark.conf.set("spark.sql.session.timeZone", "UTC")
            self._spark.sql(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")

    @classmethod
    def with_tables(cls, session: Any = None, *, database: str | None = None) -> SparkEngine:
        """An engine with the tables audience queries read (READ_TABLES), created empty
        (tables of the same names in its database are replaced)."""
        engine = cls(session, database=database)
        engine._replace_tables(create_statements())
        return engine

    def _use(self) -> None:
        self._spark.catalog.setCurrentDatabase(self.database)

    def _run(self, text: str, *, result: bool) -> pa.Table | None:
        frame = self._spark.sql(text)
        if not result:
            frame.collect()
            return None
        table: pa.Table = frame.toArrow()
        return table

    def append(self, table: str, data: pa.Table) -> int:
        """Append rows (columns matched by name; a column ``data`` lacks is NULL)."""
        if not data.num_rows:
            return 0
        with _SESSION:
            self._use()
            self._insert(table, self._spark.createDataFrame(data))
        return data.num_rows

    def _load_file(self, table: str, path: Path) -> None:
        """Append a Parquet file's rows, read by Spark (on a cluster, ``path`` must be
        where every executor can read it)."""
        with _SESSION:
            self._use()
            self._insert(table, self._spark.read.parquet(str(path)))

    def _insert(self, table: str, frame: Any) -> None:
        """Insert a data frame's rows (columns matched by name and cast to the table's
        types; a column the frame lacks is NULL)."""
        from pyspark.sql import functions

        target = self._spark.table(table).schema
        present = set(frame.columns)
        frame = frame.select(
            *(
                (functions.col(f"`{field.name}`") if field.name in present else functions.lit(None))
                .cast(field.dataType)
                .alias(field.name)
                for field in target.fields
            )
        )
        frame.write.insertInto(table)


def _own_name() -> str:
    return f"segmint_{uuid4().hex}"
