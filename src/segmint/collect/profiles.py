"""Profiles: what the warehouse knows about each person, kept current batch by batch.

A batch of messages (already carrying their ``profile_id`` from identity resolution) is folded
per profile in one Python pass, then written with one set-based upsert, so the cost per batch is
one pass plus one statement however many profiles it touches. A batch prepared in another
process arrives folded per identity signature instead; those folds (``SenderFold``) combine
into exactly the fold of their messages, because each value keeps the timestamp and batch
position of the message it came from. The same latest-wins rules are used when identity
resolution merges two profile rows (``merge_profile_rows``):

- ``first_seen`` / ``last_seen``: least / greatest; ``event_count``: summed.
- ``traits``: identify traits and ``context.traits`` (the traits of ``group`` calls describe the
  group, not the person, and are ignored), deep-merged latest-wins. Within a batch messages are
  applied in timestamp order. Against the stored traits, a batch whose latest traits are at
  least as new as ``traits_updated_at`` wins on conflicting keys; an older (late) batch only
  fills keys the stored traits lack. Null trait values are treated as not sent, so a late or
  partial payload can never erase a known trait.
- ``user_id``, ``email``, ``phone``, ``anonymous_id``: the latest known (non-null) value;
  email and phone normalized as in ``segmint.identifiers``, invalid ones left out.
- First touch: the UTM parameters of the earliest event that has any UTM parameter, replaced
  only by an earlier one (``first_touch_at``). Last touch: those of the latest (``last_touch_at``).
- Click ids, cookies, technology, locale/language, geo, time zone, ``device_id`` and
  ``advertising_id``: per column, the value of the latest event that has one; a late batch only
  fills columns that are empty (``context_updated_at`` is the time of the latest such event).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
import pyarrow as pa

from segmint.collect.messages import ENRICHMENT_FIELDS, Message, enrichment_values
from segmint.identifiers import normalize_email, normalize_phone
from segmint.warehouse.engine import Engine
from segmint.warehouse.schema import (
    CLICK_ID_COLUMNS,
    COOKIE_COLUMNS,
    GEO_COLUMNS,
    TECH_COLUMNS,
    UTM_COLUMNS,
)

IDENTIFIER_COLUMNS = ("user_id", "email", "phone", "anonymous_id")
ENRICHED_CONTEXT_COLUMNS = (
    *CLICK_ID_COLUMNS,
    *COOKIE_COLUMNS,
    *TECH_COLUMNS,
    "locale",
    "language",
    *GEO_COLUMNS,
    "timezone",
)
CONTEXT_COLUMNS = (*ENRICHED_CONTEXT_COLUMNS, "device_id", "advertising_id")
FIRST_UTM_COLUMNS = tuple(f"first_{name}" for name in UTM_COLUMNS)
LAST_UTM_COLUMNS = tuple(f"last_{name}" for name in UTM_COLUMNS)

_TS = pa.timestamp("us")
PROFILE_SCHEMA = pa.schema(
    [
        ("profile_id", pa.int64()),
        *((name, pa.string()) for name in IDENTIFIER_COLUMNS),
        ("traits", pa.string()),
        ("traits_updated_at", _TS),
        ("first_seen", _TS),
        ("last_seen", _TS),
        ("first_touch_at", _TS),
        ("last_touch_at", _TS),
        ("context_updated_at", _TS),
        ("event_count", pa.int64()),
        *((name, pa.string()) for name in FIRST_UTM_COLUMNS),
        *((name, pa.string()) for name in LAST_UTM_COLUMNS),
        *((name, pa.string()) for name in CONTEXT_COLUMNS),
    ]
)
PROFILE_COLUMNS: tuple[str, ...] = tuple(PROFILE_SCHEMA.names)

# Positions in an enrichment tuple (``ENRICHMENT_FIELDS`` order).
_UTM_START = ENRICHMENT_FIELDS.index(UTM_COLUMNS[0])
_UTM_SLICE = slice(_UTM_START, _UTM_START + len(UTM_COLUMNS))
if ENRICHMENT_FIELDS[_UTM_SLICE] != UTM_COLUMNS:  # pragma: no cover - a schema edit broke it
    raise RuntimeError("the UTM columns must be adjacent in ENRICHMENT_FIELDS")
_context_of = itemgetter(*(ENRICHMENT_FIELDS.index(name) for name in ENRICHED_CONTEXT_COLUMNS))
_STAGE = "_segmint_profile_batch"


# --- what a message says about its sender -------------------------------------------------


def message_traits(message: Message) -> dict[str, Any]:
    """The person traits a message carries: ``context.traits`` overlaid by the traits of an
    identify call, with null values dropped. Empty when there are none."""
    context_traits = message.context.get("traits") if message.context else None
    traits: dict[str, Any] = {}
    if isinstance(context_traits, dict) and context_traits:
        traits = merge_traits(traits, context_traits)
    if message.type == "identify" and message.traits:
        traits = merge_traits(traits, message.traits)
    return traits


def message_contacts(
    message: Message, default_region: str | None = None
) -> tuple[str | None, str | None]:
    """The normalized (email, phone) a message states about its sender: from identify traits
    first, then ``context.traits``. Invalid values are ``None``."""
    sources: list[dict[str, Any]] = []
    if message.type == "identify" and message.traits:
        sources.append(message.traits)
    context_traits = message.context.get("traits") if message.context else None
    if isinstance(context_traits, dict) and context_traits:
        sources.append(context_traits)
    email: str | None = None
    phone: str | None = None
    for traits in sources:
        if email is None and "email" in traits:
            email = normalize_email(traits["email"])
        if phone is None and "phone" in traits:
            phone = _phone(traits["phone"], default_region)
    return email, phone


def _phone(value: Any, default_region: str | None) -> str | None:
    # Parsing a phone costs tens of microseconds and the same few numbers recur in a batch
    # (every event of a logged-in user carries them), so remember recent answers.
    if isinstance(value, str | int) and not isinstance(value, bool):
        return _cached_phone(value, default_region)
    return None


@lru_cache(maxsize=16384)
def _cached_phone(value: str | int, default_region: str | None) -> str | None:
    return normalize_phone(value, default_region)


def merge_traits(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``new`` over ``old`` (nested objects merged, anything else replaced), dropping
    nulls from ``new``. The same result as the warehouse's ``json_merge_patch`` on null-free
    values, so Python and SQL merges agree."""
    merged = dict(old)
    for key, value in new.items():
        if value is None:
            continue
        current = merged.get(key)
        if isinstance(value, dict):
            merged[key] = merge_traits(current if isinstance(current, dict) else {}, value)
        else:
            merged[key] = value
    return merged


