"""ClickHouse engine for audience evaluation (PRODUCT B7): the tables audience queries read,
in ClickHouse's types, and an engine that runs compiled definitions on them.

Embedded through chDB (ClickHouse built as a library, ``pip install 'segmint[clickhouse]'``):
the same SQL engine a ClickHouse server runs, in this process. Collection, refreshes and sync
stay on the DuckDB warehouse; this engine answers audience queries over events and profiles
loaded into it (``append`` takes Arrow tables shaped like the DuckDB warehouse's).

Compiled SQL relies on standard SQL NULLs; ClickHouse needs two settings for that, applied to
every session (``SETTINGS``): an outer join fills unmatched columns with NULL rather than
the type's default (``join_use_nulls``), and a bare ``UNION`` means ``UNION DISTINCT``; text
becomes a timestamp in UTC whatever the machine's time zone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from segmint.errors import SegmintError
from segmint.warehouse.engine import SQL, Params
from segmint.warehouse.schema import (
    CLICK_ID_COLUMNS,
    COOKIE_COLUMNS,
    GEO_COLUMNS,
    TECH_COLUMNS,
    UTM_COLUMNS,
)

# Session settings the compiled SQL's meaning depends on (see the module's docstring).
SETTINGS = {
    "join_use_nulls": 1,
    "union_default_mode": "'DISTINCT'",
    # Timestamps are naive UTC, as in the DuckDB warehouse, whatever the machine's zone.
    "session_timezone": "'UTC'",
}

_TEXT = "Nullable(String)"
_TIME = "DateTime64(6)"

_ENRICHED = (
    *UTM_COLUMNS,
    *CLICK_ID_COLUMNS,
    *COOKIE_COLUMNS,
    "page_url",
    "page_path",
    "referrer",
    "ip",
    "user_agent",
    *TECH_COLUMNS,
    "locale",
    "language",
    *GEO_COLUMNS,
    "timezone",
)

_PROFILE_LATEST = (
    *(f"first_{c}" for c in UTM_COLUMNS),
    *(f"last_{c}" for c in UTM_COLUMNS),
    *CLICK_ID_COLUMNS,
    *COOKIE_COLUMNS,
    *TECH_COLUMNS,
    "locale",
    "language",
    *GEO_COLUMNS,
    "timezone",
    "device_id",
    "advertising_id",
)


def _columns(*pairs: tuple[str, str]) -> str:
    return ",\n    ".join(f"`{name}` {kind}" for name, kind in pairs)


# JSON columns are text (ClickHouse's JSON functions read String); timestamps are naive UTC
# with microseconds, as in DuckDB.
TABLES = (
    f"""
CREATE TABLE events (
    {
        _columns(
            ("message_id", "String"),
            ("profile_id", "Int64"),
            ("type", "String"),
            ("event", "String"),
            ("name", _TEXT),
            ("user_id", _TEXT),
            ("anonymous_id", _TEXT),
            ("group_id", _TEXT),
            ("previous_id", _TEXT),
            ("timestamp", _TIME),
            ("original_timestamp", f"Nullable({_TIME})"),
            ("sent_at", f"Nullable({_TIME})"),
            ("received_at", _TIME),
            ("properties", _TEXT),
            ("traits", _TEXT),
            ("context", _TEXT),
            ("integrations", _TEXT),
            ("source", _TEXT),
            *((name, _TEXT) for name in _ENRICHED),
        )
    }
) ENGINE = MergeTree ORDER BY (event, profile_id, timestamp)
""",
    f"""
CREATE TABLE profiles (
    {
        _columns(
            ("profile_id", "Int64"),
            ("user_id", _TEXT),
            ("email", _TEXT),
            ("phone", _TEXT),
            ("anonymous_id", _TEXT),
            ("traits", "String DEFAULT '{}'"),
            ("traits_updated_at", f"Nullable({_TIME})"),
            ("first_seen", _TIME),
            ("last_seen", _TIME),
            ("first_touch_at", f"Nullable({_TIME})"),
            ("last_touch_at", f"Nullable({_TIME})"),
            ("context_updated_at", f"Nullable({_TIME})"),
            ("event_count", "Int64 DEFAULT 0"),
            *((name, _TEXT) for name in _PROFILE_LATEST),
        )
    }
) ENGINE = MergeTree ORDER BY profile_id
""",
    """
