"""Sessions survive a restart exactly when the data directory's secret key does (each
``serve`` is a new app and server on the same data directory)."""

from __future__ import annotations

import re

import httpx
import pytest
from cryptography.fernet import Fernet

from segmint.api.app import create_app
from segmint.catalog.accounts import create_user
from segmint.runtime import Runtime
from segmint.web.auth import SESSION_COOKIE
from tests.conftest import serving as serve


def _signed_in_cookie(runtime: Runtime) -> str:
    with serve(create_app(runtime=runtime)) as url, httpx.Client(base_url=url) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        answer = client.post(
            "/login",
            data={"username": "sam", "password": "sessions-password", "csrf_token": token[1]},
        )
        assert answer.status_code == 303
        return str(client.cookies[SESSION_COOKIE])


def _status_with(runtime: Runtime, cookie: str) -> int:
    with serve(create_app(runtime=runtime)) as url, httpx.Client(base_url=url) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        return client.get("/destinations").status_code


def test_a_session_survives_a_restart_with_the_same_key(runtime: Runtime) -> None:
    create_user(runtime.catalog, "sam", "sessions-password")
    cookie = _signed_in_cookie(runtime)
    assert (runtime.settings.data_dir / "secret.key").exists()
    assert _status_with(runtime, cookie) == 200  # a new app: the key is read from the file


def test_a_new_key_ends_every_session(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    create_user(runtime.catalog, "sam", "sessions-password")
    cookie = _signed_in_cookie(runtime)
    monkeypatch.setenv("SEGMINT_SECRET_KEY", Fernet.generate_key().decode())
    assert _status_with(runtime, cookie) == 303


def test_a_forged_cookie_is_ignored(runtime: Runtime) -> None:
    assert _status_with(runtime, "eyJ1aWQiOiAxfQ==.forged.signature") == 303