# --- folding a batch ------------------------------------------------------------------------


_NO_DEVICE: tuple[None, None] = (None, None)

Key = tuple[datetime, int]
"""Where a message falls in a batch's fold order: its timestamp, then its position."""


class SenderFold:
    """What some messages of a batch say about their sender: one profile's messages (as
    ``fold_batch`` groups them), or the messages of one identity signature (as a preparation
    process groups them before the profile is known).

    Messages are added in fold order, so the latest value of anything is the last one seen.
    Each value remembers the ``Key`` of the message it came from, so two folds of disjoint
    messages of the same profile combine (``absorb``) into exactly the fold of all of them.
    """

    __slots__ = (
        "columns",
        "context_at",
        "count",
        "first_seen",
        "first_touch",
        "identifiers",
        "last_seen",
        "last_touch",
        "runs",
        "traits",
    )

    def __init__(self) -> None:
        self.count = 0
        self.first_seen: datetime | None = None
        self.last_seen: datetime | None = None
        self.identifiers: list[tuple[Key, str] | None] = [None] * len(IDENTIFIER_COLUMNS)
        self.traits: list[tuple[Key, dict[str, Any]]] = []  # in fold order
        self.first_touch: tuple[Key, tuple[str | None, ...]] | None = None
        self.last_touch: tuple[Key, tuple[str | None, ...]] | None = None
        # Runs of equal context tuples in fold order, each with the key of its last message;
        # most events of a sender repeat the previous tuple, so comparing whole tuples (in C)
        # beats keeping each column's latest value per event. ``columns`` replaces them once
        # folds are combined.
        self.runs: list[list[Any]] = []
        self.columns: list[tuple[Key, str] | None] | None = None
        self.context_at: datetime | None = None

    def add(
        self,
        message: Message,
        enriched: tuple[str | None, ...],
        key: Key,
        default_region: str | None,
    ) -> None:
        """Fold one more message; ``key`` must come after those of the messages before."""
        timestamp = key[0]
        if not self.count:
            self.first_seen = timestamp
        self.count += 1
        self.last_seen = timestamp
        identifiers = self.identifiers
        if message.user_id:
            identifiers[0] = (key, message.user_id)
        if message.anonymous_id:
            identifiers[3] = (key, message.anonymous_id)

        context = message.context
        if (message.traits and message.type == "identify") or (context and "traits" in context):
            traits = message_traits(message)
            if traits:
                self.traits.append((key, traits))
                email, phone = message_contacts(message, default_region)
                if email:
                    identifiers[1] = (key, email)
                if phone:
                    identifiers[2] = (key, phone)

        utm = enriched[_UTM_SLICE]
        if any(utm):
            if self.first_touch is None:
                self.first_touch = (key, utm)
            self.last_touch = (key, utm)

        values = _context_of(enriched)
        if context and "device" in context:
            values += _device_ids(message)
        else:
            values += _NO_DEVICE
        if any(values):
            self.context_at = timestamp
            runs = self.runs
            if runs and runs[-1][0] == values:
                runs[-1][1] = key
            else:
                runs.append([values, key])

    def absorb(self, other: SenderFold) -> None:
        """Combine ``other`` (a fold of other messages of the same profile) into this one, as
        if all the messages had been added in fold order."""
        self.count += other.count
        self.first_seen = _least(self.first_seen, other.first_seen)
        self.last_seen = _greatest(self.last_seen, other.last_seen)
        self.identifiers = [
            _later(mine, theirs)
            for mine, theirs in zip(self.identifiers, other.identifiers, strict=True)
        ]
        self.traits = sorted(self.traits + other.traits, key=itemgetter(0))
        touches = [t for t in (self.first_touch, other.first_touch) if t is not None]
        self.first_touch = min(touches, key=itemgetter(0)) if touches else None
        self.last_touch = _later(self.last_touch, other.last_touch)
        self.columns = [
            _later(mine, theirs)
            for mine, theirs in zip(self._columns(), other._columns(), strict=True)
        ]
        self.runs = []
        self.context_at = _greatest(self.context_at, other.context_at)

    def _columns(self) -> list[tuple[Key, str] | None]:
        """Each context column's latest non-empty value, with its message's key."""
        if self.columns is not None:
            return self.columns
        latest: list[tuple[Key, str] | None] = [None] * len(CONTEXT_COLUMNS)
        for values, key in reversed(self.runs):
            for index, value in enumerate(values):
                if value and latest[index] is None:
                    latest[index] = (key, value)
        return latest

    def row(self, profile_id: int) -> dict[str, Any]:
        """The profile row this fold describes (its ``event_count`` is the fold's count)."""
        traits: dict[str, Any] = {}
        for _, sent in self.traits:
            traits = merge_traits(traits, sent)
        row: dict[str, Any] = {
            "profile_id": profile_id,
            **{
                column: None if found is None else found[1]
                for column, found in zip(IDENTIFIER_COLUMNS, self.identifiers, strict=True)
            },
            "traits": orjson.dumps(traits).decode(),
            "traits_updated_at": self.traits[-1][0][0] if self.traits else None,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "first_touch_at": self.first_touch[0][0] if self.first_touch else None,
            "last_touch_at": self.last_touch[0][0] if self.last_touch else None,
            "context_updated_at": self.context_at,
            "event_count": self.count,
            **{
                column: None if found is None else found[1]
                for column, found in zip(CONTEXT_COLUMNS, self._columns(), strict=True)
            },
        }
        empty = (None,) * len(UTM_COLUMNS)
        row.update(
            zip(FIRST_UTM_COLUMNS, self.first_touch[1] if self.first_touch else empty, strict=True)
        )
        row.update(
            zip(LAST_UTM_COLUMNS, self.last_touch[1] if self.last_touch else empty, strict=True)
        )
        return row


