"""The pages over plain HTTP: each renders what the services say, and bad input gets a clear
4xx page, never a 500."""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from segmint.audiences import operations, service
from segmint.audiences.usage import forecast_monthly
from segmint.collect.journal import Journal, Record
from segmint.collect.pipeline import IngestResult
from segmint.collect.writer import GroupCommitWriter
from segmint.sync import catalog as sync_catalog
from segmint.web.app import CONTENT_SECURITY_POLICY
from tests.web.conftest import WebServer, unique_name


def _active(server: WebServer) -> list[service.AudienceInfo]:
    return service.list_audiences(server.runtime.catalog, "active")


def _new_active(server: WebServer) -> service.AudienceInfo:
    """A fresh dynamic audience of this test's own."""
    rt = server.runtime
    name = unique_name("page")
    definition = {
        "root": {
            "kind": "event",
            "event": "product_viewed",
            "window": {"type": "relative", "last": 30, "unit": "days"},
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
        refresh_interval=dt.timedelta(days=1),
        warmup=True,
        by="tests",
        timezone="UTC",
    )
    return result.audience


def test_audiences_list_shows_every_active_audience(
    http: httpx.Client, web_server: WebServer
) -> None:
    page = http.get("/audiences")
    assert page.status_code == 200
    active = _active(web_server)
    assert active
    for audience in active:
        assert f'href="/audiences/{audience.id}"' in page.text
        assert f'aria-label="Active: {audience.name}"' in page.text
        assert service.describe_schedule(audience, operations.utcnow()) in page.text
    assert 'aria-selected="true"' in page.text
    assert 'href="/audiences/new"' in page.text


def test_archive_and_reactivate_through_the_switch(
    http: httpx.Client, web_server: WebServer
) -> None:
    audience = _new_active(web_server)
    off = http.post(f"/audiences/{audience.id}/status", data={"view": "row"})
    assert off.status_code == 200, off.text
    assert "is archived" in off.text
    assert service.get(web_server.runtime.catalog, audience.id).status == "archived"
    archived_tab = http.get("/audiences?tab=archived")
    assert f'aria-label="Active: {audience.name}"' in archived_tab.text
    assert f'href="/audiences/{audience.id}"' not in http.get("/audiences").text
    on = http.post(f"/audiences/{audience.id}/status", data={"active": "on", "view": "header"})
    assert on.status_code == 200, on.text
    assert "active again" in on.text
    info = service.get(web_server.runtime.catalog, audience.id)
    assert info.status == "active"
    assert info.refresh_interval_seconds == audience.refresh_interval_seconds


def _tab_counts(html: str) -> dict[str, int]:
    found = re.findall(r'href="/audiences\?tab=(\w+)"[^>]*>\w+ <span class="count">(\d+)<', html)
    return {tab: int(count) for tab, count in found}


def test_the_row_switch_answers_with_the_tab_as_it_now_is(
    http: httpx.Client, web_server: WebServer
) -> None:
    """Archiving from the Active tab takes the row out of it and updates every tab's count
    (the answer replaces the list: tabs and table)."""
    audience = _new_active(web_server)
    before = _tab_counts(http.get("/audiences").text)
    off = http.post(f"/audiences/{audience.id}/status", data={"view": "row", "tab": "active"})
    assert off.status_code == 200, off.text
    assert off.text.lstrip().startswith('<div id="audience-list">')
    assert f'id="audience-row-{audience.id}"' not in off.text
    after = _tab_counts(off.text)
    assert after == {**before, "active": before["active"] - 1, "archived": before["archived"] + 1}
    assert after == _tab_counts(http.get("/audiences").text)
    assert "is archived" in off.text  # the status message, swapped in out of band
    on = http.post(
        f"/audiences/{audience.id}/status", data={"active": "on", "view": "row", "tab": "archived"}
    )
    assert f'id="audience-row-{audience.id}"' not in on.text
    assert _tab_counts(on.text) == before
    bad_tab = http.post(f"/audiences/{audience.id}/status", data={"view": "row", "tab": "nope"})
    assert bad_tab.status_code == 400
    assert service.get(web_server.runtime.catalog, audience.id).status == "active"


def test_rows_show_linked_destinations_and_their_latest_sync_state(
    http: httpx.Client, web_server: WebServer
) -> None:
    rt = web_server.runtime
    audience = _new_active(web_server)
    name = unique_name("dest")
    sync_catalog.create_destination(
        rt.catalog, rt.secrets, name, "tiktok", {"access_token": "t"}, {"advertiser_id": "1"}
    )
    link = sync_catalog.link_audience(rt.catalog, audience.id, name)
    row = re.compile(rf'<tr id="audience-row-{audience.id}">.*?</tr>', re.S)
    before = row.search(http.get("/audiences").text)
    assert before and name in before.group(0) and "never synced" in before.group(0)
    log_id = sync_catalog.start_sync_log(rt.catalog, link.id, "instant")
    sync_catalog.finish_sync_log(
        rt.catalog, log_id, sync_catalog.SyncOutcome("failed", error_message="boom")
    )
    after = row.search(http.get("/audiences").text)
    assert after and 'class="badge badge-failed">failed<' in after.group(0)


def test_delete_then_restore_as_draft(http: httpx.Client, web_server: WebServer) -> None:
    audience = _new_active(web_server)
    http.post(f"/audiences/{audience.id}/status", data={})
    deleted = http.post(f"/audiences/{audience.id}/delete")
    assert deleted.status_code == 303
    tab = http.get("/audiences?tab=deleted")
    assert f"Restore {audience.name}" in tab.text
    # Its page offers Restore, and no Edit (the builder refuses a deleted audience).
    page = http.get(f"/audiences/{audience.id}")
    assert f'href="/audiences/{audience.id}/edit"' not in page.text
    assert f'action="/audiences/{audience.id}/restore"' in page.text
    assert f'action="/audiences/{audience.id}/delete"' not in page.text
    assert "This audience is deleted" in page.text
    restored = http.post(f"/audiences/{audience.id}/restore")
    assert restored.status_code == 303
    assert restored.headers["location"] == f"/audiences/{audience.id}?restored=1"
    assert service.get(web_server.runtime.catalog, audience.id).status == "draft"
    drafts = http.get("/audiences?tab=drafts")
    assert f'href="/audiences/{audience.id}/edit"' in drafts.text


def test_audience_page_shows_definition_versions_history_and_members(
    http: httpx.Client, web_server: WebServer
) -> None:
    audience = _active(web_server)[0]
    page = http.get(f"/audiences/{audience.id}")
    assert page.status_code == 200
    assert f'href="/audiences/{audience.id}/edit"' in page.text
    assert "Version 1" in page.text
    assert 'data-chart="size-chart-data"' in page.text
    assert 'aria-label="Refreshes"' in page.text
    assert "audience/destinations" not in page.text  # the include rendered, not its name
    assert 'id="destinations"' in page.text
    members = http.get(f"/audiences/{audience.id}/members", headers={"HX-Request": "true"})
    assert members.status_code == 200
    total = int(re.search(r"([\d,]+) members?", members.text).group(1).replace(",", ""))
    assert total == audience.size
    # Search by a member's email (any case) finds that member.
    email = re.search(r"<td>([^<@]+@[^<]+)</td>", members.text)
    assert email
    found = http.get(
        f"/audiences/{audience.id}/members",
        params={"q": email.group(1).upper()},
        headers={"HX-Request": "true"},
    )
    assert email.group(1) in found.text
    shown = int(re.search(r"([\d,]+) members?", found.text).group(1).replace(",", ""))
    assert 1 <= shown < total or total == 1


def test_audience_page_shows_the_retention_of_a_cohort(
    http: httpx.Client, web_server: WebServer
) -> None:
    from segmint.audiences import history

    audience = _active(web_server)[0]
    page = http.get(f"/audiences/{audience.id}")
    options = re.findall(r'<option value="([^"]+)">', page.text.split('id="cohort"')[1])
    assert options, "the page offers the refreshes where members entered as cohorts"
    hx = {"HX-Request": "true"}
    for refresh_id in (None, options[-1]):
        params = {"refresh_id": refresh_id} if refresh_id else {}
        fragment = http.get(f"/audiences/{audience.id}/retention", params=params, headers=hx)
        assert fragment.status_code == 200
        points = history.cohort_retention(web_server.runtime.warehouse, audience.id, refresh_id)
        cells = re.findall(
            r'<td class="num">([\d,]+)</td><td class="num">([\d.]+)%</td>', fragment.text
        )
        assert [(int(n.replace(",", "")), float(r)) for n, r in cells] == [
            (p.retained, round(p.rate * 100, 1)) for p in points
        ]
        assert f"{points[0].cohort_size:,} entered as of" in fragment.text
    unknown = http.get(f"/audiences/{audience.id}/retention?refresh_id=nope", headers=hx)
    assert unknown.status_code == 404 and "no committed refresh" in unknown.text
    plain = http.get(f"/audiences/{audience.id}/retention", follow_redirects=False)
    assert plain.status_code == 303


def test_events_page_lists_events_and_properties(http: httpx.Client, web_server: WebServer) -> None:
    page = http.get("/events")
    assert page.status_code == 200
    assert "product_viewed" in page.text or "order_completed" in page.text
    props = http.get("/events", params={"event": "order_completed"})
    assert props.status_code == 200
    assert "Properties of" in props.text
    tail = http.get("/events/tail", headers={"HX-Request": "true"})
    assert tail.status_code == 200
    assert "<table" in tail.text


def test_an_unknown_event_points_to_the_events_listed_on_the_page(http: httpx.Client) -> None:
    """The web session cannot use the REST API, so the page does not send people there."""
    answer = http.get("/events", params={"event": "no_such_event"})
    assert answer.status_code == 404
    assert "/api/v1" not in answer.text
    assert "No event named “no_such_event” has been tracked" in answer.text
    assert 'aria-label="Tracked events"' in answer.text  # the list to choose from, right there


def test_usage_page_shows_the_forecast(http: httpx.Client, web_server: WebServer) -> None:
    page = http.get("/usage")
    assert page.status_code == 200
    forecast = forecast_monthly(web_server.runtime.catalog, operations.utcnow())
    assert f"{forecast.total:,}" in page.text or forecast.total == 0
    assert "Usage per audience" in page.text


def test_destinations_page(http: httpx.Client) -> None:
    page = http.get("/destinations")
    assert page.status_code == 200
    assert "Destinations" in page.text


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/audiences?tab=bogus", {}, 400),
        ("get", "/audiences?tab=" + "x" * 500, {}, 400),
        ("get", "/audiences/abc", {}, 400),
        ("get", "/audiences/0", {}, 400),
        ("get", "/audiences/-5", {}, 400),
        ("get", "/audiences/99999999999999999999", {}, 400),
        ("get", "/audiences/2147483000", {}, 404),
        ("get", "/audiences/2147483000/members?q=x", {"headers": {"HX-Request": "true"}}, 404),
        ("get", "/audiences/1/members?page=0", {"headers": {"HX-Request": "true"}}, 400),
        ("get", "/audiences/1/members?page=abc", {"headers": {"HX-Request": "true"}}, 400),
        ("get", "/events?event=no_such_event", {}, 404),
        ("get", "/events?event=%00%ff", {}, 404),
        ("get", "/usage?days=0", {}, 400),
        ("get", "/usage?days=abc", {}, 400),
        ("get", "/usage?days=100000", {}, 400),
        ("get", "/destinations/abc", {}, 400),
        ("get", "/destinations/424242", {}, 404),
        ("get", "/no/such/page", {}, 404),
        ("post", "/audiences/2147483000/status", {"data": {"active": "on"}}, 404),
        ("post", "/audiences/abc/status", {"data": {}}, 400),
        ("post", "/audiences/2147483000/restore", {}, 404),
        (
            "post",
            "/audiences/2147483000/status",
            {
                "content": b"\xff\xfe=%%%",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            404,
        ),
        (
            "post",
            "/audiences/2147483000/status",
            {
                "content": b"garbage",
                "headers": {"content-type": "multipart/form-data; boundary=zz"},
            },
            400,
        ),
        ("post", "/audiences/2147483000/status", {"data": {"view": "x" * 50}}, 400),
        ("post", "/login", {"data": {"username": "a" * 5000, "password": "b"}}, 400),
        ("put", "/audiences", {}, 405),
    ],
)
def test_bad_input_gets_a_clear_4xx_page(
    http: httpx.Client, method: str, path: str, kwargs: dict, status: int
) -> None:
    answer = getattr(http, method)(path, **kwargs)
    assert answer.status_code == status, answer.text[:500]
    assert "Traceback" not in answer.text
    if "HX-Request" in kwargs.get("headers", {}):
        # htmx requests get the message as JSON; app.js shows it in the status toast.
        assert answer.json()["message"]
    else:
        assert 'role="alert"' in answer.text


