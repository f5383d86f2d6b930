"""The destination pages and the audience page's sync panel over plain HTTP: forms built from
each platform's fields, field-level errors without a 500 and without half-saved destinations,
secrets never shown again, escaping of user and platform text, Instant Sync results and R20's
refusal, unlink and delete."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from segmint.audiences import operations, service
from segmint.sync import catalog as sync_catalog
from segmint.web.pages.destinations import platform_form
from tests.destinations.fake_meta import FakeMeta, serve
from tests.web.conftest import WebServer, unique_name

HTMX = {"HX-Request": "true"}


@pytest.fixture
def meta() -> Iterator[tuple[FakeMeta, str]]:
    fake = FakeMeta()
    with serve(fake) as url:
        yield fake, url


def email_audience(server: WebServer) -> service.AudienceInfo:
    """A fresh active audience of everyone with an email trait (158 of the generated shop)."""
    rt = server.runtime
    name = unique_name("dest")
    definition = {
        "root": {
            "kind": "and",
            "conditions": [{"kind": "trait", "trait": "email", "operator": "is_set"}],
        }
    }
    draft = service.create_draft(
        rt.catalog, definition, by="tests", now=operations.utcnow(), name=name
    )
    result = operations.activate_audience(
        rt.warehouse,
        rt.catalog,
        draft.id,
        name=name,
        refresh_interval=None,
        warmup=False,
        by="tests",
        timezone="UTC",
    )
    assert result.error is None
    return result.audience


def _field_error(html: str, input_id: str) -> str:
    """The error text tied to an input through aria-describedby, asserting aria-invalid."""
    tag = re.search(rf'<(?:input|select|textarea)[^>]*id="{re.escape(input_id)}"[^>]*>', html)
    assert tag, f"no input {input_id}"
    assert 'aria-invalid="true"' in tag.group(0), tag.group(0)
    described = re.search(r'aria-describedby="([^"]+)"', tag.group(0))
    assert described
    error_id = described.group(1).split()[0]
    error = re.search(rf'id="{re.escape(error_id)}">([^<]+)<', html)
    assert error, f"no element {error_id}"
    return error.group(1)


def _connect(http: httpx.Client, platform: str, **fields: str) -> httpx.Response:
    return http.post("/destinations/new", data={"platform": platform, **fields})


def test_list_page_offers_connect_and_shows_status_badges(
    http: httpx.Client, web_server: WebServer
) -> None:
    rt = web_server.runtime
    name = unique_name("Expired")
    info = sync_catalog.create_destination(
        rt.catalog, rt.secrets, name, "meta", {"access_token": "t"}, {"ad_account_id": "1"}
    )
    sync_catalog.mark_auth_expired(rt.catalog, info.id)
    page = http.get("/destinations")
    assert page.status_code == 200
    assert 'href="/destinations/new"' in page.text and "Connect a destination" in page.text
    row = page.text[page.text.index(name) :]
    assert "badge-auth_expired" in row[:600] and "auth expired" in row[:600]


@pytest.mark.parametrize("platform", list(sync_catalog.PLATFORM_LABELS))
def test_every_platform_has_a_form_with_secret_inputs(http: httpx.Client, platform: str) -> None:
    spec = platform_form(platform)
    page = http.get("/destinations/new", params={"platform": platform})
    assert page.status_code == 200
    assert f"Connect {sync_catalog.PLATFORM_LABELS[platform]}" in page.text
    for field in spec.credentials:
        tag = re.search(rf'<input[^>]*id="{field.input_id}"[^>]*>', page.text)
        assert tag and 'type="password"' in tag.group(0)
        assert f'<label for="{field.input_id}">' in page.text
    for field in spec.config:
        assert f'<label for="{field.input_id}">' in page.text


def test_missing_fields_are_reported_per_field_and_nothing_is_saved(
    http: httpx.Client, web_server: WebServer
) -> None:
    before = len(sync_catalog.list_destinations(web_server.runtime.catalog))
    answer = _connect(http, "meta", name="", cred__access_token="", cfg__ad_account_id="")
    assert answer.status_code == 400
    assert "name for this destination" in _field_error(answer.text, "field-name")
    assert "access token" in _field_error(answer.text, "field-cred__access_token")
    assert "ad account id" in _field_error(answer.text, "field-cfg__ad_account_id")
    assert 'role="alert"' in answer.text
    assert len(sync_catalog.list_destinations(web_server.runtime.catalog)) == before


def test_settings_the_platform_would_refuse_are_shown_on_their_field_without_the_check(
    http: httpx.Client, web_server: WebServer
) -> None:
    before = len(sync_catalog.list_destinations(web_server.runtime.catalog))
    answer = _connect(
        http,
        "webhook",
        name=unique_name("Hook"),
        cred__signing_secret="too-short",
        cfg__url="https://hooks.example/segmint",
    )  # no check ticked: nothing is sent, the settings are still checked
    assert answer.status_code == 400
    assert "at least 16" in _field_error(answer.text, "field-cred__signing_secret")
    assert "refused the request" not in answer.text  # not the platform: Segmint's own rule
    assert len(sync_catalog.list_destinations(web_server.runtime.catalog)) == before


def test_refused_credentials_save_nothing_and_are_not_echoed(
    http: httpx.Client, web_server: WebServer, meta: tuple[FakeMeta, str]
) -> None:
    fake, url = meta
    name = unique_name("Shop Meta")
    answer = _connect(
        http,
        "meta",
        name=name,
        cred__access_token="wrong-token-123",
        cfg__ad_account_id=fake.ad_account_id,
        cfg__base_url=url,
        check="on",
    )
    assert answer.status_code == 400
    assert "did not accept these credentials" in _field_error(
        answer.text, "field-cred__access_token"
    )
    assert "wrong-token-123" not in answer.text
    assert name in answer.text  # the name is kept for the next try
    assert all(d.name != name for d in sync_catalog.list_destinations(web_server.runtime.catalog))


def test_connect_checks_then_saves_and_never_shows_the_secret(
    http: httpx.Client, web_server: WebServer, meta: tuple[FakeMeta, str]
) -> None:
    fake, url = meta
    name = unique_name("Shop Meta")
    answer = _connect(
        http,
        "meta",
        name=name,
        cred__access_token=fake.token,
        cfg__ad_account_id=fake.ad_account_id,
        cfg__base_url=url,
        check="on",
    )
    assert answer.status_code == 303, answer.text
    page = http.get(answer.headers["location"])
    assert page.status_code == 200
    assert "Configuration Settings" in page.text and "•••• stored" in page.text
    assert fake.token not in page.text
    assert "credentials work" in page.text
    info = sync_catalog.get_destination(web_server.runtime.catalog, name)
    assert info.status == "active" and info.config["base_url"] == url
    assert fake.requests >= 1  # the check reached the platform
    again = _connect(
        http,
        "meta",
        name=name,
        cred__access_token=fake.token,
        cfg__ad_account_id=fake.ad_account_id,
    )
    assert again.status_code == 400
    assert "exists" in _field_error(again.text, "field-name")


@pytest.mark.parametrize(
    ("platform", "fields", "input_id", "expected"),
    [
        (
            "webhook",
            {
                "cred__signing_secret": "s" * 20,
                "cfg__url": "http://127.0.0.1:9/hook",
                "cfg__max_per_request": "many",
            },
            "field-cfg__max_per_request",
            "whole number",
        ),
        (
            "google_ads",
            {
                "cred__access_token": "a",
                "cred__developer_token": "d",
                "cfg__customer_id": "123",
                "cfg__consent": "{not json",
            },
            "field-cfg__consent",
            "must be JSON",
        ),
        (
            "file",
            {"cfg__directory": "/tmp/x", "cfg__format": "xlsx"},
            "field-cfg__format",
            "choose one of csv, parquet",
        ),
    ],
)
def test_bad_values_get_field_errors_not_500(
    http: httpx.Client, platform: str, fields: dict[str, str], input_id: str, expected: str
) -> None:
    answer = _connect(http, platform, name=unique_name("Bad"), **fields)
    assert answer.status_code == 400
    assert expected in _field_error(answer.text, input_id)


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("post", "/destinations/new", {"platform": "myspace", "name": "x"}),
        ("get", "/destinations/new?platform=%3Cscript%3E", None),
        ("get", "/destinations/999999", None),
        ("get", "/destinations/abc", None),
        ("post", "/destinations/999999/settings", {}),
        ("post", "/destinations/999999/check", {}),
        ("post", "/sync/links/999999/unlink", {}),
        ("get", "/audiences/999999/sync-panel", None),
    ],
)
def test_bad_requests_are_4xx(
    http: httpx.Client, method: str, path: str, data: dict[str, str] | None
) -> None:
    headers = HTMX if "sync" in path else {}
    if method == "get":
        answer = http.get(path, headers=headers)
    else:
        answer = http.post(path, data=data, headers=headers)
    assert 400 <= answer.status_code < 500 or answer.status_code == 200, answer.status_code
    assert "<script>" not in answer.text


def test_forms_need_the_csrf_token(web_server: WebServer, http: httpx.Client) -> None:
    token = http.headers.pop("X-CSRF-Token")
    try:
        answer = _connect(http, "file", name="no-csrf", cfg__directory="/tmp/nocsrf")
        assert answer.status_code == 403
    finally:
        http.headers["X-CSRF-Token"] = token
    assert all(
        d.name != "no-csrf" for d in sync_catalog.list_destinations(web_server.runtime.catalog)
    )


def test_script_in_names_and_errors_is_escaped(
    http: httpx.Client, web_server: WebServer, tmp_path: Path
) -> None:
    rt = web_server.runtime
    evil = f"<script>alert('{unique_name('x')}')</script>"
    info = sync_catalog.create_destination(
        rt.catalog, rt.secrets, evil, "file", {}, {"directory": str(tmp_path)}
    )
    sync_catalog.mark_destination_error(rt.catalog, info.id, "<img src=x onerror=alert(1)>")
    audience = email_audience(web_server)
    sync_catalog.link_audience(rt.catalog, audience.id, info.id)
    for path, headers in [
        ("/destinations", {}),
        (f"/destinations/{info.id}", {}),
        (f"/audiences/{audience.id}/sync-panel", HTMX),
    ]:
        page = http.get(path, headers=headers)
        assert page.status_code == 200
        assert evil not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;" in page.text
    failed = _connect(http, "file", name=evil, cfg__directory=str(tmp_path))
    assert failed.status_code == 400 and evil not in failed.text


def test_link_instant_sync_logs_unlink_with_a_file_export(
    http: httpx.Client, web_server: WebServer, tmp_path: Path
) -> None:
    rt = web_server.runtime
    name = unique_name("Export")
    created = _connect(
        http, "file", name=name, cfg__directory=str(tmp_path), cfg__format="csv", check="on"
    )
    assert created.status_code == 303, created.text
    info = sync_catalog.get_destination(rt.catalog, name)
    audience = email_audience(web_server)

    panel = http.get(f"/audiences/{audience.id}/sync-panel", headers=HTMX)
    assert f'<option value="{info.id}"' in panel.text
    fields = http.get(
        f"/audiences/{audience.id}/link-fields",
        params={"destination_id": str(info.id)},
        headers=HTMX,
    )
    assert 'name="mode" value="list"' in fields.text and 'name="mode" value="event"' in fields.text
    assert 'id="map-email"' in fields.text and 'value="email"' in fields.text

    bad = http.post(
        f"/audiences/{audience.id}/links",
        data={"destination_id": str(info.id), "mode": "list", "map__email": "no such field!"},
        headers=HTMX,
    )
    assert bad.status_code == 200
    assert _field_error(bad.text, "map-email")
    assert not sync_catalog.list_links(rt.catalog, audience_id=audience.id)

    linked = http.post(
        f"/audiences/{audience.id}/links",
        data={"destination_id": str(info.id), "mode": "list", "map__email": "email"},
        headers=HTMX,
    )
    assert linked.status_code == 200 and f"Linked to {name}" in linked.text
    (link,) = sync_catalog.list_links(rt.catalog, audience_id=audience.id)
    assert link.identifier_mapping == {"email": "email"}
    assert "Match-rate preview" in linked.text and "Would send" in linked.text
    assert audience.size is not None and f"<dd>{audience.size:,}</dd>" in linked.text

    synced = http.post(f"/sync/links/{link.id}/instant", headers=HTMX)
    assert synced.status_code == 200
    assert f"Synced to {name}: {audience.size:,} added, 0 removed." in synced.text
    assert list(tmp_path.rglob("*.csv")), "the export wrote no file"
    (entry,) = sync_catalog.list_sync_logs(rt.catalog, audience.id)
    assert entry.status == "succeeded" and entry.added == audience.size
    logs = synced.text[synced.text.index('id="sync-tabpanel-logs"') :]
    assert "badge-succeeded" in logs and "instant" in logs

    why = http.get(f"/sync/links/{link.id}/why", headers=HTMX)
    assert why.status_code == 200 and "All good" in why.text and "Last sync" in why.text

    unlinked = http.post(f"/sync/links/{link.id}/unlink", headers=HTMX)
    assert unlinked.status_code == 200 and f"Unlinked from {name}" in unlinked.text
    assert sync_catalog.get_link(rt.catalog, link.id).status == "unlinked"
    assert "Ended links (1)" in unlinked.text


def test_a_long_instant_sync_answers_that_it_is_running_and_finishes_in_the_background(
    http: httpx.Client, web_server: WebServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from segmint.sync import runner
    from segmint.web.pages import sync_panel

    rt = web_server.runtime
    name = unique_name("Export")
    created = _connect(http, "file", name=name, cfg__directory=str(tmp_path), cfg__format="csv")
    assert created.status_code == 303, created.text
    info = sync_catalog.get_destination(rt.catalog, name)
    audience = email_audience(web_server)
    link = sync_catalog.link_audience(rt.catalog, audience.id, info.id, mode="list")

    release = threading.Event()
    real_sync = runner.sync_link

    def slow_sync(*args: object, **kwargs: object) -> sync_catalog.SyncLogEntry:
        assert release.wait(30)  # a platform that takes its time
        return real_sync(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "sync_link", slow_sync)
    monkeypatch.setattr(sync_panel, "INSTANT_SYNC_WAIT_SECONDS", 0.2)
    answer = http.post(f"/sync/links/{link.id}/instant", headers=HTMX)
    assert answer.status_code == 200
    assert f"Instant Sync to {name} is still running" in answer.text
    assert not sync_catalog.list_sync_logs(rt.catalog, audience.id)

    release.set()  # the sync goes on without the request
    deadline = time.monotonic() + 30
    while not sync_catalog.list_sync_logs(rt.catalog, audience.id):
        assert time.monotonic() < deadline, "the background sync never finished"
        time.sleep(0.05)
    (entry,) = sync_catalog.list_sync_logs(rt.catalog, audience.id)
    while entry.status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        (entry,) = sync_catalog.list_sync_logs(rt.catalog, audience.id)
    assert entry.status == "succeeded" and entry.added == audience.size
    assert list(tmp_path.rglob("*.csv")), "the export wrote no file"


def test_tiktok_instant_sync_too_soon_shows_the_time_left(
    http: httpx.Client, web_server: WebServer
) -> None:
    rt = web_server.runtime
    info = sync_catalog.create_destination(
        rt.catalog,
        rt.secrets,
        unique_name("TikTok"),
        "tiktok",
        {"access_token": "t"},
        {"advertiser_id": "1", "base_url": "http://127.0.0.1:9"},
    )
    audience = email_audience(web_server)
    link = sync_catalog.link_audience(rt.catalog, audience.id, info.id)
    sync_catalog.claim_instant_sync(rt.catalog, link.id)
    answer = http.post(f"/sync/links/{link.id}/instant", headers=HTMX)
    assert answer.status_code == 200
    announce = re.search(
        r'<div id="sync-announce" hx-swap-oob="innerHTML">(.*?)</div>', answer.text
    )
    assert announce
    assert "allows one Instant Sync every 30 minutes; try again in 30 minutes" in announce.group(1)
    assert "allows the next Instant Sync in 30 minutes" in answer.text
    entry = sync_catalog.list_sync_logs(rt.catalog, audience.id)[0]
    assert entry.status == "refused"


def test_delete_removes_the_audience_on_the_platform(
    http: httpx.Client, web_server: WebServer, meta: tuple[FakeMeta, str]
) -> None:
    fake, url = meta
    rt = web_server.runtime
    info = sync_catalog.create_destination(
        rt.catalog,
        rt.secrets,
        unique_name("Meta"),
        "meta",
        {"access_token": fake.token},
        {"ad_account_id": fake.ad_account_id, "base_url": url},
    )
    audience = email_audience(web_server)
    link = sync_catalog.link_audience(rt.catalog, audience.id, info.id)
    panel = http.get(f"/audiences/{audience.id}/sync-panel", headers=HTMX)
    assert "removes the audience" in panel.text and "<dialog" in panel.text
    synced = http.post(f"/sync/links/{link.id}/instant", headers=HTMX)
    assert "Synced to" in synced.text, synced.text
    assert len(fake.audiences) == 1
    deleted = http.post(f"/sync/links/{link.id}/delete", headers=HTMX)
    assert deleted.status_code == 200 and "Deleted: the audience is removed" in deleted.text
    assert fake.audiences == {}
    assert sync_catalog.get_link(rt.catalog, link.id).status == "deleted"


def test_settings_and_reauthenticate_forms(
    http: httpx.Client, web_server: WebServer, meta: tuple[FakeMeta, str]
) -> None:
    fake, url = meta
    rt = web_server.runtime
    info = sync_catalog.create_destination(
        rt.catalog,
        rt.secrets,
        unique_name("Meta"),
        "meta",
        {"access_token": fake.token},
        {"ad_account_id": fake.ad_account_id, "base_url": url},
    )
    taken = http.post(f"/destinations/{info.id}/rename", data={"name": "  "})
    assert taken.status_code == 400 and "name of 1 to 100" in taken.text
    new_name = unique_name("Meta renamed")
    renamed = http.post(
        f"/destinations/{info.id}/rename", data={"name": new_name}, follow_redirects=True
    )
    assert renamed.status_code == 200 and f"Renamed to {new_name}." in renamed.text
    assert sync_catalog.get_destination(rt.catalog, info.id).name == new_name
    other = sync_catalog.create_destination(
        rt.catalog,
        rt.secrets,
        unique_name("Other"),
        "meta",
        {"access_token": "x"},
        {"ad_account_id": "1"},
    )
    clash = http.post(f"/destinations/{other.id}/rename", data={"name": new_name})
    assert clash.status_code == 409 and "exists; choose another name" in clash.text

    empty = http.post(f"/destinations/{info.id}/settings", data={"cfg__ad_account_id": ""})
    assert empty.status_code == 400
    assert "ad account id" in _field_error(empty.text, "field-cfg__ad_account_id")

    fake.expired_tokens.add(fake.token)
    checked = http.post(f"/destinations/{info.id}/check", follow_redirects=True)
    assert checked.status_code == 200
    assert "Error Fetching Data: the destination" in checked.text
    assert sync_catalog.get_destination(rt.catalog, info.id).status == "auth_expired"

    refused = http.post(
        f"/destinations/{info.id}/reauthenticate",
        data={"cred__access_token": "still-wrong", "check": "on"},
    )
    assert refused.status_code == 400
    assert "did not accept" in _field_error(refused.text, "field-cred__access_token")
    assert sync_catalog.get_destination(rt.catalog, info.id).status == "auth_expired"

    fake.reauthenticate("fresh-token")
    done = http.post(
        f"/destinations/{info.id}/reauthenticate",
        data={"cred__access_token": "fresh-token", "check": "on"},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "re-authenticated and active" in done.text
    assert "fresh-token" not in done.text
    assert sync_catalog.get_destination(rt.catalog, info.id).status == "active"
    creds = sync_catalog.destination_credentials(rt.catalog, rt.secrets, info.id)
    assert creds == {"access_token": "fresh-token"}
