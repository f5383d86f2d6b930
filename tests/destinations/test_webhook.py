"""The generic webhook end to end, against a receiver that verifies signatures and
de-duplicates deliveries (tests/destinations/fake_webhook.py) served over real HTTP."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import httpx
import pytest

from segmint.destinations import registry
from segmint.destinations import webhook as webhook_module
from segmint.destinations.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookDestination,
    sign,
    verify_signature,
)
from segmint.errors import InvalidInput
from segmint.sync.errors import AuthExpired, BadRequest, RateLimited, Transient
from segmint.sync.normalize import ListMember
from segmint.sync.retry import RetryPolicy
from tests.destinations.fake_webhook import FakeReceiver, segment_events, serve

FAST = RetryPolicy(attempts=40, initial=0.001, maximum=0.01)


def members(start: int, stop: int) -> list[ListMember]:
    return [
        ListMember(
            key=f"p{i}",
            email=f"user{i}@example.com",
            phone="+14155550100" if i % 5 == 0 else None,
            user_id=f"u{i}",
        )
        for i in range(start, stop)
    ]


def keys(start: int, stop: int) -> set[str]:
    return {f"p{i}" for i in range(start, stop)}


@pytest.fixture
def fake() -> FakeReceiver:
    return FakeReceiver()


@pytest.fixture
def url(fake: FakeReceiver) -> Iterator[str]:
    with serve(fake) as address:
        yield address


def connect(fake: FakeReceiver, url: str, **kwargs: object) -> WebhookDestination:
    return WebhookDestination(
        url=url,
        signing_secret=fake.secret,
        destination_name="Ops webhook",
        retry=FAST,
        **kwargs,  # type: ignore[arg-type]
    )


def test_webhook_is_created_by_the_registry_from_flat_settings(
    fake: FakeReceiver, url: str
) -> None:
    assert webhook_module.CREDENTIAL_FIELDS == ("signing_secret",)
    assert set(webhook_module.CONFIG_FIELDS) == {"url", "max_per_request"}
    settings = {"signing_secret": fake.secret, "url": url, "max_per_request": "250"}
    hook = registry.create("webhook", **settings, destination_name="Ops")
    assert isinstance(hook, WebhookDestination)
    assert hook.supports_event_sync
    assert hook.limits.max_records_per_request == 250
    hook.check_credentials()
    assert fake.pings == 1
    hook.close()


@pytest.mark.parametrize(
    ("settings", "path", "words"),
    [
        ({}, "config.url", "the webhook destination needs config.url, credentials.signing_secret"),
        (
            {"url": "https://x", "signing_secret": "s" * 16, "colour": "red"},
            "config.colour",
            "the webhook destination has no setting colour; it takes credentials signing_secret",
        ),
        ({"url": 7, "signing_secret": "s" * 16}, "config", "config.url: the receiver's https://"),
    ],
)
def test_the_registry_names_settings_the_webhook_cannot_take(
    settings: dict[str, object], path: str, words: str
) -> None:
    """What the runner meets in settings saved before they were checked: never Python's own
    words about the constructor's signature."""
    with pytest.raises(InvalidInput, match=re.escape(words)) as caught:
        registry.create("webhook", **settings, destination_name="Ops")
    assert caught.value.path == path
    assert "__init__" not in caught.value.message and "argument" not in caught.value.message


def test_list_sync_of_25000_members_then_removals_leaves_the_exact_set(
    fake: FakeReceiver, url: str
) -> None:
    hook = connect(fake, url)
    audience = hook.ensure_audience("Cart abandoners")
    assert audience == hook.ensure_audience("Cart abandoners")
    added = hook.add_members(audience, members(0, 25_000))
    assert (added.sent, added.requests) == (25_000, 250)
    assert max(fake.batch_sizes) == 100
    removed = hook.remove_members(audience, members(20_000, 25_000))
    assert (removed.sent, removed.requests) == (5_000, 50)
    assert fake.members(audience) == keys(0, 20_000)
    # Identifiers arrive in clear text, every field present.
    assert fake.audiences[audience]["p5"] == {
        "key": "p5",
        "email": "user5@example.com",
        "phone": "+14155550100",
        "first_name": None,
        "last_name": None,
        "country": None,
        "crm_id": None,
        "device_id": None,
        "user_id": "u5",
        "anonymous_id": None,
    }
    assert fake.rejected_signatures == 0

    hook.delete_audience(audience)
    assert fake.deleted == [audience]
    assert fake.members(audience) == set()