def _later(mine: tuple[Key, Any] | None, theirs: tuple[Key, Any] | None) -> Any:
    if mine is None:
        return theirs
    if theirs is None:
        return mine
    return theirs if theirs[0] > mine[0] else mine


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _device_ids(message: Message) -> tuple[str | None, str | None]:
    device = message.context.get("device") if message.context else None
    if not isinstance(device, dict):
        return _NO_DEVICE
    device_id, advertising_id = device.get("id"), device.get("advertisingId")
    return (
        str(device_id) if device_id not in (None, "") else None,
        str(advertising_id) if advertising_id not in (None, "") else None,
    )


def fold_messages(
    messages: list[Message], groups: list[Any], default_region: str | None = None
) -> dict[Any, SenderFold]:
    """Fold ``messages`` per group (``groups[i]`` is the group of ``messages[i]``), in fold
    order: by timestamp, then position in the batch."""
    folds: dict[Any, SenderFold] = {}
    order = sorted(range(len(messages)), key=lambda i: messages[i].timestamp)
    for index in order:
        message = messages[index]
        group = groups[index]
        fold = folds.get(group)
        if fold is None:
            fold = folds[group] = SenderFold()
        fold.add(message, enrichment_values(message), (message.timestamp, index), default_region)
    return folds


def fold_batch(
    messages: Iterable[Message], default_region: str | None = None
) -> list[dict[str, Any]]:
    """One profile row per ``profile_id`` in the batch, describing only this batch (its
    ``event_count`` is the batch's count). Raises ``ValueError`` for a message without a
    ``profile_id``: identity must be resolved first."""
    messages = list(messages)
    profiles: list[Any] = []
    for message in messages:
        if message.profile_id is None:
            raise ValueError(
                f"message {message.message_id} has no profile_id; resolve identity first"
            )
        profiles.append(message.profile_id)
    folds = fold_messages(messages, profiles, default_region)
    return [fold.row(profile_id) for profile_id, fold in folds.items()]


