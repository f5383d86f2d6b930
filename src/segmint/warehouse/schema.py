"""Warehouse schema, created and upgraded by code.

Each migration is a list of statements; ``schema_version`` records which have run. Never edit
a released migration: add a new one. Every column is documented in docs/warehouse.md.
Timestamps are stored as UTC without a zone (``TIMESTAMP``) so every engine compares them
the same way; the workspace time zone is applied when windows are computed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segmint.warehouse.engine import Engine

log = logging.getLogger(__name__)

UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_ID_COLUMNS = ("gclid", "fbclid", "ttclid", "li_fat_id", "msclkid", "wbraid", "gbraid")
COOKIE_COLUMNS = ("fbp", "fbc", "ga")
TECH_COLUMNS = ("browser", "browser_version", "os", "os_version", "device_type")
GEO_COLUMNS = ("country", "region", "city")

_ENRICHED = ",\n".join(
    f"    {name} VARCHAR"
    for name in (
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
)

EVENTS = f"""
CREATE TABLE events (
    message_id VARCHAR NOT NULL,
    profile_id BIGINT NOT NULL,
    type VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    name VARCHAR,
    user_id VARCHAR,
    anonymous_id VARCHAR,
    group_id VARCHAR,
    previous_id VARCHAR,
    "timestamp" TIMESTAMP NOT NULL,
    original_timestamp TIMESTAMP,
    sent_at TIMESTAMP,
    received_at TIMESTAMP NOT NULL,
    properties JSON,
    traits JSON,
    context JSON,
    integrations JSON,
    source VARCHAR,
{_ENRICHED}
)
"""

_PROFILE_LATEST = ",\n".join(
    f"    {name} VARCHAR"
    for name in (
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
)

PROFILES = f"""
CREATE TABLE profiles (
    profile_id BIGINT PRIMARY KEY,
    user_id VARCHAR,
    email VARCHAR,
    phone VARCHAR,
    anonymous_id VARCHAR,
    traits JSON NOT NULL DEFAULT '{{}}',
    traits_updated_at TIMESTAMP,
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    first_touch_at TIMESTAMP,
    last_touch_at TIMESTAMP,
    context_updated_at TIMESTAMP,
    event_count BIGINT NOT NULL DEFAULT 0,
{_PROFILE_LATEST}
)
"""

IDENTITIES = """
CREATE TABLE identities (
    id_type VARCHAR NOT NULL,
    id_value VARCHAR NOT NULL,
    profile_id BIGINT NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    PRIMARY KEY (id_type, id_value)
)
"""

PROFILE_MERGES = """
CREATE TABLE profile_merges (
    merged_profile_id BIGINT NOT NULL,
    into_profile_id BIGINT NOT NULL,
    merged_at TIMESTAMP NOT NULL,
    reason VARCHAR NOT NULL
)
"""

AUDIENCE_MEMBERS = """
CREATE TABLE audience_members (
    audience_id BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    entered_at TIMESTAMP NOT NULL,
    refresh_id VARCHAR NOT NULL
)
"""

MEMBERSHIP_HISTORY = """
CREATE TABLE membership_history (
    audience_id BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    entered_at TIMESTAMP NOT NULL,
    left_at TIMESTAMP,
    entered_refresh_id VARCHAR NOT NULL,
    left_refresh_id VARCHAR
)
"""

AUDIENCE_REFRESHES = """
CREATE TABLE audience_refreshes (
    refresh_id VARCHAR PRIMARY KEY,
    audience_id BIGINT NOT NULL,
    version INTEGER NOT NULL,
    as_of TIMESTAMP NOT NULL,
    size BIGINT NOT NULL,
    entered BIGINT NOT NULL,
    "left" BIGINT NOT NULL,
    committed_at TIMESTAMP NOT NULL
)
"""

# The events a refresh emits (PRODUCT R9) in a narrow table of their own: a refresh of a large
# audience writes one row per entering or leaving member, and a row of ``events`` (about 40
# columns) costs its commit about four times the log volume of one of these.
SEGMENT_EVENT_NAMES = ("added_to_segment", "removed_from_segment")
_SEGMENT_FILTER = "source = 'segmint' AND event IN ('added_to_segment', 'removed_from_segment')"

SEGMENT_EVENTS = """
CREATE TABLE segment_events (
    refresh_id VARCHAR NOT NULL,
    audience_id BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    event VARCHAR NOT NULL,
    "timestamp" TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL
)
"""

# The segment events shaped like ``events`` rows (what conditions scan): the message id and
# properties they had as rows of ``events``, computed. ``audience_name`` is the name the
# audience had at that refresh.
_SEGMENT_EVENT_ROWS = """
CREATE VIEW segment_event_rows AS
SELECT {refresh_id} || ':' || CAST(s.profile_id AS VARCHAR) || ':'
           || CASE WHEN s.event = 'added_to_segment' THEN 'added' ELSE 'removed' END
           AS message_id,
       s.profile_id,
       'track' AS type,
       s.event,
       s."timestamp",
       s.received_at,
       json_object('audience_id', s.audience_id, 'audience_name', r.audience_name,
                   'refresh_id', {refresh_id}) AS properties,
       'segmint' AS source
