"""Google Ads Customer Match end to end, against a fake Google Ads server that enforces the
real API (tests/destinations/fake_google_ads.py) served over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from segmint.destinations import registry
from segmint.destinations.google_ads import GoogleAdsCustomerMatch
from segmint.sync.errors import AuthExpired, BadRequest
from segmint.sync.normalize import ListMember
from segmint.sync.retry import RetryPolicy
from tests.destinations.fake_google_ads import FakeGoogleAds, serve


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def members(start: int, stop: int) -> list[ListMember]:
    """Generated members; every fifth has a national-format phone (all phones distinct, as
    Google removes whoever a removed identifier matches)."""
    return [
        ListMember(
            key=f"u{i}",
            email=f"  User{i}@Example.com ",
            phone=f"(415) {i // 10_000 + 2}55-{i % 10_000:04d}" if i % 5 == 0 else None,
            country="US",
        )
        for i in range(start, stop)
    ]


def emails(start: int, stop: int) -> set[str]:
    return {sha(f"user{i}@example.com") for i in range(start, stop)}


@pytest.fixture
def fake() -> FakeGoogleAds:
    return FakeGoogleAds()


@pytest.fixture
def base_url(fake: FakeGoogleAds) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def connect(fake: FakeGoogleAds, base_url: str, **options: Any) -> GoogleAdsCustomerMatch:
    return GoogleAdsCustomerMatch(
        customer_id="123-456-7890",
        access_token=fake.token,
        developer_token=fake.developer_token,
        login_customer_id="999-000-1111",
        destination_name="Shop Google Ads",
        base_url=base_url,
        retry=RetryPolicy(attempts=40, initial=0.001, maximum=0.01),
        **options,
    )


def test_google_ads_is_registered_by_name(fake: FakeGoogleAds, base_url: str) -> None:
    assert "google_ads" in registry.names()
    google = registry.create(
        "google_ads",
        customer_id=fake.customer_id,
        access_token=fake.token,
        developer_token=fake.developer_token,
        base_url=base_url,
    )
    assert isinstance(google, GoogleAdsCustomerMatch)
    google.check_credentials()
    assert "login-customer-id" not in fake.headers_seen[-1]


def test_sync_of_25000_members_then_removals_leaves_the_exact_list(
    fake: FakeGoogleAds, base_url: str
) -> None:
    google = connect(fake, base_url)
    list_name = google.ensure_audience("Cart abandoners")
    assert google.ensure_audience("Cart abandoners") == list_name  # found, not created twice
    assert len(fake.user_lists) == 1
    assert list_name.startswith("customers/1234567890/userLists/")

    added = google.add_members(list_name, members(0, 25_000))
    assert (added.sent, added.requests, added.set_aside) == (25_000, 3, [])
    removed = google.remove_members(list_name, members(20_000, 25_000))
    assert (removed.sent, removed.requests) == (5_000, 1)

    assert [job.status for job in fake.jobs.values()] == ["SUCCESS", "SUCCESS"]
    user_list = fake.user_list(list_name)
    assert user_list.values("hashedEmail") == emails(0, 20_000)
    assert len(user_list.members) == 20_000
    assert sha("+14152550005") in user_list.values("hashedPhoneNumber")  # E.164 keeps "+"
    headers = fake.headers_seen[-1]
    assert headers["authorization"] == f"Bearer {fake.token}"
    assert headers["developer-token"] == fake.developer_token
    assert headers["login-customer-id"] == "9990001111"

    google.delete_audience(list_name)
    assert fake.user_lists == {}


def test_random_failures_and_dropped_connections_end_with_the_exact_list(
    fake: FakeGoogleAds, base_url: str
) -> None:
    google = connect(fake, base_url)
    list_name = google.ensure_audience("Flaky")
    fake.failure_rate, fake.drop_rate = 0.3, 0.15
    google.limits = type(google.limits)(max_records_per_request=1_000)
    for _ in range(3):  # several syncs, so many requests (run included) meet a failure
        google.add_members(list_name, members(0, 8_000))
    google.remove_members(list_name, members(0, 3_000))
    google.add_members(list_name, members(1_000, 2_000))  # a refresh brings some back
    assert fake.failures > 10
    assert fake.user_list(list_name).values("hashedEmail") == emails(1_000, 2_000) | emails(
        3_000, 8_000
    )


def test_lost_create_responses_never_make_duplicate_lists(
    fake: FakeGoogleAds, base_url: str
) -> None:
    google = connect(fake, base_url)
    fake.failure_rate, fake.drop_rate = 0.3, 0.4
    names = {google.ensure_audience(f"Audience {n}") for n in range(8)}
    assert fake.failures > 0
    assert len(fake.user_lists) == len(names) == 8


def test_expired_token_mid_sync_stops_with_r21_message_and_resumes_after_reauth(
    fake: FakeGoogleAds, base_url: str
) -> None:
    google = connect(fake, base_url)
    list_name = google.ensure_audience("Expiring")
    fake.expire_after_calls = 1  # the token expires after the first addOperations call
    with pytest.raises(AuthExpired) as caught:
        google.add_members(list_name, members(0, 25_000))
    assert caught.value.message == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → Shop Google Ads → Configuration Settings"
    )
    assert caught.value.platform_code == "UNAUTHENTICATED"
    assert "invalid authentication credentials" in caught.value.detail
    assert fake.operation_calls == 1  # not retried
    assert fake.user_list(list_name).members == set()  # the job never ran
    with pytest.raises(AuthExpired):
        google.check_credentials()

    fake.reauthenticate("ya29.fresh-token")
    google.access_token = "ya29.fresh-token"
    google.check_credentials()
    google.add_members(list_name, members(0, 25_000))
    assert fake.user_list(list_name).values("hashedEmail") == emails(0, 25_000)


def test_malformed_values_are_set_aside_and_counted(fake: FakeGoogleAds, base_url: str) -> None:
    google = connect(fake, base_url)
    list_name = google.ensure_audience("Quality")
    batch = [
        *members(0, 100),
        ListMember("bad1", email="not-an-email"),
        ListMember("bad2", email="two words@example.com", phone="+14155550123"),
        ListMember("bad3", email="x@y", phone="12"),
        ListMember("anon"),
    ]
    change = google.add_members(list_name, batch)
    assert change.sent == 101  # Google removes inner whitespace: bad2's email is usable
    assert change.skipped_members == 3
    reasons = [(item.key, item.identifier, item.reason) for item in change.set_aside]
    assert reasons == [
        ("bad1", "email", "malformed email"),
        ("bad1", "*", "no usable email or phone"),
        ("bad3", "email", "malformed email"),
        ("bad3", "phone", "malformed phone"),
        ("bad3", "*", "no usable email or phone"),
        ("anon", "*", "no usable email or phone"),
    ]
    user_list = fake.user_list(list_name)
    assert user_list.values("hashedEmail") == emails(0, 100) | {sha("twowords@example.com")}
    assert sha("+14155550123") in user_list.values("hashedPhoneNumber")


def test_already_hashed_values_pass_through_unchanged(fake: FakeGoogleAds, base_url: str) -> None:
    google = connect(fake, base_url)
    list_name = google.ensure_audience("Hashed upstream")
    digest, phone_digest = sha("someone@example.com"), sha("+442071838750")
    google.add_members(
        list_name,
        [
            ListMember("h1", email=digest.upper(), phone=phone_digest),
            ListMember("h2", email="B@x.io"),
        ],
    )
    user_list = fake.user_list(list_name)
    assert user_list.values("hashedEmail") == {digest, sha("b@x.io")}
    assert user_list.values("hashedPhoneNumber") == {phone_digest}


@dataclass(frozen=True, slots=True)
class CrmMember(ListMember):
    crm_id: str | None = None


def test_crm_id_list_sends_third_party_user_ids(fake: FakeGoogleAds, base_url: str) -> None:
    google = connect(fake, base_url, upload_key_type="CRM_ID")
    list_name = google.ensure_audience("CRM ids")
    change = google.add_members(
        list_name, [CrmMember("a", crm_id="C-1"), CrmMember("b", crm_id="C-2"), CrmMember("c")]
    )
    assert change.sent == 2
    assert [(s.key, s.reason) for s in change.set_aside] == [("c", "no CRM id")]
    google.remove_members(list_name, [CrmMember("a", crm_id="C-1")])
    assert fake.user_list(list_name).values("thirdPartyUserId") == {"C-2"}


def test_operations_google_refuses_are_set_aside_not_failing_the_batch(
    fake: FakeGoogleAds, base_url: str
) -> None:
    """A CONTACT_INFO member sent to a CRM_ID list is refused per operation (partial failure)."""
    crm = connect(fake, base_url, upload_key_type="CRM_ID")
    list_name = crm.ensure_audience("Mixed")
    contact = connect(fake, base_url)
    change = contact.add_members(list_name, members(0, 3))
    assert change.sent == 0
    assert {s.reason for s in change.set_aside} == {
        "refused by Google Ads: INCOMPATIBLE_UPLOAD_KEY_TYPE"
    }


def test_unknown_list_is_a_bad_request_not_retried(fake: FakeGoogleAds, base_url: str) -> None:
    google = connect(fake, base_url)
    before = fake.requests
    with pytest.raises(BadRequest, match="INVALID_USER_LIST_ID"):
        google.add_members("999", members(0, 5))
    assert fake.requests == before + 1


# -- the fake itself refuses what the real API refuses ------------------------------------


@pytest.fixture
def job(fake: FakeGoogleAds) -> str:
    name = fake.mutate_user_lists(
        {
            "operations": [
                {"create": {"name": "L", "crmBasedUserList": {"uploadKeyType": "CONTACT_INFO"}}}
            ]
        }
    )["results"][0]["resourceName"]
    body = {
        "job": {
            "type": "CUSTOMER_MATCH_USER_LIST",
            "customerMatchUserListMetadata": {"userList": name},
        }
    }
    return str(fake.create_job(body)["resourceName"]).rsplit("/", 1)[-1]


def post(
    fake: FakeGoogleAds, base_url: str, path: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    sent = {"Authorization": f"Bearer {fake.token}", "developer-token": fake.developer_token}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return httpx.post(f"{base_url}/customers/{fake.customer_id}/{path}", json=body, headers=sent)


def user(*identifiers: dict[str, Any]) -> dict[str, Any]:
    return {"create": {"userIdentifiers": list(identifiers)}}


EMAIL = {"hashedEmail": sha("a@b.co")}


@pytest.mark.parametrize(
    ("operations", "headers", "status", "code"),
    [
        ([user(EMAIL)], {}, 200, None),
        ([{"removeAll": True}, user(EMAIL)], {}, 200, None),
        ([user(EMAIL)], {"Authorization": "Bearer expired"}, 401, "UNAUTHENTICATED"),
        ([user(EMAIL)], {"developer_token": ""}, 401, "DEVELOPER_TOKEN_INVALID"),
        ([user({"hashedEmail": "a@b.co"})], {}, 400, "INVALID_SHA256_FORMAT"),
        ([user({"hashedEmail": sha("a").upper()})], {}, 400, "INVALID_SHA256_FORMAT"),
        ([user({"hashedPhoneNumber": "+14155550123"})], {}, 400, "INVALID_SHA256_FORMAT"),
        ([user(*[EMAIL] * 21)], {}, 400, "TOO_MANY_USER_IDENTIFIERS"),
        ([user(*[EMAIL] * 20)] * 5_001, {}, 400, "TOO_MANY_USER_IDENTIFIERS"),  # > 100,000
        ([user(EMAIL), {"removeAll": True}], {}, 400, "INVALID_OPERATION_ORDER"),
        ([user({"thirdPartyUserId": "C-1"})], {}, 400, "INCOMPATIBLE_UPLOAD_KEY_TYPE"),
        (
            [user(EMAIL, {"hashedEmail": sha("x"), "hashedPhoneNumber": sha("y")})],
            {},
            400,
            "REQUIRED",
        ),
        ([user()], {}, 400, "MISSING_USER_IDENTIFIER"),
    ],
)
def test_fake_enforces_the_real_add_operations(
    fake: FakeGoogleAds,
    base_url: str,
    job: str,
    operations: list[Any],
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    response = post(
        fake,
        base_url,
        f"offlineUserDataJobs/{job}:addOperations",
        {"operations": operations},
        **headers,
    )
    assert response.status_code == status
    if code is None:
        assert response.json() == {}
        return
    error = response.json()["error"]
    assert error["code"] == status and {"message", "status"} <= set(error)
    if code == "UNAUTHENTICATED":
        assert error["status"] == code
        return
    details = error["details"][0]
    assert details["@type"].endswith("errors.GoogleAdsFailure")
    assert code in {value for e in details["errors"] for value in e["errorCode"].values()}


def test_fake_reports_partial_failures_in_a_200(
    fake: FakeGoogleAds, base_url: str, job: str
) -> None:
    body = {
        "operations": [user(EMAIL), user({"hashedEmail": "nope"})],
        "enablePartialFailure": True,
    }
    response = post(fake, base_url, f"offlineUserDataJobs/{job}:addOperations", body)
    assert response.status_code == 200
    partial = response.json()["partialFailureError"]
    assert partial["code"] == 3
    error = partial["details"][0]["errors"][0]
    assert error["errorCode"] == {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"}
    assert error["location"]["fieldPathElements"][0] == {"fieldName": "operations", "index": 1}


def test_fake_runs_a_job_once_and_then_refuses_changes(
    fake: FakeGoogleAds, base_url: str, job: str
) -> None:
    assert (
        post(
            fake,
            base_url,
            f"offlineUserDataJobs/{job}:addOperations",
            {"operations": [user(EMAIL)]},
        ).status_code
        == 200
    )
    assert post(fake, base_url, f"offlineUserDataJobs/{job}:run", {}).status_code == 200
    assert fake.jobs[job].status == "SUCCESS"
    for path in (f"offlineUserDataJobs/{job}:run", f"offlineUserDataJobs/{job}:addOperations"):
        response = post(fake, base_url, path, {"operations": [user(EMAIL)]})
        assert response.status_code == 400
        assert "JOB_ALREADY_STARTED" in response.text


def test_fake_refuses_another_customer_and_returns_real_throttle_bodies(
    fake: FakeGoogleAds, base_url: str
) -> None:
    response = httpx.post(
        f"{base_url}/customers/5555555555/googleAds:search",
        json={"query": "SELECT user_list.name FROM user_list"},
        headers={"Authorization": f"Bearer {fake.token}", "developer-token": fake.developer_token},
    )
    assert response.status_code == 401
    assert "CUSTOMER_NOT_FOUND" in response.text
    fake.failure_rate = 1.0
    statuses = {
        (r.status_code, r.json()["error"]["status"])
        for r in (post(fake, base_url, "googleAds:search", {"query": "x"}) for _ in range(30))
    }
    assert statuses == {(500, "INTERNAL"), (429, "RESOURCE_EXHAUSTED"), (400, "INVALID_ARGUMENT")}
