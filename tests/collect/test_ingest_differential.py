"""The fast ingest path gives exactly what the per-event path gives.

The collector's fast path (validation fast path, batch enrichment with caches, column-wise
Arrow building, binary JSON-lines reading) is compared with the per-event reference: the full
validator (``validate_message_strictly``), ``Enricher.enrich`` per message, a row-by-row
events table and a text-mode reader, all defined or kept for this purpose. The same generated
file (anonymous-then-identified users, merges of existing profiles, aliases, duplicates, bad
rows, odd shapes) goes through both, and the warehouse tables must match row for row.

The only non-deterministic inputs are the wall clock (``received_at``, which is also the
``timestamp`` of a message that has none, and ``profile_merges.merged_at``) and the random
``messageId`` given to a message without one. The clock is frozen for both runs and every
imported row has a ``messageId``, so every column of every table is compared.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from segmint.collect import importer, pipeline, profiles
from segmint.collect.enrich import Enricher
from segmint.collect.geo import GeoLocator
from segmint.collect.identity import apply_identity_changes
from segmint.collect.importer import ImportSummary, Row, import_file, import_rows, read_jsonl
from segmint.collect.messages import ENRICHMENT_FIELDS, Message
from segmint.collect.pipeline import (
    _EVENT_SCHEMA,
    Collector,
    IngestResult,
    Prepared,
    events_table,
    utcnow,
)
from segmint.collect.profiles import upsert_profiles
from segmint.collect.validate import validate_message, validate_message_strictly
from segmint.errors import SegmintError
from segmint.generate.shop import generate_events
from segmint.warehouse import open_warehouse

END = datetime(2025, 12, 1)
RECEIVED = datetime(2025, 12, 2, 8, 0, 0)
TABLES = {
    "events": "message_id",
    "profiles": "profile_id",
    "identities": "id_type, id_value",
    "profile_merges": "merged_profile_id, into_profile_id",
}

# Shapes the fast paths must hand over to the full rules, or treat exactly as they do.
ODD_MESSAGES: list[Any] = [
    {"type": "track", "event": "e", "userId": 5, "messageId": "o-1"},
    {"type": "track", "event": "e", "userId": " ", "anonymousId": " a ", "messageId": "o-2"},
    {
        "type": "identify",
        "userId": "u",
        "timestamp": "2025-01-01T00:00:00+05:00",
        "sentAt": "2025-01-01",
        "messageId": "o-3",
    },
    {"type": "identify", "userId": "u", "timestamp": "2025-01-01Z", "messageId": "o-4"},
    {  # sent (by its own clock) before it happened
        "type": "track",
        "event": "e",
        "userId": "u",
        "timestamp": "2030-01-01T00:00:00Z",
        "sentAt": "2025-01-01T00:00:00Z",
        "messageId": "o-4b",
    },
    {"type": "track", "event": "x" * 300, "userId": "u", "messageId": "o-5"},
    {"type": "track", "event": "  ", "userId": "u", "messageId": "o-5b"},
    {"type": "group", "userId": "u", "groupId": "", "messageId": "o-6"},
    {"type": "alias", "userId": "u", "previousId": " u ", "messageId": "o-7"},
    {"type": "page", "userId": "u", "name": 5, "messageId": "o-8"},
    {"type": "page", "userId": "u" + " " * 2000, "messageId": "o-9"},
    {"type": "page", "userId": "u" * 2000, "messageId": "o-9b"},
    {"type": ["x"], "userId": "u", "messageId": "o-10"},
    {"type": "track", "event": "x", "anonymousId": "a", "messageId": " "},
    {"type": "track", "event": "x", "anonymousId": "a", "messageId": 12},
    {"type": "identify", "userId": "u", "context": {"traits": {"a": 1}}, "messageId": "o-11"},
    {"type": "track", "event": "x", "userId": "u", "timestamp": " 2025-01-01T00:00:00.5Z "},
    {"type": "track", "event": "x", "userId": "u", "timestamp": 1700000000, "messageId": "o-12"},
    {"type": "track", "event": "x", "userId": "u", "sentAt": "yesterday", "messageId": "o-13"},
    {"type": "track", "event": "x", "userId": True, "messageId": "o-14"},
    {"type": "screen", "anonymousId": 3.5, "integrations": [], "messageId": "o-15"},
    {"event": "x", "userId": "u", "messageId": "o-16"},
    "not an object",
    {
        "type": "page",
        "anonymousId": "a",
        "messageId": "o-17",
        "properties": {
            "url": " https://s.example/x?utm_source=%20p%20&gclid=&gclid=g ",
            "search": 3,
        },
        "context": {
            "page": "flat",
            "campaign": {"name": "", "source": None},
            "cookies": ["_fbp"],
            "fbp": "fb.1.1.1",
            "userAgent": "  ",
            "locale": "en_US.UTF-8",
            "location": {"country": " "},
            "traits": {"address": {"country": "france", "state": "IDF"}},
        },
    },
    {
        "type": "identify",
        "userId": "u",
        "messageId": "o-18",
        "traits": {"address": {"city": "Lyon"}},
        "context": {"ip": "::ffff:193.0.6.139", "page": {"search": "?fbclid=abc", "path": "/p"}},
    },
]


@functools.cache
def scenario_lines(users: int = 120, seed: int = 11) -> list[bytes]:
    """JSON lines of a generated shop plus merges, aliases, odd shapes, bad rows and
    duplicates, interleaved so that they land in different chunks."""
    events = [copy.deepcopy(e) for e in generate_events(users=users, days=30, seed=seed, end=END)]
    anonymous = list(
        dict.fromkeys(
            e["anonymousId"] for e in events if e.get("anonymousId") and not e.get("userId")
        )
    )
    known = list(dict.fromkeys(e["userId"] for e in events if e.get("userId")))
    assert len(anonymous) > 45 and len(known) > 3, "the generator changed: adjust the scenario"
    extra: list[Any] = []
    # Two existing anonymous profiles proven to be one person by a shared email.
    for n, (a, b) in enumerate(zip(anonymous[0:20:2], anonymous[1:20:2], strict=True)):
        for anon in (a, b):
            extra.append(
                {
                    "type": "identify",
                    "anonymousId": anon,
                    "messageId": f"x-mail-{n}-{anon}",
                    "timestamp": f"2025-11-2{n % 10}T10:00:00Z",
                    "traits": {"email": f" Shared{n}@Example.com ", "plan": n},
                }
            )
    # Aliases of anonymous ids onto known users, and of two known users (never merged).
    for n, (anon, user) in enumerate(zip(anonymous[20:30], known, strict=False)):
        extra.append(
            {
                "type": "alias",
                "previousId": anon,
                "userId": user,
                "messageId": f"x-alias-{n}",
                "timestamp": "2025-11-30T01:00:00Z",
            }
        )
    extra.append(
        {
            "type": "alias",
            "previousId": known[1],
            "userId": known[2],
            "messageId": "x-alias-users",
            "timestamp": "2025-11-30T02:00:00Z",
        }
    )
    # Devices linked by phone, numeric user ids, campaign numbers, odd query strings.
    for n, anon in enumerate(anonymous[30:36]):
        extra.append(
            {
                "type": "track",
                "event": " viewed ",
                "anonymousId": anon,
                "userId": 1000 + n,
                "messageId": f"x-phone-{n}",
                "timestamp": "2025-11-29T12:00:00+02:00",
                "context": {
                    "traits": {"phone": f"+1 415 555 01{n % 3:02d}"},
                    "locale": "pt_br",
                    "campaign": {"source": "x", "term": 42},
                    "device": {"id": 7, "advertisingId": ""},
                    "page": {
                        "url": "https://s.example/p?gclid=%20g1%20&utm_source=y",
                        "search": "?fbclid=f&gclid=g2",
                    },
                },
            }
        )
    extra.append(
        {
            "type": "page",
            "anonymousId": anonymous[40],
            "messageId": "x-page-props",
            "timestamp": "2025-11-29T12:00:00",
            "properties": {"url": "https://s.example/a/b?utm_medium=email", "referrer": "r"},
            "context": {
                "location": {"country": "United Kingdom", "city": "London"},
                "cookies": {"_fbc": "fb.1.2.3"},
            },
        }
    )
    extra.append(
        {
            "type": "group",
            "userId": known[0],
            "groupId": "g1",
            "messageId": "x-group",
            "timestamp": "2025-11-29T12:00:00Z",
            "traits": {"name": "ACME", "address": {"country": "DE"}},
        }
    )
    bad: list[Any] = [
        {"type": "track", "userId": "u1", "messageId": "b-1"},
        {"type": "track", "event": "x", "messageId": "b-2"},
        {
            "type": "track",
            "event": "x",
            "userId": "u",
            "timestamp": "not a date",
            "messageId": "b-3",
        },
        {"type": "track", "event": "x", "userId": "u", "properties": [1], "messageId": "b-4"},
        {"type": "nope", "userId": "u", "messageId": "b-5"},
        {"type": "alias", "userId": "u", "messageId": "b-6"},
        {"type": "track", "event": "x", "userId": {"a": 1}, "messageId": "b-7"},
        {"type": "track", "event": "x", "userId": "u", "messageId": "m" * 101},
        {"type": "track", "event": "x", "userId": "u", "timestamp": "1960-01-01T00:00:00Z"},
        {"type": "identify", "userId": "u", "messageId": "b-10", "context": "flat"},
        {"type": "track", "event": "x", "userId": "u", "properties": {"blob": "z" * 40000}},
        [1, 2, 3],
    ]
    lines = [orjson.dumps(e) for e in events]
    out: list[bytes] = []
    step = max(1, len(lines) // len(bad))
    for index, line in enumerate(lines):
        out.append(line)
        if index % step == 0 and bad:
            out.append(orjson.dumps(bad.pop()))
        if index % 97 == 50:
            out.append(lines[index // 2])  # a duplicate of an earlier row
    out.extend(orjson.dumps(e) for e in extra)
    out.extend(orjson.dumps(e) for e in ODD_MESSAGES if isinstance(e, dict) and "messageId" in e)
    out.append(b"{not json")
    out.extend(lines[:5])  # duplicates of rows stored in an earlier chunk
    return out


# --- the per-event reference ---------------------------------------------------------------


def reference_read_jsonl(path: Path) -> Iterator[Row]:
    """The text-mode reader the binary one replaced."""
    with path.open("r", encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield Row(number, orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                yield Row(number, line.rstrip("\n")[:2000], error=f"not valid JSON: {exc}")


def reference_events_table(messages: list[Message]) -> pa.Table:
    """Row-by-row events table from each message's ``Enrichment`` object."""

    def as_json(value: dict[str, Any]) -> str | None:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode() if value else None

    rows = []
    for m in messages:
        row = {
            "message_id": m.message_id,
            "profile_id": m.profile_id,
            "type": m.type,
            "event": m.event,
            "name": m.name,
            "user_id": m.user_id,
            "anonymous_id": m.anonymous_id,
            "group_id": m.group_id,
            "previous_id": m.previous_id,
            "timestamp": m.timestamp,
            "original_timestamp": m.original_timestamp,
            "sent_at": m.sent_at,
            "received_at": m.received_at,
            "properties": as_json(m.properties),
            "traits": as_json(m.traits),
            "context": as_json(m.context),
            "integrations": as_json(m.integrations),
            "source": m.source,
        }
        row.update((name, getattr(m.enrichment, name)) for name in ENRICHMENT_FIELDS)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=_EVENT_SCHEMA)


