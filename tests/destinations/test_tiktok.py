"""TikTok Custom Audiences end to end, against a fake Business API that enforces the real API
(tests/destinations/fake_tiktok.py) served over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from segmint.destinations import registry
from segmint.destinations.tiktok import TikTokAudiences
from segmint.sync.errors import AuthExpired, BadRequest, RateLimited, Transient
from segmint.sync.normalize import ListMember
from segmint.sync.retry import RetryPolicy
from tests.destinations.fake_tiktok import FakeTikTok, serve


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def members(start: int, stop: int) -> list[ListMember]:
    """Generated members with messy emails; every fifth has a national-format phone."""
    return [
        ListMember(
            key=f"u{i}",
            email=f"  User{i}@Example.com ",
            phone=f"(415) 555-{i % 10_000:04d}" if i % 5 == 0 else None,
            country="US",
        )
        for i in range(start, stop)
    ]


def emails(start: int, stop: int) -> set[str]:
    return {sha(f"user{i}@example.com") for i in range(start, stop)}


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok()


@pytest.fixture
def base_url(fake: FakeTikTok) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def connect(fake: FakeTikTok, base_url: str) -> TikTokAudiences:
    return TikTokAudiences(
        advertiser_id=fake.advertiser_id,
        access_token=fake.token,
        destination_name="Shop TikTok",
        base_url=base_url,
        retry=RetryPolicy(attempts=40, initial=0.001, maximum=0.01),
    )


def test_tiktok_is_registered_with_its_limits(fake: FakeTikTok, base_url: str) -> None:
    assert "tiktok" in registry.names()
    tiktok = registry.create(
        "tiktok", advertiser_id=fake.advertiser_id, access_token=fake.token, base_url=base_url
    )
    assert isinstance(tiktok, TikTokAudiences)
    tiktok.check_credentials()
    assert tiktok.identifier_schema == ("email", "phone")
    assert tiktok.limits.instant_sync_min_interval_seconds == 1800
    assert tiktok.limits.max_records_per_request == 1_000


def test_sync_of_25000_members_then_removals_leaves_the_exact_list(
    fake: FakeTikTok, base_url: str
) -> None:
    tiktok = connect(fake, base_url)
    audience_id = tiktok.ensure_audience("Cart abandoners")
    assert tiktok.ensure_audience("Cart abandoners") == audience_id  # found, not created twice
    assert len(fake.audiences) == 1

    added = tiktok.add_members(audience_id, members(0, 25_000))
    assert (added.sent, added.requests, added.set_aside) == (25_000, 25, [])
    assert max(fake.batch_sizes) == 1_000

    removed = tiktok.remove_members(audience_id, members(20_000, 25_000))
    assert (removed.sent, removed.requests) == (5_000, 5)

    audience = fake.audiences[audience_id]
    assert audience.values("EMAIL_SHA256") == emails(0, 20_000)
    assert len(audience.members) == 20_000
    assert sha("+14155550005") in audience.values("PHONE_SHA256")  # E.164 with "+"

    tiktok.delete_audience(audience_id)
    assert fake.audiences == {}


def test_digits_only_phone_format_is_configurable(fake: FakeTikTok, base_url: str) -> None:
    tiktok = TikTokAudiences(
        advertiser_id=fake.advertiser_id,
        access_token=fake.token,
        base_url=base_url,
        phone_plus=False,
    )
    audience_id = tiktok.ensure_audience("Phones")
    tiktok.add_members(audience_id, [ListMember("p", phone="+14155550123")])
    assert fake.audiences[audience_id].values("PHONE_SHA256") == {sha("14155550123")}


def test_audiences_are_found_across_pages(fake: FakeTikTok, base_url: str) -> None:
    for n in range(150):
        fake.create_audience(
            {
                "advertiser_id": fake.advertiser_id,
                "custom_audience_name": f"A{n}",
                "action": "create",
            }
        )
    tiktok = connect(fake, base_url)
    last = tiktok.ensure_audience("A149")
    assert fake.audiences[last].name == "A149"
    assert len(fake.audiences) == 150


def test_random_failures_and_dropped_connections_end_with_the_exact_list(
    fake: FakeTikTok, base_url: str
) -> None:
    tiktok = connect(fake, base_url)
    audience_id = tiktok.ensure_audience("Flaky")
    fake.failure_rate, fake.drop_rate = 0.3, 0.15
    tiktok.add_members(audience_id, members(0, 25_000))
    tiktok.remove_members(audience_id, members(0, 3_000))
    tiktok.add_members(audience_id, members(1_000, 2_000))  # a refresh brings some back
    assert fake.failures > 10
    assert fake.audiences[audience_id].values("EMAIL_SHA256") == emails(1_000, 2_000) | emails(
        3_000, 25_000
    )


def test_lost_create_responses_never_make_duplicate_audiences(
    fake: FakeTikTok, base_url: str
) -> None:
    tiktok = connect(fake, base_url)
    fake.failure_rate, fake.drop_rate = 0.3, 0.4
    ids = {tiktok.ensure_audience(f"Audience {n}") for n in range(8)}
    assert fake.failures > 0
    assert sorted(a.id for a in fake.audiences.values()) == sorted(ids)


def test_rate_limit_that_outlasts_the_retries_is_reported(fake: FakeTikTok, base_url: str) -> None:
    tiktok = connect(fake, base_url)
    audience_id = tiktok.ensure_audience("Busy")
    tiktok.retry = RetryPolicy(attempts=2, initial=0.001, maximum=0.01)
    fake.failure_rate = 1.0
    with pytest.raises((RateLimited, Transient)) as caught:
        tiktok.add_members(audience_id, members(0, 10))
    assert caught.value.platform_code in (40100, 40133, 50000)


def test_expired_token_mid_sync_stops_with_r21_message_and_resumes_after_reauth(
    fake: FakeTikTok, base_url: str
) -> None:
    tiktok = connect(fake, base_url)
    audience_id = tiktok.ensure_audience("Expiring")
    fake.expire_after_calls = 3  # the token expires after the third batch
    with pytest.raises(AuthExpired) as caught:
        tiktok.add_members(audience_id, members(0, 25_000))
    assert caught.value.message == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → Shop TikTok → Configuration Settings"
    )
    assert caught.value.platform_code == 40102
    assert "expired" in caught.value.detail
    assert fake.mapping_calls == 3  # not retried
    with pytest.raises(AuthExpired):
        tiktok.check_credentials()

    fake.reauthenticate("fresh-token")
    tiktok.access_token = "fresh-token"
    tiktok.check_credentials()
    tiktok.add_members(audience_id, members(0, 25_000))
    assert fake.audiences[audience_id].values("EMAIL_SHA256") == emails(0, 25_000)


@pytest.mark.parametrize(("token", "code"), [("", 40104), ("wrong", 40105)])
def test_missing_or_wrong_token_is_auth_expired(
    fake: FakeTikTok, base_url: str, token: str, code: int
) -> None:
    tiktok = connect(fake, base_url)
    tiktok.access_token = token
    with pytest.raises(AuthExpired) as caught:
        tiktok.check_credentials()
    assert caught.value.platform_code == code


def test_malformed_values_are_set_aside_and_counted(fake: FakeTikTok, base_url: str) -> None:
    tiktok = connect(fake, base_url)
    audience_id = tiktok.ensure_audience("Quality")
    batch = [
        *members(0, 100),
        ListMember("bad1", email="not-an-email"),
        ListMember("bad2", email="x@y", phone="+14155550123"),
        ListMember("bad3", email="x@y", phone="12"),
        ListMember("anon"),
    ]
    change = tiktok.add_members(audience_id, batch)
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
    assert audience.values("EMAIL_SHA256") == emails(0, 100)
    assert sha("+14155550123") in audience.values("PHONE_SHA256")


def test_emails_lose_inner_spaces_and_hashed_values_pass_through(
    fake: FakeTikTok, base_url: str
) -> None:
    tiktok = connect(fake, base_url)
    audience_id = tiktok.ensure_audience("Hashed upstream")
    digest, phone_digest = sha("someone@example.com"), sha("+14155550100")
    tiktok.add_members(
        audience_id,
        [
            ListMember("h1", email=digest.upper(), phone=phone_digest),
            ListMember("h2", email=" Jane Doe@Gmail.com"),
        ],
    )
    audience = fake.audiences[audience_id]
    assert audience.values("EMAIL_SHA256") == {digest, sha("janedoe@gmail.com")}
    assert audience.values("PHONE_SHA256") == {phone_digest}
    # TikTok's published test vector for janedoe@gmail.com (platform-apis.md §9).
    assert sha("janedoe@gmail.com") == (
        "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
    )


def test_unknown_audience_is_a_bad_request_not_retried(fake: FakeTikTok, base_url: str) -> None:
    tiktok = connect(fake, base_url)
    before = fake.requests
    with pytest.raises(BadRequest, match="does not exist") as caught:
        tiktok.add_members("999", members(0, 5))
    assert caught.value.platform_code == 40002
    assert fake.requests == before + 1


# -- the fake itself refuses what the real API refuses -------------------------------------


@pytest.fixture
def audience_id(fake: FakeTikTok) -> str:
    created = fake.create_audience(
        {"advertiser_id": fake.advertiser_id, "custom_audience_name": "A", "action": "create"}
    )
    return str(created["audience_id"])


def mapping_body(fake: FakeTikTok, audience_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "advertiser_ids": [fake.advertiser_id],
        "action": "add",
        "id_schema": ["EMAIL_SHA256", "PHONE_SHA256"],
        "batch_data": [[{"id": sha("a@b.co"), "audience_ids": [audience_id]}, {}]],
    }
    body.update(changes)
    return body


def entry(value: str, audience_id: str) -> dict[str, Any]:
    return {"id": value, "audience_ids": [audience_id]}


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no token", 40104),
        ("wrong token", 40105),
        ("other advertiser", 40001),
        ("not hashed", 40002),
        ("uppercase hex", 40002),
        ("unknown id type", 40002),
        ("row shorter than schema", 40002),
        ("over the batch limit", 40002),
        ("bad action", 40002),
        ("unknown audience", 40002),
        ("valid", 0),
    ],
)
def test_fake_enforces_the_real_mapping_endpoint(
    fake: FakeTikTok, base_url: str, audience_id: str, case: str, code: int
) -> None:
    headers = {"Access-Token": fake.token}
    body = mapping_body(fake, audience_id)
    if case == "no token":
        headers = {}
    elif case == "wrong token":
        headers = {"Access-Token": "wrong"}
    elif case == "other advertiser":
        body["advertiser_ids"] = ["1"]
    elif case == "not hashed":
        body["batch_data"] = [[entry("a@b.co", audience_id), {}]]
    elif case == "uppercase hex":
        body["batch_data"] = [[entry(sha("a@b.co").upper(), audience_id), {}]]
    elif case == "unknown id type":
        body["id_schema"] = ["EMAIL", "PHONE_SHA256"]
    elif case == "row shorter than schema":
        body["batch_data"] = [[entry(sha("a@b.co"), audience_id)]]
    elif case == "over the batch limit":
        body["batch_data"] = [[entry(sha(str(i)), audience_id), {}] for i in range(1_001)]
    elif case == "bad action":
        body["action"] = "append"
    elif case == "unknown audience":
        body["batch_data"] = [[entry(sha("a@b.co"), "42"), {}]]
    response = httpx.post(f"{base_url}/segment/mapping/", json=body, headers=headers)
    assert response.status_code == 200  # TikTok reports errors in the envelope
    envelope = response.json()
    assert envelope["code"] == code
    assert set(envelope) == {"code", "message", "request_id", "data"}
    expected = set() if code else {sha("a@b.co")}
    assert fake.audiences[audience_id].values("EMAIL_SHA256") == expected


def test_fake_answers_404_without_the_trailing_slash(
    fake: FakeTikTok, base_url: str, audience_id: str
) -> None:
    response = httpx.post(
        f"{base_url}/segment/mapping",
        json=mapping_body(fake, audience_id),
        headers={"Access-Token": fake.token},
    )
    assert response.status_code == 404
    assert fake.audiences[audience_id].members == set()


def test_adapter_treats_a_404_as_a_bad_request(fake: FakeTikTok, base_url: str) -> None:
    tiktok = connect(fake, base_url)
    with pytest.raises(BadRequest, match="HTTP 404"):
        tiktok._call("GET", "/dmp/custom_audience/list")


def test_fake_returns_the_real_failure_envelopes(fake: FakeTikTok, base_url: str) -> None:
    fake.failure_rate, fake.seed = 1.0, 3
    fake.__post_init__()
    seen = set()
    for _ in range(30):
        response = httpx.get(
            f"{base_url}/dmp/custom_audience/list/",
            params={"advertiser_id": fake.advertiser_id},
            headers={"Access-Token": fake.token},
        )
        seen.add((response.status_code, response.json()["code"]))
    assert seen == {(500, 50000), (200, 40100), (200, 40133)}
