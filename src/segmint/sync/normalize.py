"""Identifier normalization and SHA-256 hashing, as each platform requires (R16, B5).

Every platform hashes the SHA-256 of the UTF-8 normalized value as 64 lowercase hex
characters, but the normalization differs (platform-apis.md §9): Meta wants phone digits
without ``+`` and names reduced to letters, Google keeps the E.164 ``+`` and removes all
whitespace from emails. A :class:`HashingRules` value captures one platform's choices.

Quality rules (B5): a malformed email or phone is *set aside* with a reason and counted, never
raising for the batch; a value that already is a SHA-256 hex digest is passed through (only
lowercased, as the platforms require lowercase hex), never hashed twice.

This is the hot path of a List Sync (1M members must prepare at ≥ 200,000/s), so the
functions call :func:`hashlib.sha256` directly and avoid per-value allocations beyond the
result tuple.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Literal, NamedTuple

from segmint.identifiers import is_sha256_hex, normalize_phone
from segmint.memory import cyclic_gc_paused

IdentifierKind = Literal["email", "phone", "first_name", "last_name", "country"]
"""The member identifiers a List Sync can map (R18)."""

# Same plausibility rule as segmint.identifiers.normalize_email (one "@", non-empty local part,
# at least two non-empty domain labels, no whitespace), as one compiled regex for speed.
_EMAIL = re.compile(r"[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+")
# The canonical form normalize_phone produces; profiles store phones already in it.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_NOT_LETTER = re.compile(r"[\W\d_]+")
_WHITESPACE = re.compile(r"\s+")
_COUNTRY = re.compile(r"[a-z]{2}")


class Normalized(NamedTuple):
    """The outcome for one value: ``value`` is the hashed (or clear) string to send, or
    ``None`` with ``reason`` saying why the value was set aside."""

    value: str | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class HashingRules:
    """One platform's normalization choices (platform-apis.md §9)."""

    email_remove_all_whitespace: bool = False
    """Google removes every whitespace character; Meta only trims (inner spaces = malformed)."""
    phone_plus: bool = True
    """Keep the E.164 ``+`` (Google, DV360) or send digits only (Meta)."""
    names_letters_only: bool = False
    """Meta: lowercase letters only (UTF-8 letters kept), no punctuation, digits or spaces."""
    hash_country: bool = True
    """Meta hashes COUNTRY; Google sends ``countryCode`` in clear text."""


META_RULES = HashingRules(phone_plus=False, names_letters_only=True, hash_country=True)
GOOGLE_RULES = HashingRules(email_remove_all_whitespace=True, phone_plus=True, hash_country=False)


