"""Validation of Segment-spec messages: shape, types, required ids, timestamps.

Turns one raw JSON object into a :class:`Message` or raises :class:`InvalidMessage` naming
the exact field. Also applies the spec's clock-skew correction:
``timestamp = receivedAt - (sentAt - originalTimestamp)``, the age ``sentAt -
originalTimestamp`` taken as 0 when negative (never a time after the message was received).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from segmint.collect.messages import MESSAGE_TYPES, Message
from segmint.errors import InvalidMessage, PayloadTooLarge

MAX_MESSAGE_ID_LENGTH = 100
MAX_ID_LENGTH = 1024
MAX_NESTING = 254
"""How deep objects and arrays may nest in a message, itself included (what orjson encodes)."""
_EARLIEST = datetime(1970, 1, 1)
# A message sent (by its own clock) before it happened did not happen after it was received:
# its age is taken as none rather than negative, which would put it in the future.
_NO_AGE = timedelta(0)
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")


def parse_timestamp(value: Any, field: str) -> datetime | None:
    """Parse an ISO-8601 timestamp into naive UTC; ``None`` stays ``None``.

    A timestamp without a zone is taken as UTC (what the spec says all timestamps are)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMessage(
            f"{field} must be an ISO-8601 string such as '2025-06-01T12:00:00Z', "
            f"not {type(value).__name__}",
            path=field,
        )
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidMessage(
            f"{field} {value[:60]!r} is not an ISO-8601 timestamp; send e.g. "
            "'2025-06-01T12:00:00.000Z'",
            path=field,
        ) from None
    if parsed.tzinfo is not None:
        # "Z" and "+00:00" parse to the UTC singleton: no conversion needed.
        try:
            parsed = (
                parsed.replace(tzinfo=None)
                if parsed.tzinfo is UTC
                else parsed.astimezone(UTC).replace(tzinfo=None)
            )
        except OverflowError:  # 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
            raise InvalidMessage(
                f"{field} {value[:60]!r} is out of range in UTC; send a time between 1970 and 9999",
                path=field,
            ) from None
    if parsed < _EARLIEST:
        raise InvalidMessage(f"{field} {value!r} is before 1970", path=field)
    return parsed


def _unstorable(raw: dict[str, Any], path: str, error: orjson.JSONEncodeError) -> InvalidMessage:
    """The error for a message that cannot be written back as JSON (so could not be stored):
    nested deeper than JSON encoding allows, or (from a file) a value JSON has no type for.
    Names the top-level field at fault."""
    field = path.rstrip(".")
    for key, value in raw.items():
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            field = f"{path}{key}"
            break
    if "Recursion" in str(error):
        return InvalidMessage(
            f"{field or 'the message'} nests objects and arrays more than "
            f"{MAX_NESTING} levels deep; flatten it",
            path=field or None,
        )
    return InvalidMessage(
        f"{field or 'the message'} holds a value JSON cannot represent ({error}); send "
        "strings, numbers, booleans, null, objects and arrays",
        path=field or None,
    )


