"""A catalog and a warehouse with a few profiles, events and audiences, built in code.

Audiences are written straight into the catalog (an ``Audience`` row and its first
``AudienceVersion``), so refresh, history and scheduler tests do not depend on the lifecycle
service. The clock is always explicit: ``T0`` and offsets from it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlglot import exp, parse_one

from segmint.catalog import Catalog, open_catalog
from segmint.catalog.models import Audience, AudienceVersion, RefreshRun, UsageRecord
from segmint.compiler import compile_definition, to_sql
from segmint.definitions import Definition, is_dynamic
from segmint.warehouse import DuckDBEngine, open_warehouse

T0 = dt.datetime(2025, 3, 1, 6, 0)  # a Saturday, 06:00 UTC
TZ = "UTC"
DAY = dt.timedelta(days=1)


def day(n: float, hour: float = 6) -> dt.datetime:
    """``n`` days after T0's date, at ``hour`` o'clock UTC."""
    return T0.replace(hour=0) + dt.timedelta(days=n, hours=hour)


def purchased_within(days: int, event: str = "purchase") -> dict[str, Any]:
    """A dynamic root: did ``event`` in the last ``days`` days."""
    return {
        "kind": "event",
        "event": event,
        "window": {"type": "relative", "last": days, "unit": "days"},
    }


def purchased_between(start: str, end: str, event: str = "purchase") -> dict[str, Any]:
    """A static root: did ``event`` in a fixed date range."""
    return {
        "kind": "event",
        "event": event,
        "window": {"type": "absolute", "from": start, "to": end},
    }


@dataclass
class Store:
    """The two stores of a Segmint install, with helpers to fill and inspect them."""

    warehouse: DuckDBEngine
    catalog: Catalog
    _message_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # --- warehouse data ------------------------------------------------------------------

    def profile(self, profile_id: int, *, user_id: str | None = None, **columns: Any) -> int:
        """Add a profile (user id ``u{profile_id}`` unless given)."""
        values = {
            "profile_id": profile_id,
            "user_id": user_id if user_id is not None else f"u{profile_id}",
            "anonymous_id": f"a{profile_id}",
            "traits": "{}",
            "first_seen": T0 - 365 * DAY,
            "last_seen": T0,
            **columns,
        }
        self._insert("profiles", values)
        return profile_id

    def event(
        self,
        profile_id: int,
        event: str,
        timestamp: dt.datetime,
        properties: dict[str, Any] | None = None,
    ) -> None:
        """Add a track event."""
        self._insert(
            "events",
            {
                "message_id": f"m{next(self._message_ids)}",
                "profile_id": profile_id,
                "type": "track",
                "event": event,
                "timestamp": timestamp,
                "received_at": timestamp,
                "properties": json.dumps(properties or {}),
            },
        )

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        names = ", ".join(f'"{name}"' for name in values)
        marks = ", ".join("?" for _ in values)
        self.warehouse.execute(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", list(values.values())
        )

    # --- catalog data --------------------------------------------------------------------

    def audience(
        self,
        name: str,
        root: dict[str, Any],
        *,
        interval: dt.timedelta | None = DAY,
        warmup: bool = False,
        status: str = "active",
        activated_at: dt.datetime = T0,
        next_refresh_at: dt.datetime | None = None,
    ) -> int:
        """Add an audience with its first version; dynamic or static as its definition says."""
        definition = Definition.model_validate({"version": 1, "root": root})
        dynamic = is_dynamic(definition, resolve_audience=self.resolver)
        with self.catalog.session() as session:
            audience = Audience(
                name=name,
                status=status,
                current_version=1,
                is_dynamic=dynamic,
                refresh_interval_seconds=int(interval.total_seconds()) if interval else None,
                warmup=warmup,
                created_at=activated_at,
                created_by="test",
                updated_at=activated_at,
                activated_at=activated_at if status == "active" else None,
                next_refresh_at=next_refresh_at,
            )
            session.add(audience)
            session.flush()
            session.add(
                AudienceVersion(
                    audience_id=audience.id,
                    version=1,
                    definition=definition.model_dump_json(by_alias=True, exclude_none=True),
                    created_at=activated_at,
                    created_by="test",
                )
            )
            return audience.id

    def set_definition(self, audience_id: int, root: dict[str, Any], at: dt.datetime) -> int:
        """Save a new version of the audience's definition; return its number."""
        definition = Definition.model_validate({"version": 1, "root": root})
        with self.catalog.session() as session:
            audience = session.get(Audience, audience_id)
            assert audience is not None
            audience.current_version += 1
            session.add(
                AudienceVersion(
                    audience_id=audience_id,
                    version=audience.current_version,
                    definition=definition.model_dump_json(by_alias=True, exclude_none=True),
                    created_at=at,
                    created_by="test",
                )
            )
            return audience.current_version

    def update_audience(self, audience_id: int, **values: Any) -> None:
        """Set columns of the audience row."""
        with self.catalog.session() as session:
            audience = session.get(Audience, audience_id)
            assert audience is not None
            for key, value in values.items():
                setattr(audience, key, value)

    def get(self, audience_id: int) -> Audience:
        """A detached copy of the audience row."""
        with self.catalog.session() as session:
            audience = session.get(Audience, audience_id)
            assert audience is not None
            return audience

    def runs(self, audience_id: int) -> list[RefreshRun]:
        """The audience's refresh runs, oldest first."""
        with self.catalog.session() as session:
            return list(
                session.scalars(
                    select(RefreshRun)
                    .where(RefreshRun.audience_id == audience_id)
                    .order_by(RefreshRun.started_at, RefreshRun.attempt)
                )
            )

    def usage(self, audience_id: int) -> list[UsageRecord]:
        """The audience's usage records, by day."""
        with self.catalog.session() as session:
            return list(
                session.scalars(
                    select(UsageRecord)
                    .where(UsageRecord.audience_id == audience_id)
                    .order_by(UsageRecord.day, UsageRecord.id)
                )
            )

    def resolver(self, name: str) -> Definition | None:
        """Audience name → current definition, from the catalog."""
        with self.catalog.session() as session:
            audience = session.scalars(select(Audience).where(Audience.name == name)).first()
            if audience is None:
                return None
            text = session.scalars(
                select(AudienceVersion.definition).where(
                    AudienceVersion.audience_id == audience.id,
                    AudienceVersion.version == audience.current_version,
                )
            ).one()
        return Definition.model_validate_json(text)

    # --- inspecting the warehouse --------------------------------------------------------

    def members(self, audience_id: int) -> set[int]:
        """Current members (``audience_members``)."""
        rows = self.warehouse.rows(
            "SELECT profile_id FROM audience_members WHERE audience_id = ?", [audience_id]
        )
        return {row[0] for row in rows}

    def evaluate(self, audience_id: int, as_of: dt.datetime) -> set[int]:
        """A fresh evaluation of the audience's compiled SQL at ``as_of``."""
        name = self.get(audience_id).name
        assert name is not None
        definition = self.resolver(name)
        assert definition is not None
        query = compile_definition(
            definition, as_of=as_of, timezone=TZ, resolve_audience=self.resolver
        )
        return {row[0] for row in self.warehouse.rows(to_sql(query, "duckdb"))}

    def segment_events(
        self, audience_id: int, refresh_id: str | None = None
    ) -> set[tuple[str, int]]:
        """``(event, profile_id)`` of the added / removed events emitted for the audience
        (optionally by one refresh)."""
        sql = (
            "SELECT event, profile_id FROM all_events WHERE source = 'segmint' "
            "AND CAST(json_extract(properties, '$.audience_id') AS BIGINT) = ?"
        )
        params: list[Any] = [audience_id]
        if refresh_id is not None:
            sql += " AND json_extract_string(properties, '$.refresh_id') = ?"
            params.append(refresh_id)
        return {(row[0], row[1]) for row in self.warehouse.rows(sql, params)}

    def count(self, table: str) -> int:
        """Rows in a warehouse table."""
        return int(self.warehouse.rows(f"SELECT count(*) FROM {table}")[0][0])

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row the refresh writes, for before/after comparisons."""
        return {
            table: sorted(self.warehouse.rows(f"SELECT * FROM {table}"), key=repr)
            for table in (
                "events",
                "segment_events",
                "audience_members",
                "membership_history",
                "audience_refreshes",
            )
        }


@contextmanager
def open_store(catalog_url: str) -> Iterator[Store]:
    """A fresh in-memory warehouse and the catalog at ``catalog_url``."""
    warehouse = open_warehouse(None)
    catalog = open_catalog(catalog_url)
    try:
        yield Store(warehouse, catalog)
    finally:
        catalog.dispose()
        warehouse.close()


class Crash(Exception):
    """The failure a test injects into a refresh."""


class Killed(BaseException):
    """A process death, simulated: not an ``Exception``, so nothing records it."""


def crash_after(step: str, error: type[BaseException] = Crash) -> Any:
    """A ``fail_after`` hook raising ``error`` right after ``step``."""

    def hook(current: str) -> None:
        if current == step:
            raise error(f"injected failure after {step}")

    return hook


# For tests that drive the warehouse side of a refresh (``write_membership``) with chosen
# member sets: the definition is only carried along; the query is ``members_query``.
VALUES_DEFINITION = Definition.model_validate(
    {"version": 1, "root": {"kind": "event", "event": "purchase"}}
)


def members_query(members: frozenset[int]) -> exp.Query:
    """A query returning exactly ``members`` as ``profile_id``."""
    if not members:
        return parse_one("SELECT CAST(NULL AS BIGINT) AS profile_id WHERE false")
    values = ", ".join(f"({profile_id})" for profile_id in sorted(members))
    query = parse_one(f"SELECT profile_id FROM (VALUES {values}) AS v(profile_id)")
    assert isinstance(query, exp.Query)
    return query
