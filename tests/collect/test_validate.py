"""Validation of single messages: required fields, types, timestamps and clock skew."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from segmint.collect.validate import parse_timestamp, validate_message
from segmint.errors import InvalidMessage, PayloadTooLarge

NOW = datetime(2025, 6, 1, 12, 0, 0)


def validate(raw: object, **kwargs: object) -> object:
    return validate_message(raw, received_at=NOW, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ([], "", "JSON object"),
        ({"type": "track", "event": "x"}, "userId", "userId or anonymousId"),
        ({"type": "track", "userId": "", "anonymousId": "  "}, "userId", "userId or anonymousId"),
        ({"type": "track", "userId": "u"}, "event", "event name"),
        ({"type": "track", "userId": "u", "event": ""}, "event", "event name"),
        ({"type": "track", "userId": "u", "event": 5}, "event", "event name"),
        ({"type": "bogus", "userId": "u"}, "type", "must be one of"),
        ({"userId": "u"}, "type", "must be one of"),
        ({"type": "alias", "userId": "u"}, "previousId", "previousId"),
        ({"type": "alias", "previousId": "a"}, "userId", "alias needs userId"),
        ({"type": "group", "userId": "u"}, "groupId", "groupId"),
        ({"type": "track", "userId": {"a": 1}, "event": "x"}, "userId", "must be a string"),
        ({"type": "track", "userId": True, "event": "x"}, "userId", "must be a string"),
        ({"type": "track", "userId": "u", "event": "x", "properties": []}, "properties", "object"),
        ({"type": "identify", "userId": "u", "traits": "x"}, "traits", "object"),
        ({"type": "track", "userId": "u", "event": "x", "context": 3}, "context", "object"),
        (
            {"type": "track", "userId": "u", "event": "x", "timestamp": "yesterday"},
            "timestamp",
            "ISO-8601",
        ),
        (
            {"type": "track", "userId": "u", "event": "x", "timestamp": 1717000000},
            "timestamp",
            "ISO-8601",
        ),
        (
            {"type": "track", "userId": "u", "event": "x", "timestamp": "1960-01-01T00:00:00Z"},
            "timestamp",
            "1970",
        ),
        ({"type": "track", "userId": "u", "event": "x", "sentAt": "nope"}, "sentAt", "ISO-8601"),
        (
            {"type": "track", "userId": "u", "event": "x", "messageId": "m" * 101},
            "messageId",
            "at most 100",
        ),
        (
            {"type": "track", "userId": "u", "event": "x", "messageId": 12},
            "messageId",
            "non-empty string",
        ),
        ({"type": "track", "userId": "u" * 2000, "event": "x"}, "userId", "at most"),
        ({"type": "page", "userId": "u", "name": ["a"]}, "name", "string"),
    ],
)
def test_invalid_messages_name_the_field(raw: object, field: str, words: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        validate(raw)
    assert (caught.value.path or "") == field
    assert words in caught.value.message


def test_error_paths_carry_the_batch_position() -> None:
    with pytest.raises(InvalidMessage) as caught:
        validate({"type": "track", "userId": "u"}, path="batch[7].")
    assert caught.value.path == "batch[7].event"


def test_endpoint_type_must_match_the_body() -> None:
    with pytest.raises(InvalidMessage, match="does not match this endpoint"):
        validate({"type": "identify", "userId": "u"}, implied_type="track")


def test_message_over_the_size_limit_is_refused() -> None:
    raw = {"type": "track", "userId": "u", "event": "x", "properties": {"blob": "x" * 40_000}}
    with pytest.raises(PayloadTooLarge, match="under 32,768 bytes"):
        validate(raw, max_bytes=32 * 1024)


def test_track_message_is_normalized() -> None:
    message = validate(
        {
            "type": "track",
            "event": " order_completed ",
            "userId": 42,
            "anonymousId": "anon-1",
            "messageId": "m-1",
            "timestamp": "2025-06-01T10:00:00+02:00",
            "properties": {"revenue": 10},
        }
    )
    assert message.event == "order_completed"  # type: ignore[attr-defined]
    assert message.user_id == "42"  # type: ignore[attr-defined]
    assert message.timestamp == datetime(2025, 6, 1, 8, 0, 0)  # type: ignore[attr-defined]
    assert message.properties == {"revenue": 10}  # type: ignore[attr-defined]


def test_non_track_messages_use_their_type_as_event() -> None:
    assert validate({"type": "page", "anonymousId": "a"}).event == "page"  # type: ignore[attr-defined]


def test_clock_skew_is_corrected_from_sent_at() -> None:
    # The client clock runs 1 hour fast; the event happened 5 minutes before sending.
    message = validate(
        {
            "type": "track",
            "userId": "u",
            "event": "x",
            "timestamp": "2025-06-01T12:55:00Z",
            "sentAt": "2025-06-01T13:00:00Z",
        }
    )
    assert message.timestamp == NOW - timedelta(minutes=5)  # type: ignore[attr-defined]
    assert message.original_timestamp == datetime(2025, 6, 1, 12, 55)  # type: ignore[attr-defined]


def test_a_message_sent_before_it_happened_is_not_put_in_the_future() -> None:
    # Sent, by its own clock, a year before it happened: its age is taken as none.
    message = validate(
        {
            "type": "track",
            "userId": "u",
            "event": "x",
            "timestamp": "2026-06-01T12:00:00Z",
            "sentAt": "2025-06-01T12:00:00Z",
        }
    )
    assert message.timestamp == NOW  # type: ignore[attr-defined]
    assert message.original_timestamp == datetime(2026, 6, 1, 12)  # type: ignore[attr-defined]


def test_batch_sent_at_applies_when_message_has_none() -> None:
    message = validate(
        {"type": "track", "userId": "u", "event": "x", "timestamp": "2025-06-01T00:00:00Z"},
        batch_sent_at=datetime(2025, 6, 1, 0, 0, 30),
    )
    assert message.timestamp == NOW - timedelta(seconds=30)  # type: ignore[attr-defined]


def test_missing_timestamp_means_received_at() -> None:
    assert validate({"type": "track", "userId": "u", "event": "x"}).timestamp == NOW  # type: ignore[attr-defined]


def test_timestamp_without_sent_at_is_kept() -> None:
    message = validate(
        {"type": "track", "userId": "u", "event": "x", "timestamp": "2024-01-01T00:00:00"}
    )
    assert message.timestamp == datetime(2024, 1, 1)  # type: ignore[attr-defined]


def test_batch_context_merges_under_message_context() -> None:
    message = validate(
        {"type": "track", "userId": "u", "event": "x", "context": {"ip": "1.1.1.1"}},
        batch_context={"ip": "9.9.9.9", "locale": "fr-FR"},
    )
    assert message.context == {"ip": "1.1.1.1", "locale": "fr-FR"}  # type: ignore[attr-defined]


def test_missing_message_id_gets_a_unique_one() -> None:
    first = validate({"type": "track", "userId": "u", "event": "x"})
    second = validate({"type": "track", "userId": "u", "event": "x"})
    assert first.message_id != second.message_id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-01T12:00:00Z", datetime(2025, 6, 1, 12)),
        ("2025-06-01T12:00:00.123Z", datetime(2025, 6, 1, 12, 0, 0, 123000)),
        ("2025-06-01T14:00:00+02:00", datetime(2025, 6, 1, 12)),
        ("2025-06-01", datetime(2025, 6, 1)),
        (None, None),
    ],
)
def test_timestamp_parsing(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text, "timestamp") == expected
