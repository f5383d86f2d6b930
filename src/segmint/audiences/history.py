"""Membership as a queryable ledger (PRODUCT R12, B2): sizes over time, who entered and left
in each refresh, who was a member at any instant, overlap of two audiences and retention of a
cohort.

Everything here reads the warehouse tables a refresh writes (docs/warehouse.md):
``audience_refreshes`` (one row per committed refresh), ``history_words`` and its view
``membership_history`` (one row per membership spell) and ``audience_members`` (current
members). A profile was a member at
instant *t* when one of its spells has ``entered_at <= t`` and (``left_at`` is NULL or
``t < left_at``). Every answer is computed in SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from segmint.audiences.refresh import utc_naive
from segmint.errors import NotFound
from segmint.warehouse.engine import Engine
from segmint.warehouse.schema import EVERY_BIT, bit_is_set, member_id

# The members of one audience at the instant bound as the 2nd parameter: each start and each
# end of a spell flips a profile's bit in ``history_words``, so the XOR of the words of the
# refreshes up to the instant is the membership then (the same as the spells of
# ``membership_history`` with ``entered_at <= t`` and ``left_at`` NULL or ``t < left_at``,
# without pairing every start with its end).
_MEMBERS_AT = f"""
SELECT {member_id("w.bucket")} AS profile_id
FROM (
    SELECT h.bucket, bit_xor(h.entered_bits | h.left_bits) AS bits
    FROM history_words AS h JOIN audience_refreshes AS r ON r.seq = h.seq
    WHERE h.audience_id = ? AND r.as_of <= ?
    GROUP BY h.bucket
) AS w, {EVERY_BIT}
WHERE {bit_is_set("w.bits")}
"""

# The profiles whose spells started (or ended) in one refresh of one audience.
_CHANGED_IN = """
SELECT {member} AS profile_id
FROM history_words AS h JOIN audience_refreshes AS r ON r.seq = h.seq, {every_bit}
WHERE h.audience_id = ? AND r.refresh_id = ? AND {is_set}
ORDER BY profile_id{cap}
"""


@dataclass(frozen=True)
class RefreshPoint:
    """One committed refresh: when it evaluated, the size after it, who entered and left."""

    refresh_id: str
    as_of: dt.datetime
    version: int
    size: int
    entered: int
    left: int


@dataclass(frozen=True)
class MembershipChanges:
    """The profiles that entered and left an audience in one refresh."""

    refresh_id: str
    entered: list[int]
    left: list[int]


@dataclass(frozen=True)
class Overlap:
    """How two audiences' members overlap: in both, only in A, only in B."""

    both: int
    only_a: int
    only_b: int

    @property
    def union(self) -> int:
        """Profiles in either audience."""
        return self.both + self.only_a + self.only_b


@dataclass(frozen=True)
class RetentionPoint:
    """Of a cohort of ``cohort_size`` entrants, how many were members as of a later refresh."""

    refresh_id: str
    as_of: dt.datetime
    cohort_size: int
    retained: int

    @property
    def rate(self) -> float:
        """``retained / cohort_size`` (0 for an empty cohort)."""
        return self.retained / self.cohort_size if self.cohort_size else 0.0


