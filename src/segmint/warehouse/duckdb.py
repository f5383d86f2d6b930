"""DuckDB engine: the default warehouse, one file on disk (or in memory for tests)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from segmint.errors import ConfigurationError, NoWarehouse, WarehouseBusy
from segmint.warehouse.engine import SQL, Params
from segmint.warehouse.schema import LATEST_VERSION, migrate, recorded_version

log = logging.getLogger(__name__)


class DuckDBEngine:
    """One DuckDB database shared by the threads of one process (one process owns a warehouse
    file for writing at a time).

    Writes (``execute``, ``append``, transactions) go through one connection behind a
    re-entrant lock, one writer at a time. Reads (``rows``, ``arrow``) from a thread that is
    not inside its own transaction use that thread's own cursor instead: they read the last
    committed state and never wait for a writer, so a long refresh or import does not hold up
    the pages and APIs that only read. Inside a transaction, reads use the writing connection
    (they see the transaction's own writes and temporary tables)."""

    dialect = "duckdb"

    def __init__(self, connection: duckdb.DuckDBPyConnection, *, path: str) -> None:
        self._con = connection
        self._lock = threading.RLock()
        self._depth = 0
        self._writer: int | None = None  # the thread inside a transaction, if any
        self._local = threading.local()
        # Readers' cursors are made from a connection of their own, so making one never
        # waits for the writer's lock.
        self._factory = connection.cursor()
        self._factory_lock = threading.Lock()
        self._cursors: dict[int, duckdb.DuckDBPyConnection] = {}  # by thread id
        self.path = path

    def _sql(self, sql: SQL) -> str:
        return sql.sql(dialect=self.dialect) if isinstance(sql, exp.Expression) else sql

    def _reader(self) -> duckdb.DuckDBPyConnection | None:
        """This thread's own cursor for a read, or None when the read must go through the
        writing connection (this thread is inside a transaction)."""
        if self._writer == threading.get_ident():
            return None
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            threading.current_thread()  # so a thread not started by `threading` is listed too
            with self._factory_lock:
                self._close_cursors_of_ended_threads()
                cursor = self._factory.cursor()
                self._cursors[threading.get_ident()] = cursor
            self._local.cursor = cursor
        return cursor

    def _close_cursors_of_ended_threads(self) -> None:
        """Close the cursors of threads that have ended (and any earlier cursor under this
        thread's id, which a new thread may reuse)."""
        alive = {thread.ident for thread in threading.enumerate()} - {threading.get_ident()}
        for ident in [i for i in self._cursors if i not in alive]:
            self._cursors.pop(ident).close()

    def execute(self, sql: SQL, params: Params = None) -> None:
        with self._lock:
            self._con.execute(self._sql(sql), params)

    @contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection a read goes through: this thread's cursor, or (inside this thread's
        transaction) the writing connection, under its lock."""
        reader = self._reader()
        if reader is not None:
            yield reader
            return
        with self._lock:
            yield self._con

    def rows(self, sql: SQL, params: Params = None) -> list[tuple[Any, ...]]:
        with self._reading() as con:
            return con.execute(self._sql(sql), params).fetchall()

    def arrow(self, sql: SQL, params: Params = None) -> pa.Table:
        with self._reading() as con:
            return con.sql(self._sql(sql), params=params).to_arrow_table()

    def rows_with(self, sql: SQL, name: str, data: pa.Table) -> list[tuple[Any, ...]]:
        """:meth:`rows` of a query that reads the Arrow table ``data`` under ``name`` (DuckDB
        only: it is registered on the connection the read uses, for this query)."""
        with self._reading() as con:
            con.register(name, data)
            try:
                return con.execute(self._sql(sql)).fetchall()
            finally:
                con.unregister(name)

    def append(self, table: str, data: pa.Table) -> int:
        if data.num_rows == 0:
            return 0
        columns = ", ".join(f'"{name}"' for name in data.column_names)
        with self._lock:
            self._con.register("_segmint_append", data)
            try:
                self._con.execute(
                    f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM _segmint_append'
                )
            finally:
                self._con.unregister("_segmint_append")
        return data.num_rows

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:  # nested: the outer transaction decides
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._con.execute("BEGIN TRANSACTION")
            self._depth = 1
            self._writer = threading.get_ident()
            try:
                yield
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")
            finally:
                self._depth = 0
                self._writer = None

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The raw connection, for code that needs DuckDB specifics (benchmarks, tests)."""
        return self._con

    def close(self) -> None:
        with self._lock, self._factory_lock:
            for cursor in self._cursors.values():
                cursor.close()
            self._cursors.clear()
            self._factory.close()
            self._con.close()


# How much the write-ahead log may hold before DuckDB checkpoints (writes its tables and
# indexes to the file). Its default, 16 MB, checkpoints after nearly every commit of a bulk
# import or of the collection writer, and a checkpoint rewrites indexes that grow with the
# warehouse: on 1,000,000 imported events, commits cost 18 µs per event at 16 MB and 8 µs
# at 1 GB (final checkpoint included). Committed data is as durable either way (the log is
# synced at each commit); a larger log takes longer to replay after a crash, and what it
# holds is also kept in memory until the checkpoint.
CHECKPOINT_THRESHOLD = "1GB"


def open_warehouse(path: Path | str | None, *, read_only: bool = False) -> DuckDBEngine:
    """Open (creating and upgrading when writable) the warehouse at ``path``; ``None`` or
    ``":memory:"`` gives a private in-memory warehouse. A warehouse opened read-only whose
    schema is older than this Segmint is first upgraded (opened for writing once), so reading
    commands work on it too."""
    target = ":memory:" if path in (None, ":memory:") else str(path)
    if target != ":memory:":
        if read_only and not Path(target).is_file():
            raise NoWarehouse(
                f"there is no warehouse at {target} yet: load events first (`segmint "
                "generate`, `segmint import FILE`, or send them to `segmint serve`), or set "
                "SEGMINT_DATA_DIR to the folder of the warehouse you mean"
            )
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    engine = DuckDBEngine(_connect(target, read_only), path=target)
    if not read_only:
        engine.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        migrate(engine)
    elif target != ":memory:" and recorded_version(engine) != LATEST_VERSION:
        engine.close()
        log.info("upgrading the warehouse schema of %s before reading it", target)
        open_warehouse(target).close()
        engine = DuckDBEngine(_connect(target, read_only), path=target)
    return engine


def _connect(target: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(target, read_only=read_only)
    except duckdb.Error as exc:  # IO errors, and files of another DuckDB version
        if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
            instead = (
                "or ask the server: its web UI, or its REST API (/api/v1/audiences/preview, ...)"
                if read_only
                else "or send the data to the server's API instead"
            )
            raise WarehouseBusy(
                f"the warehouse {target} is in use by another Segmint process (usually "
                f"`segmint serve`), which holds it alone; stop it, {instead}"
            ) from exc
        reason = str(exc).strip().splitlines()[0]
        raise ConfigurationError(
            f"cannot open the warehouse {target}: {reason}. If the file is damaged or not "
            "Segmint's, move it aside (a new warehouse is made where it was) or set "
            "SEGMINT_WAREHOUSE_PATH to the right file"
        ) from None
