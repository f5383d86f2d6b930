"""The outbox of membership changes per link (ARCHITECTURE: "Sync reads an outbox").

Every committed refresh is a position in the outbox: ``audience_refreshes`` orders them and
``membership_changes`` records which members each one flipped (as 64-bit words, see
segmint.audiences.refresh). A link's ``cursor`` is the ``refresh_id`` of the last refresh
whose changes the platform accepted. The changes pending for a link are the bits flipped
between its cursor and the target refresh, folded with XOR in SQL — so a profile that entered
and left again in between (or left and came back) is not sent at all — each an addition when
the profile is a member after the target and a removal when it is not. The membership after
the target is the current one (``audience_member_words``) with the flips of any later
refreshes undone. With no cursor, the first sync sends the whole membership after the target.

The change log records what the refreshes delivered: recomputing an audience's history
(segmint.audiences.recompute) rewrites ``membership_history`` but not the log, so a platform
told the old members still gets exactly the changes that bring it to the new ones.

Delivery is at-least-once: the cursor moves (:func:`advance_cursor`) only after the platform
accepted everything up to the new position. A sync that fails leaves it where it was, and the
next sync computes the same changes again (plus any newer ones); platforms' add and remove are
idempotent, so sending a change twice is harmless and nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from segmint.catalog.db import Catalog
from segmint.catalog.sync_models import AudienceLink
from segmint.errors import Conflict, InvalidInput, NotFound
from segmint.sync.catalog import utc_now
from segmint.warehouse.engine import Engine
from segmint.warehouse.schema import EVERY_BIT, bit_is_set, member_id


@dataclass(frozen=True, slots=True)
class OutboxDelta:
    """The changes a link has to deliver: profiles to add and to remove (sorted ids) to move
    the platform from the membership after ``from_refresh_id`` (``None``: nothing delivered
    yet) to the membership after ``to_refresh_id`` (``None``: the audience never refreshed)."""

    audience_id: int
    from_refresh_id: str | None
    to_refresh_id: str | None
    to_as_of: datetime | None
    added: list[int]
    removed: list[int]

    @property
    def is_full(self) -> bool:
        """True for a first sync, which sends the whole membership."""
        return self.from_refresh_id is None

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to send (the cursor may still move forward)."""
        return not self.added and not self.removed


# Refreshes of one audience; a refresh's number (``audience_refreshes.seq``, commit order: the
# order their flips were applied to the current words) is its outbox position.
_POSITIONS_SQL = """
SELECT refresh_id, as_of, seq FROM audience_refreshes WHERE audience_id = ?
"""

# The words of the membership after position ``t``: the current words with the flips of the
# refreshes after ``t`` undone.
_AT_TARGET_SQL = """
flips AS (
    SELECT c.bucket, c.changed_bits, r.seq
    FROM membership_changes AS c JOIN r ON r.refresh_id = c.refresh_id
    WHERE c.audience_id = ?
),
later AS (SELECT bucket, bit_xor(changed_bits) AS bits FROM flips WHERE seq > ? GROUP BY 1),
at_target AS (
    SELECT coalesce(w.bucket, l.bucket) AS bucket,
           xor(coalesce(w.bits, CAST(0 AS UBIGINT)), coalesce(l.bits, CAST(0 AS UBIGINT)))
               AS bits
    FROM (SELECT bucket, bits FROM audience_member_words WHERE audience_id = ?) AS w
    FULL OUTER JOIN later AS l ON l.bucket = w.bucket
)
"""

# The bits flipped between positions ``c`` and ``t``, expanded: an addition when the profile
# is a member after ``t``, a removal when not.
_DELTA_SQL = f"""
WITH r AS ({_POSITIONS_SQL}),
{_AT_TARGET_SQL},
moved AS (
    SELECT bucket, bit_xor(changed_bits) AS bits FROM flips
    WHERE seq > ? AND seq <= ? GROUP BY 1
)
SELECT {member_id("m.bucket")} AS profile_id,
       {bit_is_set("coalesce(t.bits, CAST(0 AS UBIGINT))")} AS is_added
FROM moved AS m
LEFT JOIN at_target AS t ON t.bucket = m.bucket,
     {EVERY_BIT}
WHERE {bit_is_set("m.bits")}
ORDER BY 1
"""

# With no cursor: everybody who is a member after position ``t``.
_FULL_SQL = f"""
WITH r AS ({_POSITIONS_SQL}),
{_AT_TARGET_SQL}
SELECT {member_id("t.bucket")} AS profile_id, true AS is_added
FROM at_target AS t, {EVERY_BIT}
WHERE {bit_is_set("t.bits")}
ORDER BY 1
"""


