"""Normalization and hashing against the platforms' published rules and examples
(platform-apis.md §2.3, §3.4, §9)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmint.sync.normalize import (
    GOOGLE_RULES,
    META_RULES,
    HashingRules,
    ListMember,
    prepare_country,
    prepare_email,
    prepare_members,
    prepare_name,
    prepare_phone,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Literal digests, so a change in encoding or hex case cannot hide behind sha() itself.
TEST_EXAMPLE_COM = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
# TikTok help "List of supported IDs and formats": normalized janedoe@gmail.com.
JANEDOE_GMAIL = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
PLUS_18005550101 = "61d6c2976b5d92b1ad63073a12fddd26040cd980067d03a93dd1cc50f1a3ac68"


@pytest.mark.parametrize(
    ("raw", "digest"),
    [
        ("test@example.com", TEST_EXAMPLE_COM),
        ("  Test@Example.COM \n", TEST_EXAMPLE_COM),
        ("JaneDoe@Gmail.com", JANEDOE_GMAIL),
    ],
)
def test_known_email_digests(raw: str, digest: str) -> None:
    assert prepare_email(raw, META_RULES).value == digest
    assert prepare_email(raw, GOOGLE_RULES).value == digest


@pytest.mark.parametrize(
    ("raw", "meta", "google"),
    [
        (" John.Doe@Example.com ", "john.doe@example.com", "john.doe@example.com"),
        ("\tUSER+tag@Mail.Example.org", "user+tag@mail.example.org", "user+tag@mail.example.org"),
        # Google removes all whitespace; Meta only trims, so an inner space is malformed.
        ("john doe@example.com", None, "johndoe@example.com"),
        # gmail dots are kept: Customer Match does not require removing them.
        ("Jane.Doe@gmail.com", "jane.doe@gmail.com", "jane.doe@gmail.com"),
    ],
)
def test_email_normalization_per_platform(raw: str, meta: str | None, google: str) -> None:
    assert prepare_email(raw, META_RULES).value == (sha(meta) if meta else None)
    assert prepare_email(raw, GOOGLE_RULES).value == sha(google)


@pytest.mark.parametrize(
    "raw", ["not-an-email", "a@b", "@example.com", "user@", "a@@example.com", "a@example..com"]
)
def test_malformed_email_is_set_aside_with_a_reason(raw: str) -> None:
    assert prepare_email(raw, META_RULES) == (None, "malformed email")


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1 800 5550101", None, "+18005550101"),  # google-ads-python example
        ("+12125650000", None, "+12125650000"),  # Google Ads API forum example
        ("(212) 565-0000", "US", "+12125650000"),
        ("+44 7123 456789", None, "+447123456789"),  # Meta: 447123456789 without "+"
        ("07123 456789", "GB", "+447123456789"),
    ],
)
def test_phone_is_e164_for_google_and_digits_for_meta(
    raw: str, region: str | None, e164: str
) -> None:
    assert prepare_phone(raw, GOOGLE_RULES, region).value == sha(e164)
    assert prepare_phone(raw, META_RULES, region).value == sha(e164.removeprefix("+"))


def test_known_phone_digest() -> None:
    assert prepare_phone("+1 800 5550101", GOOGLE_RULES).value == PLUS_18005550101


@pytest.mark.parametrize("raw", ["12", "555-0101", "phone", "+1 000"])
def test_malformed_phone_is_set_aside_with_a_reason(raw: str) -> None:
    assert prepare_phone(raw, META_RULES) == (None, "malformed phone")


@pytest.mark.parametrize(
    ("raw", "meta", "google"),
    [
        ("  John ", "john", "john"),
        ("O'Brien", "obrien", "o'brien"),
        ("Mary-Jane", "maryjane", "mary-jane"),
        ("Zoë", "zoë", "zoë"),  # UTF-8 letters are allowed
        ("José María", "josémaría", "josé maría"),
    ],
)
def test_names_per_platform(raw: str, meta: str, google: str) -> None:
    assert prepare_name(raw, META_RULES).value == sha(meta)
    assert prepare_name(raw, GOOGLE_RULES).value == sha(google)


def test_country_is_lowercase_alpha2_hashed_for_meta_and_clear_for_google() -> None:
    assert prepare_country(" US ", META_RULES).value == sha("us")
    assert prepare_country("GB", GOOGLE_RULES).value == "gb"
    assert prepare_country("USA", META_RULES) == (None, "malformed country")


@pytest.mark.parametrize("digest", [TEST_EXAMPLE_COM, TEST_EXAMPLE_COM.upper()])
def test_already_hashed_values_pass_through_never_hashed_twice(digest: str) -> None:
    assert prepare_email(digest, META_RULES).value == TEST_EXAMPLE_COM
    assert prepare_phone(digest, META_RULES).value == TEST_EXAMPLE_COM
    assert prepare_name(digest, META_RULES).value == TEST_EXAMPLE_COM
    assert prepare_country(digest, META_RULES).value == TEST_EXAMPLE_COM


@pytest.mark.parametrize("value", [None, "", "   ", 42])
def test_missing_or_non_string_values_never_raise(value: object) -> None:
    assert prepare_email(value, META_RULES).value is None
    assert prepare_name(value, META_RULES).value is None


@given(st.emails())
def test_hashing_is_idempotent_on_valid_emails(email: str) -> None:
    once = prepare_email(email, META_RULES).value
    assert once is not None
    assert prepare_email(once, META_RULES).value == once
    assert prepare_email(f"  {email.upper()} ", META_RULES).value in {once, None}


def test_prepare_members_sets_aside_bad_values_and_unmatchable_members() -> None:
    members = [
        ListMember("u1", email="A@Example.com", phone="+1 800 5550101", first_name="Ann"),
        ListMember("u2", email="broken", phone="+447123456789"),
        ListMember("u3", email="broken", phone="12", first_name="Bob"),
        ListMember("u4", first_name="Anonymous"),
    ]
    prepared = prepare_members(members, ("email", "phone", "first_name", "country"), META_RULES)
    assert prepared.keys == ["u1", "u2"]
    assert prepared.rows == [
        (sha("a@example.com"), sha("18005550101"), sha("ann"), ""),
        ("", sha("447123456789"), "", ""),
    ]
    assert prepared.reasons() == {
        "malformed email": 2,
        "malformed phone": 1,
        "no usable email or phone": 2,
    }
    assert prepared.skipped_members == 2
    assert prepared.matched["email"] == 1
    assert prepared.matched["phone"] == 2


member_values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.emails(),
    st.sampled_from(["+14155550123", "(212) 565-0000", "Zoë", " O'Brien ", "US", "usa"]),
    st.sampled_from([TEST_EXAMPLE_COM, TEST_EXAMPLE_COM.upper()]),
)


@given(
    st.lists(
        st.builds(
            ListMember,
            key=st.just("k"),
            email=member_values,
            phone=member_values,
            first_name=member_values,
            last_name=member_values,
            country=member_values,
        ),
        max_size=8,
    ),
    st.sampled_from([META_RULES, GOOGLE_RULES]),
)
def test_prepare_members_agrees_with_the_per_value_functions(
    members: list[ListMember], rules: HashingRules
) -> None:
    """The column-wise fast path gives the same values as the one-value functions."""
    schema = ("email", "phone", "first_name", "last_name", "country")
    prepared = prepare_members(members, schema, rules, default_region="US")
    expected = []
    for m in members:
        row = (
            prepare_email(m.email, rules).value or "",
            prepare_phone(m.phone, rules, m.country or "US").value or "",
            prepare_name(m.first_name, rules).value or "",
            prepare_name(m.last_name, rules).value or "",
            prepare_country(m.country, rules).value or "",
        )
        if row[0] or row[1]:
            expected.append(row)
    assert prepared.rows == expected