class ReferenceCollector(Collector):
    """The collector as it was: ``Enricher.enrich`` per message, a row-by-row table, nothing
    prepared ahead (so profiles are folded from the ``Enrichment`` objects too). What was
    prepared for it is ignored but the messages."""

    def store(self, prepared: Prepared, *, check_table: bool = False) -> IngestResult:
        for message in prepared.messages:
            message.enriched = None
        return self.ingest(prepared.messages, check_table=check_table)

    def ingest(self, messages: list[Message], *, check_table: bool = False) -> IngestResult:
        now = utcnow()
        fresh = [messages[i] for i in self._fresh([m.message_id for m in messages], check_table)]
        result = IngestResult(duplicates=len(messages) - len(fresh))
        if not fresh:
            return result
        for message in fresh:
            assert message.enriched is None
            message.enrichment = self.enricher.enrich(message)
        changes = self.resolver.resolve(fresh)
        with self.engine.transaction():
            self.engine.append("events", reference_events_table(fresh))
            apply_identity_changes(self.engine, changes, merged_at=now)
            upsert_profiles(self.engine, fresh)
        self.resolver.commit(changes)
        self.recent.add_all((m.received_at, m.message_id) for m in fresh)
        self.recent.prune(now)
        result.stored = len(fresh)
        result.merges = len(changes.merges)
        return result