FROM segment_events AS s
LEFT JOIN audience_refreshes AS r ON {marker}
"""
SEGMENT_EVENT_ROWS = _SEGMENT_EVENT_ROWS.format(
    refresh_id="s.refresh_id", marker="r.refresh_id = s.refresh_id"
)

# Every event, collected or emitted, for the pages and APIs that list events. The user and
# anonymous ids of a segment event are its profile's current ones.
ALL_EVENTS = """
CREATE VIEW all_events AS
SELECT * FROM events
UNION ALL BY NAME
SELECT s.*, p.user_id, p.anonymous_id
FROM segment_event_rows AS s
LEFT JOIN profiles AS p ON p.profile_id = s.profile_id
"""

# What each List Sync link sent for each member (segmint.sync.ledger): the identifier
# columns are the fields of segmint.sync.normalize.ListMember.
SYNC_LEDGER = """
CREATE TABLE sync_ledger (
    link_id BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    email VARCHAR,
    phone VARCHAR,
    first_name VARCHAR,
    last_name VARCHAR,
    country VARCHAR,
    crm_id VARCHAR,
    device_id VARCHAR,
    user_id VARCHAR,
    anonymous_id VARCHAR,
    sent_at TIMESTAMP NOT NULL
)
"""

# Current membership as bitmaps (see segmint.audiences.refresh): profile ``p`` is a member
# when bit ``p & 63`` of the word of bucket ``p >> 6`` is set. A refresh rewrites only the
# words that changed, about members / 64 rows for the whole audience instead of one per member.
MEMBER_BUCKET = "profile_id >> 6"
MEMBER_BIT = "CAST(1 AS UBIGINT) << CAST(profile_id & 63 AS INTEGER)"
MEMBER_WORD = f"bit_or({MEMBER_BIT})"
# Expanding words back into members: join them with ``EVERY_BIT`` and keep the rows where
# ``bit_is_set(word)``; ``member_id(bucket)`` is then the profile id.
EVERY_BIT = "range(0, 64) AS b(bit)"


def bit_is_set(word: str) -> str:
    """SQL: bit ``b.bit`` of the 64-bit ``word`` is set."""
    return f"({word} >> CAST(b.bit AS INTEGER)) & 1 = 1"


def member_id(bucket: str) -> str:
    """SQL: the profile id of bit ``b.bit`` of the word of ``bucket``."""
    return f"{bucket} * 64 + b.bit"


AUDIENCE_MEMBER_WORDS = """
CREATE TABLE audience_member_words (
    audience_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    bits UBIGINT NOT NULL
)
"""

# The current members, one row each, expanded from the words.
AUDIENCE_MEMBERS_VIEW = f"""
CREATE VIEW audience_members AS
SELECT w.audience_id, {member_id("w.bucket")} AS profile_id
FROM audience_member_words AS w, {EVERY_BIT}
WHERE {bit_is_set("w.bits")}
"""

# Audiences whose history was recomputed (segmint.audiences.recompute) and not refreshed
# since: their open spells follow the new definition while their current members are what
# destinations were told, so their next refresh diffs history against the open spells.
HISTORY_TO_RECONCILE = """
CREATE TABLE history_to_reconcile (
    audience_id BIGINT NOT NULL
)
"""

# How each refresh changed the current membership (``audience_member_words``): the bits that
# flipped, per word. Folding them gives the membership after any refresh exactly as it was
# delivered; neither recomputing history nor merging profiles rewrites them. The sync outbox
# reads them (segmint.sync.outbox).
MEMBERSHIP_CHANGES = """
CREATE TABLE membership_changes (
    refresh_id VARCHAR NOT NULL,
    audience_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    changed_bits UBIGINT NOT NULL
)
"""

# Membership history kept append-only: a spell's start and its end are rows of their own, so
# closing a spell appends a row instead of updating one somewhere in a large table. Both
# carry the refresh's ``seq`` (``audience_refreshes.seq``, one per committed refresh, in commit
# order); an end belongs to the profile's latest start before it.
MEMBERSHIP_SPELLS = """
CREATE TABLE membership_spells (
    audience_id BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    entered_at TIMESTAMP NOT NULL,
    entered_seq BIGINT NOT NULL
)
"""

MEMBERSHIP_EXITS = """
CREATE TABLE membership_exits (
    audience_id BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    left_at TIMESTAMP NOT NULL,
    left_seq BIGINT NOT NULL
)
"""

# One row per spell, as the table of that name had it before version 8.
MEMBERSHIP_HISTORY_VIEW = """
CREATE VIEW membership_history AS
SELECT s.audience_id, s.profile_id, s.entered_at, x.left_at,
       e.refresh_id AS entered_refresh_id, l.refresh_id AS left_refresh_id
