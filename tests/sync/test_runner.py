"""The sync runner end to end: a real refresh feeds the outbox, the runner sends the changes to
a fake Meta Graph server over real HTTP, and the platform's final list equals the audience
(issue 5 points 5–7, R16, R19–R23)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync.catalog import InstantSyncTooSoon, LinkInfo
from segmint.sync.errors import auth_expired_message
from segmint.sync.retry import RetryPolicy
from segmint.sync.runner import SyncContext, delete_link, sync_after_refresh, sync_link, unlink
from tests.destinations.fake_meta import FakeMeta, serve
from tests.sync.sync_world import (
    T0,
    activate,
    email_of,
    members,
    refresh,
    seed_profiles,
    set_tier,
    sha,
)

FAST = RetryPolicy(attempts=60, initial=0.001, maximum=0.005, jitter=0.0)


@pytest.fixture
def fake() -> FakeMeta:
    return FakeMeta()


@pytest.fixture
def meta_url(fake: FakeMeta) -> Iterator[str]:
    with serve(fake) as url:
        yield url


@pytest.fixture
def ctx(runtime: Runtime) -> SyncContext:
    return SyncContext.of(runtime, retry=FAST)


def connect(runtime: Runtime, fake: FakeMeta, url: str, name: str = "Shop Meta") -> int:
    info = sync_catalog.create_destination(
        runtime.catalog,
        runtime.secrets,
        name,
        "meta",
        {"access_token": fake.token},
        {"ad_account_id": fake.ad_account_id, "base_url": url},
    )
    return info.id


def remote_emails(fake: FakeMeta) -> set[str]:
    (audience,) = fake.audiences.values()
    return audience.values("EMAIL")


def expected_emails(runtime: Runtime, audience_id: int) -> set[str]:
    """Hashed emails of the audience's current members that have one."""
    with_email = {
        int(row[0])
        for row in runtime.warehouse.rows("SELECT profile_id FROM profiles WHERE email IS NOT NULL")
    }
    return {sha(email_of(pid)) for pid in members(runtime, audience_id) & with_email}


def synced_audience(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, url: str, profiles: int
) -> tuple[int, LinkInfo]:
    """An audience of ``profiles`` members linked to the fake and synced once."""
    seed_profiles(runtime, profiles)
    audience_id = activate(runtime)
    link = sync_catalog.link_audience(runtime.catalog, audience_id, connect(runtime, fake, url))
    assert sync_link(ctx, link.id).status == "succeeded"
    return audience_id, link


def test_first_sync_sends_everyone_then_only_changes(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 25_000, anonymous_every=50, phone_every=5)
    audience_id = activate(runtime)
    destination = connect(runtime, fake, meta_url)
    link = sync_catalog.link_audience(runtime.catalog, audience_id, destination)

    first = sync_link(ctx, link.id, trigger="manual")
    assert first.status == "succeeded", first.error_message
    assert first.added == 25_000 - 500 and first.removed == 0
    assert first.skipped_reasons == {"anonymous (no identifier the platform accepts)": 500}
    assert remote_emails(fake) == expected_emails(runtime, audience_id)

    set_tier(runtime, range(1, 3_001), "silver")  # 3,000 leave
    refresh(runtime, audience_id, hours=2)
    second = sync_link(ctx, link.id)
    assert second.status == "succeeded"
    assert second.added == 0
    assert second.removed == 3_000 - 60  # anonymous leavers were never sent
    assert remote_emails(fake) == expected_emails(runtime, audience_id)
    assert len(remote_emails(fake)) == 22_000 - 440

    nothing = sync_link(ctx, link.id)
    assert (nothing.status, nothing.added, nothing.removed) == ("succeeded", 0, 0)
    logs = sync_catalog.list_sync_logs(runtime.catalog, audience_id)
    assert [entry.id for entry in logs] == [nothing.id, second.id, first.id]


