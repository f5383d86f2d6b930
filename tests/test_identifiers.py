"""Normalization of emails and phones, and detection of already-hashed values."""

from __future__ import annotations

import hashlib

import pytest

from segmint.identifiers import is_sha256_hex, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane@example.com", "jane@example.com"),
        ("  Jane.Doe@Example.COM \n", "jane.doe@example.com"),
        ("jane+ads@example.co.uk", "jane+ads@example.co.uk"),
        # no provider-specific rewriting: gmail dots and tags are kept
        ("j.a.n.e@gmail.com", "j.a.n.e@gmail.com"),
        ("JANE.DOE+X@GMAIL.COM", "jane.doe+x@gmail.com"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("a@b.co", "a@b.co"),
        # not plausible
        ("", None),
        ("   ", None),
        ("jane", None),
        ("jane@", None),
        ("@example.com", None),
        ("jane@example", None),
        ("jane@@example.com", None),
        ("jane@doe@example.com", None),
        ("jane doe@example.com", None),
        ("jane@exa mple.com", None),
        ("jane@.example.com", None),
        ("jane@example.com.", None),
        ("jane@example..com", None),
        (None, None),
        (42, None),
        (["jane@example.com"], None),
    ],
)
def test_normalize_email(raw: object, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+14155550123", None, "+14155550123"),
        ("+1 (415) 555-0123", None, "+14155550123"),
        ("  +1 415.555.0123 ", None, "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("(415) 555-0123", "us", "+14155550123"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("00442079460958", "GB", "+442079460958"),
        ("+33 6 12 34 56 78", None, "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        (14155550123, "US", "+14155550123"),
        # a national number without a region is not guessed
        ("(415) 555-0123", None, None),
        ("4155550123", None, None),
        # not valid numbers
        ("+1 555 555 5555", None, None),
        ("+1 415", None, None),
        ("not a phone", "US", None),
        ("", "US", None),
        (None, "US", None),
        (True, "US", None),
        (4.15, "US", None),
    ],
)
def test_normalize_phone(raw: object, region: str | None, expected: str | None) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (hashlib.sha256(b"jane@example.com").hexdigest(), True),
        (hashlib.sha256(b"jane@example.com").hexdigest().upper(), True),
        ("a" * 64, True),
        ("a" * 63, False),
        ("a" * 65, False),
        ("g" * 64, False),
        (" " + "a" * 64, False),
        ("a" * 64 + "\n", False),
        (hashlib.md5(b"jane@example.com").hexdigest(), False),
        ("jane@example.com", False),
        ("", False),
        (None, False),
        (12345, False),
    ],
)
def test_is_sha256_hex(raw: object, expected: bool) -> None:
    assert is_sha256_hex(raw) is expected
