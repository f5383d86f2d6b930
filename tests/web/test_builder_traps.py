"""The builder traps of ux-builder.md §7, each in a real browser: typed values are kept, rows
keep their values when others are removed or duplicated, a type change resets operator and
value, incomplete conditions block saving and are never dropped, the estimate never shows a
count from an older definition, quick structural edits all apply under latency, and a
keyboard-only build and save works."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import VIEWPORT, WebServer, sign_in_browser, unique_name
from tests.web.test_builder_flow import condition, preview_size, shown_definition

pytestmark = pytest.mark.browser


def add_country(page: Any, number: int, of: int, value: str, *, group: int = 1) -> Any:
    page.get_by_role("button", name=f"Add condition to Group {group}").click()
    row = condition(page, number, of, group)
    row.get_by_label("Condition type", exact=True).select_option(
        label="Location, language, age, gender"
    )
    if value:
        row.get_by_label("Value", exact=True).fill(value)
    return row


def conditions(page: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = shown_definition(page)["root"]["conditions"]
    return found


def wait_until(page: Any, check: Any, timeout_ms: int = 5000) -> None:
    """Let the browser run (and route handlers fire) until ``check()`` holds."""
    waited = 0
    while not check():
        assert waited < timeout_ms, "timed out"
        page.wait_for_timeout(25)
        waited += 25


def test_typed_value_is_kept_when_clicking_on_at_once(page: Any) -> None:
    page.goto("/audiences/new")
    row = add_country(page, 1, 1, "")
    row.get_by_label("Value", exact=True).press_sequentially("CA", delay=0)
    # No blur, no wait: the very next click is another action.
    page.get_by_role("button", name="Add condition to Group 1").click()
    assert conditions(page)[0]["value"] == "CA"
    expect(condition(page, 1, 2, 1).get_by_label("Value", exact=True)).to_have_value("CA")
    # The button names follow what the condition says.
    expect(page.get_by_role("button", name="Remove condition: country equals CA")).to_have_count(1)


def test_remove_and_duplicate_leave_other_rows_intact(page: Any) -> None:
    page.goto("/audiences/new")
    for index, value in enumerate(["US", "CA", "GB"], start=1):
        add_country(page, index, index, value)
    page.get_by_role("button", name="Remove condition: country equals US").click()
    assert [c["value"] for c in conditions(page)] == ["CA", "GB"]
    expect(condition(page, 1, 2, 1).get_by_label("Value", exact=True)).to_have_value("CA")
    expect(condition(page, 2, 2, 1).get_by_label("Value", exact=True)).to_have_value("GB")
    # Focus lands on the row that took the removed one's place.
    expect(condition(page, 1, 2, 1).get_by_label("Condition type", exact=True)).to_be_focused()

    page.get_by_role("button", name="Duplicate condition: country equals CA").click()
    rows = conditions(page)
    assert [c["value"] for c in rows] == ["CA", "CA", "GB"]
    assert len({c["id"] for c in rows}) == 3, "the clone has its own id"
    condition(page, 2, 3, 1).get_by_label("Value", exact=True).fill("FR")
    assert [c["value"] for c in conditions(page)] == ["CA", "FR", "GB"]
    expect(condition(page, 2, 3, 1).get_by_label("Condition type", exact=True)).not_to_be_focused()


def test_changing_the_value_type_resets_operator_and_value(page: Any) -> None:
    page.goto("/audiences/new")
    page.get_by_role("button", name="Add condition to Group 1").click()
    row = condition(page, 1, 1, 1)
    row.get_by_label("Condition type", exact=True).select_option(label="User trait")
    row.get_by_label("Trait", exact=True).fill("nickname")
    row.get_by_label("Operator", exact=True).select_option(label="contains")
    row.get_by_label("Value", exact=True).fill("pro")
    assert conditions(page)[0]["operator"] == "contains"
    assert conditions(page)[0]["value"] == "pro"

    row.get_by_label("Value type", exact=True).select_option(label="Number")
    node = conditions(page)[0]
    assert node["operator"] == "equals"
    assert node["value"] is None
    expect(row.get_by_label("Value", exact=True)).to_have_value("")
    options = row.get_by_label("Operator", exact=True).locator("option").all_inner_texts()
    assert "contains" not in options and ">" in options


def test_incomplete_condition_blocks_save_and_is_never_dropped(page: Any) -> None:
    page.goto("/audiences/new")
    add_country(page, 1, 1, "US")
    page.get_by_role("button", name="Add condition to Group 1").click()  # no event chosen
    estimate = page.locator("#estimate")
    expect(estimate).to_contain_text("Estimate unavailable")

    page.get_by_role("button", name="Save & Activate…").click()
    summary = page.get_by_role("alert").filter(has_text="before you save")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Choose an event")
    expect(page.get_by_role("dialog")).to_have_count(0)
    event = condition(page, 2, 2, 1).get_by_label("Event", exact=True)
    expect(event).to_have_attribute("aria-invalid", "true")
    expect(event).to_have_accessible_description(re.compile("Choose an event"))
    assert len(conditions(page)) == 2, "the incomplete condition is kept"

    # Run is blocked the same way; the summary links to the field.
    page.get_by_role("button", name="Run query").click()
    page.get_by_role("link", name=re.compile("Choose an event")).click()
    expect(event).to_be_focused()
    event.fill("product_viewed")
    expect(event).not_to_have_attribute("aria-invalid", "true")
    expect(estimate).to_contain_text("people match")


def test_estimate_never_shows_a_count_from_an_older_definition(
    page: Any, web_server: WebServer
) -> None:
    def country(code: str) -> dict[str, Any]:
        return {
            "root": {"kind": "demographic", "field": "country", "operator": "equals", "value": code}
        }

    us, ca = preview_size(web_server, country("US")), preview_size(web_server, country("CA"))
    assert us != ca
    held: list[Any] = []
    page.route("**/ui/builder/estimate", lambda route: held.append(route))
    page.goto("/audiences/new")
    row = add_country(page, 1, 1, "US")
    wait_until(page, lambda: len(held) == 1)  # the US estimate is in flight, held back
    row.get_by_label("Value", exact=True).fill("CA")
    wait_until(page, lambda: len(held) == 2)  # the CA estimate too
    estimate = page.locator("#estimate")
    expect(estimate).to_have_text("Updating estimate…")

    newer = held[1]
    newer.fulfill(response=newer.fetch())
    expect(estimate).to_have_text(re.compile(rf"About {ca:,} people match"))
    older = held[0]
    # The browser may have aborted it already; answering it late must change nothing.
    with contextlib.suppress(Exception):
        older.fulfill(response=older.fetch())
    page.wait_for_timeout(300)
    expect(estimate).to_have_text(re.compile(rf"About {ca:,} people match"))
    expect(estimate).not_to_contain_text(f"About {us:,} people")


def test_quick_structural_edits_all_apply_under_latency(page: Any) -> None:
    held: list[Any] = []
    page.route("**/ui/builder/**", lambda route: held.append(route))  # the server never answers
    page.goto("/audiences/new")
    add = page.get_by_role("button", name="Add condition to Group 1")
    add.click()
    add.click()
    add.click()
    assert len(conditions(page)) == 3
    page.get_by_role("button", name="Add group inside Group 1").click()
    page.get_by_role("button", name="Remove condition: performed (no event)").first.click()
    page.get_by_role("button", name="Duplicate Group 2").click()
    root = conditions(page)
    assert [c["kind"] for c in root] == ["event", "event", "or", "or"]
    assert len({c["id"] for c in root}) == 4
    assert held, "estimates were requested (and held back)"


def tab_to(page: Any, name: str, limit: int = 80, *, back: bool = False) -> None:
    """Press Tab (Shift+Tab with ``back``) until the focused element's accessible name
    (aria-label or text) is ``name``."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        focused = page.evaluate(
            "(() => { const e = document.activeElement; return e ? "
            "(e.getAttribute('aria-label') || e.textContent || '').trim() : ''; })()"
        )
        if focused == name:
            return
    raise AssertionError(f"could not Tab to {name!r}")


