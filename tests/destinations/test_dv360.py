"""DV360 Customer Match end to end, against a fake DV360 API v4 that enforces the real API
(tests/destinations/fake_dv360.py) served over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from segmint.destinations import registry
from segmint.destinations.dv360 import CONFIG_FIELDS, CREDENTIAL_FIELDS, DV360CustomerMatch
from segmint.sync.errors import AuthExpired, BadRequest, RateLimited, Transient
from segmint.sync.normalize import ListMember
from segmint.sync.retry import RetryPolicy
from tests.destinations.fake_dv360 import FakeDV360, StatusError, serve


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def phone(i: int) -> str:
    """A distinct valid US number per member, in national format."""
    return f"(415) 5{i // 10_000 + 50}-{i % 10_000:04d}"


def members(start: int, stop: int) -> list[ListMember]:
    """Generated members with messy emails; every fifth has a phone, every seventh names."""
    return [
        ListMember(
            key=f"u{i}",
            email=f"  User{i}@Example.com ",
            phone=phone(i) if i % 5 == 0 else None,
            first_name=" Zoë " if i % 7 == 0 else None,
            last_name="O'Neil" if i % 7 == 0 else None,
            country="us",
        )
        for i in range(start, stop)
    ]


def emails(start: int, stop: int) -> set[str]:
    return {sha(f"user{i}@example.com") for i in range(start, stop)}


@pytest.fixture
def fake() -> FakeDV360:
    return FakeDV360()


@pytest.fixture
def base_url(fake: FakeDV360) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def connect(fake: FakeDV360, base_url: str) -> DV360CustomerMatch:
    return DV360CustomerMatch(
        advertiser_id=fake.advertiser_id,
        access_token=fake.token,
        destination_name="Shop DV360",
        base_url=base_url,
        retry=RetryPolicy(attempts=40, initial=0.001, maximum=0.01),
    )


def test_dv360_is_registered_and_created_from_flat_kwargs(fake: FakeDV360, base_url: str) -> None:
    assert "dv360" in registry.names()
    credentials = {"access_token": fake.token}
    config = {"advertiser_id": fake.advertiser_id, "membership_duration_days": "540"}
    assert set(credentials) == set(CREDENTIAL_FIELDS)
    assert set(config) <= set(CONFIG_FIELDS)
    dv360 = registry.create(
        "dv360", **credentials, **config, destination_name="Shop DV360", base_url=base_url
    )
    assert isinstance(dv360, DV360CustomerMatch)
    dv360.check_credentials()
    audience_id = dv360.ensure_audience("Loyal")
    assert fake.audiences[audience_id].membership_duration_days == 540
    dv360.close()


def test_find_matches_the_exact_name_across_pages(fake: FakeDV360, base_url: str) -> None:
    dv360 = connect(fake, base_url)
    for n in range(250):
        dv360.ensure_audience(f"Buyers {n}")
    # "Buyers" contains-matches 250 audiences (two pages of 200) but equals none: created.
    buyers = dv360.ensure_audience("Buyers")
    assert len(fake.audiences) == 251
    assert dv360.ensure_audience("Buyers") == buyers  # found on the second page
    quoted = dv360.ensure_audience('Buyers "VIP"')
    assert dv360.ensure_audience('Buyers "VIP"') == quoted
    assert len(fake.audiences) == 252
    audience = fake.audiences[quoted]
    assert (audience.display_name, audience.audience_type) == (
        'Buyers "VIP"',
        "CUSTOMER_MATCH_CONTACT_INFO",
    )
    assert audience.membership_duration_days == 10_000


def test_sync_of_25000_members_then_removals_leaves_the_exact_list(
    fake: FakeDV360, base_url: str
) -> None:
    dv360 = connect(fake, base_url)
    audience_id = dv360.ensure_audience("Cart abandoners")

    added = dv360.add_members(audience_id, members(0, 25_000))
    assert (added.sent, added.requests, added.set_aside) == (25_000, 3, [])
    removed = dv360.remove_members(audience_id, members(20_000, 25_000))
    assert (removed.sent, removed.requests) == (5_000, 1)

    audience = fake.audiences[audience_id]
    assert len(audience.members) == 20_000
    assert audience.values("hashedEmails") == emails(0, 20_000)
    assert audience.values("hashedPhoneNumbers") == {
        sha(f"+14155{i // 10_000 + 50}{i % 10_000:04d}") for i in range(0, 20_000, 5)
    }
    assert audience.values("hashedFirstName") == {sha("zoë")}
    assert audience.values("hashedLastName") == {sha("o'neil")}
    assert audience.values("countryCode") == {"US"}  # clear text, not hashed
    granted = {
        "adUserData": "CONSENT_STATUS_GRANTED",
        "adPersonalization": "CONSENT_STATUS_GRANTED",
    }
    assert fake.consents == [granted] * 4  # every add and remove request carries consent


def test_random_failures_and_dropped_connections_end_with_the_exact_list(
    fake: FakeDV360, base_url: str
) -> None:
    dv360 = connect(fake, base_url)
    audience_id = dv360.ensure_audience("Flaky")
    fake.error_rate, fake.drop_rate = 0.3, 0.15
    dv360.limits = type(dv360.limits)(max_records_per_request=1_000)  # many requests
    dv360.add_members(audience_id, members(0, 25_000))
    dv360.remove_members(audience_id, members(0, 3_000))
    dv360.add_members(audience_id, members(1_000, 2_000))  # a refresh brings some back
    assert fake.failures > 10
    assert fake.audiences[audience_id].values("hashedEmails") == emails(1_000, 2_000) | emails(
        3_000, 25_000
    )
    assert len(fake.audiences[audience_id].members) == 23_000


def test_lost_create_responses_never_make_duplicate_audiences(
    fake: FakeDV360, base_url: str
) -> None:
    dv360 = connect(fake, base_url)
    fake.error_rate, fake.drop_rate = 0.3, 0.4
    ids = {dv360.ensure_audience(f"Audience {n}") for n in range(8)}
    assert fake.failures > 0
    assert sorted(fake.audiences) == sorted(ids)


def test_rate_limit_that_outlasts_the_retries_is_reported(fake: FakeDV360, base_url: str) -> None:
    dv360 = connect(fake, base_url)
    audience_id = dv360.ensure_audience("Busy")
    dv360.retry = RetryPolicy(attempts=2, initial=0.001, maximum=0.01)
    fake.error_rate = 1.0
    with pytest.raises((RateLimited, Transient)) as caught:
        dv360.add_members(audience_id, members(0, 10))
    assert caught.value.platform_code in ("RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE")


def test_expired_token_stops_with_r21_message_and_resumes_after_reauth(
    fake: FakeDV360, base_url: str
) -> None:
    dv360 = connect(fake, base_url)
    audience_id = dv360.ensure_audience("Expiring")
    fake.expire_after_calls = 1  # the token expires after the first batch
    with pytest.raises(AuthExpired) as caught:
        dv360.add_members(audience_id, members(0, 25_000))
    assert caught.value.message == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → Shop DV360 → Configuration Settings"
    )
    assert caught.value.platform_code == "UNAUTHENTICATED"
    assert "invalid authentication credentials" in caught.value.detail
    assert fake.edit_calls == 1  # not retried
    with pytest.raises(AuthExpired):
        dv360.check_credentials()

    fake.reauthenticate("ya29.fresh")
    dv360.access_token = "ya29.fresh"
    dv360.check_credentials()
    dv360.add_members(audience_id, members(0, 25_000))
    assert fake.audiences[audience_id].values("hashedEmails") == emails(0, 25_000)


def test_malformed_emails_and_phones_are_set_aside_not_failing_the_batch(
    fake: FakeDV360, base_url: str
) -> None:
    dv360 = connect(fake, base_url)
    audience_id = dv360.ensure_audience("Quality")
    batch = [
        *members(0, 100),
        ListMember("bad1", email="not-an-email"),
        ListMember("bad2", email="x@y", phone="+14155550123"),
        ListMember("bad3", email="@example.com", phone="12"),
        ListMember("anon", first_name="Ann", last_name="Lee", country="US"),
    ]
    change = dv360.add_members(audience_id, batch)
    assert (change.sent, change.skipped_members) == (101, 3)
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
    assert audience.values("hashedEmails") == emails(0, 100)
    assert sha("+14155550123") in audience.values("hashedPhoneNumbers")


def test_already_hashed_values_pass_through_unchanged(fake: FakeDV360, base_url: str) -> None:
    dv360 = connect(fake, base_url)
    audience_id = dv360.ensure_audience("Hashed upstream")
    email, phone_hash = sha("someone@example.com"), sha("+442071838750")
    dv360.add_members(
        audience_id,
        [
            ListMember("h1", email=email.upper(), phone=phone_hash),
            ListMember("h2", email="B@x.io"),
        ],
    )
    audience = fake.audiences[audience_id]
    assert audience.values("hashedEmails") == {email, sha("b@x.io")}
    assert audience.values("hashedPhoneNumbers") == {phone_hash}


@pytest.mark.parametrize(
    ("member", "field", "expected"),
    [
        # TikTok help's published vector for the normalized "janedoe@gmail.com" (§9).
        (
            ListMember("a", email="  JaneDoe@Gmail.com "),
            "hashedEmails",
            "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69",
        ),
        # Google's example: E.164 with "+" (§3.4), whitespace and punctuation removed.
        (ListMember("b", phone="+1 212-565-0000"), "hashedPhoneNumbers", sha("+12125650000")),
        (
            ListMember("c", phone="(212) 565 0000", country="US"),
            "hashedPhoneNumbers",
            sha("+12125650000"),
        ),
        # An email with inner whitespace: DV360 removes all whitespace (§6).
        (ListMember("d", email="jane doe@example.com"), "hashedEmails", sha("janedoe@example.com")),
    ],
)
def test_normalization_matches_published_examples(
    fake: FakeDV360, base_url: str, member: ListMember, field: str, expected: str
) -> None:
    dv360 = connect(fake, base_url)
    audience_id = dv360.ensure_audience("Vectors")
    assert dv360.add_members(audience_id, [member]).sent == 1
    assert fake.audiences[audience_id].values(field) == {expected}


def test_delete_is_refused_with_instructions_and_no_request(fake: FakeDV360, base_url: str) -> None:
    dv360 = connect(fake, base_url)
    audience_id = dv360.ensure_audience("Keep")
    before = fake.requests
    with pytest.raises(BadRequest, match="delete it in Display & Video 360"):
        dv360.delete_audience(audience_id)
    assert fake.requests == before
    assert audience_id in fake.audiences


def test_unknown_audience_is_a_bad_request_not_retried(fake: FakeDV360, base_url: str) -> None:
    dv360 = connect(fake, base_url)
    before = fake.requests
    with pytest.raises(BadRequest, match="NOT_FOUND"):
        dv360.add_members("999", members(0, 5))
    assert fake.requests == before + 1


def test_invalid_membership_duration_is_refused() -> None:
    with pytest.raises(BadRequest, match="1–540 or 10000"):
        DV360CustomerMatch(advertiser_id="1", access_token="t", membership_duration_days=600)


# -- the fake itself rejects what the real API rejects ------------------------------------

GRANTED = {"adUserData": "CONSENT_STATUS_GRANTED", "adPersonalization": "CONSENT_STATUS_GRANTED"}


def edit_body(fake: FakeDV360, infos: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "advertiserId": fake.advertiser_id,
        "addedContactInfoList": {"contactInfos": infos, "consent": GRANTED},
        **extra,
    }


@pytest.fixture
def audience_id(fake: FakeDV360) -> str:
    body = {
        "displayName": "A",
        "audienceType": "CUSTOMER_MATCH_CONTACT_INFO",
        "firstPartyAndPartnerAudienceType": "TYPE_FIRST_PARTY",
        "membershipDurationDays": "10000",
    }
    return str(
        fake.create_audience({"advertiserId": fake.advertiser_id}, body)[
            "firstPartyAndPartnerAudienceId"
        ]
    )


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({}, 200),
        ({"headers": {"Authorization": "Bearer wrong"}}, 401),
        ({"headers": {}}, 401),
        ({"infos": [{"hashedEmails": ["user@example.com"]}]}, 400),  # not hashed
        ({"infos": [{"hashedEmails": [sha("a").upper()]}]}, 400),  # uppercase hex
        ({"infos": [{"hashedEmails": sha("a")}]}, 400),  # not a list
        ({"infos": [{"hashedEmails": [sha("a")], "countryCode": "USA"}]}, 400),
        ({"infos": [{"hashedEmail": [sha("a")]}]}, 400),  # unknown field
        ({"infos": [{"hashedFirstName": sha("a"), "countryCode": "US"}]}, 400),  # no match key
        ({"infos": []}, 400),
        ({"extra": {"advertiserId": "1"}}, 403),
        ({"extra": {"addedMobileDeviceIdList": {"mobileDeviceIds": ["x"]}}}, 400),
        ({"consent": {"adUserData": "CONSENT_STATUS_DENIED"}}, 400),
        ({"consent": {"adUserData": "GRANTED"}}, 400),
        ({"path": ":editMembers"}, 404),
        ({"method": "PATCH"}, 404),
    ],
)
def test_fake_enforces_the_real_edit_endpoint(
    fake: FakeDV360, base_url: str, audience_id: str, change: dict[str, Any], status: int
) -> None:
    body = edit_body(fake, change.get("infos", [{"hashedEmails": [sha("a@b.co")]}]))
    body.update(change.get("extra", {}))
    if "consent" in change:
        body["addedContactInfoList"]["consent"] = change["consent"]
    headers = change.get("headers", {"Authorization": f"Bearer {fake.token}"})
    path = change.get("path", ":editCustomerMatchMembers")
    url = f"{base_url}/firstPartyAndPartnerAudiences/{audience_id}{path}"
    response = httpx.request(
        change.get("method", "POST"), url, json=body, headers=headers, timeout=30
    )
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"firstPartyAndPartnerAudienceId": audience_id}
        assert fake.audiences[audience_id].values("hashedEmails") == {sha("a@b.co")}
    else:
        error = response.json()["error"]
        assert error["code"] == status and error["status"] and error["message"]
        assert fake.audiences[audience_id].members == set()


def test_fake_refuses_more_than_500000_members_after_splitting(
    fake: FakeDV360, audience_id: str
) -> None:
    # Called in process: a 500,001-member body is tens of MB of JSON.
    email, phone_hash = sha("a"), sha("+12125650000")
    many = {"hashedEmails": [email] * 300_000, "hashedPhoneNumbers": [phone_hash] * 200_001}
    with pytest.raises(StatusError, match="exceeds the maximum of 500000"):
        fake.edit_members(audience_id, edit_body(fake, [many]))
    many["hashedPhoneNumbers"] = [phone_hash] * 200_000
    assert fake.edit_members(audience_id, edit_body(fake, [many]))
    assert fake.audiences[audience_id].values("hashedPhoneNumbers") == {phone_hash}


def test_fake_has_no_delete_and_returns_google_error_bodies(
    fake: FakeDV360, base_url: str, audience_id: str
) -> None:
    auth = {"Authorization": f"Bearer {fake.token}"}
    url = f"{base_url}/firstPartyAndPartnerAudiences/{audience_id}"
    assert httpx.delete(url, headers=auth).json()["error"]["status"] == "NOT_FOUND"
    fake.error_rate, fake.seed = 1.0, 3
    fake.__post_init__()
    seen = {
        (r.status_code, r.json()["error"]["status"])
        for r in (httpx.get(url, headers=auth) for _ in range(30))
    }
    assert seen == {(500, "INTERNAL"), (503, "UNAVAILABLE"), (429, "RESOURCE_EXHAUSTED")}


def test_device_id_audiences_send_mobile_ids_in_clear_text(fake: FakeDV360, base_url: str) -> None:
    dv360 = DV360CustomerMatch(
        advertiser_id=fake.advertiser_id,
        access_token=fake.token,
        audience_type="device_id",
        app_id="com.example.shop",
        base_url=base_url,
        retry=RetryPolicy(attempts=5, initial=0.001, maximum=0.01),
    )
    remote = dv360.ensure_audience("App users")
    assert fake.audiences[remote].audience_type == "CUSTOMER_MATCH_DEVICE_ID"
    assert dv360.ensure_audience("App users") == remote  # found, not created twice
    devices = [
        ListMember(
            key=f"p{i}",
            email=f"u{i}@example.com",
            device_id=f" {i:08d}-AAAA-BBBB " if i % 4 else None,
        )
        for i in range(12_000)
    ]
    added = dv360.add_members(remote, devices)
    assert added.sent == 9_000 and added.requests == 1
    assert [item.reason for item in added.set_aside][:1] == ["no device id"]
    assert len(added.set_aside) == 3_000
    assert fake.audiences[remote].values("mobileDeviceId") == {
        f"{i:08d}-AAAA-BBBB" for i in range(12_000) if i % 4
    }
    dv360.remove_members(remote, devices[:100])
    assert len(fake.audiences[remote].values("mobileDeviceId")) == 9_000 - 75
    with pytest.raises(BadRequest, match="needs the app's id"):
        DV360CustomerMatch(
            advertiser_id="1", access_token="t", audience_type="device_id", base_url=base_url
        )
    with pytest.raises(BadRequest, match="contact_info or device_id"):
        DV360CustomerMatch(advertiser_id="1", access_token="t", audience_type="cookies")
