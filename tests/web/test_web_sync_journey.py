"""A marketer's sync journey in a real browser (issue 6 "Done when"): connect a destination
served by the fake Meta server, link an active audience, read the match-rate preview, Instant
Sync and read the Logs tab, see R21's message when the login expires, re-authenticate in
Configuration Settings, sync again, ask "Why isn't this syncing?", unlink. Controls are found
by role and accessible name."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from segmint.sync import catalog as sync_catalog
from tests.destinations.fake_meta import FakeMeta, serve
from tests.web.conftest import WebServer, unique_name
from tests.web.test_web_destinations import email_audience

pytestmark = [pytest.mark.browser, pytest.mark.slow]

R21 = "Error Fetching Data: the destination's authentication has expired"


def test_connect_link_sync_expire_reauthenticate_unlink(
    page: Any, web_server: WebServer, screenshot: Callable[[Any, str], Any]
) -> None:
    fake = FakeMeta()
    name = unique_name("Shop Meta")
    audience = email_audience(web_server)
    assert audience.size and audience.size >= 100  # above Meta's minimum list size
    with serve(fake) as url:
        # Connect the destination with its form.
        page.goto("/destinations")
        page.get_by_role("link", name="Connect a destination").click()
        # the platform list submits itself from a deferred script: let the page load first
        page.wait_for_url("**/destinations/new")
        page.wait_for_load_state("domcontentloaded")
        page.get_by_role("combobox", name="Platform").select_option(label="Meta Ads")
        page.wait_for_url(re.compile(r"platform=meta"))
        page.get_by_label("Name").fill(name)
        page.get_by_label("Access token").fill(fake.token)
        page.get_by_label("Ad account ID").fill(fake.ad_account_id)
        page.get_by_label("API base URL").fill(url)
        expect(page.get_by_label("Check the credentials")).to_be_checked()
        page.get_by_role("button", name="Connect Meta Ads").click()
        page.wait_for_url(re.compile(r"/destinations/\d+"))
        expect(page.get_by_role("status").filter(has_text=re.compile("."))).to_contain_text(
            "Its credentials work"
        )
        expect(page.get_by_role("heading", name="Configuration Settings")).to_be_visible()
        assert fake.token not in page.content()

        # Link the audience; the mapping shows R18's defaults; read the preview.
        page.goto(f"/audiences/{audience.id}")
        expect(page.get_by_role("tab", name=re.compile("Linked destinations"))).to_be_visible()
        with page.expect_response(re.compile(r"/link-fields\?")):
            page.get_by_label("Destination", exact=True).select_option(label=f"{name} (Meta Ads)")
        expect(page.get_by_label("Email from")).to_have_value("email")
        expect(page.get_by_label("Phone from")).to_have_value("phone")
        expect(page.get_by_text("the only mode Meta Ads takes")).to_be_visible()
        page.get_by_role("button", name="Link audience").click()
        announce = page.locator("#sync-announce")
        expect(announce).to_contain_text(f"Linked to {name} (List Sync)")
        card = page.get_by_role("article", name=re.compile(re.escape(name)))
        preview = card.get_by_role("region", name="Match-rate preview")
        expect(preview).to_contain_text("Would send")
        members = preview.locator("dt:text-is('Members') + dd")
        expect(members).to_have_text(f"{audience.size:,}")
        coverage = preview.get_by_role("table", name=re.compile("Identifier coverage"))
        expect(coverage.get_by_role("row", name=re.compile(r"^Email"))).to_contain_text("100%")
        screenshot(page, "audience-destinations")

        # Instant Sync, and the result in the Logs tab.
        card.get_by_role("button", name="Instant Sync").click()
        expect(announce).to_contain_text(f"Synced to {name}: {audience.size:,} added, 0 removed")
        expect(announce.get_by_text(re.compile("Synced to"))).to_be_visible()
        (remote,) = fake.audiences.values()
        assert len(remote.members) == audience.size
        page.get_by_role("tab", name=re.compile("Logs")).click()
        log = page.get_by_role("table", name="Sync log")
        first = log.get_by_role("row").nth(1)
        expect(first).to_contain_text(name)
        expect(first).to_contain_text("instant")
        expect(first).to_contain_text("succeeded")
        expect(first).to_contain_text(f"{audience.size:,}")
        screenshot(page, "audience-logs")

        # The login expires: the next Instant Sync fails with R21's message on the link.
        fake.expired_tokens.add(fake.token)
        page.get_by_role("tab", name=re.compile("Linked destinations")).click()
        card.get_by_role("button", name="Instant Sync").click()
        expect(announce).to_contain_text(R21)
        alert = card.get_by_role("alert")
        expect(alert).to_contain_text(R21)
        expect(alert).to_contain_text(f"Destinations → {name} → Configuration Settings")

        # ... and on the destination page, where Configuration Settings re-authenticates.
        alert.get_by_role("link", name=re.compile("Configuration Settings")).click()
        page.wait_for_url(re.compile(r"/destinations/\d+"))
        top = page.get_by_role("alert").first
        expect(top).to_contain_text(R21)
        expect(top).to_contain_text(f"Destinations → {name} → Configuration Settings")
        expect(page.get_by_text("auth expired", exact=True).first).to_be_visible()
        screenshot(page, "destination-settings")
        fake.reauthenticate("new")
        page.get_by_label("Access token").fill("new")
        page.get_by_role("button", name="Re-authenticate").click()
        expect(page.get_by_role("status").filter(has_text=re.compile("."))).to_contain_text(
            "re-authenticated and active"
        )
        expect(page.get_by_role("alert")).to_have_count(0)

        # The next sync succeeds; the check explains the link is fine; unlink.
        page.goto(f"/audiences/{audience.id}")
        card = page.get_by_role("article", name=re.compile(re.escape(name)))
        card.get_by_role("button", name="Instant Sync").click()
        expect(announce).to_contain_text(f"Synced to {name}")
        expect(card.get_by_role("alert")).to_have_count(0)
        card.get_by_role("button", name="Why isn't this syncing?").click()
        checks = card.get_by_role("list", name=re.compile("Checks for"))
        expect(checks).to_contain_text(f"OK: Destination — {name} is active")
        expect(checks).to_contain_text("Last sync")  # the last one succeeded ...
        expect(checks).to_contain_text("1 of the last 3 syncs failed")  # ... one before did not
        card.get_by_role("button", name=f"Unlink from {name}").click()
        expect(announce).to_contain_text(f"Unlinked from {name}")
        expect(page.get_by_text("Ended links (1)")).to_be_visible()
        assert len(fake.audiences) == 1  # unlink leaves the audience on the platform (R22)

    info = sync_catalog.get_destination(web_server.runtime.catalog, name)
    logs = sync_catalog.list_sync_logs(web_server.runtime.catalog, audience.id)
    assert [entry.status for entry in logs] == ["succeeded", "failed", "succeeded"]
    assert info.status == "active"
    page.goto("/destinations")
    expect(page.get_by_role("row", name=re.compile(re.escape(name)))).to_contain_text("active")
    screenshot(page, "destinations")
    assert page.dialogs == []


def test_delete_asks_for_confirmation_in_a_dialog(page: Any, web_server: WebServer) -> None:
    rt = web_server.runtime
    fake = FakeMeta()
    with serve(fake) as url:
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
        page.goto(f"/audiences/{audience.id}")
        card = page.get_by_role("article", name=re.compile(re.escape(info.name)))
        card.get_by_role("button", name="Instant Sync").click()
        expect(page.locator("#sync-announce")).to_contain_text("Synced to")
        assert len(fake.audiences) == 1

        card.get_by_role("button", name=f"Delete the audience on {info.name}").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("removes the audience")
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        assert len(fake.audiences) == 1

        card.get_by_role("button", name=f"Delete the audience on {info.name}").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete on Meta Ads").click()
        expect(page.locator("#sync-announce")).to_contain_text("Deleted")
        assert fake.audiences == {}
        assert sync_catalog.get_link(rt.catalog, link.id).status == "deleted"
    assert page.dialogs == []
