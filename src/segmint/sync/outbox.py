"""The outbox of membership changes per link (ARCHITECTURE: "Sync reads an outbox").

Every committed refresh is a position in the outbox: ``audience_refreshes`` orders them and
``membership_history`` says who was a member after each one. A link's ``cursor`` is the
``refresh_id`` of the last refresh whose changes the platform accepted. The changes pending
for a link are the difference between the membership after its cursor and the membership
after the latest refresh, computed in SQL — so a profile that entered and left again in
between (or left and came back) is not sent at all. With no cursor, the first sync sends the
full current membership.

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


# Refreshes of one audience in commit order; ``seq`` is the outbox position (1, 2, ...).
_POSITIONS_SQL = """
SELECT refresh_id, as_of,
       row_number() OVER (ORDER BY as_of, committed_at, refresh_id) AS seq
FROM audience_refreshes WHERE audience_id = ?
"""

# Members after position ``c`` vs after position ``t``, via the refreshes that opened and
# closed each spell: the symmetric difference is what to add and what to remove.
_DELTA_SQL = f"""
WITH r AS ({_POSITIONS_SQL}),
spells AS (
    SELECT h.profile_id, e.seq AS entered_seq, l.seq AS left_seq
    FROM membership_history AS h
    JOIN r AS e ON e.refresh_id = h.entered_refresh_id
    LEFT JOIN r AS l ON l.refresh_id = h.left_refresh_id
    WHERE h.audience_id = ?
),
at_cursor AS (
    SELECT DISTINCT profile_id FROM spells
    WHERE entered_seq <= ? AND (left_seq IS NULL OR left_seq > ?)
),
at_target AS (
    SELECT DISTINCT profile_id FROM spells
    WHERE entered_seq <= ? AND (left_seq IS NULL OR left_seq > ?)
)
SELECT coalesce(t.profile_id, c.profile_id) AS profile_id,
       c.profile_id IS NULL AS is_added
FROM at_target AS t
FULL OUTER JOIN at_cursor AS c ON c.profile_id = t.profile_id
WHERE t.profile_id IS NULL OR c.profile_id IS NULL
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
    rows = warehouse.rows(
        _DELTA_SQL,
        [audience_id, audience_id, cursor_seq, cursor_seq, target_seq, target_seq],
    )
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