def test_keyboard_only_build_and_save(page: Any, web_server: WebServer) -> None:
    page.goto("/audiences/new")
    tab_to(page, "Add condition to Group 1")
    page.keyboard.press("Enter")
    first = condition(page, 1, 1, 1)
    expect(first.get_by_label("Condition type", exact=True)).to_be_focused()
    page.keyboard.press("Tab")  # did / did not
    page.keyboard.press("Tab")  # event
    expect(first.get_by_label("Event", exact=True)).to_be_focused()
    page.keyboard.type("product_viewed")
    page.keyboard.press("Tab")  # how often
    page.keyboard.press("Tab")  # times
    page.keyboard.press("Tab")  # when
    expect(first.get_by_label("When", exact=True)).to_be_focused()
    page.keyboard.press("ArrowDown")  # "in the last…"
    expect(first.get_by_label("Last", exact=True)).to_have_value("30")
    expect(first.get_by_label("When", exact=True)).to_be_focused()

    # A second condition, moved up, then removed, all from the keyboard.
    tab_to(page, "Add condition to Group 1")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("order_completed")
    tab_to(page, "Move up condition: performed order_completed", limit=20, back=True)
    page.keyboard.press("Enter")
    expect(condition(page, 1, 2, 1).get_by_label("Event", exact=True)).to_have_value(
        "order_completed"
    )
    expect(page.locator("#announce")).to_contain_text("moved to position 1 of 2")
    tab_to(page, "Remove condition: performed order_completed", limit=10)
    page.keyboard.press("Enter")
    expect(condition(page, 1, 1, 1).get_by_label("Condition type", exact=True)).to_be_focused()
    assert [c.get("event") for c in conditions(page)] == ["product_viewed"]

    tab_to(page, "Save & Activate…")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Save & Activate")
    expect(dialog.get_by_label("Audience name")).to_be_focused()
    name = unique_name("keys")
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/audiences/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


