"""LinkedIn DMP segments end to end, against a fake Rest.li server that enforces the real API
(tests/destinations/fake_linkedin.py) served over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from segmint.destinations import registry
from segmint.destinations.linkedin import LinkedInAudiences
from segmint.sync.errors import AuthExpired, BadRequest, RateLimited, Transient
from segmint.sync.normalize import ListMember
from segmint.sync.retry import RetryPolicy
from tests.destinations.fake_linkedin import FakeLinkedIn, serve


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def members(start: int, stop: int) -> list[ListMember]:
    """Generated members with messy emails; every seventh has a name."""
    return [
        ListMember(
            key=f"u{i}",
            email=f"  User{i}@Example.com ",
            first_name=" Zoë " if i % 7 == 0 else None,
            last_name="Smith" if i % 7 == 0 else None,
        )
        for i in range(start, stop)
    ]


def emails(start: int, stop: int) -> set[str]:
    return {sha(f"user{i}@example.com") for i in range(start, stop)}


@pytest.fixture
def fake() -> FakeLinkedIn:
    return FakeLinkedIn()


@pytest.fixture
def base_url(fake: FakeLinkedIn) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def connect(fake: FakeLinkedIn, base_url: str) -> LinkedInAudiences:
    return LinkedInAudiences(
        ad_account_id=fake.ad_account_id,
        access_token=fake.token,
        destination_name="Shop LinkedIn",
        base_url=base_url,
        retry=RetryPolicy(attempts=40, initial=0.001, maximum=0.01),
        settle_seconds=0,
    )


def test_linkedin_is_registered_with_its_limits(fake: FakeLinkedIn, base_url: str) -> None:
    assert "linkedin" in registry.names()
    linkedin = registry.create(
        "linkedin",
        ad_account_id=f"urn:li:sponsoredAccount:{fake.ad_account_id}",
        access_token=fake.token,
        base_url=base_url,
    )
    assert isinstance(linkedin, LinkedInAudiences)
    linkedin.check_credentials()
    assert linkedin.identifier_schema == ("email", "first_name", "last_name")
    assert linkedin.limits.max_records_per_request == 5_000


def test_sync_of_25000_members_then_removals_leaves_the_exact_list(
    fake: FakeLinkedIn, base_url: str
) -> None:
    waits: list[float] = []
    linkedin = connect(fake, base_url)
    linkedin.settle_seconds, linkedin._sleep = 5.0, waits.append
    segment_id = linkedin.ensure_audience("Cart abandoners")
    assert waits == [5.0]  # LinkedIn needs a moment before users can be added
    assert linkedin.ensure_audience("Cart abandoners") == segment_id  # found, not created twice
    assert len(fake.segments) == 1

    added = linkedin.add_members(segment_id, members(0, 25_000))
    assert (added.sent, added.requests, added.set_aside) == (25_000, 5, [])
    assert fake.batch_sizes == [5_000] * 5

    removed = linkedin.remove_members(segment_id, members(20_000, 25_000))
    assert (removed.sent, removed.requests) == (5_000, 1)

    segment = fake.segments[segment_id]
    assert set(segment.members) == emails(0, 20_000)
    assert segment.members[sha("user7@example.com")] == ("Zoë", "Smith")  # names in clear
    assert segment.members[sha("user8@example.com")] == (None, None)

    linkedin.delete_audience(segment_id)
    assert fake.segments == {}


def test_segments_are_found_across_pages(fake: FakeLinkedIn, base_url: str) -> None:
    for n in range(250):
        fake.create_segment(
            {
                "name": f"S{n}",
                "sourcePlatform": "STREAMING",
                "account": fake.account_urn,
                "accessPolicy": "PRIVATE",
                "type": "USER",
                "destinations": [{"destination": "LINKEDIN"}],
            }
        )
    linkedin = connect(fake, base_url)
    assert fake.segments[linkedin.ensure_audience("S249")].name == "S249"
    assert len(fake.segments) == 250


def test_random_failures_and_dropped_connections_end_with_the_exact_list(
    fake: FakeLinkedIn, base_url: str
) -> None:
    linkedin = connect(fake, base_url)
    segment_id = linkedin.ensure_audience("Flaky")
    fake.failure_rate, fake.drop_rate = 0.3, 0.15
    linkedin.limits = type(linkedin.limits)(max_records_per_request=1_000)
    linkedin.add_members(segment_id, members(0, 25_000))
    linkedin.remove_members(segment_id, members(0, 3_000))
    linkedin.add_members(segment_id, members(1_000, 2_000))  # a refresh brings some back
    assert fake.failures > 10
    assert set(fake.segments[segment_id].members) == emails(1_000, 2_000) | emails(3_000, 25_000)


def test_lost_create_responses_never_make_duplicate_segments(
    fake: FakeLinkedIn, base_url: str
) -> None:
    linkedin = connect(fake, base_url)
    fake.failure_rate, fake.drop_rate = 0.3, 0.4
    ids = {linkedin.ensure_audience(f"Segment {n}") for n in range(8)}
    assert fake.failures > 0
    assert sorted(fake.segments) == sorted(ids)


def test_rate_limit_that_outlasts_the_retries_is_reported(
    fake: FakeLinkedIn, base_url: str
) -> None:
    linkedin = connect(fake, base_url)
    segment_id = linkedin.ensure_audience("Busy")
    linkedin.retry = RetryPolicy(attempts=2, initial=0.001, maximum=0.01)
    fake.failure_rate = 1.0
    with pytest.raises((RateLimited, Transient)):
        linkedin.add_members(segment_id, members(0, 10))


def test_expired_token_mid_sync_stops_with_r21_message_and_resumes_after_reauth(
    fake: FakeLinkedIn, base_url: str
) -> None:
    linkedin = connect(fake, base_url)
    segment_id = linkedin.ensure_audience("Expiring")
    fake.expire_after_calls = 2  # the token expires after the second batch
    with pytest.raises(AuthExpired) as caught:
        linkedin.add_members(segment_id, members(0, 25_000))
    assert caught.value.message == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → Shop LinkedIn → Configuration Settings"
    )
    assert caught.value.platform_code == 65601
    assert "expired" in caught.value.detail
    assert fake.user_calls == 2  # not retried
    with pytest.raises(AuthExpired):
        linkedin.check_credentials()

    fake.reauthenticate("fresh-token")
    linkedin.access_token = "fresh-token"
    linkedin.check_credentials()
    linkedin.add_members(segment_id, members(0, 25_000))
    assert set(fake.segments[segment_id].members) == emails(0, 25_000)


def test_malformed_emails_are_set_aside_and_counted(fake: FakeLinkedIn, base_url: str) -> None:
    linkedin = connect(fake, base_url)
    segment_id = linkedin.ensure_audience("Quality")
    batch = [
        *members(0, 100),
        ListMember("bad1", email="not-an-email", first_name="Ann", last_name="Lee"),
        ListMember("bad2", email="two words@example.com"),
        ListMember("anon"),
        ListMember("long", email="long@example.com", first_name="A" * 50, last_name="B"),
    ]
    change = linkedin.add_members(segment_id, batch)
    assert change.sent == 101
    assert change.skipped_members == 3
    reasons = [(item.key, item.identifier, item.reason) for item in change.set_aside]
    assert reasons == [
        ("bad1", "email", "malformed email"),
        ("bad1", "*", "no usable email or phone"),
        ("bad2", "email", "malformed email"),
        ("bad2", "*", "no usable email or phone"),
        ("anon", "*", "no usable email or phone"),
    ]
    segment = fake.segments[segment_id]
    assert set(segment.members) == emails(0, 100) | {sha("long@example.com")}
    assert segment.members[sha("long@example.com")] == ("A" * 35, "B")  # LinkedIn's 35 chars


def test_already_hashed_emails_pass_through_unchanged(fake: FakeLinkedIn, base_url: str) -> None:
    linkedin = connect(fake, base_url)
    segment_id = linkedin.ensure_audience("Hashed upstream")
    digest = sha("someone@example.com")
    linkedin.add_members(
        segment_id, [ListMember("h1", email=digest.upper()), ListMember("h2", email="B@x.io")]
    )
    assert set(fake.segments[segment_id].members) == {digest, sha("b@x.io")}


def test_unknown_segment_is_a_bad_request_not_retried(fake: FakeLinkedIn, base_url: str) -> None:
    linkedin = connect(fake, base_url)
    before = fake.requests
    with pytest.raises(BadRequest, match="HTTP 404"):
        linkedin.add_members("999", members(0, 5))
    assert fake.requests == before + 1


# -- the fake itself refuses what the real API refuses -------------------------------------


@pytest.fixture
def segment_id(fake: FakeLinkedIn) -> str:
    return fake.create_segment(
        {
            "name": "A",
            "sourcePlatform": "STREAMING",
            "account": fake.account_urn,
            "accessPolicy": "PRIVATE",
            "type": "USER",
            "destinations": [{"destination": "LINKEDIN"}],
        }
    )


def element(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": "ADD",
        "userIds": [{"idType": "SHA256_EMAIL", "idValue": sha("a@b.co")}],
    }
    body.update(changes)
    return body


GOOD_HEADERS = {
    "LinkedIn-Version": "202603",
    "X-Restli-Protocol-Version": "2.0.0",
    "X-RestLi-Method": "BATCH_CREATE",
}


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no token", 401, "EMPTY_ACCESS_TOKEN"),
        ("wrong token", 401, "INVALID_ACCESS_TOKEN"),
        ("no version", 400, "VERSION_MISSING"),
        ("no protocol version", 400, "ILLEGAL_ARGUMENT"),
        ("not batch create", 400, "ILLEGAL_ARGUMENT"),
        ("not hashed", 400, "ILLEGAL_ARGUMENT"),
        ("unknown id type", 400, "ILLEGAL_ARGUMENT"),
        ("bad action", 400, "ILLEGAL_ARGUMENT"),
        ("name too long", 400, "ILLEGAL_ARGUMENT"),
        ("over 5000", 400, "ILLEGAL_ARGUMENT"),
        ("unknown segment", 404, "NOT_FOUND"),
        ("valid", 200, None),
    ],
)
def test_fake_enforces_the_real_users_endpoint(
    fake: FakeLinkedIn,
    base_url: str,
    segment_id: str,
    case: str,
    status: int,
    code: str | None,
) -> None:
    headers: dict[str, str] = {"Authorization": f"Bearer {fake.token}", **GOOD_HEADERS}
    elements = [element()]
    target = segment_id
    if case == "no token":
        del headers["Authorization"]
    elif case == "wrong token":
        headers["Authorization"] = "Bearer wrong"
    elif case == "no version":
        del headers["LinkedIn-Version"]
    elif case == "no protocol version":
        del headers["X-Restli-Protocol-Version"]
    elif case == "not batch create":
        del headers["X-RestLi-Method"]
    elif case == "not hashed":
        elements = [element(userIds=[{"idType": "SHA256_EMAIL", "idValue": "a@b.co"}])]
    elif case == "unknown id type":
        elements = [element(userIds=[{"idType": "EMAIL", "idValue": sha("a@b.co")}])]
    elif case == "bad action":
        elements = [element(action="APPEND")]
    elif case == "name too long":
        elements = [element(firstName="x" * 36)]
    elif case == "over 5000":
        elements = [element()] * 5_001
    elif case == "unknown segment":
        target = "42"
    response = httpx.post(
        f"{base_url}/dmpSegments/{target}/users",
        json={"elements": elements},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == status
    if code is None:
        assert response.json() == {"elements": [{"status": 201}]}
        assert set(fake.segments[segment_id].members) == {sha("a@b.co")}
    else:
        assert response.json()["code"] == code
        assert response.json()["status"] == status
        assert fake.segments[segment_id].members == {}


def test_fake_creates_segments_with_201_and_the_id_in_a_header(
    fake: FakeLinkedIn, base_url: str
) -> None:
    headers = {"Authorization": f"Bearer {fake.token}", **GOOD_HEADERS}
    body = {
        "name": "New",
        "sourcePlatform": "STREAMING",
        "account": fake.account_urn,
        "accessPolicy": "PRIVATE",
        "type": "USER",
        "destinations": [{"destination": "LINKEDIN"}],
    }
    response = httpx.post(f"{base_url}/dmpSegments", json=body, headers=headers)
    assert response.status_code == 201
    assert response.content == b""
    assert fake.segments[response.headers["x-restli-id"]].name == "New"
    refused = httpx.post(
        f"{base_url}/dmpSegments", json={**body, "type": "PEOPLE"}, headers=headers
    )
    assert refused.status_code == 400


def test_fake_returns_the_real_failure_bodies(fake: FakeLinkedIn, base_url: str) -> None:
    fake.failure_rate, fake.seed = 1.0, 3
    fake.__post_init__()
    seen = set()
    for _ in range(20):
        response = httpx.get(
            f"{base_url}/dmpSegments",
            params={"q": "account", "account": fake.account_urn},
            headers={"Authorization": f"Bearer {fake.token}", **GOOD_HEADERS},
        )
        seen.add((response.status_code, response.json().get("code")))
    assert seen == {(500, None), (429, "TOO_MANY_REQUESTS")}
