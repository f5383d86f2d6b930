"""Fixtures of the web UI tests: one real server with a small generated shop (loaded once per
test session), a signed-in admin, and Playwright driving Debian's Chromium.

The server and its data are shared by every web test: tests that create audiences give them
unique names (``unique_name``) and never assume they are alone in the catalog.

Browser tests are marked ``@pytest.mark.browser``; they find controls by role and accessible
name (``get_by_role`` / ``get_by_label``) so a missing label fails them.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from segmint.audiences import operations, service
from segmint.catalog.accounts import create_user
from segmint.cli.demo import demo_audiences
from segmint.collect.importer import Row, import_rows
from segmint.generate.shop import generate_events
from segmint.runtime import Runtime
from segmint.settings import Settings
from tests.conftest import served_app

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "correct-horse-battery-staple"
GENERATED_USERS = 250
GENERATED_DAYS = 60
HISTORY_DAYS = 14


def unique_name(prefix: str = "t") -> str:
    """A valid audience name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@dataclass
class WebServer:
    """The running app: its base URL, its runtime (to check results against the services)
    and an admin API key (to compare with the REST API)."""

    url: str
    runtime: Runtime
    admin_key: str
    write_key: str
    app: Any = None  # the FastAPI app (its state: the collection writer)

    def client(self, **kwargs: Any) -> httpx.Client:
        """A plain HTTP client (not signed in), never following redirects by itself."""
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False, **kwargs)

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.admin_key}"}
        )


def load_shop(runtime: Runtime, data_dir: Path) -> None:
    """A small generated shop and the demo's audiences (three dynamic, one static)."""
    end = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    rows = generate_events(users=GENERATED_USERS, days=GENERATED_DAYS, seed=11, end=end)
    import_rows(
        runtime.collector,
        (Row(i, e) for i, e in enumerate(rows, start=1)),
        source="web-tests",
        rejected_path=data_dir / "rejected.jsonl",
    )
    # Activated two weeks ago and refreshed daily since, so charts and usage have a history.
    start = end - dt.timedelta(days=HISTORY_DAYS)
    for audience in demo_audiences(end):
        info = service.create_draft(
            runtime.catalog,
            audience.definition,
            by="tests",
            now=start,
            name=audience.name,
            description=audience.description,
        )
        activation = operations.activate_audience(
            runtime.warehouse,
            runtime.catalog,
            info.id,
            name=audience.name,
            refresh_interval=audience.refresh_interval,
            warmup=audience.warmup,
            by="tests",
            timezone=runtime.settings.timezone,
            now=start,
        )
        if not activation.audience.is_dynamic:
            continue
        for days_ago in range(HISTORY_DAYS - 1, -1, -1):
            operations.refresh_by_ref(
                runtime.warehouse,
                runtime.catalog,
                info.id,
                timezone=runtime.settings.timezone,
                now=end - dt.timedelta(days=days_ago),
            )


@pytest.fixture(scope="session")
def web_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    data_dir = tmp_path_factory.mktemp("web-data")
    settings = Settings(data_dir=data_dir, scheduler=False, timezone="UTC")
    runtime = Runtime.open(settings)
    load_shop(runtime, data_dir)
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def web_server(web_runtime: Runtime) -> Iterator[WebServer]:
    """The real app (API + web UI) served by uvicorn on 127.0.0.1 in a background thread."""
    with served_app(web_runtime, "web tests") as (url, write_key, admin_key, app):
        yield WebServer(url, web_runtime, admin_key, write_key, app)


@pytest.fixture(scope="session")
def admin_login(web_runtime: Runtime) -> tuple[str, str]:
    """(username, password) of an admin user created in the catalog."""
    create_user(web_runtime.catalog, ADMIN_USER, ADMIN_PASSWORD)
    return ADMIN_USER, ADMIN_PASSWORD


@contextmanager
def sign_in_http(server: WebServer, username: str, password: str) -> Iterator[httpx.Client]:
    """An httpx client signed in through the real login form (cookie and CSRF token kept:
    ``client.headers['X-CSRF-Token']`` is set for unsafe requests)."""
    with server.client() as client:
        _sign_in(client, username, password)
        yield client


def _sign_in(client: httpx.Client, username: str, password: str) -> None:
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "the login page has no CSRF field"
    answer = client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": token.group(1),
            "next": "/audiences",
        },
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/audiences")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert csrf
    client.headers["X-CSRF-Token"] = csrf.group(1)


@pytest.fixture
def http(web_server: WebServer, admin_login: tuple[str, str]) -> Iterator[httpx.Client]:
    """An httpx client signed in as the admin (no browser)."""
    with sign_in_http(web_server, *admin_login) as client:
        yield client


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield instance
        instance.close()


def _new_page(browser: Any, base_url: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport=VIEWPORT, base_url=base_url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # tests assert no script ever opened one
    return context, page


@pytest.fixture
def anon_page(browser: Any, web_server: WebServer) -> Iterator[Any]:
    """A fresh browser page, not signed in (base URL set: ``page.goto('/login')``)."""
    context, page = _new_page(browser, web_server.url)
    yield page
    context.close()


def sign_in_browser(page: Any, username: str, password: str) -> None:
    """Sign in through the real login form, as a user would."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/audiences**")


@pytest.fixture
def page(browser: Any, web_server: WebServer, admin_login: tuple[str, str]) -> Iterator[Any]:
    """A fresh browser page already signed in as the admin (default timeout 10 s)."""
    context, page = _new_page(browser, web_server.url)
    sign_in_browser(page, *admin_login)
    yield page
    context.close()


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    """``screenshot(page, name)`` saves docs/screenshots/<name>.png (full page, 1280×800)."""

    def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
