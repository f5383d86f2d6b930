"""The builder as a marketer uses it: build a query from scratch with clicks and typing, see
the live estimate, run it (size equal to the REST API's preview), and save it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import WebServer, unique_name

pytestmark = pytest.mark.browser

WINDOW = {"type": "relative", "last": 30, "unit": "days"}


def preview_size(server: WebServer, definition: dict[str, Any]) -> int:
    """The size the REST API's preview gives for ``definition``."""
    with server.api() as api:
        answer = api.post("/api/v1/audiences/preview", json={"definition": definition})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["size"])


def condition(page: Any, number: int, of: int, group: int) -> Any:
    return page.get_by_role("group", name=f"Condition {number} of {of} in Group {group}")


def shown_definition(page: Any) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate("window.segmintBuilder.definition()")
    return value


def strip_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_ids(v) for k, v in node.items() if k != "id"}
    if isinstance(node, list):
        return [strip_ids(v) for v in node]
    return node


def would_ask_before_leaving(page: Any) -> bool:
    """Whether the page's ``beforeunload`` handler asks to confirm leaving."""
    asks: bool = page.evaluate(
        "() => { const e = new Event('beforeunload', {cancelable: true}); "
        "window.dispatchEvent(e); return e.defaultPrevented; }"
    )
    return asks


def build_main_query(page: Any) -> None:
    """viewed product in last 30 days AND NOT ordered in last 30 days AND (US OR CA)."""
    page.get_by_role("button", name="Add condition to Group 1").click()
    first = condition(page, 1, 1, 1)
    expect(first.get_by_label("Condition type", exact=True)).to_be_focused()
    first.get_by_label("Event", exact=True).fill("product_viewed")
    first.get_by_label("When", exact=True).select_option(label="in the last…")
    first.get_by_label("Last", exact=True).fill("30")

    page.get_by_role("button", name="Add condition to Group 1").click()
    second = condition(page, 2, 2, 1)
    second.get_by_label("Did or did not", exact=True).select_option(label="did not perform")
    second.get_by_label("Event", exact=True).fill("order_completed")
    second.get_by_label("When", exact=True).select_option(label="in the last…")
    second.get_by_label("Last", exact=True).fill("30")

    page.get_by_role("button", name="Add group inside Group 1").click()
    group = page.get_by_role("group", name=re.compile(r"^Group 2: match ANY"))
    us = condition(page, 1, 1, 2)
    us.get_by_label("Condition type", exact=True).select_option(
        label="Location, language, age, gender"
    )
    us.get_by_label("Value", exact=True).fill("US")
    group.get_by_role("button", name="Add condition to Group 2").click()
    ca = condition(page, 2, 2, 2)
    ca.get_by_label("Condition type", exact=True).select_option(
        label="Location, language, age, gender"
    )
    ca.get_by_label("Value", exact=True).fill("CA")


EXPECTED = {
    "version": 1,
    "root": {
        "kind": "and",
        "conditions": [
            {"kind": "event", "event": "product_viewed", "window": WINDOW},
            {"kind": "event", "event": "order_completed", "performed": False, "window": WINDOW},
            {
                "kind": "or",
                "conditions": [
                    {"kind": "demographic", "field": "country", "operator": "equals", "value": v}
                    for v in ("US", "CA")
                ],
            },
        ],
    },
}