FROM membership_spells AS s
ASOF LEFT JOIN membership_exits AS x
  ON x.audience_id = s.audience_id AND x.profile_id = s.profile_id
 AND s.entered_seq < x.left_seq
LEFT JOIN audience_refreshes AS e ON e.seq = s.entered_seq
LEFT JOIN audience_refreshes AS l ON l.seq = x.left_seq
"""

# Version 9: segment events name their refresh by its number (``audience_refreshes.seq``, 8
# bytes) instead of its 36-character id; the id, like the audience name, comes from the marker.
SEGMENT_EVENT_ROWS_BY_SEQ = _SEGMENT_EVENT_ROWS.format(
    refresh_id="r.refresh_id", marker="r.seq = s.refresh_seq"
)

# Version 10: a refresh's rows per change carry only what is not already in its marker
# (``audience_refreshes``: audience, ``as_of`` = the events' timestamp, ``committed_at`` = their
# ``received_at``, name, id). A segment event is its refresh's number, the profile and whether
# it entered; history is kept as 64-bit words like the current membership (see
# ``audience_member_words``): per refresh, the words of the profiles whose spell started and of
# those whose spell ended there. A refresh of a large audience then writes about members / 64
# history rows instead of one per change, and three narrow columns per segment event.
SEGMENT_EVENTS_NARROW = """
CREATE TABLE segment_events_narrow (
    refresh_seq BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    added BOOLEAN NOT NULL
)
"""

SEGMENT_EVENT_ROWS_FROM_MARKER = """
CREATE VIEW segment_event_rows AS
SELECT r.refresh_id || ':' || CAST(s.profile_id AS VARCHAR) || ':'
           || CASE WHEN s.added THEN 'added' ELSE 'removed' END AS message_id,
       s.profile_id,
       'track' AS type,
       CASE WHEN s.added THEN 'added_to_segment' ELSE 'removed_from_segment' END AS event,
       r.as_of AS "timestamp",
       r.committed_at AS received_at,
       json_object('audience_id', r.audience_id, 'audience_name', r.audience_name,
                   'refresh_id', r.refresh_id) AS properties,
       'segmint' AS source
FROM segment_events AS s
JOIN audience_refreshes AS r ON r.seq = s.refresh_seq
"""

HISTORY_WORDS = """
CREATE TABLE history_words (
    audience_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    entered_bits UBIGINT NOT NULL,
    left_bits UBIGINT NOT NULL
)
"""

# One row per spell, as the table of that name had it before version 8: the words' bits
# expanded (a start or an end each), an end paired with the profile's latest start before it.
MEMBERSHIP_HISTORY_FROM_WORDS = f"""
CREATE VIEW membership_history AS
WITH flips AS (
    SELECT w.audience_id, w.seq, {member_id("w.bucket")} AS profile_id,
           {bit_is_set("w.entered_bits")} AS entered
    FROM history_words AS w, {EVERY_BIT}
    WHERE {bit_is_set("w.entered_bits | w.left_bits")}
),
starts AS (SELECT audience_id, profile_id, seq FROM flips WHERE entered),
ends AS (SELECT audience_id, profile_id, seq FROM flips WHERE NOT entered)
SELECT s.audience_id, s.profile_id, e.as_of AS entered_at, l.as_of AS left_at,
       e.refresh_id AS entered_refresh_id, l.refresh_id AS left_refresh_id
