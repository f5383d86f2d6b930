"""Accounts of the web UI: users in the catalog's ``users`` table, with passwords hashed
with Argon2id (``argon2-cffi``; only the hash is stored).

Kept apart from the web layer (:mod:`segmint.web.auth` adds sessions and CSRF protection) so
the ``segmint users`` commands manage accounts without loading the web framework.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from segmint.catalog.db import Catalog
from segmint.catalog.models import User
from segmint.errors import Conflict, InvalidInput, NotFound

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so a wrong username costs as much time
    as a wrong password and response times do not reveal which usernames exist. Made on first
    use: an Argon2 hash takes ~0.15 s, which every process importing this would pay."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class WebUser:
    """A user of the web UI, as pages and commands see it."""

    id: int
    username: str


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def check_username(username: str) -> str:
    """The username, stripped, or :class:`InvalidInput` saying what is allowed."""
    name = username.strip()
    if not USERNAME_RE.match(name):
        raise InvalidInput(
            f"invalid username {username!r}: use 1 to 64 letters, digits, '.', '_', '-' or "
            "'@', starting with a letter or digit",
            path="username",
        )
    return name


def check_password(password: str) -> None:
    """Refuse passwords that are too short (or absurdly long) with a clear message."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password is too short ({len(password)} characters): use at least "
            f"{MIN_PASSWORD_LENGTH}",
            path="password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters",
            path="password",
        )


def create_user(
    catalog: Catalog, username: str, password: str, *, now: dt.datetime | None = None
) -> WebUser:
    """Create a user; :class:`Conflict` when the username is taken (case-insensitively)."""
    name = check_username(username)
    check_password(password)
    password_hash = _hasher.hash(password)
    with catalog.session() as session:
        if _find(session, name) is not None:
            raise Conflict(
                f"a user named {name!r} already exists; choose another username",
                path="username",
            )
        row = User(username=name, password_hash=password_hash, created_at=now or utcnow())
        session.add(row)
        session.flush()
        return WebUser(id=row.id, username=row.username)


def set_password(catalog: Catalog, username: str, password: str) -> WebUser:
    """Replace a user's password."""
    check_password(password)
    with catalog.session() as session:
        row = _find(session, username)
        if row is None:
            raise NotFound(f"no user named {username!r}; `segmint users list` shows them")
        row.password_hash = _hasher.hash(password)
        return WebUser(id=row.id, username=row.username)


def list_users(catalog: Catalog) -> list[WebUser]:
    with catalog.session() as session:
        rows = session.scalars(select(User).order_by(User.username)).all()
        return [WebUser(id=r.id, username=r.username) for r in rows]


def authenticate(
    catalog: Catalog, username: str, password: str, *, now: dt.datetime | None = None
) -> WebUser | None:
    """The user when ``username`` and ``password`` match, else ``None``. Takes the same time
    (one Argon2 verification) whether or not the username exists."""
    if len(password) > MAX_PASSWORD_LENGTH or len(username) > 200:
        _verify(_dummy_hash(), "x")
        return None
    with catalog.session() as session:
        row = _find(session, username.strip())
        if row is None or row.disabled_at is not None:
            _verify(_dummy_hash(), password)
            return None
        if not _verify(row.password_hash, password):
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
        row.last_login_at = now or utcnow()
        return WebUser(id=row.id, username=row.username)


def load_user(catalog: Catalog, user_id: int) -> WebUser | None:
    with catalog.session() as session:
        row = session.get(User, user_id)
        if row is None or row.disabled_at is not None:
            return None
        return WebUser(id=row.id, username=row.username)


def _find(session: Session, username: str) -> User | None:
    """The user named ``username``, compared case-insensitively."""
    return session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    ).first()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