def size_over_time(
    warehouse: Engine,
    audience_id: int,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[RefreshPoint]:
    """Every committed refresh of the audience in order of ``as_of`` (optionally only those
    with ``since <= as_of <= until``): its size and how many entered and left."""
    sql = (
        'SELECT refresh_id, as_of, version, size, entered, "left" FROM audience_refreshes '
        "WHERE audience_id = ?"
    )
    params: list[Any] = [audience_id]
    if since is not None:
        sql += " AND as_of >= ?"
        params.append(utc_naive(since))
    if until is not None:
        sql += " AND as_of <= ?"
        params.append(utc_naive(until))
    rows = warehouse.rows(sql + " ORDER BY as_of, committed_at", params)
    return [RefreshPoint(*row) for row in rows]


def refresh_changes(
    warehouse: Engine, audience_id: int, refresh_id: str, *, limit: int | None = None
) -> MembershipChanges:
    """The profile ids that entered and left in refresh ``refresh_id`` (sorted; at most
    ``limit`` of each when given)."""
    cap = "" if limit is None else f" LIMIT {int(limit)}"
    found: dict[str, list[int]] = {}
    for side in ("entered", "left"):
        sql = _CHANGED_IN.format(
            member=member_id("h.bucket"),
            every_bit=EVERY_BIT,
            is_set=bit_is_set(f"h.{side}_bits"),
            cap=cap,
        )
        found[side] = [row[0] for row in warehouse.rows(sql, [audience_id, refresh_id])]
    return MembershipChanges(refresh_id, found["entered"], found["left"])


def members_as_of(
    warehouse: Engine, audience_id: int, instant: dt.datetime, *, limit: int | None = None
) -> list[int]:
    """The profile ids that were members at ``instant`` according to the history (sorted; at
    most ``limit`` when given). Before the first refresh, nobody."""
    at = utc_naive(instant)
    cap = "" if limit is None else f" LIMIT {int(limit)}"
    rows = warehouse.rows(
        f"SELECT profile_id FROM ({_MEMBERS_AT}) ORDER BY profile_id{cap}",
        [audience_id, at],
    )
    return [row[0] for row in rows]


def size_as_of(warehouse: Engine, audience_id: int, instant: dt.datetime) -> int:
    """How many profiles were members at ``instant``."""
    at = utc_naive(instant)
    (count,) = warehouse.rows(f"SELECT count(*) FROM ({_MEMBERS_AT})", [audience_id, at])[0]
    return int(count)


def overlap(
    warehouse: Engine, audience_a: int, audience_b: int, *, as_of: dt.datetime | None = None
) -> Overlap:
    """How the members of two audiences overlap: now (current members), or at ``as_of``
    according to the history."""
    if as_of is None:
        a_sql = b_sql = "SELECT profile_id FROM audience_members WHERE audience_id = ?"
        params: list[Any] = [audience_a, audience_b]
    else:
        at = utc_naive(as_of)
        a_sql = b_sql = _MEMBERS_AT
        params = [audience_a, at, audience_b, at]
    both, only_a, only_b = warehouse.rows(
        f"""
        SELECT count(*) FILTER (WHERE a.profile_id IS NOT NULL AND b.profile_id IS NOT NULL),
               count(*) FILTER (WHERE b.profile_id IS NULL),
               count(*) FILTER (WHERE a.profile_id IS NULL)
        FROM ({a_sql}) AS a FULL OUTER JOIN ({b_sql}) AS b ON a.profile_id = b.profile_id
        """,
        params,
    )[0]
    return Overlap(int(both), int(only_a), int(only_b))


# Retention of the cohort that entered in the refresh numbered by the 1st parameter: for it and
# every later refresh, how many of the cohort were members as of that refresh's ``as_of``
# (the words of the refreshes up to that instant XORed, as in _MEMBERS_AT, only for the
# cohort's buckets), ANDed with the cohort's words.
_RETENTION_SQL = """
WITH start AS (
    SELECT seq, as_of, audience_id FROM audience_refreshes WHERE seq = ?
),
cohort AS (
    SELECT h.bucket, h.entered_bits AS bits
    FROM history_words AS h JOIN start AS s ON h.seq = s.seq AND h.audience_id = s.audience_id
    WHERE h.entered_bits <> 0
),
later AS (
    SELECT r.refresh_id, r.as_of, r.seq
    FROM audience_refreshes AS r JOIN start AS s ON r.audience_id = s.audience_id
    WHERE r.as_of >= s.as_of
),
flips AS (
    SELECT h.bucket, r.as_of, h.entered_bits | h.left_bits AS bits
    FROM history_words AS h
    JOIN audience_refreshes AS r ON r.seq = h.seq
    JOIN start AS s ON h.audience_id = s.audience_id
    WHERE h.bucket IN (SELECT bucket FROM cohort)
),
members_then AS (
    SELECT l.seq, f.bucket, bit_xor(f.bits) AS bits
    FROM later AS l JOIN flips AS f ON f.as_of <= l.as_of
    GROUP BY l.seq, f.bucket
)
SELECT l.refresh_id, l.as_of,
       (SELECT coalesce(sum(bit_count(bits)), 0) FROM cohort),
       coalesce(sum(bit_count(m.bits & c.bits)), 0)
FROM later AS l
LEFT JOIN members_then AS m ON m.seq = l.seq
LEFT JOIN cohort AS c ON c.bucket = m.bucket
GROUP BY l.refresh_id, l.as_of, l.seq
ORDER BY l.as_of, l.seq
"""


def cohort_retention(
    warehouse: Engine, audience_id: int, refresh_id: str | None = None
) -> list[RetentionPoint]:
    """Retention of the cohort that entered in refresh ``refresh_id`` (B2; default: the
    audience's first refresh): for that refresh and every later one, how many of the cohort
    were members as of it (members at that instant, whether or not they left and came back in
    between)."""
    sql = "SELECT seq FROM audience_refreshes WHERE audience_id = ?"
    params: list[Any] = [audience_id]
    if refresh_id is not None:
        sql += " AND refresh_id = ?"
        params.append(refresh_id)
    start = warehouse.rows(sql + " ORDER BY as_of, seq LIMIT 1", params)
    if not start:
        if refresh_id is None:
            raise NotFound(
                f"audience {audience_id} has not been refreshed yet: it has no cohort so far"
            )
        raise NotFound(f"audience {audience_id} has no committed refresh {refresh_id!r}")
    rows = warehouse.rows(_RETENTION_SQL, [start[0][0]])
    return [RetentionPoint(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
