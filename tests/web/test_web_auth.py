"""Signing in and out, wrong passwords, CSRF refusal, and every page behind the login."""

from __future__ import annotations

import re
from typing import Any

import pytest

from segmint.catalog.accounts import authenticate, create_user
from segmint.errors import Conflict, InvalidInput
from segmint.web.auth import safe_next, session_secret
from tests.web.conftest import WebServer, sign_in_http, unique_name

PAGES = [
    "/",
    "/audiences",
    "/audiences?tab=archived",
    "/audiences/1",
    "/events",
    "/usage",
    "/destinations",
    "/audiences/new",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_redirects_to_login_when_signed_out(web_server: WebServer, path: str) -> None:
    with web_server.client() as client:
        answer = client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")
    assert answer.headers["location"] != "/login?next="


def test_htmx_requests_get_401_with_a_redirect_header(web_server: WebServer) -> None:
    with web_server.client() as client:
        answer = client.get("/audiences", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "login_required"
    assert answer.headers["hx-redirect"].startswith("/login?next=/audiences")


def test_sign_in_and_out_over_http(web_server: WebServer, admin_login: tuple[str, str]) -> None:
    with sign_in_http(web_server, *admin_login) as client:
        page = client.get("/audiences")
        assert page.status_code == 200
        assert admin_login[0] in page.text
        assert "Sign out" in page.text
        out = client.post("/logout")
        assert out.status_code == 303
        assert client.get("/audiences").status_code == 303


def test_wrong_password_is_refused_with_a_clear_message(
    web_server: WebServer, admin_login: tuple[str, str]
) -> None:
    with web_server.client() as client:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        for username in (admin_login[0], "nobody-here"):
            answer = client.post(
                "/login",
                data={
                    "username": username,
                    "password": "not-the-password",
                    "csrf_token": token.group(1),
                },
            )
            assert answer.status_code == 401
            assert "Wrong username or password" in answer.text
            assert 'aria-invalid="true"' in answer.text
        assert client.get("/audiences").status_code == 303


def test_post_without_csrf_token_is_refused(
    web_server: WebServer, admin_login: tuple[str, str]
) -> None:
    with sign_in_http(web_server, *admin_login) as client:
        token = client.headers.pop("X-CSRF-Token")
        answer = client.post("/logout")
        assert answer.status_code == 403
        assert "CSRF" in answer.text
        wrong = client.post("/logout", headers={"X-CSRF-Token": token[:-2] + "xx"})
        assert wrong.status_code == 403
        # still signed in: the refused requests changed nothing
        assert client.get("/audiences").status_code == 200
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303


def test_login_form_itself_needs_the_csrf_token(
    web_server: WebServer, admin_login: tuple[str, str]
) -> None:
    with web_server.client() as client:
        answer = client.post(
            "/login", data={"username": admin_login[0], "password": admin_login[1]}
        )
    assert answer.status_code == 403


def test_users_rules(web_server: WebServer) -> None:
    catalog = web_server.runtime.catalog
    name = unique_name("user")
    create_user(catalog, name, "long-enough-password")
    with pytest.raises(Conflict, match="already exists"):
        create_user(catalog, name.upper(), "long-enough-password")
    with pytest.raises(InvalidInput, match="too short"):
        create_user(catalog, unique_name("user"), "short")
    with pytest.raises(InvalidInput, match="invalid username"):
        create_user(catalog, "<script>", "long-enough-password")
    assert authenticate(catalog, name, "long-enough-password") is not None
    assert authenticate(catalog, name, "long-enough-passwordX") is None
    assert authenticate(catalog, "no-such-user", "long-enough-password") is None


def test_next_only_goes_to_local_pages() -> None:
    assert safe_next("/events?x=1") == "/events?x=1"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil", None, "", "javascript:x"):
        assert safe_next(bad) == "/audiences"


def test_session_secret_depends_on_the_key() -> None:
    assert session_secret(b"a" * 44) != session_secret(b"b" * 44)
    assert session_secret(b"a" * 44) == session_secret(b"a" * 44)


@pytest.mark.browser
def test_browser_sign_in_wrong_password_then_sign_out(
    anon_page: Any, admin_login: tuple[str, str], screenshot: Any
) -> None:
    page = anon_page
    page.goto("/events")
    assert "/login?next=/events" in page.url
    page.get_by_label("Username").fill(admin_login[0])
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    assert "Wrong username or password" in alert.inner_text()
    assert page.get_by_label("Username").input_value() == admin_login[0]
    screenshot(page, "login")
    page.get_by_label("Password").fill(admin_login[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/events")
    assert page.get_by_role("navigation", name="Main").is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login?signed_out=1")
    page.goto("/audiences")
    assert "/login" in page.url


def test_login_page_when_signed_in_goes_straight_on(
    web_server: WebServer, admin_login: tuple[str, str]
) -> None:
    with sign_in_http(web_server, *admin_login) as client:
        answer = client.get("/login", params={"next": "/usage"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/usage"
        evil = client.get("/login", params={"next": "https://evil.example/"})
        assert evil.headers["location"] == "/audiences"
