"""Storing by identity signature (``Senders``): a batch prepared elsewhere resolves one
message per signature and folds profiles from folds made per signature. Proven against the
message-by-message way on generated batches that share identifiers, emails, phones and
timestamps, tables compared column by column."""

from __future__ import annotations

import pickle
import random
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.collect import pipeline
from segmint.collect.enrich import Enricher
from segmint.collect.messages import Message
from segmint.collect.pipeline import Collector, Prepared, prepare, senders_of, utcnow
from segmint.collect.profiles import SenderFold, fold_batch, fold_messages
from segmint.collect.validate import validate_message
from segmint.warehouse.duckdb import open_warehouse
from tests.conftest import collection_tables

T0 = datetime(2025, 3, 1, 9)
RECEIVED = utcnow()  # within the de-duplication window
USERS = [None, "u1", "u2", "u3"]
ANONYMOUS = [None, "a1", "a2", "a3", "a4"]
EMAILS = [None, "ann@example.com", "Ann@Example.com ", "bob@example.com", "not an email"]
PHONES = [None, "+44 20 7946 0958", "+1 415 555 0100", "12"]
SOURCES = [None, "google", "newsletter"]
TRAITS: list[dict[str, Any]] = [
    {},
    {"plan": "pro"},
    {"plan": None, "name": "Ann"},
    {"nested": {"a": 1}},
    {"nested": 2},
]


@st.composite
def raw_messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    return _stream(random.Random(draw(st.integers(0, 2**32 - 1))), draw(st.integers(1, 40)))


def _stream(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """A stream of messages over a small world of people, so that signatures repeat, ids
    meet in identify and alias calls, and timestamps tie."""
    raws: list[dict[str, Any]] = []
    for number in range(count):
        kind = rng.choice(["track", "track", "page", "identify", "identify", "alias"])
        user, anonymous = rng.choice(USERS), rng.choice(ANONYMOUS)
        if user is None and anonymous is None:
            anonymous = "a1"
        raw: dict[str, Any] = {
            "type": kind,
            "messageId": f"m{number}",
            "timestamp": (T0 + timedelta(minutes=rng.randrange(6))).isoformat() + "Z",
        }
        if user:
            raw["userId"] = user
        if anonymous:
            raw["anonymousId"] = anonymous
        if kind == "track":
            raw["event"] = "Viewed"
        if kind == "alias":
            raw["userId"] = user or "u1"
            raw["previousId"] = rng.choice(["a2", "a3", "u2", "u3"])
        traits: dict[str, Any] = dict(rng.choice(TRAITS))
        email, phone = rng.choice(EMAILS), rng.choice(PHONES)
        if email:
            traits["email"] = email
        if phone:
            traits["phone"] = phone
        context: dict[str, Any] = {}
        if traits and (kind != "identify" or rng.random() < 0.3):
            context["traits"] = traits
        elif traits:
            raw["traits"] = traits
        source = rng.choice(SOURCES)
        if source:
            context["campaign"] = {"source": source, "medium": rng.choice(["cpc", None])}
        if rng.random() < 0.4:
            context["locale"] = rng.choice(["en-GB", "fr-FR", ""])
        if rng.random() < 0.3:
            context["device"] = {"id": rng.choice(["d1", "d2", ""]), "advertisingId": "ad1"}
        if rng.random() < 0.3:
            context["page"] = {"url": f"https://shop.example/?gclid=g{rng.randrange(3)}"}
        if context:
            raw["context"] = context
        raws.append(raw)
    return raws


def _messages(raws: list[dict[str, Any]]) -> list[Message]:
    return [validate_message(raw, received_at=RECEIVED, source="test") for raw in raws]


class CountingCollector(Collector):
    """Counts the batches stored message by message."""

    by_message = 0

    def _store_messages(self, prepared: Prepared, keep: list[int]) -> Any:
        self.by_message += 1
        return super()._store_messages(prepared, keep)


def _collector() -> CountingCollector:
    return CountingCollector(open_warehouse(None), enricher=Enricher(None))


def _from_another_process(messages: list[Message], enricher: Enricher) -> Prepared:
    """What a preparation process sends back: the batch through pickling, grouped by
    signature however many signatures it has (small test batches have many)."""
    with patch.object(pipeline, "_MOST_SIGNATURES", 1.0):
        prepared: Prepared = pickle.loads(pickle.dumps(prepare(messages, enricher)))
    assert prepared.senders is not None
    return prepared


def test_a_batch_of_mostly_distinct_senders_is_sent_without_signatures() -> None:
    distinct = [
        {"type": "track", "event": "A", "anonymousId": f"a{n}", "messageId": f"m{n}"}
        for n in range(10)
    ]
    repeated = [{**raw, "anonymousId": "a1"} for raw in distinct[:8]] + distinct[8:]
    sent = pickle.loads(pickle.dumps(prepare(_messages(distinct), Enricher(None))))
    assert sent.senders is None  # 10 signatures for 10 messages: stored one by one
    again = pickle.loads(pickle.dumps(prepare(_messages(repeated), Enricher(None))))
    assert again.senders is not None and len(again.senders.firsts) == 3
    by_message, collector = _collector(), _collector()
    try:
        by_message.ingest(_messages(distinct))
        assert collector.store(sent).stored == 10 and collector.by_message == 1
        assert collection_tables(collector.engine) == collection_tables(by_message.engine)
    finally:
        by_message.engine.close()
        collector.engine.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams=st.lists(raw_messages(), min_size=1, max_size=3))