def test_nothing_is_lost_under_failures_and_dropped_connections(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 25_000)
    audience_id = activate(runtime)
    link = sync_catalog.link_audience(
        runtime.catalog, audience_id, connect(runtime, fake, meta_url)
    )
    fake.failure_rate, fake.drop_rate = 0.5, 0.2
    flaky = SyncContext.of(runtime, retry=RetryPolicy(attempts=2, initial=0.001, maximum=0.002))
    statuses = []
    steps = ((2, range(1, 1_001), ()), (4, range(1_001, 1_500), range(1, 200)), (6, (), ()))
    for hour, leavers, returners in steps:
        set_tier(runtime, leavers, "silver")
        set_tier(runtime, returners, "gold")
        refresh(runtime, audience_id, hours=hour)
        for _ in range(40):  # later syncs finish what failed syncs left pending
            entry = sync_link(flaky, link.id)
            statuses.append(entry.status)
            if entry.status == "succeeded":
                break
    assert fake.failures > 0 and "failed" in statuses  # the chaos did bite
    fake.failure_rate = fake.drop_rate = 0.0
    final = sync_link(ctx, link.id)
    assert final.status == "succeeded"
    assert remote_emails(fake) == expected_emails(runtime, audience_id)


def test_expired_token_stops_the_link_and_reauthentication_completes_it(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 25_000)
    audience_id = activate(runtime)
    destination = connect(runtime, fake, meta_url)
    link = sync_catalog.link_audience(runtime.catalog, audience_id, destination)
    fake.expire_after_calls = 1  # the token dies after the first batch of members

    failed = sync_link(ctx, link.id)
    assert failed.status == "failed"
    assert failed.error_message == auth_expired_message("Shop Meta")
    assert "Destinations → Shop Meta → Configuration Settings" in (failed.error_message or "")
    info = sync_catalog.get_destination(runtime.catalog, destination)
    assert info.status == "auth_expired" and info.last_error == auth_expired_message("Shop Meta")
    assert len(remote_emails(fake)) < 25_000

    # While expired, syncs are refused without calling the platform; changes stay pending.
    calls = fake.requests
    refused = sync_link(ctx, link.id)
    assert refused.status == "refused" and fake.requests == calls
    assert sync_catalog.get_link(runtime.catalog, link.id).cursor is None

    fake.reauthenticate("fresh-token")
    sync_catalog.reauthenticate_destination(
        runtime.catalog, runtime.secrets, destination, {"access_token": "fresh-token"}
    )
    done = sync_link(ctx, link.id)
    assert done.status == "succeeded"
    assert remote_emails(fake) == expected_emails(runtime, audience_id)


def test_small_audience_waits_as_pending_until_big_enough(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 150)
    set_tier(runtime, range(1, 81), "silver")  # 70 members; Meta needs 100
    audience_id = activate(runtime)
    link = sync_catalog.link_audience(
        runtime.catalog, audience_id, connect(runtime, fake, meta_url)
    )
    pending = sync_link(ctx, link.id)
    assert pending.status == "pending"
    assert pending.error_message == "pending: 70 of 100 needed"
    assert fake.audiences == {}
    set_tier(runtime, range(1, 81), "gold")
    refresh(runtime, audience_id, hours=2)
    done = sync_link(ctx, link.id)
    assert done.status == "succeeded" and done.added == 150
    assert remote_emails(fake) == expected_emails(runtime, audience_id)


