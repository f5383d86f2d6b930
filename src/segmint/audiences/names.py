"""Audience names (R6): lowercase letters, digits and underscores, starting with a letter,
at most 64 characters, and not one of the REST API's own paths. A refused name comes with a
valid suggestion."""

from __future__ import annotations

import re
import unicodedata

from segmint.errors import InvalidInput

MAX_LENGTH = 64
_VALID = re.compile(r"[a-z][a-z0-9_]*")
# The fixed path segments after /api/v1/audiences/ (api/audiences.py, api/preview.py): an
# audience of that name would be shadowed there (GET /api/v1/audiences/usage is the usage
# report). A test checks this covers every route. Names cannot be all digits (ids).
RESERVED = frozenset({"usage", "overlap", "preview", "explain"})


def suggest_name(text: str) -> str:
    """A valid name close to ``text``: accents dropped, lower-cased, every run of other
    characters turned into one underscore ("Abandoned Checkout (30d)" →
    ``abandoned_checkout_30d``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not words:
        return "audience"
    if not words[0].isalpha():
        words = f"audience_{words}"
    words = words[:MAX_LENGTH].rstrip("_")
    return f"{words}_audience" if words in RESERVED else words


def check_name(name: str) -> str:
    """Return ``name`` if valid, else raise :class:`InvalidInput` with a suggestion."""
    if name in RESERVED:
        raise InvalidInput(
            f"{name!r} cannot be an audience name: /api/v1/audiences/{name} is another route "
            f"of the REST API. Try {suggest_name(name)!r}.",
            path="name",
        )
    if len(name) <= MAX_LENGTH and _VALID.fullmatch(name):
        return name
    if not name.strip():
        reason = "a name is required"
    elif len(name) > MAX_LENGTH:
        reason = f"it is {len(name)} characters long; at most {MAX_LENGTH} are allowed"
    elif not name[0].isalpha() or not name[0].islower():
        reason = "it must start with a lowercase letter"
    else:
        reason = "only lowercase letters, digits and underscores are allowed"
    raise InvalidInput(
        f"{name!r} is not a valid audience name: {reason}. Try {suggest_name(name)!r}.",
        path="name",
    )
