"""Web UI sign-in: sessions and CSRF protection over the accounts of
:mod:`segmint.catalog.accounts` (users, Argon2id password hashes).

A signed-in browser carries a session cookie signed with a key derived from the data
directory's secret key (``DATA_DIR/secret.key`` or ``SEGMINT_SECRET_KEY``), so sessions
survive a restart exactly when that key does.

Every session holds a random CSRF token. Pages put it in a ``<meta name="csrf-token">`` tag
and in every form's hidden ``csrf_token`` field; htmx sends it as the ``X-CSRF-Token``
header. :func:`verify_csrf` refuses unsafe requests whose token is missing or wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote

from fastapi import Request

from segmint.catalog.accounts import WebUser, load_user
from segmint.errors import InvalidInput, SegmintError

SESSION_COOKIE = "segmint_session"
SESSION_MAX_AGE = 14 * 24 * 3600
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