# --- writing ---------------------------------------------------------------------------------


def _latest(column: str) -> str:
    return (
        f"{column} = CASE WHEN excluded.last_seen >= profiles.last_seen "
        f"THEN coalesce(excluded.{column}, profiles.{column}) "
        f"ELSE coalesce(profiles.{column}, excluded.{column}) END"
    )


def _latest_context(column: str) -> str:
    return (
        f"{column} = CASE WHEN profiles.context_updated_at IS NULL "
        "OR excluded.context_updated_at >= profiles.context_updated_at "
        f"THEN coalesce(excluded.{column}, profiles.{column}) "
        f"ELSE coalesce(profiles.{column}, excluded.{column}) END"
    )


_EARLIER_TOUCH = (
    "excluded.first_touch_at IS NOT NULL AND (profiles.first_touch_at IS NULL "
    "OR excluded.first_touch_at < profiles.first_touch_at)"
)
_LATER_TOUCH = (
    "excluded.last_touch_at IS NOT NULL AND (profiles.last_touch_at IS NULL "
    "OR excluded.last_touch_at >= profiles.last_touch_at)"
)
_COLUMN_LIST = ", ".join(PROFILE_COLUMNS)


@lru_cache(maxsize=512)
def upsert_sql(present: frozenset[str]) -> str:
    """The upsert of the staged rows, setting only what they can change: ``present`` names
    the columns with a value in at least one staged row. Every other column would be set to
    its own value (each rule keeps the stored value when the staged one is NULL), and DuckDB
    pays for each column an UPDATE sets (about 1 ms per column per statement), so a batch
    without click ids, cookies or traits skips those columns. Column names come from this
    module, never from input; values arrive in the staged table."""
    sets = [_latest(c) for c in IDENTIFIER_COLUMNS if c in present]
    if "traits_updated_at" in present:
        sets += [
            """traits = CASE
        WHEN excluded.traits_updated_at IS NULL THEN profiles.traits
        WHEN profiles.traits_updated_at IS NULL
            OR excluded.traits_updated_at >= profiles.traits_updated_at
            THEN json_merge_patch(profiles.traits, excluded.traits)
        ELSE json_merge_patch(excluded.traits, profiles.traits) END""",
            "traits_updated_at = greatest(profiles.traits_updated_at, excluded.traits_updated_at)",
        ]
    sets += [
        "first_seen = least(profiles.first_seen, excluded.first_seen)",
        "last_seen = greatest(profiles.last_seen, excluded.last_seen)",
        "event_count = profiles.event_count + excluded.event_count",
    ]
    if "first_touch_at" in present:
        sets += [
            f"{c} = CASE WHEN {_EARLIER_TOUCH} THEN excluded.{c} ELSE profiles.{c} END"
            for c in FIRST_UTM_COLUMNS
        ]
        sets.append("first_touch_at = least(profiles.first_touch_at, excluded.first_touch_at)")
    if "last_touch_at" in present:
        sets += [
            f"{c} = CASE WHEN {_LATER_TOUCH} THEN excluded.{c} ELSE profiles.{c} END"
            for c in LAST_UTM_COLUMNS
        ]
        sets.append("last_touch_at = greatest(profiles.last_touch_at, excluded.last_touch_at)")
    sets += [_latest_context(c) for c in CONTEXT_COLUMNS if c in present]
    if "context_updated_at" in present:
        sets.append(
            "context_updated_at = "
            "greatest(profiles.context_updated_at, excluded.context_updated_at)"
        )
    assignments = ",\n    ".join(sets)
    return f"""
INSERT INTO profiles ({_COLUMN_LIST})
SELECT {_COLUMN_LIST} FROM {_STAGE}
ON CONFLICT (profile_id) DO UPDATE SET
    {assignments}
"""


