"""The API docs page (/docs) and the icon are served by the app itself: nothing is fetched
from a CDN or another site, so they work with no internet."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import WebServer


@pytest.mark.browser
def test_the_api_docs_render_from_the_app_alone(anon_page: Any, web_server: WebServer) -> None:
    requested: list[str] = []
    anon_page.on("request", lambda request: requested.append(request.url))
    anon_page.goto("/docs")
    # Swagger UI ran: it fetched the schema and lists the operations.
    anon_page.locator(".opblock-summary-path", has_text="/v1/track").first.wait_for()
    assert anon_page.locator(".opblock").count() > 20
    assert any(url.startswith(f"{web_server.url}/openapi.json") for url in requested)
    assert any("/static/vendor/swagger-ui-bundle.js" in url for url in requested)
    outside = [url for url in requested if not url.startswith(web_server.url)]
    assert outside == []


def test_the_icon_is_the_apps_own_and_redoc_is_not_offered(web_server: WebServer) -> None:
    with web_server.client() as client:
        icon = client.get("/favicon.ico")
        assert icon.status_code == 301 and icon.headers["location"].startswith(
            "/static/favicon.svg"
        )
        svg = client.get(icon.headers["location"])
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg")
        docs = client.get("/docs").text
        assert "cdn." not in docs and "tiangolo" not in docs
        assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page is a CDN's
