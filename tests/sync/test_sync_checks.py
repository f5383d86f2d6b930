"""Match-rate preview (R19, B5) and "why not syncing" (R29) over a real refreshed audience."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync.checks import match_rate_preview, why_not_syncing
from segmint.sync.retry import RetryPolicy
from segmint.sync.runner import SyncContext, sync_link
from tests.destinations.fake_meta import FakeMeta, serve
from tests.sync.sync_world import activate, seed_profiles, set_tier


@pytest.fixture
def fake() -> FakeMeta:
    return FakeMeta()


@pytest.fixture
def meta_url(fake: FakeMeta) -> Iterator[str]:
    with serve(fake) as url:
        yield url


@pytest.fixture
def ctx(runtime: Runtime) -> SyncContext:
    return SyncContext.of(runtime, retry=RetryPolicy(attempts=3, initial=0.001, maximum=0.002))


def link_to_meta(runtime: Runtime, fake: FakeMeta, url: str, audience_id: int) -> int:
    destination = sync_catalog.create_destination(
        runtime.catalog,
        runtime.secrets,
        "Shop Meta",
        "meta",
        {"access_token": fake.token},
        {"ad_account_id": fake.ad_account_id, "base_url": url},
    )
    return sync_catalog.link_audience(runtime.catalog, audience_id, destination.id).id


def test_preview_counts_identifiers_malformed_values_and_anonymous_members(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    # 1,000 members: every 10th anonymous, every 7th (of the others) with a broken email,
    # every 4th with a phone (a broken email with a phone can still be sent).
    seed_profiles(runtime, 1_000, anonymous_every=10, phone_every=4, malformed_every=7)
    link_id = link_to_meta(runtime, fake, meta_url, activate(runtime))
    preview = match_rate_preview(ctx, link_id)
    anonymous = 100
    malformed = sum(1 for i in range(1, 1_001) if i % 7 == 0 and i % 10 != 0)
    phones = sum(1 for i in range(1, 1_001) if i % 4 == 0 and i % 10 != 0)
    malformed_without_phone = sum(
        1 for i in range(1, 1_001) if i % 7 == 0 and i % 10 != 0 and i % 4 != 0
    )
    assert preview.members == 1_000
    assert preview.anonymous == anonymous
    assert preview.identifiers["email"] == 900
    assert preview.identifiers["phone"] == phones
    assert preview.malformed == {"malformed email": malformed}
    assert preview.would_send == 900 - malformed_without_phone
    assert preview.min_list_size == 100 and preview.pending is None
    assert fake.requests == 0  # a preview never calls the platform
    assert preview.share("email") == pytest.approx(0.9)


def test_preview_says_pending_below_the_minimum(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 120)
    set_tier(runtime, range(1, 61), "silver")
    link_id = link_to_meta(runtime, fake, meta_url, activate(runtime))
    assert match_rate_preview(ctx, link_id).pending == "pending: 60 of 100 needed"
    diagnosis = why_not_syncing(ctx, link_id)
    assert not diagnosis.ok
    names = {check.name: check for check in diagnosis.checks}
    assert not names["Minimum size"].ok
    assert "pending: 60 of 100 needed" in names["Minimum size"].detail


def test_why_not_syncing_names_the_expired_login_first_and_then_all_clear(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 300)
    audience_id = activate(runtime)
    link_id = link_to_meta(runtime, fake, meta_url, audience_id)
    never = why_not_syncing(ctx, link_id)
    assert not never.ok and never.summary.startswith("Last sync: this link has never synced")

    fake.expired_tokens.add(fake.token)
    sync_link(ctx, link_id)
    expired = why_not_syncing(ctx, link_id)
    assert not expired.ok
    assert expired.summary.startswith("Destination: Error Fetching Data")
    assert "Destinations → Shop Meta → Configuration Settings" in expired.summary

    fake.reauthenticate("new-token")
    sync_catalog.reauthenticate_destination(
        runtime.catalog, runtime.secrets, "Shop Meta", {"access_token": "new-token"}
    )
    assert sync_link(ctx, link_id).status == "succeeded"
    healthy = why_not_syncing(ctx, link_id)
    recent = {check.name: check for check in healthy.checks}["Recent errors"]
    assert recent.ok
    assert recent.detail == (
        "1 of the last 2 syncs failed; the latest succeeded, so they were recovered from"
    )
    assert healthy.ok and healthy.summary.startswith("Nothing is wrong")


def test_impact_preview_names_the_destinations_changes_go_to(
    runtime: Runtime, fake: FakeMeta, meta_url: str
) -> None:
    from segmint.audiences.operations import preview_impact
    from tests.sync.sync_world import DEFINITION, T0

    seed_profiles(runtime, 200)
    set_tier(runtime, range(1, 31), "silver")
    audience_id = activate(runtime)
    edited = {
        "root": {
            **DEFINITION["root"],
            "conditions": [
                {"kind": "trait", "trait": "tier", "operator": "equals", "value": "silver"},
                DEFINITION["root"]["conditions"][1],
            ],
        }
    }
    alone = preview_impact(
        runtime.warehouse, runtime.catalog, audience_id, edited, timezone="UTC", now=T0
    )
    assert alone.summary == "+30 / −170 members (170 → 30)"
    link_to_meta(runtime, fake, meta_url, audience_id)
    linked = preview_impact(
        runtime.warehouse, runtime.catalog, audience_id, edited, timezone="UTC", now=T0
    )
    assert linked.destinations == ["Shop Meta"]
    assert linked.summary == (
        "+30 / −170 members (170 → 30); 30 additions and 170 removals will be sent to Shop Meta"
    )


def test_a_sync_still_running_is_said_so_and_one_never_finished_is_called_interrupted(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 300)
    link_id = link_to_meta(runtime, fake, meta_url, activate(runtime))
    # A sync whose process was killed three hours ago left its log entry "running".
    stopped = sync_catalog.utc_now() - timedelta(hours=3)
    sync_catalog.start_sync_log(runtime.catalog, link_id, "instant", now=stopped)
    stuck = {check.name: check for check in why_not_syncing(ctx, link_id).checks}["Last sync"]
    assert not stuck.ok
    assert "never finished: the process running it stopped" in stuck.detail
    assert stuck.action == "run an Instant Sync, or wait for the next refresh"
    # One that started a minute ago is at work: said so, not as a problem (it said ": None").
    sync_catalog.start_sync_log(runtime.catalog, link_id, "instant")
    running = {check.name: check for check in why_not_syncing(ctx, link_id).checks}
    assert running["Last sync"].ok
    assert running["Last sync"].detail.startswith("running since ")
    assert "None" not in running["Last sync"].detail