FROM starts AS s
ASOF LEFT JOIN ends AS x
  ON x.audience_id = s.audience_id AND x.profile_id = s.profile_id AND s.seq < x.seq
LEFT JOIN audience_refreshes AS e ON e.seq = s.seq
LEFT JOIN audience_refreshes AS l ON l.seq = x.seq
"""

# The words of a spell boundary table (version 8's ``membership_spells`` or
# ``membership_exits``) per audience, refresh and bucket.
_BOUNDARY_WORDS = f"""
SELECT audience_id, {{seq}} AS seq, {MEMBER_BUCKET} AS bucket, {MEMBER_WORD} AS bits
FROM {{table}} GROUP BY 1, 2, 3
"""

MIGRATIONS: list[list[str]] = [
    # 1: the foundation: events, profiles, identities, merges.
    [EVENTS, PROFILES, IDENTITIES, PROFILE_MERGES],
    # 2: audience membership: current members, spells of membership, committed refreshes.
    [AUDIENCE_MEMBERS, MEMBERSHIP_HISTORY, AUDIENCE_REFRESHES],
    # 3: segment events move out of ``events`` into their own narrow table.
    [
        SEGMENT_EVENTS,
        "ALTER TABLE audience_refreshes ADD COLUMN audience_name VARCHAR",
        f"""
        UPDATE audience_refreshes SET audience_name = named.audience_name
        FROM (
            SELECT properties ->> '$.refresh_id' AS refresh_id,
                   any_value(properties ->> '$.audience_name') AS audience_name
            FROM events WHERE {_SEGMENT_FILTER} GROUP BY 1
        ) AS named
        WHERE audience_refreshes.refresh_id = named.refresh_id
        """,
        f"""
        INSERT INTO segment_events
        SELECT properties ->> '$.refresh_id', CAST(properties ->> '$.audience_id' AS BIGINT),
               profile_id, event, "timestamp", received_at
        FROM events WHERE {_SEGMENT_FILTER}
        """,
        f"DELETE FROM events WHERE {_SEGMENT_FILTER}",
        SEGMENT_EVENT_ROWS,
        ALL_EVENTS,
    ],
    # 4: what List Sync sent for each member, so removals remove exactly that.
    [SYNC_LEDGER],
    # 5: current membership kept as 64-bit words; ``audience_members`` becomes a view.
    [
        AUDIENCE_MEMBER_WORDS,
        f"""
        INSERT INTO audience_member_words
        SELECT audience_id, {MEMBER_BUCKET}, {MEMBER_WORD}
        FROM audience_members GROUP BY 1, 2
        """,
        "DROP TABLE audience_members",
        AUDIENCE_MEMBERS_VIEW,
    ],
    # 6: audiences whose recomputed history the next refresh reconciles on its own; flags
    # those whose open spells already differ from their current members.
    [
        HISTORY_TO_RECONCILE,
        """
        INSERT INTO history_to_reconcile
        SELECT DISTINCT audience_id FROM (
            (SELECT audience_id, profile_id FROM membership_history WHERE left_at IS NULL
             EXCEPT SELECT audience_id, profile_id FROM audience_members)
            UNION ALL
            (SELECT audience_id, profile_id FROM audience_members
             EXCEPT SELECT audience_id, profile_id FROM membership_history
             WHERE left_at IS NULL)
        )
        """,
    ],
    # 7: the membership change log, filled from the history spells (each spell flips its
    # profile's bit at the refresh it entered in and at the one it left in).
    [
        MEMBERSHIP_CHANGES,
        f"""
        INSERT INTO membership_changes
        SELECT refresh_id, audience_id, {MEMBER_BUCKET}, bit_xor({MEMBER_BIT})
        FROM (
            SELECT entered_refresh_id AS refresh_id, audience_id, profile_id
            FROM membership_history
            UNION ALL
            SELECT left_refresh_id, audience_id, profile_id
            FROM membership_history WHERE left_refresh_id IS NOT NULL
        )
        GROUP BY 1, 2, 3
        """,
    ],
    # 8: refreshes numbered in commit order; history split into spell starts and ends.
    [
        "ALTER TABLE audience_refreshes ADD COLUMN seq BIGINT",
        """
        UPDATE audience_refreshes SET seq = numbered.seq
        FROM (
            SELECT refresh_id,
                   row_number() OVER (ORDER BY as_of, committed_at, refresh_id) AS seq
            FROM audience_refreshes
        ) AS numbered
        WHERE audience_refreshes.refresh_id = numbered.refresh_id
        """,
        MEMBERSHIP_SPELLS,
        MEMBERSHIP_EXITS,
        """
        INSERT INTO membership_spells
        SELECT h.audience_id, h.profile_id, h.entered_at, r.seq
        FROM membership_history AS h
        JOIN audience_refreshes AS r ON r.refresh_id = h.entered_refresh_id
        """,
        """
        INSERT INTO membership_exits
        SELECT h.audience_id, h.profile_id, h.left_at, r.seq
        FROM membership_history AS h
        JOIN audience_refreshes AS r ON r.refresh_id = h.left_refresh_id
        """,
        "DROP TABLE membership_history",
        MEMBERSHIP_HISTORY_VIEW,
    ],
    # 9: segment events carry their refresh's number, not its id.
    [
        "ALTER TABLE segment_events ADD COLUMN refresh_seq BIGINT",
        """
        UPDATE segment_events SET refresh_seq = r.seq
        FROM audience_refreshes AS r WHERE r.refresh_id = segment_events.refresh_id
        """,
        "DROP VIEW all_events",
        "DROP VIEW segment_event_rows",
        "ALTER TABLE segment_events DROP COLUMN refresh_id",
        SEGMENT_EVENT_ROWS_BY_SEQ,
        ALL_EVENTS,
    ],
    # 10: segment events narrowed to what their marker does not hold; history as words.
    [
        SEGMENT_EVENTS_NARROW,
        """
        INSERT INTO segment_events_narrow
        SELECT refresh_seq, profile_id, event = 'added_to_segment' FROM segment_events
        """,
        "DROP VIEW all_events",
        "DROP VIEW segment_event_rows",
        "DROP TABLE segment_events",
        "ALTER TABLE segment_events_narrow RENAME TO segment_events",
        SEGMENT_EVENT_ROWS_FROM_MARKER,
        ALL_EVENTS,
        HISTORY_WORDS,
        f"""
        INSERT INTO history_words
        SELECT coalesce(s.audience_id, x.audience_id), coalesce(s.seq, x.seq),
               coalesce(s.bucket, x.bucket), coalesce(s.bits, CAST(0 AS UBIGINT)),
               coalesce(x.bits, CAST(0 AS UBIGINT))
        FROM ({_BOUNDARY_WORDS.format(seq="entered_seq", table="membership_spells")}) AS s
        FULL OUTER JOIN ({_BOUNDARY_WORDS.format(seq="left_seq", table="membership_exits")}) AS x
          ON x.audience_id = s.audience_id AND x.seq = s.seq AND x.bucket = s.bucket
        """,
        "DROP VIEW membership_history",
        "DROP TABLE membership_spells",
        "DROP TABLE membership_exits",
        MEMBERSHIP_HISTORY_FROM_WORDS,
    ],
]

LATEST_VERSION = len(MIGRATIONS)


def recorded_version(engine: Engine) -> int:
    """The schema version the warehouse records (0 for a new one), without writing."""
    if not engine.rows(
        "SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version'"
    ):
        return 0
    (version,) = engine.rows("SELECT coalesce(max(version), 0) FROM schema_version")[0]
    return int(version)


def current_version(engine: Engine) -> int:
    engine.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
        "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    return recorded_version(engine)


def migrate(engine: Engine) -> int:
    """Bring the warehouse to the latest schema version; return the version it is now at."""
    version = current_version(engine)
    if version > LATEST_VERSION:
        from segmint.errors import ConfigurationError

        raise ConfigurationError(
            f"the warehouse schema is version {version}, newer than this Segmint "
            f"({LATEST_VERSION}); upgrade Segmint to open it"
        )
    for number in range(version + 1, LATEST_VERSION + 1):
        with engine.transaction():
            for statement in MIGRATIONS[number - 1]:
                engine.execute(statement)
            engine.execute("INSERT INTO schema_version (version) VALUES (?)", [number])
        log.info("warehouse schema upgraded to version %d", number)
    return LATEST_VERSION
