"""Every page in the real browser, as a user would use it; saves docs/screenshots/*.png."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from segmint.audiences import history, operations, service
from segmint.sync import catalog as sync_catalog
from tests.web.conftest import WebServer, unique_name

pytestmark = pytest.mark.browser


def new_active(server: WebServer, prefix: str = "ui") -> service.AudienceInfo:
    """A fresh dynamic audience (viewed a product in the last 30 days) of this test's own."""
    rt = server.runtime
    name = unique_name(prefix)
    definition = {
        "root": {
            "kind": "and",
            "conditions": [
                {
                    "kind": "event",
                    "event": "product_viewed",
                    "window": {"type": "relative", "last": 30, "unit": "days"},
                },
                {
                    "kind": "event",
                    "event": "order_completed",
                    "negate": True,
                    "window": {"type": "relative", "last": 30, "unit": "days"},
                },
            ],
        }
    }
    draft = service.create_draft(
        rt.catalog, definition, by="tests", now=operations.utcnow(), name=name
    )
    return operations.activate_audience(
        rt.warehouse,
        rt.catalog,
        draft.id,
        name=name,
        refresh_interval=dt.timedelta(days=7),
        warmup=True,
        by="tests",
        timezone="UTC",
    ).audience


def test_audiences_page_switch_archives_and_reactivates(
    page: Any, web_server: WebServer, screenshot: Any
) -> None:
    audience = new_active(web_server)
    page.goto("/audiences")
    assert page.get_by_role("tab", name="Active").get_attribute("aria-selected") == "true"
    row = page.locator(f"#audience-row-{audience.id}")
    assert "dynamic" in row.inner_text()
    assert "daily for the first 3 days" in row.inner_text()
    assert page.get_by_role("link", name="New audience").get_attribute("href") == "/audiences/new"
    screenshot(page, "audiences")

    switch = page.get_by_role("switch", name=f"Active: {audience.name}")
    assert switch.is_checked()
    active, archived = tab_counts(page)
    switch.uncheck()
    toast = page.get_by_role("status").filter(has_text="is archived")
    toast.wait_for()
    assert service.get(web_server.runtime.catalog, audience.id).status == "archived"
    # The row leaves the Active tab and the counts follow, without a reload.
    expect(row).to_have_count(0)
    assert tab_counts(page) == (active - 1, archived + 1)

    page.get_by_role("tab", name="Archived").click()
    page.wait_for_url("**/audiences?tab=archived")
    switch = page.get_by_role("switch", name=f"Active: {audience.name}")
    assert not switch.is_checked()
    switch.check()
    page.get_by_role("status").filter(has_text="active again").wait_for()
    assert service.get(web_server.runtime.catalog, audience.id).status == "active"
    expect(row).to_have_count(0)
    assert tab_counts(page) == (active, archived)


def tab_counts(page: Any) -> tuple[int, int]:
    """The numbers on the Active and Archived tabs."""
    tabs = page.get_by_role("tablist", name="Audience status")
    found = [
        int(tabs.get_by_role("tab", name=name).locator(".count").inner_text())
        for name in ("Active", "Archived")
    ]
    return found[0], found[1]


def test_a_refused_switch_is_put_back_and_says_why(page: Any, web_server: WebServer) -> None:
    audience = new_active(web_server)
    rt = web_server.runtime
    service.archive(rt.catalog, audience.id, by="tests", now=operations.utcnow())
    page.goto("/audiences?tab=archived")
    switch = page.get_by_role("switch", name=f"Active: {audience.name}")
    # Someone else deletes it meanwhile: switching it on is refused with the reason.
    service.delete(rt.catalog, audience.id, by="other", now=operations.utcnow())
    # click, not check(): the refusal may put the switch back before check() looks at it
    switch.click()
    page.get_by_role("status").filter(has_text="is deleted and cannot be switched on").wait_for()
    assert not switch.is_checked()  # put back: the screen never shows a state that is not true
    assert service.get(rt.catalog, audience.id).status == "deleted"