def test_events_page_and_health_tell_of_events_set_aside(
    http: httpx.Client, web_server: WebServer, tmp_path: Path
) -> None:
    """Acknowledged events the warehouse refused are never silent (PRODUCT B9)."""
    meta = {"route": "batch", "ids": ["kept-1", "kept-2"]}
    scratch = Journal(tmp_path / "journal")
    segment = scratch.append(meta, b'{"batch": []}', then=lambda _: None)
    kept = scratch.set_aside(Record(segment, meta, b'{"batch": []}'), "IOException: disk full")
    target = web_server.runtime.settings.journal_dir / "failed" / kept.name
    target.parent.mkdir(parents=True, exist_ok=True)
    kept.rename(target)
    try:
        page = http.get("/events")
        assert "2 acknowledged events could not be stored" in page.text
        assert "IOException: disk full" in page.text and str(target) in page.text
        with web_server.client() as client:
            assert client.get("/health").json()["ingest"]["set_aside"] == 2
    finally:
        target.unlink()
    assert "could not be stored" not in http.get("/events").text


def test_pages_carry_the_security_headers_and_apis_do_not(
    http: httpx.Client, web_server: WebServer
) -> None:
    for path in ("/audiences", "/events", "/no-such-page"):  # pages, and an HTML error page
        answer = http.get(path)
        assert answer.status_code in (200, 404)
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["x-frame-options"] == "DENY"
    with web_server.api() as api:
        answer = api.get("/api/v1/audiences")
    assert answer.status_code == 200 and "content-security-policy" not in answer.headers
    with web_server.client() as client:
        answer = client.post("/v1/track", json={}, auth=(web_server.write_key, ""))
    assert answer.status_code == 400 and "x-frame-options" not in answer.headers


def test_events_page_says_when_received_events_are_still_being_stored(
    http: httpx.Client, web_server: WebServer
) -> None:
    app = web_server.app
    running = app.state.writer
    release = threading.Event()

    class Held:  # holds what it is given until released, then drops it (the web tests'
        # warehouse is shared: this test adds nothing to it)
        def ingest(self, messages: list[Any], check_table: bool = False) -> IngestResult:
            release.wait(30)
            return IngestResult()

    settings = web_server.runtime.settings
    app.state.writer = GroupCommitWriter(
        Held(),  # type: ignore[arg-type]
        journal=Journal(settings.journal_dir),
    )
    try:
        with web_server.client() as client:
            batch = [
                {"type": "track", "event": "held_event", "userId": "held", "messageId": f"h-{n}"}
                for n in range(3)
            ]
            answer = client.post(
                "/v1/batch", json={"batch": batch}, auth=(web_server.write_key, "")
            )
        assert answer.status_code == 200
        page = http.get("/events")
        assert "3 events received are still being stored" in page.text
    finally:
        release.set()
        assert app.state.writer.wait_until_stored()
        app.state.writer.close()
        app.state.writer = running
    assert "still being stored" not in http.get("/events").text
