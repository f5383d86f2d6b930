"""What is tracked: event names with counts and first/last seen, their property keys with
inferred types, and profile trait keys (R27). Property and trait types are inferred from a
sample of recent rows so the answer stays fast on large warehouses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from segmint.errors import NotFound
from segmint.warehouse.engine import Engine

SAMPLE_ROWS = 20_000

# How DuckDB's json_type names map to the types users see.
_TYPE_NAMES = {
    "BIGINT": "number",
    "UBIGINT": "number",
    "DOUBLE": "number",
    "VARCHAR": "string",
    "BOOLEAN": "boolean",
    "OBJECT": "object",
    "ARRAY": "array",
    "NULL": "null",
}


@dataclass(slots=True)
class TrackedEvent:
    event: str
    type: str
    count: int
    profiles: int
    first_seen: datetime
    last_seen: datetime


@dataclass(slots=True)
class KeyInfo:
    """One property or trait key: how often it was seen in the sample, with which types,
    and a few example values."""

    key: str
    seen: int
    types: dict[str, int] = field(default_factory=dict)
    numeric_strings: int = 0
    examples: list[str] = field(default_factory=list)


def tracked_events(engine: Engine) -> list[TrackedEvent]:
    """Every event name in the warehouse, most frequent first."""
    rows = engine.rows(
        'SELECT event, any_value(type), count(*), count(DISTINCT profile_id), min("timestamp"), '
        'max("timestamp") FROM all_events GROUP BY event ORDER BY count(*) DESC, event'
    )
    return [TrackedEvent(*row) for row in rows]


def _keys(engine: Engine, source_sql: str, params: list[object]) -> list[KeyInfo]:
    rows = engine.rows(
        f"""
        WITH sample AS ({source_sql}),
        pairs AS (
            SELECT k AS key, json_type(doc, '$."' || replace(k, '"', '\\"') || '"') AS t,
                   json_extract_string(doc, '$."' || replace(k, '"', '\\"') || '"') AS v
            FROM sample, unnest(json_keys(doc)) AS u(k)
        )
        SELECT key, t, count(*),
               count(*) FILTER (WHERE t = 'VARCHAR' AND TRY_CAST(v AS DOUBLE) IS NOT NULL),
               list(DISTINCT v)[1:5]
        FROM pairs GROUP BY key, t ORDER BY key, count(*) DESC
        """,
        params,
    )
    keys: dict[str, KeyInfo] = {}
    for key, json_type, count, numeric, examples in rows:
        info = keys.setdefault(key, KeyInfo(key=key, seen=0))
        info.seen += count
        name = _TYPE_NAMES.get(json_type, str(json_type).lower())
        info.types[name] = info.types.get(name, 0) + count
        info.numeric_strings += numeric
        if json_type not in ("OBJECT", "ARRAY"):
            info.examples.extend(str(e) for e in examples if e is not None)
    for info in keys.values():
        info.examples = info.examples[:5]
    return sorted(keys.values(), key=lambda k: (-k.seen, k.key))


def event_properties(engine: Engine, event: str) -> list[KeyInfo]:
    """The property keys of ``event`` with their types, from its latest events."""
    (count,) = engine.rows("SELECT count(*) FROM all_events WHERE event = ?", [event])[0]
    if not count:
        raise NotFound(f"no event named {event!r} has been tracked; GET /api/v1/events lists them")
    return _keys(
        engine,
        "SELECT properties AS doc FROM all_events WHERE event = ? AND properties IS NOT NULL "
        f'ORDER BY "timestamp" DESC LIMIT {SAMPLE_ROWS}',
        [event],
    )


def trait_keys(engine: Engine) -> list[KeyInfo]:
    """The trait keys on profiles with their types, from the most recently seen profiles."""
    return _keys(
        engine,
        "SELECT traits AS doc FROM profiles WHERE traits IS NOT NULL AND traits <> '{}' "
        f"ORDER BY last_seen DESC LIMIT {SAMPLE_ROWS}",
        [],
    )