def _position(
    warehouse: Engine, audience_id: int, refresh_id: str | None
) -> tuple[int, str | None, datetime | None]:
    """(seq, refresh_id, as_of) of ``refresh_id``, or of the latest refresh when ``None``;
    (0, None, None) when the audience has no refresh."""
    if refresh_id is None:
        rows = warehouse.rows(
            f"SELECT seq, refresh_id, as_of FROM ({_POSITIONS_SQL}) AS r ORDER BY seq DESC LIMIT 1",
            [audience_id],
        )
        return (int(rows[0][0]), rows[0][1], rows[0][2]) if rows else (0, None, None)
    rows = warehouse.rows(
        f"SELECT seq, refresh_id, as_of FROM ({_POSITIONS_SQL}) AS r WHERE refresh_id = ?",
        [audience_id, refresh_id],
    )
    if not rows:
        raise Conflict(
            f"refresh {refresh_id} is not a committed refresh of audience {audience_id}; reset "
            "the link's cursor to send the full membership again"
        )
    return int(rows[0][0]), rows[0][1], rows[0][2]


def pending_changes(
    warehouse: Engine,
    audience_id: int,
    cursor: str | None,
    *,
    until: str | None = None,
) -> OutboxDelta:
    """The changes from the membership after refresh ``cursor`` (``None``: from nothing) to
    the membership after refresh ``until`` (``None``: the latest), net of changes that cancel
    out. Reads the warehouse only."""
    cursor_seq = _position(warehouse, audience_id, cursor)[0] if cursor else 0
    target_seq, target_id, target_as_of = _position(warehouse, audience_id, until)
    if target_seq < cursor_seq:
        raise InvalidInput(f"refresh {until} comes before the cursor {cursor}", path="until")
    common = [audience_id, audience_id, target_seq, audience_id]
    if not cursor:
        rows = warehouse.rows(_FULL_SQL, common) if target_seq else []
    else:
        rows = warehouse.rows(_DELTA_SQL, [*common, cursor_seq, target_seq])
    added = [int(profile_id) for profile_id, is_added in rows if is_added]
    removed = [int(profile_id) for profile_id, is_added in rows if not is_added]
    return OutboxDelta(audience_id, cursor, target_id, target_as_of, added, removed)


def link_changes(
    catalog: Catalog, warehouse: Engine, link_id: int, *, until: str | None = None
) -> OutboxDelta:
    """The changes pending for the link: from its cursor to ``until`` (default the latest
    refresh)."""
    with catalog.session() as session:
        link = session.get(AudienceLink, link_id)
        if link is None:
            raise NotFound(f"no audience link {link_id}")
        audience_id, cursor = link.audience_id, link.cursor
    return pending_changes(warehouse, audience_id, cursor, until=until)


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()
"""For :func:`advance_cursor`: move the cursor whatever it is now."""


def advance_cursor(
    catalog: Catalog,
    link_id: int,
    refresh_id: str | None,
    *,
    expected: str | _Any | None = ANY,
    now: datetime | None = None,
) -> None:
    """Record that the platform accepted the link's changes up to refresh ``refresh_id``.
    Call only after it did. With ``expected`` (the delta's ``from_refresh_id``), refuse with
    :class:`Conflict` when another sync moved the cursor meanwhile. ``None`` resets the
    cursor, so the next sync sends the full membership again."""
    with catalog.session() as session:
        link = session.get(AudienceLink, link_id, with_for_update=True)
        if link is None:
            raise NotFound(f"no audience link {link_id}")
        if not isinstance(expected, _Any) and link.cursor != expected:
            raise Conflict(
                f"link {link_id} was synced by another run meanwhile (its cursor is "
                f"{link.cursor}, not {expected}); compute the changes again"
            )
        link.cursor = refresh_id
        link.in_flight = None
        if refresh_id is not None:
            link.last_synced_at = now or utc_now()


def mark_in_flight(catalog: Catalog, link_id: int, refresh_id: str | None) -> None:
    """Record that a sync is about to deliver the link's changes up to ``refresh_id``. Until
    :func:`advance_cursor` clears it, later syncs finish this step before going further: a
    delivery that failed halfway may have sent part of these changes, and only re-sending
    all of them (not a newer, different set) puts the platform right."""
    with catalog.session() as session:
        link = session.get(AudienceLink, link_id, with_for_update=True)
        if link is None:
            raise NotFound(f"no audience link {link_id}")
        link.in_flight = refresh_id