# --- comparing ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def geo() -> GeoLocator:
    return GeoLocator()


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "events.jsonl"
    path.write_bytes(b"\n".join(scenario_lines()) + b"\n")
    return path


def tables(collector: Collector) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table, order in TABLES.items():
        out[table] = collector.engine.arrow(f"SELECT * FROM {table} ORDER BY {order}").to_pylist()
    return out


def run_import(
    collector: Collector, rows: Iterator[Row], rejected: Path, chunk_size: int
) -> ImportSummary:
    return import_rows(
        collector, rows, source="import:events.jsonl", rejected_path=rejected, chunk_size=chunk_size
    )


@pytest.mark.parametrize(
    ("chunk_size", "processes"),
    [(50_000, 0), (173, 0), pytest.param(173, 2, marks=pytest.mark.slow)],
    ids=["one-chunk", "chunks", "chunks-in-preparation-processes"],
)
def test_fast_import_stores_what_the_per_event_path_stores(
    scenario_file: Path,
    geo: GeoLocator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunk_size: int,
    processes: int,
) -> None:
    # With preparation processes the file is read, validated, enriched and turned into rows
    # there, and what storing needs comes back through files (segmint.collect.workers).
    for module in (importer, pipeline, sys.modules[__name__]):
        monkeypatch.setattr(module, "utcnow", lambda: RECEIVED)
    fast = Collector(open_warehouse(None), enricher=Enricher(geo))
    fast_summary = import_file(
        fast,
        scenario_file,
        rejected_path=tmp_path / "fast.rej",
        chunk_size=chunk_size,
        processes=processes,
    )
    # The user agents were parsed here, or (only) in the preparation processes.
    assert bool(fast.enricher._agents) is (processes == 0)

    reference = ReferenceCollector(open_warehouse(None), enricher=Enricher(geo))
    with monkeypatch.context() as patch:
        patch.setattr(importer, "validate_message", validate_message_strictly)
        reference_summary = run_import(
            reference, reference_read_jsonl(scenario_file), tmp_path / "ref.rej", chunk_size
        )

    assert fast_summary.imported > 2000
    assert fast_summary.merges >= 10 and fast_summary.duplicates >= 20
    assert fast_summary.rejected >= 12
    for name in ("rows", "imported", "duplicates", "rejected", "merges", "reasons"):
        assert getattr(fast_summary, name) == getattr(reference_summary, name), name
    assert (tmp_path / "fast.rej").read_bytes() == (tmp_path / "ref.rej").read_bytes()
    fast_tables, reference_tables = tables(fast), tables(reference)
    for table in TABLES:
        assert len(fast_tables[table]) == len(reference_tables[table]), table
        for fast_row, reference_row in zip(
            fast_tables[table], reference_tables[table], strict=True
        ):
            assert fast_row == reference_row, table
    # The scenario really exercises what it claims to.
    assert len(fast_tables["profile_merges"]) >= 10
    assert any(row["utm_source"] for row in fast_tables["events"])
    assert any(row["country"] for row in fast_tables["events"])
    # The invariant the audience compiler relies on (docs/warehouse.md): merges included,
    # every stored event belongs to a profile.
    profile_ids = {row["profile_id"] for row in fast_tables["profiles"]}
    assert {row["profile_id"] for row in fast_tables["events"]} <= profile_ids


