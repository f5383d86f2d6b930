"""Normalization of the identifiers that link profiles and match them on ad platforms.

Identity resolution links profiles by these values, and audience sync hashes them for the
platforms, so both must agree on one canonical form: a trimmed, lowercase email and an E.164
phone number. A value that is not plausible normalizes to ``None`` (set aside, never an error),
because one malformed identifier must not fail a whole batch.
"""

from __future__ import annotations

import re

import phonenumbers

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def normalize_email(value: object) -> str | None:
    """Return the email trimmed and lowercased, or ``None`` when it is not a plausible address.

    Plausible: one ``@``, a non-empty local part, a domain of at least two non-empty labels,
    no whitespace. Provider-specific rewriting (gmail dots, ``+tags``) is deliberately not done:
    the platforms we sync to document plain lowercasing, and rewriting would match the wrong
    person on other providers.
    """
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if not email or any(char.isspace() for char in email):
        return None
    local, at, domain = email.partition("@")
    if not at or not local or "@" in domain:
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        return None
    return email


def normalize_phone(value: object, default_region: str | None = None) -> str | None:
    """Return the phone number in E.164 (``+14155550123``), or ``None`` when it is not a valid
    number.

    A number without a leading ``+`` (or international prefix) is read as a national number
    of ``default_region`` (ISO 3166 alpha-2, e.g. ``"US"``); without a region it is rejected
    rather than guessed.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_sha256_hex(value: object) -> bool:
    """Whether ``value`` looks like a SHA-256 digest in hex (64 hex characters, any case), so an
    already-hashed identifier is never hashed twice."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None