def test_event_sync_of_25000_members_then_removals_leaves_the_exact_set(
    fake: FakeReceiver, url: str
) -> None:
    hook = connect(fake, url, max_per_request=500)
    assert hook.send_events(segment_events("added_to_segment", 0, 25_000)) == 25_000
    removals = segment_events("removed_from_segment", 0, 4_000, refresh_id="r2")
    change = hook.deliver_events(removals)
    assert (change.sent, change.requests) == (4_000, 8)
    assert fake.event_members["aud_1"] == keys(4_000, 25_000)
    assert max(fake.batch_sizes) == 500
    assert fake.duplicate_messages == 0


def test_random_failures_and_dropped_connections_end_with_the_exact_sets(
    fake: FakeReceiver, url: str
) -> None:
    hook = connect(fake, url)
    fake.failure_rate, fake.drop_rate = 0.3, 0.15
    hook.add_members("A", members(0, 25_000))
    hook.remove_members("A", members(0, 3_000))
    hook.add_members("A", members(1_000, 2_000))  # a refresh brings some back
    hook.send_events(segment_events("added_to_segment", 0, 3_000))
    hook.send_events(segment_events("removed_from_segment", 0, 1_000, refresh_id="r2"))
    assert fake.failures > 20
    # Dropped responses were retried and recognised, not applied twice.
    assert fake.duplicate_deliveries > 5
    assert fake.members("A") == keys(1_000, 2_000) | keys(3_000, 25_000)
    assert fake.event_members["aud_1"] == keys(1_000, 3_000)


def test_a_batch_retried_is_the_same_delivery_and_a_new_batch_is_not(
    fake: FakeReceiver, url: str
) -> None:
    ids = itertools.count(1)
    hook = connect(fake, url, delivery_ids=lambda: f"d{next(ids)}")
    fake.drop_rate = 1.0  # every response is lost after the receiver applied it
    hook.retry = RetryPolicy(attempts=3, initial=0.001, maximum=0.01)
    with pytest.raises(Transient):
        hook.add_members("A", members(0, 10))
    assert fake.deliveries == {"d1"}
    assert fake.duplicate_deliveries == 2
    fake.drop_rate = 0.0
    hook.remove_members("A", members(0, 10))  # same members again: a new delivery
    assert fake.deliveries == {"d1", "d2"}
    assert fake.members("A") == set()


def test_receiver_refusing_the_signature_stops_with_r21_message(
    fake: FakeReceiver, url: str
) -> None:
    hook = WebhookDestination(
        url=url, signing_secret="not-the-shared-secret", destination_name="Ops webhook", retry=FAST
    )
    with pytest.raises(AuthExpired) as caught:
        hook.add_members("A", members(0, 10))
    assert caught.value.message == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → Ops webhook → Configuration Settings"
    )
    assert caught.value.platform_code == 401
    assert fake.rejected_signatures == 1  # not retried
    assert fake.members("A") == set()


def test_tampered_body_or_stale_timestamp_is_rejected_by_the_receiver(
    fake: FakeReceiver, url: str
) -> None:
    body = json.dumps({"type": "ping", "delivery_id": "x1"}).encode()
    signature = sign(fake.secret, body, int(time.time()))
    headers = {SIGNATURE_HEADER: signature, DELIVERY_HEADER: "x1"}
    tampered = body.replace(b"ping", b"pong")
    assert httpx.post(url, content=tampered, headers=headers).status_code == 401
    stale = sign(fake.secret, body, int(time.time()) - 301)
    stale_headers = {SIGNATURE_HEADER: stale, DELIVERY_HEADER: "x1"}
    assert httpx.post(url, content=body, headers=stale_headers).status_code == 401
    assert fake.rejected_signatures == 2
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    assert fake.pings == 1


