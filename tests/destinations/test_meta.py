"""Meta Custom Audiences end to end, against a fake Graph server that enforces the real API
(tests/destinations/fake_meta.py) served over real HTTP."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator

import httpx
import pytest

from segmint.destinations import registry
from segmint.destinations.meta import MetaCustomAudiences
from segmint.sync.errors import AuthExpired, BadRequest, RateLimited, Transient
from segmint.sync.normalize import ListMember
from segmint.sync.retry import RetryPolicy
from tests.destinations.fake_meta import FakeMeta, serve


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def members(start: int, stop: int) -> list[ListMember]:
    """Generated members; every fifth has a national-format phone, every seventh a name."""
    return [
        ListMember(
            key=f"u{i}",
            email=f"  User{i}@Example.com ",
            phone=f"(415) 555-{i % 10_000:04d}" if i % 5 == 0 else None,
            first_name="Zoë" if i % 7 == 0 else None,
            country="US",
        )
        for i in range(start, stop)
    ]


def emails(start: int, stop: int) -> set[str]:
    return {sha(f"user{i}@example.com") for i in range(start, stop)}


@pytest.fixture
def fake() -> FakeMeta:
    return FakeMeta()


@pytest.fixture
def base_url(fake: FakeMeta) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def connect(fake: FakeMeta, base_url: str) -> MetaCustomAudiences:
    sessions = itertools.count(1_000)
    return MetaCustomAudiences(
        ad_account_id=f"act_{fake.ad_account_id}",
        access_token=fake.token,
        destination_name="Shop Meta",
        base_url=base_url,
        retry=RetryPolicy(attempts=40, initial=0.001, maximum=0.01),
        session_ids=lambda: next(sessions),
    )


def test_meta_is_registered_by_name(fake: FakeMeta, base_url: str) -> None:
    assert "meta" in registry.names()
    meta = registry.create(
        "meta", ad_account_id=fake.ad_account_id, access_token=fake.token, base_url=base_url
    )
    assert isinstance(meta, MetaCustomAudiences)
    meta.check_credentials()
    assert meta.limits.max_records_per_request == 10_000


def test_sync_of_25000_members_then_removals_leaves_the_exact_list(
    fake: FakeMeta, base_url: str
) -> None:
    meta = connect(fake, base_url)
    audience_id = meta.ensure_audience("Cart abandoners")
    assert meta.ensure_audience("Cart abandoners") == audience_id  # found, not created twice
    assert len(fake.audiences) == 1

    added = meta.add_members(audience_id, members(0, 25_000))
    assert (added.sent, added.requests, added.set_aside) == (25_000, 3, [])
    assert [s["batch_seq"] for s in fake.sessions] == [1, 2, 3]
    assert [s["last_batch_flag"] for s in fake.sessions] == [False, False, True]
    assert {s["session_id"] for s in fake.sessions} == {1_000}
    assert {s["estimated_num_total"] for s in fake.sessions} == {25_000}

    removed = meta.remove_members(audience_id, members(20_000, 25_000))
    assert (removed.sent, removed.requests) == (5_000, 1)

    audience = fake.audiences[audience_id]
    assert audience.values("EMAIL") == emails(0, 20_000)
    assert len(audience.members) == 20_000
    assert sha("14155550005") in audience.values("PHONE")  # Meta: digits, no "+"
    assert audience.values("FN") == {sha("zoë")}
    assert audience.values("COUNTRY") == {sha("us")}

    meta.delete_audience(audience_id)
    assert fake.audiences == {}


def test_random_failures_and_dropped_connections_end_with_the_exact_list(
    fake: FakeMeta, base_url: str
) -> None:
    meta = connect(fake, base_url)
    audience_id = meta.ensure_audience("Flaky")
    fake.failure_rate, fake.drop_rate = 0.3, 0.15
    # Several syncs of small batches, so many requests meet a failure.
    meta.limits = type(meta.limits)(max_records_per_request=1_000)
    meta.add_members(audience_id, members(0, 25_000))
    meta.remove_members(audience_id, members(0, 3_000))
    meta.add_members(audience_id, members(1_000, 2_000))  # a refresh brings some back
    assert fake.failures > 10
    assert fake.audiences[audience_id].values("EMAIL") == emails(1_000, 2_000) | emails(
        3_000, 25_000
    )


def test_lost_create_responses_never_make_duplicate_audiences(
    fake: FakeMeta, base_url: str
) -> None:
    meta = connect(fake, base_url)
    fake.failure_rate, fake.drop_rate = 0.3, 0.4
    ids = {meta.ensure_audience(f"Audience {n}") for n in range(8)}
    assert fake.failures > 0
    assert sorted(a.id for a in fake.audiences.values()) == sorted(ids)


def test_rate_limit_that_outlasts_the_retries_is_reported(fake: FakeMeta, base_url: str) -> None:
    meta = connect(fake, base_url)
    audience_id = meta.ensure_audience("Busy")
    meta.retry = RetryPolicy(attempts=2, initial=0.001, maximum=0.01)
    fake.failure_rate = 1.0
    with pytest.raises((RateLimited, Transient)) as caught:
        meta.add_members(audience_id, members(0, 10))
    assert caught.value.platform_code in (80003, 2)


def test_finding_or_creating_an_audience_is_retried_as_a_whole_not_request_by_request(
    fake: FakeMeta, base_url: str
) -> None:
    meta = connect(fake, base_url)
    meta.retry = RetryPolicy(attempts=3, initial=0.001, maximum=0.01)
    fake.failure_rate = 1.0
    with pytest.raises((RateLimited, Transient)):
        meta.ensure_audience("Unreachable")
    assert fake.failures == 3  # three attempts in all (nested retries made nine)


def test_expired_token_mid_sync_stops_with_r21_message_and_resumes_after_reauth(
    fake: FakeMeta, base_url: str
) -> None:
    meta = connect(fake, base_url)
    audience_id = meta.ensure_audience("Expiring")
    fake.expire_after_calls = 1  # the token expires after the first batch
    with pytest.raises(AuthExpired) as caught:
        meta.add_members(audience_id, members(0, 25_000))
    assert caught.value.message == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → Shop Meta → Configuration Settings"
    )
    assert caught.value.platform_code == 190
    assert "Session has expired" in caught.value.detail
    assert fake.user_calls == 1  # not retried
    with pytest.raises(AuthExpired):
        meta.check_credentials()

    fake.reauthenticate("fresh-token")
    meta.access_token = "fresh-token"
    meta.check_credentials()
    meta.add_members(audience_id, members(0, 25_000))
    assert fake.audiences[audience_id].values("EMAIL") == emails(0, 25_000)


def test_malformed_emails_are_set_aside_and_counted(fake: FakeMeta, base_url: str) -> None:
    meta = connect(fake, base_url)
    audience_id = meta.ensure_audience("Quality")
    batch = [
        *members(0, 100),
        ListMember("bad1", email="not-an-email"),
        ListMember("bad2", email="two words@example.com", phone="+14155550123"),
        ListMember("bad3", email="x@y", phone="12"),
        ListMember("anon"),
    ]
    change = meta.add_members(audience_id, batch)
    assert change.sent == 101
    assert change.skipped_members == 3
    reasons = [(item.key, item.identifier, item.reason) for item in change.set_aside]
    assert reasons == [
        ("bad1", "email", "malformed email"),
        ("bad1", "*", "no usable email or phone"),
        ("bad2", "email", "malformed email"),
        ("bad3", "email", "malformed email"),
        ("bad3", "phone", "malformed phone"),
        ("bad3", "*", "no usable email or phone"),
        ("anon", "*", "no usable email or phone"),
    ]
    audience = fake.audiences[audience_id]
    assert audience.values("EMAIL") == emails(0, 100)
    assert sha("14155550123") in audience.values("PHONE")


def test_already_hashed_emails_pass_through_unchanged(fake: FakeMeta, base_url: str) -> None:
    meta = connect(fake, base_url)
    audience_id = meta.ensure_audience("Hashed upstream")
    digest = sha("someone@example.com")
    meta.add_members(
        audience_id, [ListMember("h1", email=digest), ListMember("h2", email="B@x.io")]
    )
    assert fake.audiences[audience_id].values("EMAIL") == {digest, sha("b@x.io")}


def test_unknown_audience_is_a_bad_request_not_retried(fake: FakeMeta, base_url: str) -> None:
    meta = connect(fake, base_url)
    before = fake.requests
    with pytest.raises(BadRequest, match="does not exist"):
        meta.add_members("999", members(0, 5))
    assert fake.requests == before + 1


# -- the fake itself rejects what the real API rejects ------------------------------------


def graph_post(base_url: str, path: str, **params: str) -> httpx.Response:
    return httpx.post(f"{base_url}{path}", data=params, timeout=10)


@pytest.fixture
def audience_id(fake: FakeMeta) -> str:
    return str(fake.create_audience({"name": "A"})["id"])


def payload(rows: list[list[str]], schema: str = '["EMAIL","PHONE"]') -> str:
    import json

    return json.dumps({"schema": json.loads(schema), "data": rows})


SESSION = '{"session_id": 1, "batch_seq": 1, "last_batch_flag": true, "estimated_num_total": 1}'


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"access_token": "wrong"}, 400, 190),
        ({}, 400, 2500),
        ({"payload": payload([["user@example.com", ""]])}, 400, 100),  # not hashed
        ({"payload": payload([[sha("a"), ""]], '["EMAIL","PHONES"]')}, 400, 100),
        ({"payload": payload([[sha("a")]])}, 400, 100),  # row shorter than schema
        ({"payload": payload([[sha("a"), ""]] * 10_001)}, 400, 100),  # over 10,000
        ({"session": '{"batch_seq": 1, "last_batch_flag": true}'}, 400, 100),
        ({"session": '{"session_id": 1, "batch_seq": 0, "last_batch_flag": true}'}, 400, 100),
        ({}, 200, None),
    ],
)
def test_fake_enforces_the_real_users_endpoint(
    fake: FakeMeta,
    base_url: str,
    audience_id: str,
    params: dict[str, str],
    status: int,
    code: int | None,
) -> None:
    sent = {
        "access_token": fake.token,
        "payload": payload([[sha("a@b.co"), ""]]),
        "session": SESSION,
        **params,
    }
    if code == 2500:
        del sent["access_token"]
    response = graph_post(base_url, f"/{audience_id}/users", **sent)
    assert response.status_code == status
    if code is not None:
        error = response.json()["error"]
        assert error["code"] == code
        assert {"message", "type", "fbtrace_id"} <= set(error)
    else:
        assert response.json()["num_received"] == 1


def test_fake_returns_the_real_rate_limit_body(fake: FakeMeta, base_url: str) -> None:
    fake.failure_rate, fake.seed = 1.0, 3
    fake.__post_init__()
    statuses = set()
    for _ in range(20):
        response = httpx.get(
            f"{base_url}/act_{fake.ad_account_id}", params={"access_token": fake.token}
        )
        statuses.add((response.status_code, response.json()["error"]["code"]))
    assert statuses == {(429, 80003), (500, 2)}
