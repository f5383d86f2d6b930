"""Cross-origin requests: browsers on any site (or the sites in ``SEGMINT_CORS_ORIGINS``) may
post events to the collection API; the REST API and the web UI answer no other origin."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from segmint.runtime import Runtime
from segmint.settings import Settings
from tests.conftest import LiveServer, served_app

SHOP = "https://shop.example"


def preflight(client: httpx.Client, path: str, method: str, origin: str = SHOP) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track", "/v1/t", "/v1/identify"])
def test_any_site_may_post_events(live_server: LiveServer, path: str) -> None:
    with live_server.client() as client:
        allowed = preflight(client, path, "POST", origin="https://any.example")
        posted = client.post(path, json={}, headers={"Origin": "https://any.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "*"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert posted.headers["access-control-allow-origin"] == "*"  # even a refusal is readable


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/destinations", "GET"),
        ("/api/v1/destinations", "POST"),
        ("/api/v1/destinations/1", "PATCH"),
        ("/api/v1/audiences/1", "DELETE"),
        ("/api/v1/audiences/1/definition", "PUT"),
        ("/api/v1/events/checkout%2Fstep/properties", "GET"),
        ("/destinations/1/settings", "POST"),  # a web UI form
    ],
)
def test_the_rest_api_and_the_web_ui_answer_no_other_site(
    live_server: LiveServer, path: str, method: str
) -> None:
    with live_server.client() as client:
        answer = preflight(client, path, method)
    assert answer.status_code != 200
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-methods" not in answer.headers


def test_a_cross_site_read_of_the_rest_api_is_not_allowed(live_server: LiveServer) -> None:
    with live_server.admin() as api:
        answer = api.get("/api/v1/destinations", headers={"Origin": SHOP})
        page = api.get("/login", headers={"Origin": SHOP})
    assert answer.status_code == 200  # servers and scripts are served as before
    assert "access-control-allow-origin" not in answer.headers  # a browser may not read it
    assert "access-control-allow-origin" not in page.headers


@pytest.fixture
def shop_only(settings: Settings) -> Iterator[str]:
    """The app with ``SEGMINT_CORS_ORIGINS=["https://shop.example"]``."""
    runtime = Runtime.open(settings.model_copy(update={"cors_origins": [SHOP]}))
    try:
        with served_app(runtime, "shop") as (url, *_):
            yield url
    finally:
        runtime.close()


def test_the_configured_sites_alone_may_post_events(shop_only: str) -> None:
    with httpx.Client(base_url=shop_only) as client:
        shop = preflight(client, "/v1/batch", "POST")
        other = preflight(client, "/v1/batch", "POST", origin="https://other.example")
        rest = preflight(client, "/api/v1/destinations", "GET")
    assert shop.status_code == 200 and shop.headers["access-control-allow-origin"] == SHOP
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in rest.headers
