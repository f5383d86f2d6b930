"""Keys: ``write`` keys for sources sending events, ``admin`` keys for the REST API.

A key is shown once, when created; only its SHA-256 is stored. Checks on the hot path use a
small in-process cache so the catalog is not queried on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select

from segmint.catalog.db import Catalog
from segmint.catalog.models import WriteKey
from segmint.errors import InvalidInput, NotFound, Unauthorized

Scope = Literal["write", "admin"]
SCOPES: tuple[Scope, ...] = ("write", "admin")
PREFIXES: dict[str, str] = {"write": "sgw_", "admin": "sga_"}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    name: str
    scope: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(row: WriteKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.scope, row.key_prefix, row.created_at, row.revoked_at)


def create_key(catalog: Catalog, name: str, scope: str = "write") -> tuple[KeyInfo, str]:
    """Create a key named ``name`` (the source, or the API client); return its record and the
    key itself — the only time the key is available."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a key needs a name of 1 to 100 characters, e.g. 'website'")
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be 'write' or 'admin', not {scope!r}", path="scope")
    key = PREFIXES[scope] + secrets.token_urlsafe(24)
    row = WriteKey(
        name=name,
        scope=scope,
        key_hash=_hash(key),
        key_prefix=key[:12],
        created_at=datetime.now(UTC).replace(tzinfo=None),
    )
    with catalog.session() as session:
        session.add(row)
        session.flush()
        info = _info(row)
    return info, key


def list_keys(catalog: Catalog) -> list[KeyInfo]:
    with catalog.session() as session:
        return [_info(r) for r in session.scalars(select(WriteKey).order_by(WriteKey.id))]


def revoke_key(catalog: Catalog, key_id: int) -> KeyInfo:
    """Revoke a key: requests made with it are refused from then on (within the cache TTL)."""
    with catalog.session() as session:
        row = session.get(WriteKey, key_id)
        if row is None:
            raise NotFound(f"no key with id {key_id}; `segmint keys list` shows them")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC).replace(tzinfo=None)
        return _info(row)


class KeyChecker:
    """Checks keys of one scope against the catalog, remembering answers for ``ttl_seconds``."""

    def __init__(self, catalog: Catalog, scope: str, ttl_seconds: float = 10.0) -> None:
        self._catalog = catalog
        self._scope = scope
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def name_for(self, key: str | None, now: float) -> str:
        """Return the name of the valid, unrevoked key, or raise :class:`Unauthorized`."""
        noun = "write key" if self._scope == "write" else "API key"
        if not key:
            how = (
                "as the HTTP Basic user name or as writeKey in the body"
                if self._scope == "write"
                else "as 'Authorization: Bearer KEY'"
            )
            raise Unauthorized(f"no {noun}: send it {how}")
        digest = _hash(key)
        with self._lock:
            hit = self._cache.get(digest)
        if hit is None or now - hit[0] > self._ttl:
            with self._catalog.session() as session:
                row = session.scalars(
                    select(WriteKey).where(WriteKey.key_hash == digest)
                ).one_or_none()
                valid = row is not None and row.revoked_at is None and row.scope == self._scope
                name = row.name if valid and row is not None else None
            hit = (now, name)
            with self._lock:
                self._cache[digest] = hit
        if hit[1] is None:
            raise Unauthorized(
                f"unknown or revoked {noun}; create one with "
                f"`segmint keys create NAME --scope {self._scope}`"
            )
        return hit[1]