def test_build_run_and_save_from_scratch(page: Any, web_server: WebServer, screenshot: Any) -> None:
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto("/audiences/new")
    expect(page.get_by_role("heading", name="New audience")).to_be_visible()
    build_main_query(page)

    expected_size = preview_size(web_server, EXPECTED)
    assert expected_size > 0, "the test data should have US/CA viewers who did not order"
    estimate = page.get_by_role("status").filter(has_text="people match")
    expect(estimate).to_have_text(re.compile(rf"About {expected_size:,} people match"))
    # What the builder holds is the definition the API took, nothing dropped.
    assert strip_ids(shown_definition(page))["root"]["conditions"][2]["conditions"][1]["value"] == (
        "CA"
    )
    assert preview_size(web_server, shown_definition(page)) == expected_size
    screenshot(page, "builder")

    page.get_by_role("button", name="Run query").click()
    results = page.get_by_role("region", name="Query results")
    expect(results.locator("#run-size")).to_have_text(f"{expected_size:,}")
    expect(results.get_by_role("cell", name="NOT product_viewed")).to_have_count(0)
    expect(results.get_by_role("table").first).to_contain_text("order_completed")
    screenshot(page, "builder-run")

    page.get_by_role("button", name="Save & Activate…").click()
    dialog = page.get_by_role("dialog", name="Save & Activate")
    expect(dialog).to_be_visible()
    name = dialog.get_by_label("Audience name", exact=True)
    expect(name).to_be_focused()
    expect(dialog.get_by_text("Dynamic", exact=True)).to_be_visible()
    expect(dialog.get_by_label("Refresh interval", exact=True)).to_have_value("86400")
    warmup = dialog.get_by_label("Warm-up: refresh daily for the first 3 days", exact=True)
    expect(warmup).to_be_disabled()  # a daily audience has nothing to warm up
    expect(dialog.locator("#forecast-text")).to_contain_text("events in the next 30 days")
    base = unique_name("viewed")
    name.fill(f"Viewed, Not Ordered {base}")
    dialog.get_by_role("button", name="Save & Activate").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Not saved")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator("#name-status")).to_contain_text("not a valid audience name")
    suggestion = f"viewed_not_ordered_{base}"
    expect(dialog).to_contain_text(suggestion)
    screenshot(page, "save-dialog")
    dialog.get_by_role("button", name=f"Use “{suggestion}”").click()
    expect(name).to_have_value(suggestion)
    dialog.get_by_label("Refresh interval", exact=True).select_option(label="Every 7 days")
    expect(warmup).to_be_checked()
    dialog.get_by_role("button", name="Save & Activate").click()
    page.wait_for_url(re.compile(r"/audiences/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(suggestion)

    from segmint.audiences import service

    saved = service.get_by_name(web_server.runtime.catalog, suggestion)
    assert saved.status == "active"
    assert saved.refresh_interval_seconds == 7 * 86400
    assert saved.warmup
    stored = saved.definition.model_dump(mode="json", exclude_none=True, by_alias=True)
    assert preview_size(web_server, stored) == expected_size
    kinds = [c["kind"] for c in stored["root"]["conditions"]]
    assert kinds == ["event", "event", "or"]
    assert saved.size == expected_size

    # Archive it with the status switch, then restore it from the Archived tab (R13).
    page.goto("/audiences")
    page.get_by_role("switch", name=f"Active: {suggestion}").uncheck()
    page.get_by_role("status").filter(has_text="is archived").wait_for()
    assert service.get(web_server.runtime.catalog, saved.id).status == "archived"
    page.get_by_role("tab", name="Archived").click()
    page.wait_for_url("**/audiences?tab=archived")
    page.get_by_role("switch", name=f"Active: {suggestion}").check()
    page.get_by_role("status").filter(has_text="active again").wait_for()
    assert service.get(web_server.runtime.catalog, saved.id).status == "active"
    assert script_errors == []


def test_edit_saves_a_new_version_with_an_impact_preview(page: Any, web_server: WebServer) -> None:
    from segmint.audiences import operations, service

    rt = web_server.runtime
    name = unique_name("edit")
    us = {"kind": "demographic", "field": "country", "operator": "equals", "value": "US"}
    viewed = {"kind": "event", "event": "product_viewed", "window": WINDOW}
    draft = service.create_draft(
        rt.catalog,
        {"root": {"kind": "and", "conditions": [viewed, us]}},
        by="tests",
        now=operations.utcnow(),
        name=name,
    )
    operations.activate_audience(
        rt.warehouse,
        rt.catalog,
        draft.id,
        name=name,
        refresh_interval=dt.timedelta(days=1),
        warmup=True,
        by="tests",
        timezone="UTC",
    )
    page.goto(f"/audiences/{draft.id}/edit")
    expect(page.get_by_role("heading", name=f"Edit audience: {name}")).to_be_visible()
    row = condition(page, 2, 2, 1)
    expect(row.get_by_label("Value", exact=True)).to_have_value("US")
    assert not would_ask_before_leaving(page), "nothing changed yet"
    row.get_by_label("Operator", exact=True).select_option(label="is one of")
    row.get_by_label("Value", exact=True).fill("US, CA")
    assert would_ask_before_leaving(page)
    both = {**us, "operator": "in", "value": ["US", "CA"]}
    expected = preview_size(web_server, {"root": {"kind": "and", "conditions": [viewed, both]}})
    expect(page.locator("#estimate")).to_have_text(re.compile(rf"About {expected:,} people"))

    page.get_by_role("button", name="Save & Activate…").click()
    dialog = page.get_by_role("dialog", name="Save & Activate")
    expect(dialog.get_by_label("Audience name", exact=True)).to_have_value(name)
    expect(dialog.locator("#impact-text")).to_contain_text("If saved now: +")
    expect(dialog.locator("#name-status")).to_contain_text("is available")
    dialog.get_by_role("button", name="Save & Activate").click()
    page.wait_for_url(re.compile(rf"/audiences/{draft.id}$"))
    info = service.get(rt.catalog, draft.id)
    assert info.current_version == 2
    assert info.size == expected


@pytest.fixture
def http_suggestion(http: Any) -> str:
    """The free name the server suggests for "Abandoned Checkout (30d)" (a demo audience
    has ``abandoned_checkout_30d``)."""
    answer = http.post("/ui/builder/names/check", json={"name": "Abandoned Checkout (30d)"})
    suggestion: str = answer.json()["suggestion"]
    assert suggestion != "abandoned_checkout_30d"
    return suggestion


def test_save_dialog_speaks_only_when_there_is_something_to_say(
    page: Any, http_suggestion: str
) -> None:
    """No error before typing; a refused name gets one suggestion, free, in the text and on
    the button; a good name hides the button (also from Tab); the warm-up is disabled where
    it would change nothing (intervals of a day or less)."""
    page.goto("/audiences/new")
    page.get_by_role("button", name="Add condition to Group 1").click()
    first = condition(page, 1, 1, 1)
    first.get_by_label("Event", exact=True).fill("product_viewed")
    first.get_by_label("When", exact=True).select_option(label="in the last…")
    expect(page.locator("#estimate")).to_contain_text("people match")
    page.get_by_role("button", name="Save & Activate…").click()
    dialog = page.get_by_role("dialog", name="Save & Activate")
    name = dialog.get_by_label("Audience name", exact=True)
    status = dialog.locator("#name-status")
    use = dialog.get_by_role("button", name=re.compile("^Use "))
    expect(name).to_be_focused()
    expect(dialog.locator("#forecast-text")).to_contain_text("events in the next 30 days")
    expect(status).to_have_text("")
    expect(name).not_to_have_attribute("aria-invalid", "true")
    expect(use).to_be_hidden()

    name.fill("Abandoned Checkout (30d)")
    expect(status).to_contain_text(f"Try '{http_suggestion}'.")
    expect(status).not_to_contain_text("Try 'abandoned_checkout_30d'.")
    expect(dialog.get_by_role("button", name=f"Use “{http_suggestion}”")).to_be_visible()
    good = unique_name("ok_name")
    name.fill(good)
    expect(status).to_have_text(f"“{good}” is available.")
    expect(use).to_be_hidden()
    name.press("Tab")  # the hidden button is skipped
    interval = dialog.get_by_label("Refresh interval", exact=True)
    expect(interval).to_be_focused()

    warmup = dialog.get_by_label("Warm-up: refresh daily for the first 3 days", exact=True)
    note = dialog.get_by_text("Not needed with this interval")
    for label in ("Every day", "Every hour"):
        interval.select_option(label=label)
        expect(warmup).to_be_disabled()
        expect(warmup).not_to_be_checked()
        expect(note).to_be_visible()
    interval.select_option(label="Every 7 days")
    expect(warmup).to_be_enabled()
    expect(warmup).to_be_checked()  # the choice comes back
    expect(note).to_be_hidden()
    warmup.uncheck()
    interval.select_option(label="Every 12 hours")
    interval.select_option(label="Every 14 days")
    expect(warmup).not_to_be_checked()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