@pytest.mark.parametrize(
    ("header", "body", "valid"),
    [
        ("t=1000,v1={good}", b"{}", True),
        ("t=1000,v1=00,v1={good}", b"{}", True),  # rotation: any v1 may match
        ("t=1000,v1={good}", b"{} ", False),  # body changed by one byte
        ("t=1001,v1={good}", b"{}", False),  # timestamp is signed too
        ("v1={good}", b"{}", False),
        ("t=abc,v1={good}", b"{}", False),
        ("t=1000", b"{}", False),
        ("", b"{}", False),
        ("t=1000,v1={good}", "{}", True),  # str bodies are UTF-8 encoded
    ],
)
def test_verify_signature_table(header: str, body: bytes | str, valid: bool) -> None:
    good = sign("s" * 16, b"{}", 1000).rpartition("v1=")[2]
    assert verify_signature("s" * 16, header.format(good=good), body, now=1100) is valid


def test_verify_signature_tolerance() -> None:
    header = sign("s" * 16, b"{}", 1000)
    assert verify_signature("s" * 16, header, b"{}", tolerance_seconds=300, now=1300)
    assert not verify_signature("s" * 16, header, b"{}", tolerance_seconds=300, now=1301)
    assert not verify_signature("s" * 16, header, b"{}", tolerance_seconds=300, now=699)
    assert not verify_signature("t" * 16, header, b"{}", now=1000)


def test_status_codes_are_classified() -> None:
    answers = iter([429, 503, 400, 403, 301])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        headers = {"retry-after": "7"} if status == 429 else {"location": "https://x.test/new"}
        return httpx.Response(status, headers=headers, text="nope")

    once = RetryPolicy(attempts=1)
    hook = WebhookDestination(
        url="https://hooks.test/in",
        signing_secret="s" * 16,
        retry=once,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(RateLimited) as limited:
        hook.check_credentials()
    assert limited.value.retry_after == 7
    with pytest.raises(Transient):
        hook.check_credentials()
    with pytest.raises(BadRequest, match="HTTP 400"):
        hook.check_credentials()
    with pytest.raises(AuthExpired):
        hook.check_credentials()
    with pytest.raises(BadRequest, match="redirects"):
        hook.check_credentials()


def test_unreachable_receiver_is_transient() -> None:
    hook = WebhookDestination(
        url="http://127.0.0.1:9/none",
        signing_secret="s" * 16,
        retry=RetryPolicy(attempts=2, initial=0.001, maximum=0.001),
    )
    with pytest.raises(Transient, match="connection to the webhook failed"):
        hook.check_credentials()


@pytest.mark.parametrize(
    ("settings", "path", "message"),
    [
        ({"url": "ftp://x"}, "config.url", "must start with https://"),
        ({"signing_secret": "short"}, "credentials.signing_secret", "too short"),
        ({"max_per_request": 0}, "config.max_per_request", "at least 1, not 0"),
        ({"max_per_request": "lots"}, "config.max_per_request", "at least 1, not 'lots'"),
    ],
)
def test_bad_configuration_is_refused_naming_the_setting(
    settings: dict[str, object], path: str, message: str
) -> None:
    good = {"url": "https://x", "signing_secret": "s" * 16}
    with pytest.raises(InvalidInput, match=message) as caught:
        WebhookDestination(**{**good, **settings})  # type: ignore[arg-type]
    assert caught.value.path == path


def test_event_traits_json_cannot_hold_are_sent_as_text(fake: FakeReceiver, url: str) -> None:
    received: list[dict[str, object]] = []
    apply_event = fake._apply_event

    def keep(event: dict[str, object]) -> None:
        received.append(event)
        apply_event(event)  # type: ignore[arg-type]

    fake._apply_event = keep  # type: ignore[method-assign]
    (event,) = segment_events("added_to_segment", 1, 2)
    event["traits"] = {"since": date(2024, 2, 29), "spend": Decimal("12.50")}
    assert connect(fake, url).send_events([event]) == 1
    assert received[0]["traits"] == {"since": "2024-02-29", "spend": "12.50"}
    assert fake.event_members["aud_1"] == {"p1"}