def test_empty_result_explains_itself(page: Any) -> None:
    page.goto("/audiences/new")
    page.get_by_role("button", name="Add condition to Group 1").click()
    condition(page, 1, 1, 1).get_by_label("Event", exact=True).fill("product_viewd")
    expect(page.locator("#estimate")).to_contain_text("About 0 people match")
    page.get_by_role("button", name="Run query").click()
    results = page.get_by_role("region", name="Query results")
    expect(results.locator("#run-size")).to_have_text("0")
    expect(results).to_contain_text("has never been tracked")
    expect(results).to_contain_text("product_viewed")
    stale = results.get_by_text("You changed the query after running it")
    expect(stale).to_be_hidden()
    condition(page, 1, 1, 1).get_by_label("Event", exact=True).fill("product_viewed")
    expect(stale).to_be_visible()


KIND_FIELDS = {
    "Performed an event": ("event", {"Event": "order_completed"}),
    "Total / average of an event property": (
        "aggregate",
        {"Property": "total", "Of event": "order_completed", "Value": "50"},
    ),
    "Did one event, then another": (
        "sequence",
        {"First event": "product_viewed", "Second event": "order_completed"},
    ),
    "User trait": ("trait", {"Trait": "plan", "Value": "premium"}),
    "UTM campaign parameter": ("utm", {"Value": "google"}),
    "Location, language, age, gender": ("demographic", {"Value": "CA"}),
    "Browser, OS, device": ("technology", {"Value": "Chrome"}),
    "Member of another audience": ("audience", {"Audience": "abandoned_checkout_30d"}),
}


def test_every_condition_kind_can_be_built(page: Any) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/audiences/new")
    page.get_by_role("button", name="Add condition to Group 1").click()
    row = condition(page, 1, 1, 1)
    estimate = page.locator("#estimate")
    for kind_label, (kind, fields) in KIND_FIELDS.items():
        row.get_by_label("Condition type", exact=True).select_option(label=kind_label)
        assert conditions(page)[0]["kind"] == kind
        for field_label, value in fields.items():
            row.get_by_label(field_label, exact=True).fill(value)
        expect(estimate).to_contain_text("people match")
        assert "Estimate unavailable" not in (estimate.text_content() or "")
    assert errors == []


def test_property_filter_applies_at_once(page: Any, web_server: WebServer) -> None:
    page.goto("/audiences/new")
    page.get_by_role("button", name="Add condition to Group 1").click()
    row = condition(page, 1, 1, 1)
    row.get_by_label("Event", exact=True).fill("order_completed")
    row.get_by_role(
        "button", name="Add property filter to condition: performed order_completed"
    ).click()
    filter_row = row.get_by_role("group", name="Filter 1 on order_completed")
    expect(filter_row.get_by_label("Property", exact=True)).to_be_focused()
    filter_row.get_by_label("Property", exact=True).fill("total")
    filter_row.get_by_label("Value type", exact=True).select_option(label="Number")
    filter_row.get_by_label("Operator", exact=True).select_option(label=">")
    filter_row.get_by_label("Value", exact=True).fill("100")
    (node,) = conditions(page)
    assert node["filters"] == [{"property": "total", "operator": "gt", "value": 100}]
    expected = preview_size(web_server, {"root": {k: v for k, v in node.items()}})
    expect(page.locator("#estimate")).to_have_text(re.compile(rf"About {expected:,} people"))