def test_upserts_that_set_only_the_columns_a_batch_has_match_full_upserts(
    scenario_file: Path, geo: GeoLocator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The profile upsert leaves out the columns no staged row has a value for; setting every
    # column instead (each to its own value when the batch has none) must give the same rows.
    for module in (importer, pipeline, sys.modules[__name__]):
        monkeypatch.setattr(module, "utcnow", lambda: RECEIVED)
    pruned = Collector(open_warehouse(None), enricher=Enricher(geo))
    run_import(pruned, read_jsonl(scenario_file), tmp_path / "pruned.rej", 173)
    statements: set[str] = set()
    pruned_sql = profiles.upsert_sql
    full_sql = pruned_sql(profiles.ALL_COLUMNS)

    def every_column(present: frozenset[str]) -> str:
        statements.add(pruned_sql(present))
        return full_sql

    monkeypatch.setattr(profiles, "upsert_sql", every_column)
    full = Collector(open_warehouse(None), enricher=Enricher(geo))
    run_import(full, read_jsonl(scenario_file), tmp_path / "full.rej", 173)

    # The chunks really left out columns, in several combinations.
    assert full_sql not in statements and len(statements) >= 3
    assert tables(pruned)["profiles"] == tables(full)["profiles"]


def _outcome(raw: Any, **options: Any) -> Any:
    try:
        message = validate_message_strictly(raw, received_at=RECEIVED, **options)
    except SegmintError as exc:
        return ("error", type(exc).__name__, exc.path, exc.message)
    return message


@pytest.mark.parametrize(
    "options",
    [
        {"correct_clock_skew": False, "max_bytes": 32 * 1024},
        {
            "path": "batch[4].",
            "batch_sent_at": datetime(2025, 12, 2, 7, 59),
            "batch_context": {"ip": "1.2.3.4", "page": {"url": "https://b.example/"}},
            "batch_integrations": {"All": False},
            "max_bytes": 32 * 1024,
        },
        {"implied_type": "track"},
    ],
)
def test_validation_fast_path_agrees_with_the_full_rules(options: dict[str, Any]) -> None:
    raws = [orjson.loads(line) for line in scenario_lines() if line != b"{not json"]
    raws += ODD_MESSAGES
    for raw in raws:
        expected = _outcome(raw, **options)
        try:
            got: Any = validate_message(raw, received_at=RECEIVED, **options)
        except SegmintError as exc:
            got = ("error", type(exc).__name__, exc.path, exc.message)
        if isinstance(raw, dict) and raw.get("messageId") is None and isinstance(got, Message):
            got.message_id = expected.message_id  # generated at random by both
        assert got == expected, raw


def test_batch_enrichment_agrees_with_per_message_enrichment(geo: GeoLocator) -> None:
    messages = []
    for line in scenario_lines() + [orjson.dumps(m) for m in ODD_MESSAGES]:
        try:
            messages.append(validate_message(orjson.loads(line), received_at=RECEIVED))
        except (SegmintError, orjson.JSONDecodeError):
            continue
    enricher = Enricher(geo)
    # Twice: the second pass answers from the caches.
    for _ in range(2):
        rows = enricher.enrich_rows(messages)
        for message, row in zip(messages, rows, strict=True):
            assert row == dataclasses.astuple(Enricher(geo).enrich(message)), message
    assert any(row[ENRICHMENT_FIELDS.index("fbc")] for row in rows)


def test_events_table_matches_the_row_by_row_table(geo: GeoLocator) -> None:
    messages = []
    for line in scenario_lines()[:-6]:
        try:
            messages.append(validate_message(orjson.loads(line), received_at=RECEIVED))
        except SegmintError:
            continue
    enricher = Enricher(geo)
    for number, (message, values) in enumerate(
        zip(messages, enricher.enrich_rows(messages), strict=True)
    ):
        message.profile_id = number
        message.enriched = values
        message.enrichment = enricher.enrich(message)
    assert events_table(messages).equals(reference_events_table(messages))
    assert events_table([]).num_rows == 0
    # A library caller's dict may have keys that are not strings (JSON has only strings).
    messages[0].properties = {1: "one", "two": {2.5: True}}
    messages[1].traits = {None: "x"}
    table = events_table(messages)
    assert table.equals(reference_events_table(messages))
    assert table.column("properties")[0].as_py() == '{"1":"one","two":{"2.5":true}}'


def test_binary_reader_numbers_and_splits_lines_like_a_text_reader(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_bytes(
        b'{"a":1}\r\n\r\n{"b":"\xc3\xa9"}\r{"c":2}\r\r\n  \n\xe3\x80\x80\n'
        b'{"d":"\xc3\xa9\xc3\xa9" x}\n{bad\n[1]\r'
    )
    rows = list(read_jsonl(path))
    assert rows == list(reference_read_jsonl(path))
    assert [row.line for row in rows] == [1, 3, 4, 8, 9, 10]
    assert "column 11 (char 10)" in (rows[3].error or "")  # positions count characters


def test_binary_reader_rejects_a_line_that_is_not_utf8_where_a_text_reader_fails(
    tmp_path: Path,
) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":"caf\xe9"}\n{"c":2}\n')
    with pytest.raises(UnicodeDecodeError):
        list(reference_read_jsonl(path))
    rows = list(read_jsonl(path))
    assert [(row.line, row.value, row.error) for row in rows] == [
        (1, {"a": 1}, None),
        (
            2,
            '{"b":"caf\ufffd"}',
            "not UTF-8 text (byte 0xe9 at byte 10 of the line): save the file as UTF-8",
        ),
        (3, {"c": 2}, None),
    ]


class FailingCollector(Collector):
    """Fails to store its second chunk, as a full disk would."""

    chunks = 0
    first_stored = 0

    def store(self, prepared: Prepared, *, check_table: bool = False) -> IngestResult:
        self.chunks += 1
        if self.chunks == 2:
            raise OSError("disk full")
        result = super().store(prepared, check_table=check_table)
        self.first_stored = result.stored
        return result


def test_a_chunk_that_fails_to_store_fails_the_import_and_earlier_chunks_stay(
    scenario_file: Path, geo: GeoLocator, tmp_path: Path
) -> None:
    collector = FailingCollector(open_warehouse(None), enricher=Enricher(geo))
    with pytest.raises(OSError, match="disk full"):
        run_import(collector, read_jsonl(scenario_file), tmp_path / "rej", chunk_size=500)
    (stored,) = collector.engine.rows("SELECT count(*) FROM events")[0]
    # The first chunk, all of it (less its duplicates); nothing of the failed one.
    assert stored == collector.first_stored and 450 < stored <= 500
    assert collector.chunks == 2  # nothing was stored after the failure