CREATE TABLE audience_refreshes (
    refresh_id String,
    audience_id Int64,
    version Int32,
    as_of DateTime64(6),
    size Int64,
    entered Int64,
    `left` Int64,
    committed_at DateTime64(6),
    audience_name Nullable(String),
    seq Int64
) ENGINE = MergeTree ORDER BY seq
""",
    """
CREATE TABLE segment_events (
    refresh_seq Int64,
    profile_id Int64,
    added Bool
) ENGINE = MergeTree ORDER BY (refresh_seq, profile_id)
""",
    # The segment events shaped like ``events`` rows, as the DuckDB warehouse's view of the
    # same name (properties: the audience id as a JSON number, its name, the refresh id).
    """
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
""",
)


def _naive_utc(table: pa.Table) -> pa.Table:
    """``table`` with its UTC timestamps naive, as every engine returns them."""
    schema = pa.schema(
        [
            field.with_type(pa.timestamp(field.type.unit))
            if pa.types.is_timestamp(field.type) and field.type.tz is not None
            else field
            for field in table.schema
        ]
    )
    return table if schema.equals(table.schema) else table.cast(schema)


class ClickHouseUnavailable(SegmintError):
    """chDB is not installed."""


class ChDBEngine:
    """Embedded ClickHouse (chDB) holding the tables audience queries read (``TABLES``).

    ``path`` is a directory for the data (a temporary one, removed at ``close``, when None).
    ClickHouse has no multi-statement transactions: ``transaction`` only serializes the
    statements inside it, and a failure does not undo the ones before it."""

    dialect = "clickhouse"

    def __init__(self, path: str | Path | None = None) -> None:
        try:
            from chdb import session
        except ImportError:  # pragma: no cover - depends on the installation
            raise ClickHouseUnavailable(
                "the ClickHouse engine needs chDB: pip install 'segmint[clickhouse]'"
            ) from None
        self._session = session.Session(str(path) if path is not None else None)
        self._lock = threading.RLock()
        self.path = path
        for name, value in SETTINGS.items():
            self._session.query(f"SET {name} = {value}")

    @classmethod
    def with_tables(cls, path: str | Path | None = None) -> ChDBEngine:
        """An engine with the tables audience queries read, created empty."""
        engine = cls(path)
        for statement in TABLES:
            engine.execute(statement)
        return engine

    def _sql(self, sql: SQL, params: Params) -> str:
        if params:
            raise TypeError(
                "the ClickHouse engine takes no bound parameters: build the statement with "
                "sqlglot (values become literals of the statement)"
            )
        return sql.sql(dialect=self.dialect) if isinstance(sql, exp.Expression) else sql

    def execute(self, sql: SQL, params: Params = None) -> None:
        with self._lock:
            self._session.query(self._sql(sql, params))

    def arrow(self, sql: SQL, params: Params = None) -> pa.Table:
        with self._lock:
            table: pa.Table = self._session.query(self._sql(sql, params), "ArrowTable")
        return _naive_utc(table)

    def rows(self, sql: SQL, params: Params = None) -> list[tuple[Any, ...]]:
        table = self.arrow(sql, params)
        columns = [column.to_pylist() for column in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def append(self, table: str, data: pa.Table) -> int:
        if not data.num_rows:
            return 0
        names = ", ".join(f"`{name}`" for name in data.column_names)
        with self._lock:
            # chDB's Python() table function reads the Arrow table held in this frame.
            source = data  # noqa: F841 - named in the statement below
            self._session.query(
                f"INSERT INTO `{table}` ({names}) SELECT {names} FROM Python(source)"
            )
        return data.num_rows

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            yield

    def close(self) -> None:
        with self._lock:
            self._session.close()