def hash_normalized(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of an already normalized string, lowercase hex."""
    return sha256(text.encode()).hexdigest()


def prepare_email(value: object, rules: HashingRules) -> Normalized:
    """Normalize and hash an email: trim and lowercase (Google also removes all whitespace).
    An existing SHA-256 digest passes through; an implausible address is set aside."""
    if not isinstance(value, str):
        return Normalized(None, "missing" if value is None else "not a string")
    text = value.strip()
    if len(text) == 64 and is_sha256_hex(text):
        return Normalized(text.lower())
    if rules.email_remove_all_whitespace:
        text = _WHITESPACE.sub("", text)
    text = text.lower()
    if not text:
        return Normalized(None, "missing")
    if _EMAIL.fullmatch(text) is None:
        return Normalized(None, "malformed email")
    return Normalized(sha256(text.encode()).hexdigest())


def prepare_phone(
    value: object, rules: HashingRules, default_region: str | None = None
) -> Normalized:
    """Normalize a phone to E.164 (via :func:`segmint.identifiers.normalize_phone`) and hash it;
    Meta's rules drop the ``+``. A value already in canonical E.164 form (what collection stores)
    is taken as validated; anything else is parsed, using ``default_region`` for national
    numbers. An existing SHA-256 digest passes through; an invalid number is set aside."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return Normalized(None, "missing" if value is None else "not a string")
    text = str(value).strip()
    if not text:
        return Normalized(None, "missing")
    if len(text) == 64 and is_sha256_hex(text):
        return Normalized(text.lower())
    if _E164.fullmatch(text) is None:
        e164 = normalize_phone(text, default_region)
        if e164 is None:
            return Normalized(None, "malformed phone")
        text = e164
    return Normalized(sha256((text if rules.phone_plus else text[1:]).encode()).hexdigest())


def prepare_name(value: object, rules: HashingRules) -> Normalized:
    """Normalize and hash a first or last name: trim and lowercase; Meta keeps letters only
    (including non-ASCII letters such as ``é``). An existing SHA-256 digest passes through."""
    if not isinstance(value, str):
        return Normalized(None, "missing" if value is None else "not a string")
    text = value.strip()
    if len(text) == 64 and is_sha256_hex(text):
        return Normalized(text.lower())
    text = text.lower()
    if rules.names_letters_only:
        text = _NOT_LETTER.sub("", text)
    if not text:
        return Normalized(None, "missing")
    return Normalized(sha256(text.encode()).hexdigest())


def prepare_country(value: object, rules: HashingRules) -> Normalized:
    """Normalize an ISO 3166-1 alpha-2 country code to lowercase; hashed when the platform
    hashes it (Meta), clear text otherwise. Anything else is set aside."""
    if not isinstance(value, str):
        return Normalized(None, "missing" if value is None else "not a string")
    text = value.strip()
    if rules.hash_country and len(text) == 64 and is_sha256_hex(text):
        return Normalized(text.lower())
    text = text.lower()
    if not text:
        return Normalized(None, "missing")
    if _COUNTRY.fullmatch(text) is None:
        return Normalized(None, "malformed country")
    return Normalized(sha256(text.encode()).hexdigest() if rules.hash_country else text)


@dataclass(frozen=True, slots=True)
class ListMember:
    """One audience member's identifiers as a List Sync maps them (R16, R18). ``key`` is the
    profile id, used only for reporting what was set aside."""

    key: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None
    crm_id: str | None = None
    """The profile's ``user_id``, for platforms matching on the advertiser's own ids."""
    device_id: str | None = None
    """A mobile advertising id (IDFA / GAID), for device-id lists."""
    user_id: str | None = None
    anonymous_id: str | None = None


class SetAside(NamedTuple):
    """A value (or a whole member) left out of a sync, and why (B5, R23)."""

    key: str
    identifier: str
    reason: str


@dataclass
class PreparedList:
    """Rows ready to send, one per member in ``schema`` order (``""`` for an unknown value),
    plus what was set aside."""

    schema: tuple[IdentifierKind, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)

    @property
    def matched(self) -> Counter[str]:
        """How many members being sent carry each identifier (the match-rate preview, R19)."""
        counts: Counter[str] = Counter()
        for index, kind in enumerate(self.schema):
            counts[kind] = sum(1 for row in self.rows if row[index])
        return counts

    @property
    def skipped_members(self) -> int:
        """Members with no usable identifier at all (not sent)."""
        return sum(1 for item in self.set_aside if item.identifier == "*")

    def reasons(self) -> Counter[str]:
        """How many values were set aside per reason, e.g. ``{"malformed email": 3}``."""
        return Counter(item.reason for item in self.set_aside if item.reason != "missing")


# Identifiers that can match a person on their own; names and country only refine a match.
_MATCHING: frozenset[str] = frozenset({"email", "phone"})

Column = tuple[list[str], list[tuple[int, str]]]
"""One identifier for every member: the values to send (``""`` when unknown) and the
(member index, reason) of each value set aside."""


def prepare_members(
    members: Sequence[ListMember],
    schema: Sequence[IdentifierKind],
    rules: HashingRules,
    *,
    default_region: str | None = None,
) -> PreparedList:
    """Normalize and hash each member's identifiers in ``schema`` order.

    A malformed value is set aside (reported with its reason) and sent as ``""``; a member
    left with no email or phone is set aside as a whole (``identifier="*"``) and not sent,
    since names and country alone cannot match anyone (R16). Missing values are not reported.
    Works column by column (one tight loop per identifier) because this is the hot path, with
    the cyclic garbage collector paused: millions of small, acyclic tuples and strings would
    otherwise trigger full collections over an ever larger heap (it is about 40% of the time
    at 1M members).
    """
    with cyclic_gc_paused():
        return _prepare_members(members, schema, rules, default_region)


def _prepare_members(
    members: Sequence[ListMember],
    schema: Sequence[IdentifierKind],
    rules: HashingRules,
    default_region: str | None,
) -> PreparedList:
    prepared = PreparedList(tuple(schema))
    columns: list[list[str]] = []
    rejected: list[tuple[int, int, str, str]] = []
    for order, kind in enumerate(schema):
        values, reasons = _COLUMNS[kind](members, rules, default_region)
        columns.append(values)
        rejected.extend((index, order, kind, reason) for index, reason in reasons)
    matching = [column for column, kind in zip(columns, schema, strict=True) if kind in _MATCHING]
    if len(matching) == 2:
        usable = [bool(a or b) for a, b in zip(matching[0], matching[1], strict=True)]
    elif len(matching) == 1:
        usable = [bool(a) for a in matching[0]]
    else:
        usable = [False] * len(members)
    prepared.rows = [row for row, ok in zip(zip(*columns, strict=True), usable, strict=False) if ok]
    prepared.keys = [member.key for member, ok in zip(members, usable, strict=True) if ok]
    rejected.extend(
        (index, len(schema), "*", "no usable email or phone")
        for index, ok in enumerate(usable)
        if not ok
    )
    rejected.sort(key=lambda item: (item[0], item[1]))
    prepared.set_aside = [
        SetAside(members[index].key, kind, reason) for index, _, kind, reason in rejected
    ]
    return prepared


def _email_column(members: Sequence[ListMember], rules: HashingRules, _: str | None) -> Column:
    values: list[str] = []
    reasons: list[tuple[int, str]] = []
    add, is_email, is_hex, strip_inner = values.append, _EMAIL.fullmatch, is_sha256_hex, None
    if rules.email_remove_all_whitespace:
        strip_inner = _WHITESPACE.sub
    for index, member in enumerate(members):
        value = member.email
        if value.__class__ is not str:
            add("")
            if value is not None:
                reasons.append((index, "not a string"))
            continue
        text = value.strip()
        if len(text) == 64 and is_hex(text):
            add(text.lower())
            continue
        if strip_inner is not None:
            text = strip_inner("", text)
        text = text.lower()
        if not text:
            add("")
        elif is_email(text) is None:
            add("")
            reasons.append((index, "malformed email"))
        else:
            add(sha256(text.encode()).hexdigest())
    return values, reasons


def _phone_column(
    members: Sequence[ListMember], rules: HashingRules, default_region: str | None
) -> Column:
    values: list[str] = []
    reasons: list[tuple[int, str]] = []
    add, is_e164, skip = values.append, _E164.fullmatch, 0 if rules.phone_plus else 1
    for index, member in enumerate(members):
        value = member.phone
        if value is None:
            add("")
        elif value.__class__ is str and is_e164(value):  # the form collection stores
            add(sha256(value[skip:].encode()).hexdigest())
        else:
            result = prepare_phone(value, rules, member.country or default_region)
            add(result.value or "")
            if result.reason is not None and result.reason != "missing":
                reasons.append((index, result.reason))
    return values, reasons


def _memoized_column(
    attribute: str, prepare: Callable[[object, HashingRules], Normalized]
) -> Callable[[Sequence[ListMember], HashingRules, str | None], Column]:
    """A column of a low-cardinality identifier (names, country): each distinct value is
    normalized and hashed once."""

    def column(members: Sequence[ListMember], rules: HashingRules, _: str | None) -> Column:
        memo: dict[object, Normalized] = {}
        values: list[str] = []
        reasons: list[tuple[int, str]] = []
        add, get = values.append, memo.get
        for index, member in enumerate(members):
            raw = getattr(member, attribute)
            result = get(raw)
            if result is None:
                result = memo[raw] = prepare(raw, rules)
            add(result.value or "")
            if result.reason is not None and result.reason != "missing":
                reasons.append((index, result.reason))
        return values, reasons

    return column


_COLUMNS: dict[str, Callable[[Sequence[ListMember], HashingRules, str | None], Column]] = {
    "email": _email_column,
    "phone": _phone_column,
    "first_name": _memoized_column("first_name", prepare_name),
    "last_name": _memoized_column("last_name", prepare_name),
    "country": _memoized_column("country", prepare_country),
}
