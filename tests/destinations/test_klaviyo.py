"""Klaviyo lists end to end, against a fake Klaviyo JSON:API that enforces the real API
(tests/destinations/fake_klaviyo.py) served over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from segmint.destinations import registry
from segmint.destinations.klaviyo import CONFIG_FIELDS, CREDENTIAL_FIELDS, REVISION, KlaviyoLists
from segmint.sync.errors import AuthExpired, BadRequest, RateLimited, Transient
from segmint.sync.normalize import ListMember
from segmint.sync.retry import RetryPolicy
from tests.destinations.fake_klaviyo import FakeKlaviyo, serve


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def phone(i: int) -> str:
    """A distinct valid US number per member, in national format."""
    return f"(415) 5{i // 10_000 + 50}-{i % 10_000:04d}"


def e164(i: int) -> str:
    return f"+14155{i // 10_000 + 50}{i % 10_000:04d}"


def members(start: int, stop: int) -> list[ListMember]:
    """Generated members with messy emails; every fifth also has a phone."""
    return [
        ListMember(
            key=f"u{i}",
            email=f"  User{i}@Example.com ",
            phone=phone(i) if i % 5 == 0 else None,
            country="US",
        )
        for i in range(start, stop)
    ]


def emails(start: int, stop: int) -> set[str]:
    return {f"user{i}@example.com" for i in range(start, stop)}


@pytest.fixture
def fake() -> FakeKlaviyo:
    return FakeKlaviyo()


@pytest.fixture
def base_url(fake: FakeKlaviyo) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def connect(fake: FakeKlaviyo, base_url: str) -> KlaviyoLists:
    return KlaviyoLists(
        api_key=fake.api_key,
        destination_name="Shop Klaviyo",
        base_url=base_url,
        retry=RetryPolicy(attempts=40, initial=0.001, maximum=0.01),
        poll_seconds=0,
    )


def test_klaviyo_is_registered_and_created_from_flat_kwargs(
    fake: FakeKlaviyo, base_url: str
) -> None:
    assert "klaviyo" in registry.names()
    credentials = {"api_key": fake.api_key}
    assert set(credentials) == set(CREDENTIAL_FIELDS)
    assert CONFIG_FIELDS == ()
    klaviyo = registry.create(
        "klaviyo", **credentials, destination_name="Shop Klaviyo", base_url=base_url
    )
    assert isinstance(klaviyo, KlaviyoLists)
    klaviyo.check_credentials()
    assert fake.revisions_seen == {REVISION}
    klaviyo.close()


def test_find_matches_the_exact_list_name_across_pages(fake: FakeKlaviyo, base_url: str) -> None:
    klaviyo = connect(fake, base_url)
    for n in range(12):
        klaviyo.ensure_audience(f"VIP {n}")
    list_id = klaviyo.ensure_audience('VIP "gold"')
    assert klaviyo.ensure_audience('VIP "gold"') == list_id
    assert klaviyo.ensure_audience("VIP 11") != list_id
    assert len(fake.lists) == 13
    assert fake.lists[list_id].name == 'VIP "gold"'


def test_sync_of_25000_members_then_removals_leaves_the_exact_list(
    fake: FakeKlaviyo, base_url: str
) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Cart abandoners")

    added = klaviyo.add_members(list_id, members(0, 25_000))
    assert (added.sent, added.requests, added.set_aside) == (25_000, 3, [])
    assert len(fake.jobs) == 3
    assert {job.status for job in fake.jobs.values()} == {"complete"}
    removed = klaviyo.remove_members(list_id, members(20_000, 25_000))
    assert (removed.sent, removed.requests) == (5_000, 5)  # ≤ 1,000 ids per call

    assert fake.emails(list_id) == emails(0, 20_000)
    assert fake.phones(list_id) == {e164(i) for i in range(0, 20_000, 5)}  # clear E.164
    assert len(fake.lists[list_id].members) == 20_000
    assert len(fake.profiles) == 25_000  # removing from a list keeps the profiles

    again = klaviyo.add_members(list_id, members(0, 100))  # re-adding is harmless
    assert again.sent == 100
    assert len(fake.profiles) == 25_000
    assert len(fake.lists[list_id].members) == 20_000


def test_random_failures_and_dropped_connections_end_with_the_exact_list(
    fake: FakeKlaviyo, base_url: str
) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Flaky")
    fake.error_rate, fake.drop_rate = 0.3, 0.15
    klaviyo.limits = type(klaviyo.limits)(max_records_per_request=1_000)  # many jobs
    klaviyo.add_members(list_id, members(0, 10_000))
    klaviyo.remove_members(list_id, members(0, 3_000))
    klaviyo.add_members(list_id, members(1_000, 2_000))  # a refresh brings some back
    assert fake.failures > 10
    assert fake.emails(list_id) == emails(1_000, 2_000) | emails(3_000, 10_000)


def test_lost_create_responses_never_make_duplicate_lists(fake: FakeKlaviyo, base_url: str) -> None:
    klaviyo = connect(fake, base_url)
    fake.error_rate, fake.drop_rate = 0.3, 0.4
    ids = {klaviyo.ensure_audience(f"List {n}") for n in range(8)}
    assert fake.failures > 0
    assert sorted(fake.lists) == sorted(ids)


def test_throttling_that_outlasts_the_retries_is_reported(fake: FakeKlaviyo, base_url: str) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Busy")
    klaviyo.retry = RetryPolicy(attempts=2, initial=0.001, maximum=0.01)
    fake.error_rate = 1.0
    with pytest.raises((RateLimited, Transient)) as caught:
        klaviyo.add_members(list_id, members(0, 10))
    assert caught.value.platform_code in ("throttled", "error")
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 1.0


def test_revoked_key_stops_with_r21_message_and_resumes_after_reauth(
    fake: FakeKlaviyo, base_url: str
) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Expiring")
    fake.expire_after_calls = 1  # revoked after the first import job
    with pytest.raises(AuthExpired) as caught:
        klaviyo.add_members(list_id, members(0, 25_000))
    assert caught.value.message == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → Shop Klaviyo → Configuration Settings"
    )
    assert caught.value.platform_code == "authentication_failed"
    assert fake.write_calls == 1  # not retried
    with pytest.raises(AuthExpired):
        klaviyo.check_credentials()

    fake.reauthenticate("pk_fresh")
    klaviyo.api_key = "pk_fresh"
    klaviyo.check_credentials()
    klaviyo.add_members(list_id, members(0, 25_000))
    assert fake.emails(list_id) == emails(0, 25_000)


def test_malformed_and_hashed_values_are_set_aside_not_failing_the_batch(
    fake: FakeKlaviyo, base_url: str
) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Quality")
    batch = [
        *members(0, 100),
        ListMember("bad1", email="not-an-email"),
        ListMember("bad2", email="x@y", phone="+14155550123"),
        ListMember("bad3", email="@example.com", phone="12"),
        ListMember("hashed", email=sha("someone@example.com")),
        ListMember("anon"),
    ]
    change = klaviyo.add_members(list_id, batch)
    assert (change.sent, change.skipped_members) == (101, 4)
    reasons = [(item.key, item.identifier, item.reason) for item in change.set_aside]
    assert reasons == [
        ("bad1", "email", "malformed email"),
        ("bad1", "*", "no usable email or phone"),
        ("bad2", "email", "malformed email"),
        ("bad3", "email", "malformed email"),
        ("bad3", "phone", "malformed phone"),
        ("bad3", "*", "no usable email or phone"),
        ("hashed", "email", "hashed email (Klaviyo needs clear text)"),
        ("hashed", "*", "no usable email or phone"),
        ("anon", "*", "no usable email or phone"),
    ]
    assert fake.emails(list_id) == emails(0, 100)
    assert "+14155550123" in fake.phones(list_id)


def test_profiles_klaviyo_refuses_are_set_aside_from_the_import_errors(
    fake: FakeKlaviyo, base_url: str
) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Conflicts")
    klaviyo.add_members(list_id, [ListMember("a", email="a@example.com", phone="+12125650000")])
    # b's phone already belongs to a's profile: Klaviyo refuses b, imports c.
    change = klaviyo.add_members(
        list_id,
        [
            ListMember("b", email="b@example.com", phone="+12125650000"),
            ListMember("c", email="c@example.com"),
        ],
    )
    assert change.sent == 1
    assert [(s.key, s.identifier) for s in change.set_aside] == [("b", "*")]
    assert "phone_number is used by another profile" in change.set_aside[0].reason
    assert fake.emails(list_id) == {"a@example.com", "c@example.com"}


def test_import_errors_are_read_across_pages(fake: FakeKlaviyo, base_url: str) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Many conflicts")
    owners = [ListMember(f"o{i}", email=f"o{i}@example.com", phone=e164(i)) for i in range(150)]
    klaviyo.add_members(list_id, owners)
    others = [ListMember(f"x{i}", email=f"x{i}@example.com", phone=e164(i)) for i in range(150)]
    change = klaviyo.add_members(list_id, [*others, ListMember("ok", email="ok@example.com")])
    assert change.sent == 1
    assert [s.key for s in change.set_aside] == [f"x{i}" for i in range(150)]  # 2 pages
    assert fake.emails(list_id) == {f"o{i}@example.com" for i in range(150)} | {"ok@example.com"}


@pytest.mark.parametrize(
    ("member", "email", "phone_number"),
    [
        (ListMember("a", email="  JaneDoe@Gmail.com "), "janedoe@gmail.com", None),
        (ListMember("b", phone="+1 212-565-0000"), None, "+12125650000"),
        (ListMember("c", phone="(212) 565 0000", country="US"), None, "+12125650000"),
        (ListMember("d", phone="020 7183 8750", country="GB"), None, "+442071838750"),
        # The fact sheet's E.164 example for Klaviyo (§7.1).
        (ListMember("e", phone="+1 500-555-0006"), None, "+15005550006"),
    ],
)
def test_clear_values_are_normalized_as_klaviyo_expects(
    fake: FakeKlaviyo,
    base_url: str,
    member: ListMember,
    email: str | None,
    phone_number: str | None,
) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Vectors")
    assert klaviyo.add_members(list_id, [member]).sent == 1
    [profile] = fake.profiles.values()
    assert (profile.email, profile.phone) == (email, phone_number)
    assert fake.lists[list_id].members == {profile.id}


def test_sms_only_members_are_added_and_removed_by_phone(fake: FakeKlaviyo, base_url: str) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("SMS")
    sms = [ListMember(f"s{i}", phone=phone(i), country="US") for i in range(150)]
    assert klaviyo.add_members(list_id, [*sms, *members(1_000, 1_010)]).sent == 160
    removed = klaviyo.remove_members(list_id, sms[:120])
    assert removed.sent == 120
    assert fake.phones(list_id) == {e164(i) for i in range(120, 150)} | {
        e164(i) for i in range(1_000, 1_010, 5)
    }
    assert fake.emails(list_id) == emails(1_000, 1_010)


def test_an_import_job_that_never_completes_is_transient(fake: FakeKlaviyo, base_url: str) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Slow")
    fake.job_polls = 10**6
    klaviyo.job_timeout_seconds = 0
    with pytest.raises(Transient, match="still processing"):
        klaviyo.add_members(list_id, members(0, 5))
    assert fake.emails(list_id) == set()


def test_removing_members_klaviyo_never_saw_is_a_no_op(fake: FakeKlaviyo, base_url: str) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Empty")
    change = klaviyo.remove_members(list_id, members(0, 50))
    assert (change.sent, change.requests) == (0, 0)


def test_delete_removes_the_list_and_unknown_lists_are_bad_requests(
    fake: FakeKlaviyo, base_url: str
) -> None:
    klaviyo = connect(fake, base_url)
    list_id = klaviyo.ensure_audience("Gone")
    klaviyo.delete_audience(list_id)
    assert fake.lists == {}
    before = fake.requests
    with pytest.raises(BadRequest, match="not_found"):
        klaviyo.delete_audience(list_id)
    assert fake.requests == before + 1


# -- the fake itself rejects what the real API rejects ------------------------------------


def headers(fake: FakeKlaviyo, **changes: str | None) -> dict[str, str]:
    sent: dict[str, str | None] = {
        "Authorization": f"Klaviyo-API-Key {fake.api_key}",
        "revision": REVISION,
        "Content-Type": "application/vnd.api+json",
        **changes,
    }
    return {k: v for k, v in sent.items() if v is not None}


@pytest.fixture
def list_id(fake: FakeKlaviyo) -> str:
    return str(
        fake.create_list({"data": {"type": "list", "attributes": {"name": "L"}}})["data"]["id"]
    )


@pytest.fixture
def profile_id(fake: FakeKlaviyo) -> str:
    return fake._upsert({"email": "p@example.com"})


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({}, 204, None),
        ({"headers": {"Authorization": None}}, 401, "not_authenticated"),
        ({"headers": {"Authorization": "Bearer pk_valid0123456789abcdef"}}, 401, None),
        ({"headers": {"Authorization": "Klaviyo-API-Key pk_wrong"}}, 401, None),
        ({"headers": {"revision": None}}, 400, "invalid"),
        ({"headers": {"revision": "2025-13-45"}}, 400, "invalid"),
        ({"headers": {"Content-Type": "text/plain"}}, 415, None),
        ({"data": [{"type": "profile", "id": "NOPE"}]}, 400, "invalid"),
        ({"data": [{"type": "person", "id": "X"}]}, 400, "invalid"),
        ({"data": []}, 400, "invalid"),
        ({"data": {"type": "profile", "id": "X"}}, 400, "invalid"),
        ({"ids": 1_001}, 400, "invalid"),
        ({"path": "/relationships/people"}, 404, "not_found"),
        ({"method": "PATCH"}, 404, "not_found"),
    ],
)
def test_fake_enforces_the_real_list_relationships_endpoint(
    fake: FakeKlaviyo,
    base_url: str,
    list_id: str,
    profile_id: str,
    change: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    data: Any = change.get("data", [{"type": "profile", "id": profile_id}])
    if "ids" in change:
        data = [{"type": "profile", "id": profile_id}] * change["ids"]
    response = httpx.request(
        change.get("method", "POST"),
        f"{base_url}/lists/{list_id}{change.get('path', '/relationships/profiles')}",
        json={"data": data},
        headers=headers(fake, **change.get("headers", {})),
        timeout=30,
    )
    assert response.status_code == status
    if status == 204:
        assert fake.lists[list_id].members == {profile_id}
        return
    error = response.json()["errors"][0]
    assert error["status"] == status and error["title"] and error["detail"]
    if code:
        assert error["code"] == code
    assert fake.lists[list_id].members == set()


def test_fake_import_job_refuses_oversized_and_malformed_jobs(
    fake: FakeKlaviyo, base_url: str, list_id: str
) -> None:
    def job(profiles: list[Any], lists: list[Any] | None = None) -> httpx.Response:
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": profiles}},
                "relationships": {"lists": {"data": lists or [{"type": "list", "id": list_id}]}},
            }
        }
        url = f"{base_url}/profile-bulk-import-jobs"
        return httpx.post(url, json=body, headers=headers(fake), timeout=30)

    one = {"type": "profile", "attributes": {"email": "a@example.com"}}
    assert job([one] * 10_001).status_code == 400
    assert job([{"type": "person", "attributes": {}}]).status_code == 400
    assert job([one], [{"type": "list", "id": "nope"}]).status_code == 400
    assert fake.jobs == {}
    accepted = job([one, {"type": "profile", "attributes": {"email": sha("b@example.com")}}])
    assert accepted.status_code == 202
    job_id = accepted.json()["data"]["id"]
    statuses = [
        httpx.get(f"{base_url}/profile-bulk-import-jobs/{job_id}", headers=headers(fake)).json()[
            "data"
        ]["attributes"]
        for _ in range(2)
    ]
    assert [s["status"] for s in statuses] == ["processing", "complete"]
    assert (statuses[1]["completed_count"], statuses[1]["failed_count"]) == (1, 1)
    assert fake.emails(list_id) == {"a@example.com"}  # the hash was refused, not imported


def test_fake_returns_the_real_throttle_body(fake: FakeKlaviyo, base_url: str) -> None:
    fake.error_rate, fake.seed = 1.0, 3
    fake.__post_init__()
    seen = set()
    for _ in range(20):
        response = httpx.get(f"{base_url}/lists", headers=headers(fake))
        seen.add((response.status_code, response.json()["errors"][0]["code"]))
        if response.status_code == 429:
            assert response.headers["retry-after"] == "1"
    assert seen == {(429, "throttled"), (500, "error")}
