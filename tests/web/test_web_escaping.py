"""User content is escaped on every page: names, descriptions, traits, event names and
properties, destination names, search terms. No script ever runs from it."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from segmint.audiences import operations, service
from segmint.errors import InvalidInput
from segmint.sync import catalog as sync_catalog
from tests.web.conftest import WebServer, unique_name

SCRIPT = "<script>alert('xss-1')</script>"
ATTRIBUTE = '"><img src=x onerror=alert("xss-2")>'
HOSTILE = SCRIPT + ATTRIBUTE
RAW_MARKERS = ("<script>alert(", "<img src=x onerror")


def _track(server: WebServer, body: dict[str, Any], kind: str = "track") -> None:
    key = base64.b64encode(f"{server.write_key}:".encode()).decode()
    answer = httpx.post(
        f"{server.url}/v1/{kind}", json=body, headers={"Authorization": f"Basic {key}"}
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def hostile(web_server: WebServer) -> dict[str, Any]:
    """Hostile text in every place a user can put text that a page shows."""
    rt = web_server.runtime
    user_id = f"evil-{uuid.uuid4().hex[:6]}"
    _track(web_server, {"userId": user_id, "traits": {"nickname": HOSTILE}}, "identify")
    event = "evil_event_" + uuid.uuid4().hex[:6]
    _track(
        web_server,
        {"userId": user_id, "event": event, "properties": {"comment": HOSTILE, HOSTILE: 1}},
    )
    _track(web_server, {"userId": user_id, "event": HOSTILE})
    name = unique_name("evil")
    definition = {
        "root": {
            "kind": "or",
            "conditions": [
                {"kind": "trait", "trait": "nickname", "operator": "equals", "value": HOSTILE},
                {
                    "kind": "event",
                    "event": event,
                    "filters": [{"property": "comment", "operator": "equals", "value": HOSTILE}],
                    "window": {"type": "relative", "last": 30, "unit": "days"},
                },
            ],
        }
    }
    draft = service.create_draft(
        rt.catalog,
        definition,
        by="tests",
        now=operations.utcnow(),
        name=name,
        description=HOSTILE,
    )
    activation = operations.activate_audience(
        rt.warehouse,
        rt.catalog,
        draft.id,
        name=name,
        refresh_interval=dt.timedelta(days=1),
        warmup=False,
        by="tests",
        timezone="UTC",
    )
    destination = sync_catalog.create_destination(
        rt.catalog, rt.secrets, HOSTILE[:90], "meta", {"access_token": "t"}, {"ad_account_id": "a"}
    )
    return {
        "audience": activation.audience,
        "event": event,
        "destination": destination,
        "user_id": user_id,
    }


def test_audience_names_cannot_carry_markup(web_server: WebServer) -> None:
    with pytest.raises(InvalidInput):
        service.create_draft(
            web_server.runtime.catalog,
            {"root": {"kind": "event", "event": "x"}},
            by="tests",
            now=operations.utcnow(),
            name=SCRIPT,
        )


def _pages(hostile: dict[str, Any]) -> list[str]:
    audience_id = hostile["audience"].id
    return [
        "/audiences",
        f"/audiences/{audience_id}",
        "/events",
        f"/events?event={hostile['event']}",
        "/destinations",
        f"/destinations/{hostile['destination'].id}",
        "/usage",
        "/audiences?tab=" + SCRIPT,
        "/events?event=" + SCRIPT,
        "/login?next=" + ATTRIBUTE,
    ]


def test_page_sources_show_hostile_text_escaped(
    http: httpx.Client, hostile: dict[str, Any]
) -> None:
    audience = hostile["audience"]
    assert audience.size and audience.size >= 1  # the hostile profile is a member
    seen_escaped = 0
    for path in _pages(hostile):
        answer = http.get(path)
        assert answer.status_code < 500, path
        for marker in RAW_MARKERS:
            assert marker not in answer.text, f"{path} shows raw markup"
        seen_escaped += "&lt;script&gt;" in answer.text
    assert seen_escaped >= 6  # the content is shown (escaped), not dropped
    fragments = [
        http.get(f"/audiences/{audience.id}/members", headers={"HX-Request": "true"}),
        http.get(
            f"/audiences/{audience.id}/members",
            params={"q": SCRIPT},
            headers={"HX-Request": "true"},
        ),
        http.get("/events/tail", headers={"HX-Request": "true"}),
    ]
    for fragment in fragments:
        assert fragment.status_code == 200
        for marker in RAW_MARKERS:
            assert marker not in fragment.text
    assert "&lt;script&gt;" in fragments[0].text  # the hostile trait, escaped
    assert "&lt;script&gt;" in fragments[2].text  # the hostile property in the tail


def test_the_chart_data_cannot_close_its_script_element(
    http: httpx.Client, hostile: dict[str, Any]
) -> None:
    page = http.get(f"/audiences/{hostile['audience'].id}")
    start = page.text.index('id="size-chart-data">')
    block = page.text[start : page.text.index("</script>", start)]
    assert "<" not in block.split(">", 1)[1]


@pytest.mark.browser
def test_no_script_runs_in_the_browser(
    page: Any, hostile: dict[str, Any], web_server: WebServer
) -> None:
    for path in _pages(hostile):
        page.goto(path)
        page.wait_for_load_state("load")
    page.goto(f"/audiences/{hostile['audience'].id}")
    page.get_by_role("table", name="Members").wait_for()
    page.get_by_label("Search members").fill(SCRIPT)
    page.locator("#members-table").filter(has_text="matching").wait_for()
    assert page.get_by_text(HOSTILE).first.is_visible() or page.get_by_text(SCRIPT).count() > 0
    page.goto("/events")
    page.get_by_role("table", name="Latest events").wait_for()
    assert page.dialogs == []
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
