"""A small, readable warehouse built in code, and a helper that evaluates a definition on it.

Every definition evaluated through :class:`Warehouse.members` is also compiled for and
rendered in the ClickHouse and Spark dialects, so each example doubles as a transpile test,
and (in the default form) run on embedded ClickHouse over a copy of the same rows, whose
members must be DuckDB's (PRODUCT B7); ``form="portable"`` evaluates the portable SQL (what
Spark gets) on DuckDB instead of the DuckDB-specific form.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from functools import cache
from typing import Any

from segmint.compiler import compile_definition, to_sql
from segmint.definitions import Definition, parse_definition
from segmint.warehouse import DuckDBEngine
from segmint.warehouse.clickhouse import ChDBEngine
from segmint.warehouse.portable import copy_read_tables
from tests.reference.evaluator import SEGMENT_EVENT_NAMES
from tests.reference.loading import store_segment_events

AS_OF = dt.datetime(2025, 3, 15, 12, 0)  # a Saturday, UTC
OTHER_DIALECTS = ("clickhouse", "spark")


@cache
def clickhouse() -> ChDBEngine:
    """One embedded ClickHouse per test process, made on first use."""
    return ChDBEngine.with_tables()


def copy_to_clickhouse(engine: DuckDBEngine) -> ChDBEngine:
    """The embedded ClickHouse holding exactly the rows of ``engine``'s read tables."""
    target = clickhouse()
    copy_read_tables(engine, target)
    return target


def at(days_ago: float = 0, **delta: float) -> dt.datetime:
    """An instant ``days_ago`` days (and ``delta``) before AS_OF."""
    return AS_OF - dt.timedelta(days=days_ago, **delta)


class Warehouse:
    """An in-memory DuckDB warehouse with helpers to add profiles and events."""

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine
        self.form = "duckdb"  # the default of members(form=...)
        self._ids = itertools.count(1)

    def profile(self, profile_id: int, traits: dict[str, Any] | None = None, **columns: Any) -> int:
        """Add a profile row; ``columns`` are profile columns (country=..., browser=...)."""
        values: dict[str, Any] = {
            "profile_id": profile_id,
            "traits": json.dumps(traits or {}),
            "first_seen": AS_OF - dt.timedelta(days=365),
            "last_seen": AS_OF,
            **columns,
        }
        self._insert("profiles", values)
        return profile_id

    def event(
        self,
        profile_id: int,
        event: str,
        timestamp: dt.datetime,
        properties: dict[str, Any] | str | None = None,
        **columns: Any,
    ) -> None:
        """Add an event; ``properties`` is a dict (dumped to JSON) or raw JSON text. Segment
        events go to their own table, their properties those of ``segment_properties``."""
        if event in SEGMENT_EVENT_NAMES:
            row = {"profile_id": profile_id, "event": event, "timestamp": timestamp}
            store_segment_events(self.engine, [row | {"properties": properties}])
            return
        raw = (
            properties
            if isinstance(properties, str) or properties is None
            else json.dumps(properties)
        )
        values: dict[str, Any] = {
            "message_id": f"m{next(self._ids)}",
            "profile_id": profile_id,
            "type": "track",
            "event": event,
            "timestamp": timestamp,
            "received_at": timestamp,
            "properties": raw,
            **columns,
        }
        self._insert("events", values)

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        names = ", ".join(f'"{name}"' for name in values)
        marks = ", ".join("?" for _ in values)
        self.engine.execute(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", list(values.values())
        )

    def members(
        self,
        root: dict[str, Any] | Definition,
        *,
        as_of: dt.datetime = AS_OF,
        timezone: str = "UTC",
        audiences: dict[str, dict[str, Any]] | None = None,
        form: str | None = None,
    ) -> set[int]:
        """Member profile ids of a definition (a root node dict or a Definition), from SQL
        compiled for DuckDB (``form="duckdb"``) or portable SQL (``form="portable"``); the
        default is ``self.form``."""
        form = form or self.form
        resolver = _resolver(audiences or {})
        definition = (
            root
            if isinstance(root, Definition)
            else parse_definition({"version": 1, "root": root}, resolve_audience=resolver)
        )
        for dialect in OTHER_DIALECTS:
            other = compile_definition(
                definition,
                as_of=as_of,
                timezone=timezone,
                dialect=dialect,
                resolve_audience=resolver,
            )
            assert to_sql(other, dialect)
        query = compile_definition(
            definition,
            as_of=as_of,
            timezone=timezone,
            dialect=None if form == "portable" else "duckdb",
            resolve_audience=resolver,
        )
        found = {row[0] for row in self.engine.rows(to_sql(query, "duckdb"))}
        if form == "duckdb":
            on_clickhouse = compile_definition(
                definition,
                as_of=as_of,
                timezone=timezone,
                dialect="clickhouse",
                resolve_audience=resolver,
            )
            sql = to_sql(on_clickhouse, "clickhouse")
            other = {row[0] for row in copy_to_clickhouse(self.engine).rows(sql)}
            assert other == found, f"on ClickHouse {sorted(other)}, on DuckDB {sorted(found)}"
        return found


def _resolver(audiences: dict[str, dict[str, Any]]) -> Callable[[str], Definition | None]:
    def resolve(name: str) -> Definition | None:
        root = audiences.get(name)
        return None if root is None else Definition.model_validate({"version": 1, "root": root})

    return resolve


def ev(event: str, **fields: Any) -> dict[str, Any]:
    """An event condition node."""
    return {"kind": "event", "event": event, **fields}


def last(amount: int, unit: str = "days") -> dict[str, Any]:
    """A relative window."""
    return {"type": "relative", "last": amount, "unit": unit}
