"""The collection pipeline shared by the HTTP API and bulk import:
de-duplicate → enrich → resolve identity → store (events, identities, profiles) in one
warehouse transaction. An ingest either stores all of its messages or none of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

import orjson
import pyarrow as pa

from segmint.collect.dedupe import RecentMessageIds
from segmint.collect.enrich import Enricher
from segmint.collect.geo import GeoLocator
from segmint.collect.identity import (
    IdentityChanges,
    IdentityResolver,
    apply_identity_changes,
    signature,
)
from segmint.collect.messages import ENRICHMENT_FIELDS, Message, enrichment_values
from segmint.collect.profiles import SenderFold, fold_batch, fold_messages, upsert_profile_rows
from segmint.memory import cyclic_gc_paused
from segmint.settings import Settings
from segmint.warehouse.engine import Engine

log = logging.getLogger(__name__)

_TS = pa.timestamp("us")
_EVENT_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("profile_id", pa.int64()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("user_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("group_id", pa.string()),
        ("previous_id", pa.string()),
        ("timestamp", _TS),
        ("original_timestamp", _TS),
        ("sent_at", _TS),
        ("received_at", _TS),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
        ("integrations", pa.string()),
        ("source", pa.string()),
        *((name, pa.string()) for name in ENRICHMENT_FIELDS),
    ]
)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_JSON_OPTION = orjson.OPT_NON_STR_KEYS
_JSON_COLUMNS = ("properties", "traits", "context", "integrations")


def _json_column(values: Iterable[dict[str, Any]]) -> pa.Array:
    # orjson's bytes go to Arrow as they are (it checks they are UTF-8): no str round trip.
    # Parsed JSON only has string keys, and orjson encodes those ~40% faster without
    # OPT_NON_STR_KEYS (same bytes); a column with another key type (a library caller's
    # dict) is encoded again with the option.
    dumps = orjson.dumps
    values = list(values)
    try:
        encoded = [dumps(value) if value else None for value in values]
    except orjson.JSONEncodeError:
        encoded = [dumps(value, option=_JSON_OPTION) if value else None for value in values]
    return pa.array(encoded, pa.string())


def events_table(messages: list[Message]) -> pa.Table:
    """The warehouse rows of resolved messages, as one Arrow table, built column by column:
    each column is one C-level pass (``map`` with an attribute or item getter) over the batch."""
    enriched = [enrichment_values(message) for message in messages]
    enrichment_index = {name: index for index, name in enumerate(ENRICHMENT_FIELDS)}
    arrays: list[pa.Array] = []
    for column in _EVENT_SCHEMA:
        name = column.name
        if name in _JSON_COLUMNS:
            arrays.append(_json_column(map(attrgetter(name), messages)))
        elif name in enrichment_index:
            values = list(map(itemgetter(enrichment_index[name]), enriched))
            arrays.append(pa.array(values, column.type))
        else:
            arrays.append(pa.array(list(map(attrgetter(name), messages)), column.type))
    return pa.Table.from_arrays(arrays, schema=_EVENT_SCHEMA)


_PROFILE_ID = _EVENT_SCHEMA.get_field_index("profile_id")
# What storing a message still needs of its context once its events row is built: its
# traits (identity, profile traits) and device (profile columns).
_CONTEXT_KEPT = ("traits", "device")

Extras = dict[int, tuple[dict[str, Any], dict[str, Any]]]
"""Position → (traits, kept context) of the messages that have any."""


@dataclass(slots=True)
class Senders:
    """A prepared batch's messages grouped by identity signature: the identifiers identity
    resolution looks up (user id, anonymous id, an alias's previous id, email, phone).

    Messages with the signature of an earlier message of the batch are resolved to the
    profile that one is (finally) resolved to, and change nothing in the identity map: every
    identifier it has was linked, or found to belong to another customer, by the earlier
    message, and nothing later unlinks it. So storing resolves one message per signature,
    and folds profiles from a fold per signature made ahead (``SenderFold``s combine exactly),
    instead of handling every message."""

    index: pa.Array
    """Each message's signature (int32, the position in ``firsts`` and ``folds``)."""
    firsts: list[int]
    """Each signature's first message."""
    folds: list[SenderFold]


# Above this share of signatures per message, storing by signature saves less than the folds
# cost to send (a batch of mostly distinct senders: 7% slower than message by message).
_MOST_SIGNATURES = 0.5


def senders_of(messages: list[Message]) -> Senders | None:
    """Group ``messages`` by signature and fold each group (see :class:`Senders`); ``None``
    when most messages have a signature of their own, which are better stored one by one."""
    numbers: dict[tuple[str | None, ...], int] = {}
    index: list[int] = []
    firsts: list[int] = []
    for position, message in enumerate(messages):
        key = signature(message)
        number = numbers.get(key)
        if number is None:
            number = numbers[key] = len(firsts)
            firsts.append(position)
        index.append(number)
    if len(firsts) > _MOST_SIGNATURES * len(messages):
        return None
    folds = fold_messages(messages, index)
    return Senders(pa.array(index, pa.int32()), firsts, [folds[n] for n in range(len(firsts))])


class Prepared:
    """Messages ready to store: enriched, with their events-table rows already built (in the
    same order; ``profile_id`` is filled in when identity is resolved, at storing).

    Pickled (to come back from a preparation process) it is its events rows, the traits and
    the context's traits and device of the few messages that have them, and its
    :class:`Senders`, which the preparation process computes while pickling. Unpickled, its
    messages are rebuilt from those only when asked for (storing does not need them unless
    the batch has duplicates)."""

    __slots__ = ("_messages", "events", "extras", "senders")

    def __init__(
        self,
        messages: list[Message] | None,
        events: pa.Table,
        *,
        extras: Extras | None = None,
        senders: Senders | None = None,
    ) -> None:
        if messages is None and extras is None:
            raise ValueError("a Prepared needs its messages, or the extras to rebuild them")
        self._messages = messages
        self.events = events
        self.extras = extras
        self.senders = senders

    @property
    def messages(self) -> list[Message]:
        """The messages (rebuilt with what storing needs, the first time, if unpickled)."""
        if self._messages is None:
            assert self.extras is not None
            self._messages = _rebuild_messages(self.events, self.extras)
        return self._messages

    def __reduce__(self) -> tuple[Any, ...]:
        messages = self.messages
        extras: Extras = {}
        for index, message in enumerate(messages):
            context = message.context
            kept = {k: context[k] for k in _CONTEXT_KEPT if k in context} if context else {}
            if message.traits or kept:
                extras[index] = (message.traits, kept)
        senders = self.senders or senders_of(messages)
        return (_unpickle_prepared, (self.events, extras, senders))


def _unpickle_prepared(events: pa.Table, extras: Extras, senders: Senders | None) -> Prepared:
    return Prepared(None, events, extras=extras, senders=senders)


_LEAN_COLUMNS = (
    "message_id",
    "type",
    "timestamp",
    "received_at",
    "user_id",
    "anonymous_id",
    "previous_id",
)


def _rebuild_messages(events: pa.Table, extras: Extras) -> list[Message]:
    """The messages of ``events`` with what storing needs: ids, type, times, enrichment, and
    the ``extras`` (traits, context traits and device) of those that have them."""
    with cyclic_gc_paused():  # no collection scans the new objects while they are made
        columns = [_python_values(events.column(name)) for name in _LEAN_COLUMNS]
        enriched = zip(
            *(events.column(name).to_pylist() for name in ENRICHMENT_FIELDS), strict=True
        )
        messages = [
            Message(
                message_id,
                kind,
                "",
                timestamp,
                received_at,
                user_id,
                anonymous_id,
                None,
                None,
                previous_id,
                None,
                None,
                {},
                {},
                {},
                {},
                None,
                None,
                None,
                values,
            )
            for (
                message_id,
                kind,
                timestamp,
                received_at,
                user_id,
                anonymous_id,
                previous_id,
            ), values in zip(zip(*columns, strict=True), enriched, strict=True)
        ]
        for index, (traits, context) in extras.items():
            messages[index].traits = traits
            messages[index].context = context
    return messages


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """The column's values as Python objects. Timestamps go through their text, which
    ``datetime.fromisoformat`` reads ~7x faster than Arrow makes datetimes."""
    if pa.types.is_timestamp(column.type):
        parse = datetime.fromisoformat
        return [
            None if text is None else parse(text) for text in column.cast(pa.string()).to_pylist()
        ]
    return column.to_pylist()


def _few_times(column: pa.ChunkedArray) -> list[Any]:
    """The values of a timestamp column with few distinct values (the receipt times of a
    batch), each distinct one made once."""
    encoded = column.combine_chunks().dictionary_encode()
    distinct = _python_values(pa.chunked_array([encoded.dictionary]))
    return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]


