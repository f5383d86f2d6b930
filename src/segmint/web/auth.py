"""Web UI sign-in: users, password hashing, sessions and CSRF protection.

Passwords are hashed with Argon2id (``argon2-cffi``); only the hash is stored, in the
catalog's ``users`` table. A signed-in browser carries a session cookie signed with a key
derived from the data directory's secret key (``DATA_DIR/secret.key`` or
``SEGMINT_SECRET_KEY``), so sessions survive a restart exactly when that key does.

Every session holds a random CSRF token. Pages put it in a ``<meta name="csrf-token">`` tag
and in every form's hidden ``csrf_token`` field; htmx sends it as the ``X-CSRF-Token``
header. :func:`verify_csrf` refuses unsafe requests whose token is missing or wrong.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from segmint.catalog import Catalog
from segmint.catalog.models import User
from segmint.errors import Conflict, InvalidInput, NotFound, SegmintError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
SESSION_COOKIE = "segmint_session"
SESSION_MAX_AGE = 14 * 24 * 3600
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong username costs as much time as a
# wrong password and response times do not reveal which usernames exist.
@functools.cache
def _dummy_hash() -> str:
    # Made on first use: an Argon2 hash takes ~0.15 s, which every command and process that
    # imports this module would otherwise pay.
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class WebUser:
    """The signed-in user as pages see it."""

    id: int
    username: str


class LoginRequired(SegmintError):
    """Raised by :func:`current_user` when nobody is signed in; the web app turns it into a
    redirect to the sign-in page (or a 401 for htmx and JSON requests)."""

    status_code = 401
    code = "login_required"

    def __init__(self, next_url: str) -> None:
        super().__init__("Sign in first: your session has ended or you are not signed in.")
        self.next_url = next_url


class CsrfRejected(SegmintError):
    """An unsafe request without the session's CSRF token."""

    status_code = 403
    code = "csrf_failed"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- users ---------------------------------------------------------------------------------


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


# --- sessions and CSRF --------------------------------------------------------------------


def session_secret(key: bytes) -> str:
    """The session-signing secret, derived from the data directory's secret key (so the
    credentials key itself never signs cookies)."""
    return hmac.new(key, b"segmint web session v1", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def sign_in(request: Request, user: WebUser) -> None:
    """Start a fresh session for ``user`` (a new CSRF token too)."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


def wants_json(request: Request) -> bool:
    """htmx and programmatic requests get JSON/401 answers rather than redirects."""
    if request.headers.get("hx-request") == "true":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a local path only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/audiences"
    if any(ch in target for ch in "\r\n\t"):
        return "/audiences"
    return target


def current_user(request: Request) -> WebUser:
    """FastAPI dependency: the signed-in user. Raises :class:`LoginRequired` (a 303 to
    ``/login?next=...`` for pages, a 401 JSON error for htmx/JSON requests) otherwise."""
    cached = getattr(request.state, "user", None)
    if isinstance(cached, WebUser):
        return cached
    uid = request.session.get("uid")
    user = None
    if isinstance(uid, int):
        user = load_user(request.app.state.runtime.catalog, uid)
    if user is None:
        request.session.pop("uid", None)
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        raise LoginRequired("/login?next=" + quote(target, safe="/"))
    request.state.user = user
    return user


async def verify_csrf(request: Request) -> None:
    """FastAPI dependency for every unsafe method: the request must carry this session's
    CSRF token in the ``X-CSRF-Token`` header or the ``csrf_token`` form field."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            try:
                form = await request.form()
            except Exception as exc:  # a malformed body: say so rather than fail
                raise InvalidInput("the form data could not be read; reload the page") from exc
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if (
        not isinstance(expected, str)
        or not sent
        or not hmac.compare_digest(expected.encode(), sent.encode())
    ):
        raise CsrfRejected(
            "This form has expired or did not come from Segmint (missing or wrong CSRF "
            "token). Reload the page and try again."
        )
