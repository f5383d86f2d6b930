"""What each List Sync link sent for each member: the platform's copy of their identifiers.

A member who leaves is removed with exactly the values that were added for them, even when
their email or phone changed since (the platform still holds the old hash, and removing the
new one would leave it there) or their profile was merged into another one. Rows are written
when a platform accepts an add and dropped once the removal's step is delivered (the cursor
moved), so a delivery replayed after a crash still removes the sent values. Members sent
before the ledger existed have no row; they are removed with their current identifiers.

Unlinking keeps a link's rows (its remote audience stays on the platform, members and all);
a later link of the same audience into that remote audience adopts them, so its first sync
also removes the members who left in between. Deleting the link drops them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime

import pyarrow as pa

from segmint.sync.normalize import ListMember
from segmint.warehouse.engine import Engine

LEDGER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ListMember) if f.name != "key")
"""The identifier columns of ``sync_ledger``: every :class:`ListMember` field but the key."""

_IDS = "(SELECT unnest(?::BIGINT[]))"
_CHUNK = 100_000


def record_sent(
    warehouse: Engine, link_id: int, members: Sequence[ListMember], at: datetime
) -> None:
    """Remember ``members`` as sent to ``link_id`` (replacing what was sent before)."""
    if not members:
        return
    ids = [int(member.key) for member in members]
    columns: dict[str, pa.Array] = {
        "link_id": pa.array([link_id] * len(ids), pa.int64()),
        "profile_id": pa.array(ids, pa.int64()),
    }
    for name in LEDGER_FIELDS:
        columns[name] = pa.array([getattr(member, name) for member in members], pa.string())
    columns["sent_at"] = pa.array([at] * len(ids), pa.timestamp("us"))
    with warehouse.transaction():
        warehouse.execute(
            f"DELETE FROM sync_ledger WHERE link_id = ? AND profile_id IN {_IDS}", [link_id, ids]
        )
        warehouse.append("sync_ledger", pa.table(columns))


def sent_members(
    warehouse: Engine, link_id: int, profile_ids: Sequence[int]
) -> dict[int, ListMember]:
    """What was sent to ``link_id`` for each of ``profile_ids`` that has a row."""
    found: dict[int, ListMember] = {}
    names = ", ".join(LEDGER_FIELDS)
    for start in range(0, len(profile_ids), _CHUNK):
        chunk = [int(pid) for pid in profile_ids[start : start + _CHUNK]]
        rows = warehouse.rows(
            f"SELECT profile_id, {names} FROM sync_ledger "
            f"WHERE link_id = ? AND profile_id IN {_IDS}",
            [link_id, chunk],
        )
        for row in rows:
            values = dict(zip(LEDGER_FIELDS, row[1:], strict=True))
            found[int(row[0])] = ListMember(key=str(row[0]), **values)
    return found


def forget(warehouse: Engine, link_id: int, profile_ids: Sequence[int] | None = None) -> None:
    """Drop the link's rows for ``profile_ids`` (all of its rows when None)."""
    if profile_ids is None:
        warehouse.execute("DELETE FROM sync_ledger WHERE link_id = ?", [link_id])
    elif profile_ids:
        warehouse.execute(
            f"DELETE FROM sync_ledger WHERE link_id = ? AND profile_id IN {_IDS}",
            [link_id, [int(pid) for pid in profile_ids]],
        )


def sent_profile_ids(warehouse: Engine, link_id: int) -> list[int]:
    """The profiles ``link_id`` holds rows for (sent and not since removed), ascending."""
    rows = warehouse.rows(
        "SELECT DISTINCT profile_id FROM sync_ledger WHERE link_id = ? ORDER BY 1", [link_id]
    )
    return [int(row[0]) for row in rows]


def adopt(warehouse: Engine, from_link_ids: Sequence[int], to_link_id: int) -> None:
    """Make the rows of ``from_link_ids`` rows of ``to_link_id``: the platform's copy they
    record is now the copy ``to_link_id`` syncs into."""
    if from_link_ids:
        warehouse.execute(
            f"UPDATE sync_ledger SET link_id = ? WHERE link_id IN {_IDS}",
            [to_link_id, [int(link_id) for link_id in from_link_ids]],
        )