@pytest.fixture
def accepting_page(
    browser: Any, web_server: WebServer, admin_login: tuple[str, str]
) -> Iterator[Any]:
    """A signed-in page that accepts every dialog (``page.prompts`` lists their types), so
    "leave this page?" can be answered yes."""
    context = browser.new_context(viewport=VIEWPORT, base_url=web_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in_browser(page, *admin_login)
    prompts: list[str] = []
    page.on("dialog", lambda d: (prompts.append(d.type), d.accept()))
    page.prompts = prompts
    yield page
    context.close()


def test_unsaved_work_is_warned_about_and_kept_as_a_draft(accepting_page: Any) -> None:
    page = accepting_page
    page.goto("/audiences/new")
    add_country(page, 1, 1, "CA")
    note = page.get_by_role("status").filter(has_text="Draft restored")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    page.wait_for_url("**/events")
    assert page.prompts == ["beforeunload"], "leaving asked first"
    page.go_back()
    expect(condition(page, 1, 1, 1).get_by_label("Value", exact=True)).to_have_value("CA")

    page.reload()
    assert page.prompts == ["beforeunload"] * 2
    expect(note).to_be_visible()
    expect(condition(page, 1, 1, 1).get_by_label("Value", exact=True)).to_have_value("CA")
    expect(page.locator("#estimate")).to_contain_text("people match")
    page.get_by_role("button", name="Discard draft").click()
    expect(note).to_be_hidden()
    assert conditions(page) == []
    expect(page.get_by_text("No conditions yet")).to_be_visible()
    page.reload()  # nothing left to lose: no question, no draft
    assert page.prompts == ["beforeunload"] * 2
    expect(page.get_by_text("No conditions yet")).to_be_visible()
    expect(note).to_be_hidden()

    # Saved work is not warned about, and leaves no draft behind.
    add_country(page, 1, 1, "GB")
    page.get_by_role("button", name="Save & Activate…").click()
    dialog = page.get_by_role("dialog", name="Save & Activate")
    dialog.get_by_label("Audience name", exact=True).fill(unique_name("draft"))
    dialog.get_by_role("button", name="Save & Activate").click()
    page.wait_for_url(re.compile(r"/audiences/\d+$"))
    page.goto("/audiences/new")
    expect(page.get_by_text("No conditions yet")).to_be_visible()
    expect(note).to_be_hidden()
    assert page.prompts == ["beforeunload"] * 2


def test_a_window_beyond_the_calendar_is_shown_on_its_condition(page: Any) -> None:
    page.goto("/audiences/new")
    add_country(page, 1, 1, "US")
    page.get_by_role("button", name="Add condition to Group 1").click()
    row = condition(page, 2, 2, 1)
    row.get_by_label("Event", exact=True).fill("product_viewed")
    row.get_by_label("When", exact=True).select_option(label="in the last…")
    row.get_by_label("Unit", exact=True).select_option(label="months")
    row.get_by_label("Last", exact=True).fill("100000")
    expect(page.locator("#estimate")).to_have_text(
        "Estimate unavailable: fix 1 problem (highlighted)."
    )
    last = row.get_by_label("Last", exact=True)
    expect(last).to_have_attribute("aria-invalid", "true")
    words = "the window “in the last 100,000 months” reaches outside the years 1 to 9999"
    expect(last).to_have_accessible_description(re.compile(re.escape(words)))
    expect(condition(page, 1, 2, 1).get_by_label("Value", exact=True)).not_to_have_attribute(
        "aria-invalid", "true"
    )
    page.get_by_role("button", name="Run query").click()
    summary = page.get_by_role("alert").filter(has_text="before you run the query")
    expect(summary).to_contain_text(f"performed product_viewed in the last 100,000 months: {words}")
    expect(summary).not_to_contain_text("all of")
    expect(summary).not_to_contain_text("{")
