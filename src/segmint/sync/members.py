"""Reading what a sync sends about each member from the warehouse's profiles.

A link's identifier mapping (R18) names, for each platform identifier, the profile field it
comes from: a column of ``profiles`` (``email``, ``phone``, ``user_id``, ``device_id``, the
cookie columns ``fbp`` / ``fbc`` / ``ga`` ...) or a trait (``traits.first_name``). This module
turns profile ids into :class:`ListMember` values (List Sync) or event mappings (Event Sync,
the shape :meth:`segmint.destinations.base.Destination.send_events` documents), in one query
per chunk of ids with every user value bound as a parameter.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from segmint.errors import InvalidInput
from segmint.sync.normalize import ListMember
from segmint.warehouse.engine import Engine
from segmint.warehouse.schema import CLICK_ID_COLUMNS, COOKIE_COLUMNS

# Profile columns a mapping may name directly (docs/warehouse.md `profiles`).
PROFILE_FIELDS: frozenset[str] = frozenset(
    {
        "user_id",
        "email",
        "phone",
        "anonymous_id",
        "device_id",
        "advertising_id",
        "country",
        "region",
        "city",
        "language",
        *COOKIE_COLUMNS,
        *CLICK_ID_COLUMNS,
    }
)
# ListMember attribute each platform identifier fills.
_MEMBER_ATTRIBUTES: Mapping[str, str] = {
    "email": "email",
    "phone": "phone",
    "first_name": "first_name",
    "last_name": "last_name",
    "crm_id": "crm_id",
    "device_id": "device_id",
    "user_id": "user_id",
    "anonymous_id": "anonymous_id",
}
CHUNK = 50_000
"""Profile ids per warehouse query."""

# A namespace for the stable message ids of membership events.
_MESSAGE_NAMESPACE = uuid.UUID("6f1d3c52-3a49-4f0e-9a53-5f0b7d0a2c11")


def check_source(source: str, path: str = "identifier_mapping") -> None:
    """Refuse a mapping source that is neither a profile column nor ``traits.KEY``."""
    if source in PROFILE_FIELDS:
        return
    if source.startswith("traits.") and len(source) > len("traits."):
        return
    known = ", ".join(sorted(PROFILE_FIELDS))
    raise InvalidInput(
        f"{source!r} is not a profile field; use one of {known}, or traits.NAME for a trait",
        path=path,
    )


def _source_items(sources: Sequence[str]) -> tuple[list[str], list[str]]:
    """SQL expressions for ``sources`` (traits via bound JSON paths) and their params."""
    items: list[str] = []
    params: list[str] = []
    for source in sources:
        check_source(source)
        if source.startswith("traits."):
            items.append("json_extract_string(traits, ?)")
            params.append("$." + json.dumps(source.removeprefix("traits.")))
        else:
            items.append(source)  # checked against PROFILE_FIELDS above: a known column name
    return items, params


def _chunked(
    warehouse: Engine, profile_ids: Sequence[int], columns: Sequence[str], params: list[Any]
) -> Iterator[tuple[Any, ...]]:
    """``(profile_id, *columns)`` of each id that has a profile, in chunks, ids ascending."""
    extra = "".join(f", {column}" for column in columns)
    for start in range(0, len(profile_ids), CHUNK):
        ids = [int(pid) for pid in profile_ids[start : start + CHUNK]]
        yield from warehouse.rows(
            f"SELECT profile_id{extra} FROM profiles "
            "WHERE profile_id IN (SELECT unnest(?::BIGINT[])) ORDER BY profile_id",
            [*params, ids],
        )


def _rows(
    warehouse: Engine, profile_ids: Sequence[int], sources: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """``(profile_id, *values of sources)`` for each id that has a profile."""
    items, params = _source_items(sources)
    return _chunked(warehouse, profile_ids, items, params)


def list_members(
    warehouse: Engine, profile_ids: Sequence[int], mapping: Mapping[str, str]
) -> list[ListMember]:
    """The members' identifiers as ``mapping`` (platform identifier → profile field) picks
    them, plus their country (used to read national phone numbers and by Meta)."""
    identifiers = [name for name in mapping if name in _MEMBER_ATTRIBUTES]
    sources = [mapping[name] for name in identifiers] + ["country"]
    members = []
    for row in _rows(warehouse, profile_ids, sources):
        values: dict[str, Any] = {
            _MEMBER_ATTRIBUTES[name]: _text(value)
            for name, value in zip(identifiers, row[1:-1], strict=True)
        }
        members.append(ListMember(key=str(row[0]), country=_text(row[-1]), **values))
    return members


# Identifiers that can find a person on their own; names only refine a match.
_IDENTIFYING = ("email", "phone", "crm_id", "device_id", "user_id", "anonymous_id")


def count_identified(warehouse: Engine, audience_id: int, mapping: Mapping[str, str]) -> int:
    """Current members of the audience for whom :func:`has_identifier` holds, counted in
    SQL (R19's minimum-size check runs before every List Sync; it must not read every
    member into Python)."""
    items, params = _source_items([mapping[name] for name in mapping if name in _IDENTIFYING])
    if not items:
        return 0
    present = " OR ".join(
        f"nullif(trim(CAST({item} AS VARCHAR), ' \t\n\r\f\v'), '') IS NOT NULL" for item in items
    )
    (count,) = warehouse.rows(
        f"SELECT count(*) FROM audience_members AS m JOIN profiles USING (profile_id) "
        f"WHERE m.audience_id = ? AND ({present})",
        [audience_id, *params],
    )[0]
    return int(count)


def has_identifier(member: ListMember) -> bool:
    """True when the member carries an identifier that can match on its own (else it is
    anonymous for the platform: R16 skips and counts it)."""
    return any(getattr(member, attribute) for attribute in _IDENTIFYING)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_EVENT_COLUMNS = (
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "traits",
    *COOKIE_COLUMNS,
    *CLICK_ID_COLUMNS,
)


@dataclass(frozen=True, slots=True)
class MembershipEvents:
    """Which events to build: the audience, the refresh they come from and its instant."""

    audience_id: int
    audience_name: str
    refresh_id: str | None
    as_of: datetime | None


def message_id(audience_id: int, refresh_id: str | None, profile_id: int, event: str) -> str:
    """The stable id of one membership event: the same change re-sent after a failed sync
    carries the same id, so receivers de-duplicate it."""
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, f"{audience_id}:{refresh_id}:{profile_id}:{event}"))


def membership_events(
    warehouse: Engine,
    about: MembershipEvents,
    added: Sequence[int],
    removed: Sequence[int],
) -> list[dict[str, Any]]:
    """``added_to_segment`` for each added and ``removed_from_segment`` for each removed
    profile, with cookies and click ids (R17: anonymous members included)."""
    instant = (about.as_of or datetime.now(UTC).replace(tzinfo=None)).replace(tzinfo=UTC)
    timestamp = instant.isoformat().replace("+00:00", "Z")
    events: list[dict[str, Any]] = []
    for name, ids in (("added_to_segment", added), ("removed_from_segment", removed)):
        for row in _event_rows(warehouse, ids):
            profile_id = int(row[0])
            values = dict(zip(_EVENT_COLUMNS, row[1:], strict=True))
            traits = values.pop("traits")
            events.append(
                {
                    "event": name,
                    "message_id": message_id(about.audience_id, about.refresh_id, profile_id, name),
                    "timestamp": timestamp,
                    "audience": {"id": about.audience_id, "name": about.audience_name},
                    "refresh_id": about.refresh_id,
                    "profile_id": profile_id,
                    "user_id": values["user_id"],
                    "anonymous_id": values["anonymous_id"],
                    "email": values["email"],
                    "phone": values["phone"],
                    "traits": json.loads(traits) if isinstance(traits, str) else (traits or {}),
                    "cookies": {column: values[column] for column in COOKIE_COLUMNS},
                    "click_ids": {column: values[column] for column in CLICK_ID_COLUMNS},
                }
            )
    return events


def _event_rows(warehouse: Engine, profile_ids: Sequence[int]) -> Iterator[tuple[Any, ...]]:
    return _chunked(warehouse, profile_ids, _EVENT_COLUMNS, [])


_SURVIVORS_SQL = """
WITH RECURSIVE chain(start_id, profile_id, depth) AS (
    SELECT merged_profile_id, into_profile_id, 1 FROM profile_merges
    WHERE merged_profile_id IN (SELECT unnest(?::BIGINT[]))
    UNION ALL
    SELECT c.start_id, m.into_profile_id, c.depth + 1
    FROM chain AS c JOIN profile_merges AS m ON m.merged_profile_id = c.profile_id
    WHERE c.depth < 64
)
SELECT c.start_id, c.profile_id FROM chain AS c
JOIN profiles AS p ON p.profile_id = c.profile_id
"""


def merged_survivors(warehouse: Engine, profile_ids: Sequence[int]) -> dict[int, int]:
    """For the ids among ``profile_ids`` that were merged away, the profile each lives on in
    now (following chains of merges); ids that still exist are not in the answer."""
    present = {
        int(row[0])
        for row in warehouse.rows(
            "SELECT profile_id FROM profiles WHERE profile_id IN (SELECT unnest(?::BIGINT[]))",
            [[int(pid) for pid in profile_ids]],
        )
    }
    missing = [int(pid) for pid in profile_ids if int(pid) not in present]
    if not missing:
        return {}
    return {
        int(start): int(survivor) for start, survivor in warehouse.rows(_SURVIVORS_SQL, [missing])
    }