def _identifier(raw: dict[str, Any], key: str, path: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidMessage(
            f"{key} must be a string, not {type(value).__name__}", path=f"{path}{key}"
        )
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise InvalidMessage(
            f"{key} is {len(text)} characters long; at most {MAX_ID_LENGTH} are allowed",
            path=f"{path}{key}",
        )
    return text or None


def _object(raw: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMessage(
            f"{key} must be a JSON object, not {type(value).__name__}", path=f"{path}{key}"
        )
    return value


def _message_id(raw: dict[str, Any], path: str) -> str:
    value = raw.get("messageId")
    if value is None:
        # The spec lets servers fill it; a random id means the message cannot be de-duplicated.
        return str(uuid.uuid4())
    if not isinstance(value, str) or not value.strip():
        raise InvalidMessage("messageId must be a non-empty string", path=f"{path}messageId")
    if len(value) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidMessage(
            f"messageId is {len(value)} characters long; the spec allows at most "
            f"{MAX_MESSAGE_ID_LENGTH}",
            path=f"{path}messageId",
        )
    return value


def validate_message(
    raw: Any,
    *,
    received_at: datetime,
    implied_type: str | None = None,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
    max_bytes: int | None = None,
    path: str = "",
    source: str | None = None,
    correct_clock_skew: bool = True,
) -> Message:
    """Validate one raw message and return it normalized.

    ``implied_type`` is the type a single-message route implies (``/v1/track`` → track);
    inside a batch every message names its own ``type``. ``path`` prefixes field names in
    errors (``batch[3].``). ``correct_clock_skew`` is for live traffic; imports of history
    turn it off, since ``receivedAt`` (the import time) says nothing about when the events
    happened. Raises :class:`InvalidMessage` or :class:`PayloadTooLarge`.

    Messages of the common shape take a fast path (``_validate_common``); anything it is not
    sure about goes through the full checks (``validate_message_strictly``), which also
    produce every error, so both give the same result for every input.
    """
    if raw.__class__ is dict:
        message = _validate_common(
            raw,
            received_at,
            implied_type,
            batch_sent_at,
            batch_context,
            batch_integrations,
            max_bytes,
            source,
            correct_clock_skew,
        )
        if message is not None:
            return message
    return validate_message_strictly(
        raw,
        received_at=received_at,
        implied_type=implied_type,
        batch_sent_at=batch_sent_at,
        batch_context=batch_context,
        batch_integrations=batch_integrations,
        max_bytes=max_bytes,
        path=path,
        source=source,
        correct_clock_skew=correct_clock_skew,
    )


def validate_message_strictly(
    raw: Any,
    *,
    received_at: datetime,
    implied_type: str | None = None,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
    max_bytes: int | None = None,
    path: str = "",
    source: str | None = None,
    correct_clock_skew: bool = True,
) -> Message:
    """``validate_message`` without the fast path: every rule checked in order, field by
    field (the reference the fast path is tested against)."""
    if not isinstance(raw, dict):
        raise InvalidMessage(
            f"a message must be a JSON object, not {type(raw).__name__}", path=path.rstrip(".")
        )
    if max_bytes is not None:
        try:
            size = len(orjson.dumps(raw))
        except orjson.JSONEncodeError as exc:
            raise _unstorable(raw, path, exc) from None
        if size > max_bytes:
            raise PayloadTooLarge(
                f"the message is {size:,} bytes; each message must be under {max_bytes:,} bytes",
                path=path.rstrip(".") or None,
            )
    kind = raw.get("type", implied_type)
    if implied_type is not None and kind != implied_type:
        raise InvalidMessage(
            f"type {kind!r} does not match this endpoint, which takes {implied_type!r} messages",
            path=f"{path}type",
        )
    if kind not in MESSAGE_TYPES:
        raise InvalidMessage(
            f"type must be one of {', '.join(MESSAGE_TYPES)}; got {kind!r}", path=f"{path}type"
        )
    user_id = _identifier(raw, "userId", path)
    anonymous_id = _identifier(raw, "anonymousId", path)
    previous_id = _identifier(raw, "previousId", path)
    group_id = _identifier(raw, "groupId", path)
    if kind == "alias":
        if not previous_id:
            raise InvalidMessage("alias needs previousId", path=f"{path}previousId")
        if not user_id:
            raise InvalidMessage("alias needs userId", path=f"{path}userId")
    elif not user_id and not anonymous_id:
        raise InvalidMessage(
            "every message needs userId or anonymousId (no_user_anon_id)", path=f"{path}userId"
        )
    if kind == "group" and not group_id:
        raise InvalidMessage("group needs groupId", path=f"{path}groupId")

    event = kind
    if kind == "track":
        name = raw.get("event")
        if not isinstance(name, str) or not name.strip():
            raise InvalidMessage(
                "track needs an event name (a non-empty string)", path=f"{path}event"
            )
        if len(name) > 256:
            raise InvalidMessage("event names are at most 256 characters", path=f"{path}event")
        event = name.strip()
    page_name = raw.get("name")
    if page_name is not None and not isinstance(page_name, str):
        raise InvalidMessage("name must be a string", path=f"{path}name")

    properties, traits, context, integrations = (_object(raw, key, path) for key in _OBJECT_FIELDS)
    if batch_context:
        context = {**batch_context, **context}
    if batch_integrations:
        integrations = {**batch_integrations, **integrations}
    if kind in ("identify", "group") and not traits and isinstance(context.get("traits"), dict):
        traits = context["traits"]

    original = parse_timestamp(raw.get("timestamp"), f"{path}timestamp")
    sent_at = parse_timestamp(raw.get("sentAt"), f"{path}sentAt") or batch_sent_at
    if original is None:
        timestamp = received_at
    elif sent_at is not None and correct_clock_skew:
        # Both come from the same (possibly wrong) client clock: their difference is the age.
        timestamp = _corrected(received_at, sent_at, original, path)
    else:
        timestamp = original

    return Message(
        message_id=_message_id(raw, path),
        type=kind,
        event=event,
        timestamp=timestamp,
        received_at=received_at,
        user_id=user_id,
        anonymous_id=anonymous_id,
        name=page_name,
        group_id=group_id,
        previous_id=previous_id,
        original_timestamp=original,
        sent_at=sent_at,
        properties=properties,
        traits=traits,
        context=context,
        integrations=integrations,
        source=source,
    )


def _corrected(received_at: datetime, sent_at: datetime, original: datetime, path: str) -> datetime:
    """The spec's clock-skew correction; refused when the corrected time would be before
    1970 (a client clock far off, or a sentAt mistaken for another time)."""
    age = max(sent_at - original, _NO_AGE)
    if age > received_at - _EARLIEST:
        raise InvalidMessage(
            f"sentAt ({sent_at.isoformat()}) is {age.days:,} days after timestamp "
            f"({original.isoformat()}), which would put the event before 1970 once "
            "corrected for clock skew; check the client's clock",
            path=f"{path}sentAt",
        )
    return received_at - age


_TYPES = frozenset(MESSAGE_TYPES)


def _plain_id(value: Any) -> str | bool | None:
    """A plain string id trimmed (None when absent or blank); False when it needs the full
    rules (a number, a wrong type, too long)."""
    if value is None:
        return None
    if value.__class__ is not str or len(value) > MAX_ID_LENGTH:
        return False
    return value.strip() or None


def _plain_timestamp(value: Any) -> datetime | bool | None:
    """A parsed timestamp (None when absent); False when it needs the full rules."""
    if value is None:
        return None
    if value.__class__ is not str:
        return False
    value = value.strip()
    try:
        if value[-1:] == "Z" and "T" in value:
            # The usual shape (SDKs send UTC with a Z): parse it as the naive UTC time it
            # is, without building and then dropping a time zone.
            parsed = datetime.fromisoformat(value[:-1])
            if parsed.tzinfo is not None:  # two zones ("+01:00Z"): the full rules decide
                return False
            return parsed if parsed >= _EARLIEST else False
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    tzinfo = parsed.tzinfo
    if tzinfo is not None:
        try:
            parsed = (
                parsed.replace(tzinfo=None)
                if tzinfo is UTC
                else parsed.astimezone(UTC).replace(tzinfo=None)
            )
        except OverflowError:
            return False
    return parsed if parsed >= _EARLIEST else False


def _validate_common(
    raw: dict[str, Any],
    received_at: datetime,
    implied_type: str | None,
    batch_sent_at: datetime | None,
    batch_context: dict[str, Any] | None,
    batch_integrations: dict[str, Any] | None,
    max_bytes: int | None,
    source: str | None,
    correct_clock_skew: bool,
) -> Message | None:
    """The message when every field has the plain, valid shape; None when anything needs
    the full rules (which then accept it the same way, or name the error)."""
    if max_bytes is not None:
        try:
            if len(orjson.dumps(raw)) > max_bytes:
                return None
        except orjson.JSONEncodeError:
            return None
    get = raw.get
    kind = get("type", implied_type)
    if kind.__class__ is not str or kind not in _TYPES:
        return None
    if implied_type is not None and kind != implied_type:
        return None
    user_id = _plain_id(get("userId"))
    anonymous_id = _plain_id(get("anonymousId"))
    previous_id = _plain_id(get("previousId"))
    group_id = _plain_id(get("groupId"))
    if user_id is False or anonymous_id is False or previous_id is False or group_id is False:
        return None
    if kind == "alias":
        if not previous_id or not user_id:
            return None
    elif not user_id and not anonymous_id:
        return None
    if kind == "group" and not group_id:
        return None
    event = kind
    if kind == "track":
        name = get("event")
        if name.__class__ is not str or len(name) > 256:
            return None
        event = name.strip()
        if not event:
            return None
    page_name = get("name")
    if page_name is not None and page_name.__class__ is not str:
        return None
    properties = get("properties")
    if properties is None:
        properties = {}
    elif properties.__class__ is not dict:
        return None
    traits = get("traits")
    if traits is None:
        traits = {}
    elif traits.__class__ is not dict:
        return None
    context = get("context")
    if context is None:
        context = {}
    elif context.__class__ is not dict:
        return None
    integrations = get("integrations")
    if integrations is None:
        integrations = {}
    elif integrations.__class__ is not dict:
        return None
    if batch_context:
        context = {**batch_context, **context}
    if batch_integrations:
        integrations = {**batch_integrations, **integrations}
    if kind in ("identify", "group") and not traits and isinstance(context.get("traits"), dict):
        traits = context["traits"]

    original = _plain_timestamp(get("timestamp"))
    sent = _plain_timestamp(get("sentAt"))
    if original is False or sent is False:
        return None
    sent_at = sent or batch_sent_at
    if original is None:
        timestamp = received_at
    elif sent_at is not None and correct_clock_skew:
        age: timedelta = max(sent_at - original, _NO_AGE)  # type: ignore[operator,assignment]
        if age > received_at - _EARLIEST:  # corrected before 1970: the full rules say so
            return None
        timestamp = received_at - age
    else:
        timestamp = original  # type: ignore[assignment]

    message_id = get("messageId")
    if message_id is None:
        message_id = str(uuid.uuid4())
    elif (
        message_id.__class__ is not str
        or len(message_id) > MAX_MESSAGE_ID_LENGTH
        or not message_id.strip()
    ):
        return None
    return Message(
        message_id=message_id,
        type=kind,
        event=event,
        timestamp=timestamp,
        received_at=received_at,
        user_id=user_id,  # type: ignore[arg-type]
        anonymous_id=anonymous_id,  # type: ignore[arg-type]
        name=page_name,
        group_id=group_id,  # type: ignore[arg-type]
        previous_id=previous_id,  # type: ignore[arg-type]
        original_timestamp=original,  # type: ignore[arg-type]
        sent_at=sent_at,  # type: ignore[arg-type]
        properties=properties,
        traits=traits,
        context=context,
        integrations=integrations,
        source=source,
    )