def test_storing_by_signature_equals_storing_message_by_message(
    streams: list[list[dict[str, Any]]],
) -> None:
    by_message, by_signature = _collector(), _collector()
    try:
        for batch, raws in enumerate(streams):
            for raw in raws:  # unique ids across batches: no duplicates, no fallback
                raw["messageId"] = f"b{batch}-{raw['messageId']}"
            by_message.ingest(_messages(raws))
            stored = by_signature.store(_from_another_process(_messages(raws), Enricher(None)))
            assert stored.stored == len(raws)
        assert by_signature.by_message == 0
        assert collection_tables(by_signature.engine) == collection_tables(by_message.engine)
        assert by_signature.resolver.snapshot() == by_message.resolver.snapshot()
    finally:
        by_message.engine.close()
        by_signature.engine.close()


def test_a_batch_with_duplicates_is_stored_message_by_message() -> None:
    first = [
        {"type": "track", "event": "A", "anonymousId": "a1", "messageId": "m1"},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m2"},
    ]
    again = [
        {"type": "track", "event": "B", "userId": "u1", "messageId": "m3"},
        {"type": "track", "event": "A", "anonymousId": "a1", "messageId": "m1"},  # stored before
        {"type": "track", "event": "C", "userId": "u1", "messageId": "m3"},  # twice in the batch
    ]
    by_message, by_signature = _collector(), _collector()
    try:
        for raws in (first, again):
            expected = by_message.ingest(_messages(raws))
            result = by_signature.store(_from_another_process(_messages(raws), Enricher(None)))
            assert (result.stored, result.duplicates) == (expected.stored, expected.duplicates)
        assert by_signature.by_message == 1  # the second batch only
        assert (result.stored, result.duplicates) == (1, 2)
        assert collection_tables(by_signature.engine) == collection_tables(by_message.engine)
    finally:
        by_message.engine.close()
        by_signature.engine.close()


def test_a_batch_stored_before_is_skipped_and_one_partly_stored_goes_message_by_message() -> None:
    first = [
        {"type": "track", "event": "A", "anonymousId": "a1", "messageId": "m1"},
        {"type": "track", "event": "B", "anonymousId": "a1", "messageId": "m2"},
    ]
    more = [*first, {"type": "track", "event": "C", "anonymousId": "a2", "messageId": "m3"}]
    collector = _collector()

    def store(raws: list[dict[str, Any]], check_table: bool = False) -> tuple[int, int, int]:
        prepared = _from_another_process(_messages(raws), Enricher(None))
        result = collector.store(prepared, check_table=check_table)
        return result.stored, result.duplicates, collector.by_message

    def forget() -> None:  # as after the de-duplication window, or a restart for an import
        collector.recent = type(collector.recent)(collector.recent.window)

    try:
        assert store(first) == (2, 0, 0)
        assert store(first) == (0, 2, 0)  # known from the recent window: skipped whole
        forget()
        assert store(first, check_table=True) == (0, 2, 0)  # known from the events table
        assert store(first) == (2, 0, 0)  # neither checked: stored again, as documented
        forget()
        assert store(more, check_table=True) == (1, 2, 1)  # partly known: message by message
        ids = collector.engine.rows("SELECT message_id FROM events ORDER BY 1")
        assert ids == [("m1",), ("m1",), ("m2",), ("m2",), ("m3",)]
    finally:
        collector.engine.close()


def test_an_empty_batch_stores_nothing() -> None:
    collector = _collector()
    try:
        result = collector.store(_from_another_process([], Enricher(None)))
        assert (result.stored, result.duplicates, collector.by_message) == (0, 0, 0)
        assert collector.engine.rows("SELECT count(*) FROM events") == [(0,)]
    finally:
        collector.engine.close()


def test_messages_are_grouped_by_the_identifiers_resolution_looks_up() -> None:
    messages = _messages(
        [
            {"type": "track", "event": "A", "anonymousId": "a1", "messageId": "1"},
            {"type": "page", "anonymousId": "a1", "messageId": "2"},  # same sender
            {"type": "track", "event": "A", "anonymousId": "a1", "userId": "u1", "messageId": "3"},
            # An email makes another signature, whether stated by identify or context traits.
            {
                "type": "identify",
                "anonymousId": "a1",
                "messageId": "4",
                "traits": {"email": "x@y.co"},
            },
            {
                "type": "track",
                "event": "A",
                "anonymousId": "a1",
                "messageId": "5",
                "context": {"traits": {"email": "X@Y.co"}},
            },
            # The traits of a track call are not the person's: same as message 1.
            {
                "type": "track",
                "event": "A",
                "anonymousId": "a1",
                "messageId": "6",
                "traits": {"email": "x@y.co"},
            },
            {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "7"},
            {"type": "alias", "userId": "u1", "previousId": "u1", "messageId": "8"},  # no previous
            {"type": "track", "event": "A", "userId": "u1", "messageId": "9"},
        ]
    )
    with patch.object(pipeline, "_MOST_SIGNATURES", 1.0):  # 5 signatures for 9 messages
        senders = senders_of(messages)
    assert senders is not None
    assert senders.index.to_pylist() == [0, 0, 1, 2, 2, 0, 3, 4, 4]
    assert senders.firsts == [0, 2, 3, 6, 7]
    assert [fold.count for fold in senders.folds] == [3, 1, 2, 1, 2]


@pytest.mark.parametrize("seed", range(30))
def test_folds_of_parts_combine_into_the_fold_of_the_whole(seed: int) -> None:
    rng = random.Random(seed)
    messages = _messages(_stream(rng, 60))
    for message, values in zip(messages, Enricher(None).enrich_rows(messages), strict=True):
        message.enriched = values
        message.profile_id = 1
    (whole,) = fold_batch(messages)
    parts = [rng.randrange(4) for _ in messages]
    folds = list(fold_messages(messages, parts).values())
    rng.shuffle(folds)
    combined: SenderFold = folds[0]
    for fold in folds[1:]:
        combined.absorb(fold)
    assert combined.row(1) == whole
