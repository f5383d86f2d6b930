"""GA4 Event Sync end to end, against a fake Measurement Protocol server that records every
hit GA4 would silently drop (tests/destinations/fake_ga4.py) served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from segmint.destinations import ga4 as ga4_module
from segmint.destinations import registry
from segmint.destinations.ga4 import GA4Events, client_id_from_cookie
from segmint.sync.errors import BadRequest, RateLimited, Transient
from segmint.sync.normalize import ListMember
from segmint.sync.retry import RetryPolicy
from tests.destinations.fake_ga4 import FakeGA4, serve
from tests.destinations.fake_webhook import segment_events

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
FAST = RetryPolicy(attempts=40, initial=0.001, maximum=0.01)


def clients(start: int, stop: int, every: int = 1) -> set[str]:
    return {f"{1_000_000 + i}.1700000000" for i in range(start, stop) if i % every == 0}


@pytest.fixture
def fake() -> FakeGA4:
    return FakeGA4(now=NOW)


@pytest.fixture
def base_url(fake: FakeGA4) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def connect(
    fake: FakeGA4, base_url: str, retry: RetryPolicy = FAST, concurrency: int = 8
) -> GA4Events:
    return GA4Events(
        measurement_id=fake.measurement_id,
        api_secret=fake.api_secret,
        destination_name="Site GA4",
        base_url=base_url,
        retry=retry,
        clock=lambda: NOW,
        concurrency=concurrency,
    )


def hit_of(fake: FakeGA4, client: int) -> dict[str, Any]:
    """The one hit the fake recorded for client ``1_000_000 + client``."""
    (hit,) = [h for h in fake.hits if h["client_id"] == f"{1_000_000 + client}.1700000000"]
    return hit


def test_ga4_is_created_by_the_registry_from_flat_settings(fake: FakeGA4, base_url: str) -> None:
    assert ga4_module.CREDENTIAL_FIELDS == ("measurement_id", "api_secret")
    assert ga4_module.CONFIG_FIELDS == ("region",)
    settings = {"measurement_id": fake.measurement_id, "api_secret": fake.api_secret}
    ga4 = registry.create(
        "ga4", **settings, region="eu", destination_name="Site", base_url=base_url
    )
    assert isinstance(ga4, GA4Events)
    assert ga4.supports_event_sync
    ga4.check_credentials()
    assert fake.debug_requests == 1
    assert fake.requests == 0  # validation only: nothing collected
    assert ga4.ensure_audience("Cart abandoners") == "Cart abandoners"
    ga4.close()


def test_event_sync_with_removals_leaves_the_exact_client_set(fake: FakeGA4, base_url: str) -> None:
    ga4 = connect(fake, base_url)
    assert ga4.send_events(segment_events("added_to_segment", 0, 2_000)) == 2_000
    change = ga4.deliver_events(segment_events("removed_from_segment", 0, 500, refresh_id="r2"))
    assert (change.sent, change.requests, change.set_aside) == (500, 500, [])
    assert fake.invalid_hits == []
    assert fake.members["aud_1"] == clients(500, 2_000)
    # Known users carry their user_id; anonymous members are sent too, without one.
    assert fake.user_ids[f"{1_000_001}.1700000000"] == "u1"
    assert f"{1_000_003}.1700000000" not in fake.user_ids
    hit = next(h for h in fake.hits if h["client_id"] == f"{1_000_000}.1700000000")
    assert hit["timestamp_micros"] == int((NOW - timedelta(hours=1)).timestamp() * 1_000_000)
    assert hit["events"][0] == {
        "name": "added_to_segment",
        "params": {
            "audience_id": "aud_1",
            "audience_name": "Cart abandoners",
            "refresh_id": "r1",
            "message_id": "r1:aud_1:p0:add",
        },
    }


@pytest.mark.slow
def test_event_sync_of_25000_members_then_removals_leaves_the_exact_client_set(
    fake: FakeGA4, base_url: str
) -> None:
    ga4 = connect(fake, base_url)
    assert ga4.send_events(segment_events("added_to_segment", 0, 25_000)) == 25_000
    ga4.send_events(segment_events("removed_from_segment", 20_000, 25_000, refresh_id="r2"))
    assert fake.invalid_hits == []
    assert fake.members["aud_1"] == clients(0, 20_000)


def test_random_failures_and_dropped_connections_end_with_the_exact_set(
    fake: FakeGA4, base_url: str
) -> None:
    ga4 = connect(fake, base_url)
    fake.failure_rate, fake.drop_rate = 0.3, 0.15
    ga4.send_events(segment_events("added_to_segment", 0, 800))
    ga4.send_events(segment_events("removed_from_segment", 0, 300, refresh_id="r2"))
    ga4.send_events(segment_events("added_to_segment", 100, 200, refresh_id="r3"))
    assert fake.failures > 20
    assert fake.invalid_hits == []
    assert fake.members["aud_1"] == clients(100, 200) | clients(300, 800)


def test_members_without_a_ga_client_id_are_skipped_and_counted(
    fake: FakeGA4, base_url: str
) -> None:
    ga4 = connect(fake, base_url)
    change = ga4.deliver_events(segment_events("added_to_segment", 0, 100, ga_every=4))
    assert change.sent == 25
    assert change.skipped_members == 75
    assert change.set_aside[0] == ("p1", "*", "no GA client id (_ga cookie)")
    assert fake.members["aud_1"] == clients(0, 100, every=4)


def test_a_clients_events_go_25_per_request(fake: FakeGA4, base_url: str) -> None:
    ga4 = connect(fake, base_url)
    events = []
    for n in range(60):  # one visitor joining 60 audiences in one refresh
        (event,) = segment_events("added_to_segment", 7, 8, audience=(f"a{n}", f"Audience {n}"))
        events.append(event)
    change = ga4.deliver_events(events)
    assert (change.sent, change.requests) == (60, 3)
    assert [len(hit["events"]) for hit in fake.hits] == [25, 25, 10]
    assert {hit["client_id"] for hit in fake.hits} == clients(7, 8)
    assert fake.invalid_hits == []


def test_events_older_than_72_hours_are_sent_unbackdated_with_their_time(
    fake: FakeGA4, base_url: str
) -> None:
    ga4 = connect(fake, base_url)
    old = segment_events("added_to_segment", 0, 1, timestamp="2026-11-25T06:00:00Z")
    recent = segment_events("added_to_segment", 1, 2, timestamp="2026-11-28T08:00:00Z")
    future = segment_events("added_to_segment", 2, 3, timestamp="2026-11-29T09:00:00Z")
    assert ga4.send_events(old + recent + future) == 3
    old_hit, recent_hit, future_hit = (hit_of(fake, client) for client in range(3))
    assert "timestamp_micros" not in old_hit
    assert old_hit["events"][0]["params"]["event_time"] == "2026-11-25T06:00:00+00:00"
    recent_time = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert recent_hit["timestamp_micros"] == int(recent_time.timestamp()) * 1_000_000
    assert "event_time" not in recent_hit["events"][0]["params"]
    assert "timestamp_micros" not in future_hit
    assert fake.invalid_hits == []


def test_long_audience_names_are_cut_to_100_characters(fake: FakeGA4, base_url: str) -> None:
    ga4 = connect(fake, base_url)
    events = segment_events("added_to_segment", 0, 1, audience=("a1", "N" * 300))
    ga4.send_events(events)
    assert fake.hits[0]["events"][0]["params"]["audience_name"] == "N" * 100
    assert fake.invalid_hits == []


def test_validate_returns_ga4_validation_messages(fake: FakeGA4, base_url: str) -> None:
    ga4 = connect(fake, base_url)
    bad = {"client_id": "1.2", "events": [{"name": "campaign@details", "params": {}}]}
    assert ga4.validate(bad) == [
        {
            "fieldPath": "events",
            "description": "Event at index: [0] has invalid name [campaign@details]. Only "
            "alphanumeric characters and underscores are allowed.",
            "validationCode": "NAME_INVALID",
        }
    ]
    assert ga4.validate({"client_id": "1.2", "events": [{"name": "ok", "params": {}}]}) == []
    assert fake.requests == 0


def test_list_sync_is_refused_pointing_at_event_sync(fake: FakeGA4, base_url: str) -> None:
    ga4 = connect(fake, base_url)
    with pytest.raises(BadRequest, match="Event Sync"):
        ga4.add_members("A", [ListMember("p1", email="a@b.co")])
    with pytest.raises(BadRequest, match="Event Sync"):
        ga4.remove_members("A", [ListMember("p1", email="a@b.co")])
    ga4.delete_audience("A")  # nothing to delete; no request
    assert fake.requests == fake.debug_requests == 0


def test_malformed_measurement_id_is_refused_before_any_request(
    fake: FakeGA4, base_url: str
) -> None:
    ga4 = GA4Events(measurement_id="UA-12345-1", api_secret="x", base_url=base_url)
    with pytest.raises(BadRequest, match="does not look like G-XXXXXXXXXX"):
        ga4.check_credentials()
    assert fake.debug_requests == 0


def test_wrong_api_secret_is_accepted_by_ga4_but_recorded_invalid_by_the_fake(
    fake: FakeGA4, base_url: str
) -> None:
    # Why check_credentials cannot catch it: GA4 answers 2xx and drops the hit.
    ga4 = GA4Events(
        measurement_id=fake.measurement_id, api_secret="wrong", base_url=base_url, retry=FAST
    )
    ga4.check_credentials()
    assert ga4.send_events(segment_events("added_to_segment", 0, 1)) == 1
    assert fake.hits == []
    assert [p["fieldPath"] for p in fake.invalid_hits[0][1]] == ["api_secret"]


def test_rate_limit_that_outlasts_the_retries_is_reported(fake: FakeGA4, base_url: str) -> None:
    ga4 = connect(fake, base_url, RetryPolicy(attempts=3, initial=0.001, maximum=0.01), 1)
    ga4.check_credentials()
    fake.failure_rate = 1.0
    with pytest.raises((RateLimited, Transient)):
        ga4.send_events(segment_events("added_to_segment", 0, 3))
    assert fake.requests == 3  # the first request's three attempts; the others never start
    assert fake.hits == []


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_requests_go_concurrency_at_a_time(fake: FakeGA4, base_url: str, concurrency: int) -> None:
    fake.latency = 0.015  # a round trip, so that requests overlap when they can
    ga4 = connect(fake, base_url, concurrency=concurrency)
    change = ga4.deliver_events(segment_events("added_to_segment", 0, 80))
    assert (change.sent, change.requests) == (80, 80)
    assert fake.members["aud_1"] == clients(0, 80)
    assert fake.invalid_hits == []
    assert fake.requests == 80
    if concurrency == 1:
        assert fake.most_in_flight == 1
    else:
        assert 1 < fake.most_in_flight <= concurrency


def test_a_request_failing_for_good_stops_the_rest_and_a_resend_completes(
    fake: FakeGA4, base_url: str
) -> None:
    attempts, workers = 2, 8
    ga4 = connect(fake, base_url, RetryPolicy(attempts=attempts, initial=0.001, maximum=0.01))
    fake.fail_after = 40
    events = segment_events("added_to_segment", 0, 400)
    with pytest.raises(Transient, match="GA4 HTTP 500"):
        ga4.send_events(events)
    # The failing request and those in flight beside it finish their attempts; no other starts.
    assert 40 < fake.requests <= 40 + attempts * workers
    assert len(fake.hits) == 40
    fake.fail_after = None  # what the runner does next: the whole step again
    assert ga4.send_events(events) == 400
    assert fake.members["aud_1"] == clients(0, 400)
    assert fake.invalid_hits == []


def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(BadRequest, match="concurrency must be at least 1, not 0"):
        GA4Events(measurement_id="G-ABCDE12345", api_secret="s", concurrency=0)


def test_unknown_event_names_are_refused_before_sending(fake: FakeGA4, base_url: str) -> None:
    ga4 = connect(fake, base_url)
    bad: list[dict[str, Any]] = [{**segment_events("added_to_segment", 0, 1)[0], "event": "x"}]
    with pytest.raises(BadRequest, match=r"events\[0\]: unknown event 'x'"):
        ga4.send_events(bad)
    assert fake.requests == fake.debug_requests == 0


@pytest.mark.parametrize(
    ("cookie", "client_id"),
    [
        ("GA1.1.1234567890.1700000000", "1234567890.1700000000"),
        ("GA1.2.42.17", "42.17"),
        ("1234567890.1700000000", "1234567890.1700000000"),
        (" GA1.1.5.6 ", "5.6"),
        ("GS1.1.1700000000.1.0.1700000000.0", None),  # a _ga_<container> session cookie
        ("", None),
        (None, None),
        ("fb.1.1700000000000.1", None),
    ],
)
def test_client_id_from_ga_cookie(cookie: str | None, client_id: str | None) -> None:
    assert client_id_from_cookie(cookie) == client_id


def test_region_selects_the_endpoint() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.host))
        return httpx.Response(200, json={"validationMessages": []})

    for region in ("global", "eu"):
        ga4 = GA4Events(measurement_id="G-ABCDE12345", api_secret="s", region=region)
        ga4._client = httpx.Client(
            base_url=ga4._client.base_url, transport=httpx.MockTransport(handler)
        )
        ga4.check_credentials()
    assert seen == ["www.google-analytics.com", "region1.google-analytics.com"]
    with pytest.raises(BadRequest, match="use global or eu"):
        GA4Events(measurement_id="G-ABCDE12345", api_secret="s", region="us")