def test_audience_page_chart_members_search_and_restore(
    page: Any, web_server: WebServer, screenshot: Any
) -> None:
    audience = new_active(web_server)
    page.goto(f"/audiences/{audience.id}")
    assert page.get_by_role("heading", name=audience.name).is_visible()
    definition = page.get_by_label("Definition in plain words").inner_text()
    assert "product_viewed" in definition and "NOT" in definition
    assert page.get_by_role("link", name="Edit", exact=True).get_attribute("href") == (
        f"/audiences/{audience.id}/edit"
    )
    page.locator('[data-chart="size-chart-data"][data-ready="true"] canvas').wait_for()
    members = page.get_by_role("table", name="Members")
    members.wait_for()
    size = audience.size or 0
    assert f"{size:,} member" in page.locator("#members-table").inner_text()

    email = members.locator("tbody tr").first.locator("td").nth(1).inner_text()
    assert "@" in email
    page.get_by_label("Search members").fill(email.upper())
    page.locator("#members-table").filter(has_text=f"matching “{email.upper()}”").wait_for()
    rows = page.get_by_role("table", name="Members").locator("tbody tr")
    assert 1 <= rows.count() < size
    for text in rows.all_inner_texts():
        assert email in text

    # Archive from the header switch, delete, then restore as a draft.
    page.get_by_role("switch", name=f"Active: {audience.name}").uncheck()
    page.get_by_role("status").filter(has_text="is archived").wait_for()
    page.reload()
    # Deleting asks first, in a dialog; Escape leaves the audience as it was.
    delete = page.get_by_role("button", name=f"Delete {audience.name}…")
    delete.click()
    dialog = page.get_by_role("dialog", name=f"Delete {audience.name}?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert service.get(web_server.runtime.catalog, audience.id).status == "archived"
    delete.click()
    dialog.get_by_role("button", name="Delete audience").click()
    page.wait_for_url("**/audiences?tab=deleted")
    # A deleted audience's page offers Restore, and no edit that would be refused.
    page.goto(f"/audiences/{audience.id}")
    expect(page.get_by_text("This audience is deleted")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^Edit"))).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
    page.get_by_role("button", name=f"Restore {audience.name}").click()
    page.wait_for_url(f"**/audiences/{audience.id}?restored=1")
    assert page.get_by_role("status").filter(has_text="Restored as a draft").is_visible()
    assert service.get(web_server.runtime.catalog, audience.id).status == "draft"


def test_audience_page_history_matches_the_service(
    page: Any, web_server: WebServer, screenshot: Any
) -> None:
    rt = web_server.runtime
    audience = service.get_by_name(rt.catalog, "us_browsers_no_order_30d")
    points = history.size_over_time(rt.warehouse, audience.id)
    assert len(points) > 10  # the fixture refreshed it daily for two weeks
    page.goto(f"/audiences/{audience.id}")
    page.locator('[data-chart="size-chart-data"][data-ready="true"] canvas').wait_for()
    page.locator('[data-chart="moves-chart-data"][data-ready="true"] canvas').wait_for()
    page.get_by_role("table", name="Members").wait_for()
    screenshot(page, "audience")
    # Retention (B2): the first cohort's table loads; choosing another cohort replaces it.
    page.get_by_text("Retention of a cohort").click()
    retention = page.get_by_role("table", name="Retention")
    retention.wait_for()
    first = history.cohort_retention(rt.warehouse, audience.id)
    assert retention.locator("tbody tr").count() == len(first)
    later = [p for p in points if p.entered][-2]
    expected = history.cohort_retention(rt.warehouse, audience.id, later.refresh_id)
    page.get_by_label("Cohort").select_option(later.refresh_id)
    page.get_by_text(f"{expected[0].cohort_size:,} entered as of").wait_for()
    page.wait_for_function(
        "n => document.querySelectorAll('#retention-table tbody tr').length === n",
        arg=len(expected),
    )
    shares = retention.locator("tbody tr td:last-child").all_inner_texts()
    assert shares == [f"{p.rate * 100:.1f}%" for p in expected]
    page.get_by_text("Refreshes as a table").click()
    table = page.get_by_role("table", name="Refreshes")
    rows = table.locator("tbody tr").all_inner_texts()
    assert len(rows) == len(points)
    newest = points[-1]
    cells = rows[0].split("\t")
    assert [c.strip() for c in cells[1:4]] == [
        f"{newest.size:,}",
        f"{newest.entered:,}",
        f"{newest.left:,}",
    ]


def test_events_page_properties_and_live_tail(
    page: Any, web_server: WebServer, screenshot: Any
) -> None:
    page.goto("/events")
    page.get_by_role("link", name="order_completed", exact=True).click()
    page.wait_for_url("**/events?event=order_completed*")
    properties = page.get_by_role("table", name="Properties of order_completed")
    assert properties.get_by_role("row").count() > 1
    tail = page.get_by_role("table", name="Latest events")
    tail.wait_for()

    marker = f"live_{uuid.uuid4().hex[:8]}"
    key = base64.b64encode(f"{web_server.write_key}:".encode()).decode()
    answer = httpx.post(
        f"{web_server.url}/v1/track",
        json={"userId": "tail-user", "event": marker, "properties": {"plan": "pro"}},
        headers={"Authorization": f"Basic {key}"},
    )
    assert answer.status_code == 200
    # Polled every 3 s: the new event shows up on top without a reload.
    page.locator("#event-tail tbody tr").first.filter(has_text=marker).wait_for(timeout=10_000)
    screenshot(page, "events")


def test_usage_page(page: Any, screenshot: Any) -> None:
    page.goto("/usage")
    page.locator('[data-chart="usage-chart-data"][data-ready="true"] canvas').wait_for()
    assert page.get_by_role("table", name="Usage forecast").is_visible()
    assert page.get_by_role("table", name="Usage per audience").is_visible()
    page.get_by_label("Period").select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/usage?days=7")
    screenshot(page, "usage")


def test_destinations_page(page: Any, web_server: WebServer, screenshot: Any) -> None:
    rt = web_server.runtime
    name = f"Meta ads {uuid.uuid4().hex[:4]}"
    info = sync_catalog.create_destination(
        rt.catalog, rt.secrets, name, "meta", {"access_token": "x"}, {"ad_account_id": "act_1"}
    )
    page.goto("/destinations")
    table = page.get_by_role("table", name="Destinations")
    row = table.get_by_role("row").filter(has_text=name)
    assert "Meta Ads" in row.inner_text() and "active" in row.inner_text()
    screenshot(page, "destinations")
    row.get_by_role("link", name=name).click()
    page.wait_for_url(f"**/destinations/{info.id}")
    assert page.get_by_role("heading", name=name).is_visible()


def test_keyboard_reaches_navigation_and_focus_is_visible(page: Any) -> None:
    page.goto("/audiences")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Audiences"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


NARROW = {"width": 390, "height": 844}
# The innermost elements that stick out on the right, to say what makes a page too wide.
STICKING_OUT = """width => [...document.querySelectorAll('body *')]
  .filter(e => e.children.length === 0 && e.getBoundingClientRect().right > width + 1)
  .slice(0, 5).map(e => e.tagName + '#' + e.id + ' in .' + e.parentElement.className)"""


def right_edge(locator: Any) -> float:
    box = locator.bounding_box()
    assert box and box["x"] >= 0
    return float(box["x"] + box["width"])


def test_every_link_of_the_top_bar_is_reachable_on_a_narrow_screen(
    page: Any, web_server: WebServer
) -> None:
    """On a phone (390 px) the top bar wraps: no page is wider than the screen, and every
    link, the user's name and Sign out are on it."""
    audience = new_active(web_server)
    page.set_viewport_size(NARROW)
    pages = ["/audiences", f"/audiences/{audience.id}", "/audiences/new", "/events", "/usage"]
    for path in [*pages, "/destinations", "/destinations/new"]:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], (path, width, page.evaluate(STICKING_OUT, NARROW["width"]))
        nav = page.get_by_role("navigation", name="Main")
        controls = [nav.get_by_role("link", name=n) for n in ("Audiences", "Events", "Usage")]
        controls += [
            nav.get_by_role("link", name="Destinations"),
            page.get_by_text("admin", exact=True),
            page.get_by_role("button", name="Sign out"),
        ]
        for control in controls:
            assert right_edge(control) <= NARROW["width"], (path, control)


def test_hidden_elements_stay_hidden_whatever_their_class(page: Any, web_server: WebServer) -> None:
    audience = new_active(web_server)
    visible_but_hidden = (
        "[...document.querySelectorAll('[hidden]')]"
        ".filter(e => getComputedStyle(e).display !== 'none').map(e => e.outerHTML.slice(0, 80))"
    )
    for path in ("/audiences", f"/audiences/{audience.id}", "/audiences/new", "/events"):
        page.goto(path)
        assert page.evaluate(visible_but_hidden) == [], path
