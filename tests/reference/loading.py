"""Storing generated event rows the way Segmint stores them: collected events in ``events``,
the segment events a refresh emits in ``segment_events`` (with their refresh's marker, which
holds the audience name). Shared by the differential and example-based tests."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from segmint.warehouse.engine import Engine
from segmint.warehouse.schema import UTM_COLUMNS
from tests.reference.evaluator import SEGMENT_EVENT_NAMES
from tests.reference.strategies import PROFILE_TEXT_COLUMNS, segment_properties


def store_segment_events(engine: Engine, events: Sequence[dict[str, Any]]) -> None:
    """Rows with ``profile_id``, ``event``, ``timestamp`` and the properties of
    :func:`segment_properties` (missing: audience 1, ``audience_1``). As a refresh stores them:
    one narrow row each, the rest in their refresh's marker (``as_of`` and ``committed_at`` are
    the events' timestamp, so all events of one refresh id must share it)."""
    if not events:
        return
    props = [
        e.get("properties") or segment_properties(1, "audience_1", e["timestamp"]) for e in events
    ]
    markers: dict[str, tuple[int, str, dt.datetime]] = {}
    for event, p in zip(events, props, strict=True):
        marker = (p["audience_id"], p["audience_name"], event["timestamp"])
        if markers.setdefault(p["refresh_id"], marker) != marker:
            raise ValueError(f"refresh {p['refresh_id']} has events of different instants")
    # Plain reads and Arrow appends, so every engine (DuckDB, ClickHouse) loads the same way.
    numbers = dict(engine.rows("SELECT refresh_id, seq FROM audience_refreshes"))
    last = max(numbers.values(), default=0)
    new = [refresh_id for refresh_id in markers if refresh_id not in numbers]
    for offset, refresh_id in enumerate(new, start=1):
        numbers[refresh_id] = last + offset
    if new:
        stamps = pa.array([markers[r][2] for r in new], pa.timestamp("us"))
        engine.append(
            "audience_refreshes",
            pa.table(
                {
                    "refresh_id": pa.array(new, pa.string()),
                    "audience_id": pa.array([markers[r][0] for r in new], pa.int64()),
                    "version": pa.array([1] * len(new), pa.int32()),
                    "as_of": stamps,
                    "size": pa.array([0] * len(new), pa.int64()),
                    "entered": pa.array([0] * len(new), pa.int64()),
                    "left": pa.array([0] * len(new), pa.int64()),
                    "committed_at": stamps,
                    "audience_name": pa.array([markers[r][1] for r in new], pa.string()),
                    "seq": pa.array([numbers[r] for r in new], pa.int64()),
                }
            ),
        )
    table = pa.table(
        {
            "refresh_seq": pa.array([numbers[p["refresh_id"]] for p in props], pa.int64()),
            "profile_id": pa.array([e["profile_id"] for e in events], pa.int64()),
            "added": pa.array([e["event"] == SEGMENT_EVENT_NAMES[0] for e in events]),
        }
    )
    engine.append("segment_events", table)


def clear_events(engine: Engine) -> None:
    for table in ("events", "segment_events", "audience_refreshes"):
        engine.execute(f"TRUNCATE TABLE {table}")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def profiles_table(profiles: list[dict[str, Any]]) -> pa.Table:
    touch_columns = [f"{touch}_{c}" for touch in ("first", "last") for c in UTM_COLUMNS]
    first_seen = pa.scalar(0, pa.timestamp("us"))
    data: dict[str, pa.Array] = {
        "profile_id": pa.array([p["profile_id"] for p in profiles], pa.int64()),
        "traits": pa.array([_json(p["traits"]) for p in profiles], pa.string()),
        "first_seen": pa.array([first_seen] * len(profiles), pa.timestamp("us")),
        "last_seen": pa.array([first_seen] * len(profiles), pa.timestamp("us")),
    }
    for name in (*PROFILE_TEXT_COLUMNS, *touch_columns):
        data[name] = pa.array([p.get(name) for p in profiles], pa.string())
    return pa.table(data)


def events_table(events: list[dict[str, Any]]) -> pa.Table:
    stamps = [e["timestamp"] for e in events]
    data: dict[str, pa.Array] = {
        "message_id": pa.array([f"m{i}" for i in range(len(events))], pa.string()),
        "profile_id": pa.array([e["profile_id"] for e in events], pa.int64()),
        "type": pa.array([e["type"] for e in events], pa.string()),
        "event": pa.array([e["event"] for e in events], pa.string()),
        "timestamp": pa.array(stamps, pa.timestamp("us")),
        "received_at": pa.array(stamps, pa.timestamp("us")),
        "properties": pa.array([_json(e["properties"]) for e in events], pa.string()),
    }
    for name in UTM_COLUMNS:
        data[name] = pa.array([e.get(name) for e in events], pa.string())
    return pa.table(data)


def load_scenario(
    engine: Engine, profiles: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    """Replace the warehouse's profiles and events by generated rows (segment events in
    their own table, as refreshes store them)."""
    clear_events(engine)
    engine.execute("TRUNCATE TABLE profiles")
    engine.append("profiles", profiles_table(profiles))
    engine.append(
        "events", events_table([e for e in events if e["event"] not in SEGMENT_EVENT_NAMES])
    )
    store_segment_events(engine, [e for e in events if e["event"] in SEGMENT_EVENT_NAMES])