ALL_COLUMNS = frozenset(PROFILE_COLUMNS)


# Used after a merge: the folded row replaces the winner's row entirely.
REPLACE_SQL = f"""
INSERT INTO profiles ({_COLUMN_LIST})
SELECT {_COLUMN_LIST} FROM {_STAGE}
ON CONFLICT (profile_id) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in PROFILE_COLUMNS if c != "profile_id")}
"""


@contextmanager
def _staged(engine: Engine, rows: list[dict[str, Any]]) -> Iterator[frozenset[str]]:
    """Load ``rows`` into a temporary table shaped like ``profiles`` for one set-based
    statement; yields the columns that have a value in some row. A table (not a view over
    Arrow) keeps this within the engine interface."""
    table = pa.Table.from_pylist(rows, schema=PROFILE_SCHEMA)
    present = frozenset(
        name
        for name, column in zip(table.column_names, table.columns, strict=True)
        if column.null_count < len(column)
    )
    engine.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE} AS SELECT * FROM profiles LIMIT 0")
    try:
        engine.append(_STAGE, table)
        yield present
    finally:
        engine.execute(f"DROP TABLE IF EXISTS {_STAGE}")


def upsert_profiles(
    engine: Engine, messages: list[Message], *, default_phone_region: str | None = None
) -> None:
    """Fold a batch of resolved messages into the ``profiles`` table (rules in the module
    docstring): one pass in Python, one upsert statement, inside a transaction."""
    upsert_profile_rows(engine, fold_batch(messages, default_phone_region))


