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

from segmint.errors import WarehouseBusy
from segmint.warehouse.engine import SQL, Params
from segmint.warehouse.schema import LATEST_VERSION, migrate, recorded_version

log = logging.getLogger(__name__)


class DuckDBEngine:
    """One DuckDB connection guarded by a re-entrant lock, so one process can share it between
    the HTTP server's threads. One process owns a warehouse file for writing at a time."""

    dialect = "duckdb"

    def __init__(self, connection: duckdb.DuckDBPyConnection, *, path: str) -> None:
        self._con = connection
        self._lock = threading.RLock()
        self._depth = 0
        self.path = path

    def _sql(self, sql: SQL) -> str:
        return sql.sql(dialect=self.dialect) if isinstance(sql, exp.Expression) else sql

    def execute(self, sql: SQL, params: Params = None) -> None:
        with self._lock:
            self._con.execute(self._sql(sql), params)

    def rows(self, sql: SQL, params: Params = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(self._sql(sql), params).fetchall()

    def arrow(self, sql: SQL, params: Params = None) -> pa.Table:
        with self._lock:
            return self._con.sql(self._sql(sql), params=params).to_arrow_table()

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
            try:
                yield
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")
            finally:
                self._depth = 0

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The raw connection, for code that needs DuckDB specifics (benchmarks, tests)."""
        return self._con

    def close(self) -> None:
        with self._lock:
            self._con.close()


def open_warehouse(path: Path | str | None, *, read_only: bool = False) -> DuckDBEngine:
    """Open (creating and upgrading when writable) the warehouse at ``path``; ``None`` or
    ``":memory:"`` gives a private in-memory warehouse. A warehouse opened read-only whose
    schema is older than this Segmint is first upgraded (opened for writing once), so reading
    commands work on it too."""
    target = ":memory:" if path in (None, ":memory:") else str(path)
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    engine = DuckDBEngine(_connect(target, read_only), path=target)
    if not read_only:
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
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(
                f"the warehouse {target} is in use by another Segmint process (usually "
                "`segmint serve`); stop it, or send the data to the server's API instead"
            ) from exc
        raise