def prepare(messages: list[Message], enricher: Enricher) -> Prepared:
    """Enrich ``messages`` (those not enriched yet) and build their events-table rows.
    Depends on nothing but the messages, so it can run ahead of storing, in another thread
    or process (bulk import, the HTTP writer)."""
    todo = [message for message in messages if message.enriched is None]
    for message, values in zip(todo, enricher.enrich_rows(todo), strict=True):
        message.enriched = values
    return Prepared(messages, events_table(messages))


@dataclass(slots=True)
class IngestResult:
    """What an ingest did: messages stored, duplicates skipped, profiles merged."""

    stored: int = 0
    duplicates: int = 0
    merges: int = 0
    profile_ids: list[int] = field(default_factory=list)


class Collector:
    """Owns the write side of a warehouse: the de-duplication index and the identity map
    live here, so exactly one Collector may write to a warehouse at a time."""

    def __init__(
        self,
        engine: Engine,
        *,
        enricher: Enricher,
        dedupe_window: timedelta = timedelta(days=7),
        now: datetime | None = None,
    ) -> None:
        self.engine = engine
        self.enricher = enricher
        self.resolver = IdentityResolver(engine)
        self.recent = RecentMessageIds.load(engine, dedupe_window, now or utcnow())
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> Collector:
        geo = GeoLocator(settings.geoip_city_db)
        return cls(
            engine,
            enricher=Enricher(geo),
            dedupe_window=timedelta(hours=settings.dedupe_window_hours),
        )

    def _fresh(self, message_ids: list[str], check_table: bool) -> list[int]:
        """The positions of the messages not seen before: in the recent window, earlier in
        this list, and (when asked) anywhere in the events table."""
        distinct = set(message_ids)
        if len(distinct) == len(message_ids) and self.recent.isdisjoint(distinct):
            fresh = list(range(len(message_ids)))  # the usual case, without a loop
        else:
            fresh = []
            distinct = set()
            recent = self.recent
            for index, message_id in enumerate(message_ids):
                if message_id in recent or message_id in distinct:
                    continue
                distinct.add(message_id)
                fresh.append(index)
        if check_table and fresh:
            ids = pa.table({"message_id": pa.array(list(distinct), pa.string())})
            known = {
                row[0]
                for row in self._rows_with(
                    "SELECT e.message_id FROM events e SEMI JOIN _ids USING (message_id)", ids
                )
            }
            if known:
                fresh = [i for i in fresh if message_ids[i] not in known]
        return fresh

    def _rows_with(self, sql: str, ids: pa.Table) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.engine.rows_with(sql, "_ids", ids)  # type: ignore[attr-defined]
        return rows

    def prepare(self, messages: list[Message]) -> Prepared:
        """Enrich the messages and build their events-table rows (see :func:`prepare`)."""
        return prepare(messages, self.enricher)

    def ingest(self, messages: list[Message], *, check_table: bool = False) -> IngestResult:
        """Store validated messages (all or nothing) and return what happened.

        Messages whose messageId was already stored are skipped and counted as duplicates.
        """
        return self.store(self.prepare(messages), check_table=check_table)

    def store(self, prepared: Prepared, *, check_table: bool = False) -> IngestResult:
        """Store prepared messages (all or nothing), as :meth:`ingest` does. A batch prepared
        in another process with its :class:`Senders` is stored by signature unless some of
        its messages are duplicates."""
        with self._lock:
            ids = prepared.events.column("message_id").to_pylist()
            keep = self._fresh(ids, check_table)
            if not keep:
                return IngestResult(duplicates=len(ids))
            senders = prepared.senders
            if (
                senders is not None
                and len(keep) == len(ids)
                and self.resolver.default_phone_region is None
            ):
                return self._store_senders(prepared, senders, ids)
            return self._store_messages(prepared, keep)

    def _store_messages(self, prepared: Prepared, keep: list[int]) -> IngestResult:
        """Store the messages at positions ``keep`` one by one (resolved and folded)."""
        messages = prepared.messages
        now = utcnow()
        result = IngestResult(duplicates=len(messages) - len(keep))
        events = prepared.events
        if len(keep) < len(messages):
            fresh = [messages[i] for i in keep]
            events = events.take(pa.array(keep, pa.int64()))
        else:
            fresh = messages
        changes = self.resolver.resolve(fresh)
        profile_ids = pa.array(list(map(attrgetter("profile_id"), fresh)), pa.int64())
        self._write(events, profile_ids, changes, fold_batch(fresh), now)
        self.recent.add_all((m.received_at, m.message_id) for m in fresh)
        self.recent.prune(now)
        result.stored = len(fresh)
        result.merges = len(changes.merges)
        result.profile_ids = profile_ids.to_pylist()
        return result

    def _store_senders(self, prepared: Prepared, senders: Senders, ids: list[str]) -> IngestResult:
        """Store a batch of new messages by its signatures (see :class:`Senders`)."""
        now = utcnow()
        events = prepared.events
        firsts = senders.firsts
        extras = prepared.extras
        if extras is None:
            messages = prepared.messages
            firsts_messages = [messages[i] for i in firsts]
        else:
            lean = events.select([*_LEAN_COLUMNS, *ENRICHMENT_FIELDS])
            firsts_messages = _rebuild_messages(
                lean if len(firsts) == len(ids) else lean.take(pa.array(firsts, pa.int64())),
                {n: extras[i] for n, i in enumerate(firsts) if i in extras},
            )
        changes = self.resolver.resolve(firsts_messages)
        sender_profiles = [m.profile_id for m in firsts_messages]
        profile_ids = pa.array(sender_profiles, pa.int64()).take(senders.index)
        folds: dict[int, SenderFold] = {}
        for profile_id, fold in zip(sender_profiles, senders.folds, strict=True):
            assert profile_id is not None
            combined = folds.get(profile_id)
            if combined is None:
                folds[profile_id] = fold
            else:
                combined.absorb(fold)
        rows = [fold.row(profile_id) for profile_id, fold in folds.items()]
        self._write(events, profile_ids, changes, rows, now)
        self.recent.add_new(_few_times(events.column("received_at")), ids)
        self.recent.prune(now)
        return IngestResult(
            stored=len(ids), merges=len(changes.merges), profile_ids=profile_ids.to_pylist()
        )

    def _write(
        self,
        events: pa.Table,
        profile_ids: pa.Array,
        changes: IdentityChanges,
        profile_rows: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """Write a resolved batch in one transaction, then commit its identity changes to
        the resolver (or discard them if the transaction failed)."""
        events = events.set_column(_PROFILE_ID, _EVENT_SCHEMA.field(_PROFILE_ID), profile_ids)
        try:
            with self.engine.transaction():
                self.engine.append("events", events)
                apply_identity_changes(self.engine, changes, merged_at=now)
                upsert_profile_rows(self.engine, profile_rows)
        except BaseException:
            self.resolver.discard()
            raise
        self.resolver.commit(changes)