def test_refresh_hook_syncs_and_archived_audiences_do_not(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    from segmint.audiences import service

    seed_profiles(runtime, 300)
    audience_id = activate(runtime)
    link = sync_catalog.link_audience(
        runtime.catalog, audience_id, connect(runtime, fake, meta_url)
    )
    sync_after_refresh(ctx)(audience_id)
    (entry,) = sync_catalog.list_sync_logs(runtime.catalog, audience_id)
    assert (entry.trigger, entry.status, entry.added) == ("refresh", "succeeded", 300)

    service.archive(runtime.catalog, audience_id, by="test", now=T0)
    refused = sync_link(ctx, link.id)
    assert refused.status == "refused" and "archived" in (refused.error_message or "")


def test_instant_sync_interval_and_unlink_versus_delete(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 200)
    audience_id = activate(runtime)
    destination = connect(runtime, fake, meta_url)
    link = sync_catalog.link_audience(runtime.catalog, audience_id, destination)
    first = sync_link(ctx, link.id, trigger="instant")
    assert first.status == "succeeded"
    again = sync_link(ctx, link.id, trigger="instant")  # Meta has no interval
    assert again.status == "succeeded"

    unlinked = unlink(ctx, link.id)
    assert unlinked.status == "unlinked"
    assert len(fake.audiences) == 1  # the remote audience stays (R22 Unlink)
    assert sync_link(ctx, link.id).status == "refused"

    second = sync_catalog.link_audience(runtime.catalog, audience_id, destination)
    assert sync_link(ctx, second.id).status == "succeeded"
    deleted = delete_link(ctx, second.id)
    assert deleted.status == "deleted"
    assert fake.audiences == {}  # R22 Delete removes it on the platform


def test_tiktok_instant_sync_refused_within_thirty_minutes(
    runtime: Runtime, ctx: SyncContext
) -> None:
    from datetime import timedelta

    from tests.destinations.fake_tiktok import FakeTikTok
    from tests.destinations.fake_tiktok import serve as serve_tiktok

    seed_profiles(runtime, 1_200)
    audience_id = activate(runtime)
    fake = FakeTikTok()
    with serve_tiktok(fake) as url:
        destination = sync_catalog.create_destination(
            runtime.catalog,
            runtime.secrets,
            "Shop TikTok",
            "tiktok",
            {"access_token": fake.token},
            {"advertiser_id": fake.advertiser_id, "base_url": url},
        )
        link = sync_catalog.link_audience(runtime.catalog, audience_id, destination.id)
        first = sync_link(ctx, link.id, trigger="instant", now=T0)
        assert first.status == "succeeded", first.error_message
        with pytest.raises(InstantSyncTooSoon, match="try again in 18 minutes"):
            sync_link(ctx, link.id, trigger="instant", now=T0 + timedelta(minutes=12))
        logs = sync_catalog.list_sync_logs(runtime.catalog, audience_id)
        assert logs[0].status == "refused" and logs[0].trigger == "instant"
        later = sync_link(ctx, link.id, trigger="instant", now=T0 + timedelta(minutes=31))
        assert later.status == "succeeded"


def test_an_interrupted_delivery_is_finished_before_newer_changes(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    """Half of a removal went out before the login expired; then those members came back.
    The net change since the cursor is nothing, but the platform lost 10,000 people: the next
    sync must replay the interrupted step, then add them back."""
    seed_profiles(runtime, 25_000)
    audience_id = activate(runtime)
    destination = connect(runtime, fake, meta_url)
    link = sync_catalog.link_audience(runtime.catalog, audience_id, destination)
    assert sync_link(ctx, link.id).status == "succeeded"

    set_tier(runtime, range(1, 20_001), "silver")
    refresh(runtime, audience_id, hours=2)
    fake.expire_after_calls = fake.user_calls + 1  # the second batch of removals fails
    interrupted = sync_link(ctx, link.id)
    assert interrupted.status == "failed"
    assert len(remote_emails(fake)) == 15_000  # 10,000 of the 20,000 were removed
    assert sync_catalog.get_link(runtime.catalog, link.id).in_flight is not None

    set_tier(runtime, range(1, 20_001), "gold")  # they all come back
    refresh(runtime, audience_id, hours=3)
    fake.reauthenticate("fresh-token")
    sync_catalog.reauthenticate_destination(
        runtime.catalog, runtime.secrets, destination, {"access_token": "fresh-token"}
    )
    done = sync_link(ctx, link.id)
    assert done.status == "succeeded"
    assert remote_emails(fake) == expected_emails(runtime, audience_id)
    assert len(remote_emails(fake)) == 25_000
    after = sync_catalog.get_link(runtime.catalog, link.id)
    assert after.in_flight is None and after.cursor == done.refresh_id


def test_leavers_are_removed_with_the_identifiers_that_were_sent_for_them(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    audience_id, link = synced_audience(runtime, ctx, fake, meta_url, 300)
    assert sha(email_of(9)) in remote_emails(fake)
    # 9 changes email while a member (the platform keeps the hash of the old one), then
    # leaves: the old hash is what must go.
    runtime.warehouse.execute(
        "UPDATE profiles SET email = 'renamed9@example.com' WHERE profile_id = 9"
    )
    set_tier(runtime, [9], "silver")
    refresh(runtime, audience_id, hours=2)
    entry = sync_link(ctx, link.id)
    assert (entry.status, entry.removed) == ("succeeded", 1)
    assert sha(email_of(9)) not in remote_emails(fake)
    assert remote_emails(fake) == expected_emails(runtime, audience_id)
    # Delivered: the ledger no longer holds the leaver; unlinking keeps the link's rows (the
    # remote audience keeps its members; a later link into it takes them over).
    ledger = "SELECT count(*) FROM sync_ledger WHERE link_id = ?"
    assert runtime.warehouse.rows(ledger + " AND profile_id = 9", [link.id]) == [(0,)]
    assert runtime.warehouse.rows(ledger, [link.id]) == [(299,)]
    unlink(ctx, link.id)
    assert runtime.warehouse.rows(ledger, [link.id]) == [(299,)]


def test_members_merged_away_are_removed_with_what_was_sent_for_them(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    audience_id, link = synced_audience(runtime, ctx, fake, meta_url, 300)
    # 5 merges into 6 (still a member); 7 merges into 8, which then leaves. The merged-away
    # rows are gone, as collection leaves them; 8 carries 7's email now (latest wins).
    runtime.warehouse.execute("DELETE FROM profiles WHERE profile_id IN (5, 7)")
    runtime.warehouse.execute(
        "INSERT INTO profile_merges VALUES (5, 6, TIMESTAMP '2026-11-30 07:00', 'test'), "
        "(7, 8, TIMESTAMP '2026-11-30 07:00', 'test')"
    )
    runtime.warehouse.execute(
        "UPDATE profiles SET email = 'user7@example.com' WHERE profile_id = 8"
    )
    set_tier(runtime, [8], "silver")
    refresh(runtime, audience_id, hours=2)
    entry = sync_link(ctx, link.id)
    assert entry.status == "succeeded"
    assert entry.skipped_reasons == {"merged into a profile that is still a member": 1}
    assert entry.removed == 2  # what was sent for 7 and for 8
    remote = remote_emails(fake)
    assert sha(email_of(5)) in remote  # same person as 6, who is still a member
    assert sha(email_of(7)) not in remote
    assert sha(email_of(8)) not in remote  # 8's email before the merge, as it was sent
    assert sha(email_of(6)) in remote


def test_a_new_audience_with_a_deleted_ones_name_gets_its_own_remote_audience(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    from segmint.audiences import service

    old_id, old_link = synced_audience(runtime, ctx, fake, meta_url, 300)
    (old_remote,) = fake.audiences.values()
    old_emails = old_remote.values("EMAIL")
    assert len(old_emails) == 300
    service.delete(runtime.catalog, old_id, by="test", now=T0)  # its link keeps the audience

    set_tier(runtime, range(1, 101), "silver")
    new_id = activate(runtime, hours=1)  # the same name, free again
    new_link = sync_catalog.link_audience(runtime.catalog, new_id, old_link.destination_id)
    assert sync_link(ctx, new_link.id).status == "succeeded"

    by_name = {audience.name: audience for audience in fake.audiences.values()}
    assert set(by_name) == {"gold_members", f"gold_members (#{new_id})"}
    assert by_name["gold_members"].values("EMAIL") == old_emails  # untouched
    assert by_name[f"gold_members (#{new_id})"].values("EMAIL") == expected_emails(runtime, new_id)
    assert len(expected_emails(runtime, new_id)) == 200

    delete_link(ctx, new_link.id)  # removes only the new audience's remote audience
    assert [audience.name for audience in fake.audiences.values()] == ["gold_members"]


def test_linking_again_to_the_kept_remote_audience_removes_who_left_meanwhile(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    audience_id, link = synced_audience(runtime, ctx, fake, meta_url, 300)
    before = remote_emails(fake)
    assert before == expected_emails(runtime, audience_id)
    unlink(ctx, link.id)  # the remote audience stays, members and all (R22 Unlink)

    set_tier(runtime, range(1, 51), "silver")  # 50 leave while nothing syncs
    refresh(runtime, audience_id, hours=1)
    assert members(runtime, audience_id) == set(range(51, 301))
    assert remote_emails(fake) == before

    again = sync_catalog.link_audience(runtime.catalog, audience_id, link.destination_id)
    outcome = sync_link(ctx, again.id)
    assert outcome.status == "succeeded", outcome.error_message
    assert len(fake.audiences) == 1  # the kept remote audience, synced into again
    assert remote_emails(fake) == expected_emails(runtime, audience_id)
    assert outcome.removed == len(before - remote_emails(fake)) > 0
    assert sync_link(ctx, again.id).removed == 0  # nothing left to remove

    ledger = "SELECT count(*) FROM sync_ledger WHERE link_id IN (?, ?)"
    assert runtime.warehouse.rows(ledger, [link.id, again.id]) == [(len(remote_emails(fake)),)]
    delete_link(ctx, again.id)  # the remote audience is gone: so is what was sent to it
    assert runtime.warehouse.rows(ledger, [link.id, again.id]) == [(0,)]


def test_event_sync_of_a_new_audience_with_a_deleted_ones_name_keeps_its_own_folder(
    runtime: Runtime, ctx: SyncContext, tmp_path: Path
) -> None:
    from segmint.audiences import service
    from segmint.destinations.file_export import read_rows

    directory = tmp_path / "exports"

    def folders() -> set[str]:
        return {path.name for path in directory.iterdir()}

    def rows(folder: str) -> list[dict[str, str | None]]:
        return [row for path in sorted((directory / folder).iterdir()) for row in read_rows(path)]

    seed_profiles(runtime, 60)
    old_id = activate(runtime)
    exports = sync_catalog.create_destination(
        runtime.catalog, runtime.secrets, "Exports", "file", {}, {"directory": str(directory)}
    )
    old_link = sync_catalog.link_audience(runtime.catalog, old_id, exports.id, mode="event")
    assert sync_link(ctx, old_link.id).status == "succeeded"
    assert folders() == {"gold_members"}
    old_rows = rows("gold_members")
    service.delete(runtime.catalog, old_id, by="test", now=T0)  # its link stays

    new_id = activate(runtime, hours=1)  # the same name, free again
    new_link = sync_catalog.link_audience(runtime.catalog, new_id, exports.id, mode="event")
    assert sync_link(ctx, new_link.id).status == "succeeded"
    own = f"gold_members (#{new_id})"
    assert folders() == {"gold_members", own}
    assert rows("gold_members") == old_rows  # untouched
    sent = rows(own)
    assert {(row["audience_id"], row["audience_name"]) for row in sent} == {(str(new_id), own)}
    assert {int(str(row["profile_id"])) for row in sent} == members(runtime, new_id)

    delete_link(ctx, new_link.id)  # removes only the new audience's folder
    assert folders() == {"gold_members"}


def test_after_an_edit_that_recomputes_history_the_platform_follows_the_new_definition(
    runtime: Runtime, ctx: SyncContext, fake: FakeMeta, meta_url: str
) -> None:
    """Recomputing history rewrites what history says about past refreshes, not what the
    platform was told: the next sync must still move the platform to the new members."""
    from datetime import timedelta

    from segmint.audiences import operations
    from tests.sync.sync_world import DEFINITION

    seed_profiles(runtime, 300)
    set_tier(runtime, range(1, 101), "silver")
    audience_id = activate(runtime)
    link = sync_catalog.link_audience(
        runtime.catalog, audience_id, connect(runtime, fake, meta_url)
    )
    assert sync_link(ctx, link.id).status == "succeeded"
    refresh(runtime, audience_id, hours=1)
    assert sync_link(ctx, link.id).status == "succeeded"
    assert remote_emails(fake) == {sha(email_of(p)) for p in range(101, 301)}

    silver = {"root": {**DEFINITION["root"]}}
    silver["root"]["conditions"] = [
        {**DEFINITION["root"]["conditions"][0], "value": "silver"},
        DEFINITION["root"]["conditions"][1],
    ]
    operations.save_definition(
        runtime.warehouse,
        runtime.catalog,
        audience_id,
        silver,
        by="test",
        timezone="UTC",
        apply="recompute_history",
        now=T0 + timedelta(hours=1, minutes=30),
    )
    refresh(runtime, audience_id, hours=2)
    assert members(runtime, audience_id) == set(range(1, 101))
    assert sync_link(ctx, link.id).status == "succeeded"
    assert remote_emails(fake) == expected_emails(runtime, audience_id)