def upsert_profile_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Upsert folded profile rows (``SenderFold.row``), as :func:`upsert_profiles` does."""
    if not rows:
        return
    with engine.transaction(), _staged(engine, rows) as present:
        engine.execute(upsert_sql(present))


# --- merging profile rows ----------------------------------------------------------------


def merge_profile_rows(engine: Engine, winners: Mapping[int, int]) -> None:
    """Fold the rows of merged profiles into their winners' rows and delete the merged rows.

    ``winners`` maps each merged profile id to its final winner (chains already followed).
    A winner without a row yet (say, created in the same batch) gets the merged rows' values.
    """
    if not winners:
        return
    ids = sorted(set(winners) | set(winners.values()))
    with engine.transaction():
        stored = engine.arrow(
            f"SELECT {_COLUMN_LIST} FROM profiles WHERE profile_id IN (SELECT unnest(?::BIGINT[]))",
            [ids],
        ).to_pylist()
        groups: dict[int, list[dict[str, Any]]] = {}
        for row in stored:
            groups.setdefault(winners.get(row["profile_id"], row["profile_id"]), []).append(row)
        merged = [fold_profile_rows(winner, rows) for winner, rows in sorted(groups.items())]
        engine.execute(
            "DELETE FROM profiles WHERE profile_id IN (SELECT unnest(?::BIGINT[]))",
            [sorted(winners)],
        )
        if merged:
            with _staged(engine, merged):
                engine.execute(REPLACE_SQL)


def _at(value: datetime | None) -> datetime:
    return value if value is not None else datetime.min


def fold_profile_rows(profile_id: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One profile row made of several (the winner's and the merged ones'), by the same
    latest-wins rules as a batch. Ties go to the lowest profile id, the merge winner."""

    def newest_last(column: str) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda r: (_at(r[column]), -r["profile_id"]))

    out: dict[str, Any] = {"profile_id": profile_id}
    for column in IDENTIFIER_COLUMNS:
        out[column] = _last_non_null(newest_last("last_seen"), column)

    traits: dict[str, Any] = {}
    for row in newest_last("traits_updated_at"):
        stored = row["traits"]
        traits = merge_traits(traits, orjson.loads(stored) if stored else {})
    out["traits"] = orjson.dumps(traits).decode()
    out["traits_updated_at"] = _max(row["traits_updated_at"] for row in rows)

    out["first_seen"] = min(row["first_seen"] for row in rows)
    out["last_seen"] = max(row["last_seen"] for row in rows)
    out["event_count"] = sum(row["event_count"] or 0 for row in rows)

    touched = [row for row in rows if row["first_touch_at"] is not None]
    first = min(touched, key=lambda r: (r["first_touch_at"], r["profile_id"]), default=None)
    out["first_touch_at"] = first["first_touch_at"] if first else None
    for column in FIRST_UTM_COLUMNS:
        out[column] = first[column] if first else None
    touched = [row for row in rows if row["last_touch_at"] is not None]
    last = max(touched, key=lambda r: (r["last_touch_at"], -r["profile_id"]), default=None)
    out["last_touch_at"] = last["last_touch_at"] if last else None
    for column in LAST_UTM_COLUMNS:
        out[column] = last[column] if last else None

    by_context = newest_last("context_updated_at")
    for column in CONTEXT_COLUMNS:
        out[column] = _last_non_null(by_context, column)
    out["context_updated_at"] = _max(row["context_updated_at"] for row in rows)
    return out


def _last_non_null(rows: list[dict[str, Any]], column: str) -> Any:
    for row in reversed(rows):
        if row[column] is not None:
            return row[column]
    return None


def _max(values: Iterable[datetime | None]) -> datetime | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None
