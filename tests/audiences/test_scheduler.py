"""Scheduling (R10, B9): due audiences, leases between schedulers, stuck runs, dependency
order, backoff after failures, and the background loop."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest

from segmint.audiences import service
from segmint.audiences.refresh import ADDED_EVENT, RefreshFailed, refresh_audience
from segmint.audiences.scheduler import (
    STUCK_MESSAGE,
    DueOutcome,
    Scheduler,
    acquire_lease,
    due_audiences,
    refresh_now,
    release_lease,
    run_due,
    stuck_runs,
)
from segmint.catalog import open_catalog
from segmint.errors import Conflict
from tests.audiences.helpers import (
    DAY,
    TZ,
    Killed,
    Store,
    crash_after,
    day,
    open_store,
    purchased_between,
    purchased_within,
)

TTL = dt.timedelta(minutes=30)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def store(catalog_url: str) -> Iterator[Store]:
    with open_store(catalog_url) as opened:
        yield opened


def with_buyers(store: Store, profiles: int = 3) -> None:
    for profile_id in range(1, profiles + 1):
        store.profile(profile_id)
        store.event(profile_id, "purchase", day(-1, 12))


def statuses(outcomes: list[DueOutcome]) -> list[tuple[int, str]]:
    return [(o.audience_id, o.status) for o in outcomes]


# --- due -----------------------------------------------------------------------------------


def test_due_audiences_are_active_ones_whose_time_has_come_most_overdue_first(
    store: Store,
) -> None:
    store.profile(1)
    later = store.audience("later", purchased_within(7), next_refresh_at=day(0, 5))
    earlier = store.audience("earlier", purchased_within(7), next_refresh_at=day(0, 4))
    store.audience("future", purchased_within(7), next_refresh_at=day(0, 7))
    store.audience("unscheduled", purchased_within(7), next_refresh_at=None)
    store.audience("archived", purchased_within(7), status="archived", next_refresh_at=day(-1))
    store.audience("deleted", purchased_within(7), status="deleted", next_refresh_at=day(-1))
    assert due_audiences(store.catalog, day(0, 6)) == [earlier, later]


# --- leases --------------------------------------------------------------------------------


def test_a_lease_is_held_by_one_owner_until_it_expires_or_is_released(store: Store) -> None:
    store.profile(1)
    audience_id = store.audience("buyers", purchased_within(7))
    assert acquire_lease(store.catalog, audience_id, "a", day(0), TTL)
    assert not acquire_lease(store.catalog, audience_id, "b", day(0) + 10 * MINUTE, TTL)
    assert acquire_lease(store.catalog, audience_id, "a", day(0) + 10 * MINUTE, TTL)  # renewal
    assert not release_lease(store.catalog, audience_id, "b")  # not b's to release
    assert not acquire_lease(store.catalog, audience_id, "b", day(0) + 39 * MINUTE, TTL)
    assert acquire_lease(store.catalog, audience_id, "b", day(0) + 41 * MINUTE, TTL)  # expired
    assert store.get(audience_id).lease_owner == "b"
    assert release_lease(store.catalog, audience_id, "b")
    assert acquire_lease(store.catalog, audience_id, "c", day(0) + 42 * MINUTE, TTL)


def test_of_many_schedulers_racing_for_a_lease_exactly_one_wins(
    store: Store, catalog_url: str
) -> None:
    store.profile(1)
    audience_id = store.audience("buyers", purchased_within(7))
    catalogs = [open_catalog(catalog_url) for _ in range(6)]
    barrier = threading.Barrier(len(catalogs))
    wins: list[str] = []

    def contend(index: int) -> None:
        barrier.wait()
        if acquire_lease(catalogs[index], audience_id, f"owner{index}", day(0), TTL):
            wins.append(f"owner{index}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(catalogs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for catalog in catalogs:
        catalog.dispose()
    assert len(wins) == 1
    assert store.get(audience_id).lease_owner == wins[0]


def test_two_schedulers_running_at_once_refresh_each_audience_once(
    store: Store, catalog_url: str
) -> None:
    with_buyers(store)
    ids = [
        store.audience(f"buyers_{n}", purchased_within(7 + n), next_refresh_at=day(0))
        for n in range(5)
    ]
    catalogs = [open_catalog(catalog_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[DueOutcome] = []
    errors: list[BaseException] = []

    def schedule(index: int) -> None:
        barrier.wait()
        try:
            outcomes.extend(run_due(store.warehouse, catalogs[index], day(0), f"s{index}", TZ))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=schedule, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for catalog in catalogs:
        catalog.dispose()
    assert errors == []
    refreshed = sorted(o.audience_id for o in outcomes if o.status == "refreshed")
    assert refreshed == ids
    assert {o.status for o in outcomes} <= {"refreshed", "leased", "skipped"}
    per_audience = store.warehouse.rows(
        "SELECT audience_id, count(*) FROM audience_refreshes GROUP BY 1 ORDER BY 1"
    )
    assert per_audience == [(i, 1) for i in ids]
    assert store.count(f"segment_event_rows WHERE event = '{ADDED_EVENT}'") == 3 * len(ids)
    assert all(store.get(i).lease_owner is None for i in ids)  # every lease released


def test_refresh_now_refuses_while_another_process_holds_the_lease(store: Store) -> None:
    with_buyers(store)
    audience_id = store.audience("buyers", purchased_within(7))
    assert acquire_lease(store.catalog, audience_id, "server", day(0), TTL)
    with pytest.raises(Conflict, match="being refreshed"):
        refresh_now(
            store.warehouse, store.catalog, audience_id, owner="cli", now=day(0), timezone=TZ
        )
    release_lease(store.catalog, audience_id, "server")
    result = refresh_now(
        store.warehouse, store.catalog, audience_id, owner="cli", now=day(0), timezone=TZ
    )
    assert result.size == 3
    assert store.get(audience_id).lease_owner is None


# --- one pass ------------------------------------------------------------------------------


def test_run_due_refreshes_what_is_due_and_schedules_the_next_refresh(store: Store) -> None:
    with_buyers(store)
    daily = store.audience("daily", purchased_within(7), next_refresh_at=day(0))
    hourly = store.audience(
        "hourly", purchased_within(7), interval=dt.timedelta(hours=1), next_refresh_at=day(0)
    )
    store.audience("not_yet", purchased_within(7), next_refresh_at=day(1))
    outcomes = run_due(store.warehouse, store.catalog, day(0), "s", TZ)
    assert statuses(outcomes) == [(daily, "refreshed"), (hourly, "refreshed")]
    assert store.get(daily).next_refresh_at == day(1)
    assert store.get(hourly).next_refresh_at == day(0, 7)
    assert run_due(store.warehouse, store.catalog, day(0, 6.5), "s", TZ) == []
    assert statuses(run_due(store.warehouse, store.catalog, day(0, 7), "s", TZ)) == [
        (hourly, "refreshed")
    ]
    # The first refresh after activation is the activation refresh; the rest are scheduled.
    assert [r.trigger for r in store.runs(hourly)] == ["activation", "schedule"]


def test_archived_audiences_are_never_refreshed_by_the_scheduler(store: Store) -> None:
    with_buyers(store)
    archived = store.audience("old", purchased_within(7), next_refresh_at=day(0))
    store.update_audience(archived, status="archived")
    assert run_due(store.warehouse, store.catalog, day(1), "s", TZ) == []
    assert store.runs(archived) == []


def test_failures_are_retried_with_backoff_and_do_not_stop_the_pass(store: Store) -> None:
    with_buyers(store)
    broken = store.audience(
        "broken", {"kind": "audience", "audience": "missing"}, next_refresh_at=day(0)
    )
    healthy = store.audience("healthy", purchased_within(7), next_refresh_at=day(0))
    first = run_due(store.warehouse, store.catalog, day(0), "s", TZ)
    assert statuses(first) == [(broken, "failed"), (healthy, "refreshed")]
    assert first[0].error and "missing" in first[0].error
    assert store.get(broken).next_refresh_at == day(0) + 5 * MINUTE
    assert run_due(store.warehouse, store.catalog, day(0) + 4 * MINUTE, "s", TZ) == []
    second = run_due(store.warehouse, store.catalog, day(0) + 5 * MINUTE, "s", TZ)
    assert statuses(second) == [(broken, "failed")]
    assert store.get(broken).next_refresh_at == day(0) + 15 * MINUTE
    assert store.get(broken).consecutive_failures == 2
    assert [r.status for r in store.runs(broken)] == ["failed", "failed"]


def test_a_run_whose_catalog_write_failed_is_completed_not_recomputed(store: Store) -> None:
    with_buyers(store)
    audience_id = store.audience("buyers", purchased_within(7), next_refresh_at=day(0))
    with pytest.raises(RefreshFailed):
        refresh_audience(
            store.warehouse,
            store.catalog,
            audience_id,
            as_of=day(0),
            timezone=TZ,
            fail_after=crash_after("committed"),
        )
    outcomes = run_due(store.warehouse, store.catalog, day(0) + 5 * MINUTE, "s", TZ)
    assert statuses(outcomes) == [(audience_id, "completed")]
    assert store.count("audience_refreshes") == 1
    assert store.count("segment_events") == 3
    assert [u.events for u in store.usage(audience_id)] == [3]
    assert store.get(audience_id).next_refresh_at == day(0) + 5 * MINUTE + DAY


def test_a_refused_static_audience_leaves_the_schedule(store: Store) -> None:
    store.profile(1)
    static = store.audience("feb", purchased_between("2025-02-01", "2025-03-01"), interval=None)
    refresh_audience(
        store.warehouse, store.catalog, static, as_of=day(0), timezone=TZ, trigger="activation"
    )
    store.update_audience(static, next_refresh_at=day(1))  # e.g. set by hand
    outcomes = run_due(store.warehouse, store.catalog, day(1), "s", TZ)
    assert statuses(outcomes) == [(static, "refused")]
    assert store.get(static).next_refresh_at is None


# --- stuck runs ----------------------------------------------------------------------------


def test_a_stuck_run_is_detected_after_its_lease_expires_marked_failed_and_rerun(
    store: Store,
) -> None:
    with_buyers(store)
    audience_id = store.audience("buyers", purchased_within(7), next_refresh_at=day(0))
    # A scheduler takes the lease and dies halfway through the refresh.
    assert acquire_lease(store.catalog, audience_id, "crashed", day(0), TTL)
    with pytest.raises(Killed):
        refresh_audience(
            store.warehouse,
            store.catalog,
            audience_id,
            as_of=day(0),
            timezone=TZ,
            fail_after=crash_after("history", Killed),
        )
    assert stuck_runs(store.catalog, day(0) + 10 * MINUTE) == []
    blocked = run_due(store.warehouse, store.catalog, day(0) + 10 * MINUTE, "s", TZ)
    assert statuses(blocked) == [(audience_id, "leased")]

    later = day(0) + 31 * MINUTE
    assert [a for _, a in stuck_runs(store.catalog, later)] == [audience_id]
    outcomes = run_due(store.warehouse, store.catalog, later, "s", TZ)
    assert statuses(outcomes) == [(audience_id, "recovered"), (audience_id, "refreshed")]
    runs = store.runs(audience_id)
    assert [(r.status, r.error_class, r.error_message) for r in runs] == [
        ("failed", "StuckRun", STUCK_MESSAGE),
        ("succeeded", None, None),
    ]
    assert store.members(audience_id) == {1, 2, 3}
    assert store.count("segment_events") == 3
    audience = store.get(audience_id)
    assert (audience.consecutive_failures, audience.lease_owner) == (0, None)


def test_a_stuck_run_that_had_committed_is_completed(store: Store) -> None:
    with_buyers(store)
    audience_id = store.audience("buyers", purchased_within(7), next_refresh_at=day(0))
    assert acquire_lease(store.catalog, audience_id, "crashed", day(0), TTL)
    with pytest.raises(Killed):
        refresh_audience(
            store.warehouse,
            store.catalog,
            audience_id,
            as_of=day(0),
            timezone=TZ,
            fail_after=crash_after("committed", Killed),
        )
    outcomes = run_due(store.warehouse, store.catalog, day(0) + 31 * MINUTE, "s", TZ)
    assert statuses(outcomes) == [(audience_id, "completed")]
    assert [r.status for r in store.runs(audience_id)] == ["succeeded"]
    assert store.count("segment_events") == 3
    assert len(store.usage(audience_id)) == 1


# --- dependency order ----------------------------------------------------------------------


def test_audiences_using_other_audiences_refresh_after_them(store: Store) -> None:
    with_buyers(store)
    store.event(1, "view", day(-1, 14))
    # Created (and due) first, but they use audiences created after them.
    top = store.audience(
        "top",
        {"kind": "and", "conditions": [{"kind": "audience", "audience": "vip"}]},
        next_refresh_at=day(-1),
    )
    vip = store.audience(
        "vip",
        {
            "kind": "and",
            "conditions": [
                {"kind": "audience", "audience": "buyers"},
                purchased_within(7, event="view"),
            ],
        },
        next_refresh_at=day(-1),
    )
    other = store.audience("other", purchased_within(3), next_refresh_at=day(-1))
    buyers = store.audience("buyers", purchased_within(7), next_refresh_at=day(-1))
    assert service.dependency_order(store.catalog, [top, vip, other, buyers]) == [
        other,
        buyers,
        vip,
        top,
    ]
    outcomes = run_due(store.warehouse, store.catalog, day(0), "s", TZ)
    assert [o.audience_id for o in outcomes] == [other, buyers, vip, top]
    assert {o.status for o in outcomes} == {"refreshed"}
    assert store.members(top) == store.members(vip) == {1}


def test_dependency_order_keeps_a_cycle_in_the_given_order(store: Store) -> None:
    store.profile(1)
    a = store.audience("a", {"kind": "audience", "audience": "b"})
    b = store.audience("b", {"kind": "audience", "audience": "a"})
    assert service.dependency_order(store.catalog, [b, a]) == [b, a]


# --- the background loop -------------------------------------------------------------------


def test_scheduler_thread_runs_passes_until_stopped(store: Store) -> None:
    with_buyers(store)
    audience_id = store.audience("buyers", purchased_within(7), next_refresh_at=day(0))
    scheduler = Scheduler(
        store.warehouse, store.catalog, timezone=TZ, every_seconds=0.01, clock=lambda: day(0)
    )
    scheduler.start()
    deadline = time.monotonic() + 20
    while scheduler.passes < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop()
    assert scheduler.passes >= 3 and not scheduler.running
    assert [r.status for r in store.runs(audience_id)] == ["succeeded"]  # due once, run once
    assert store.get(audience_id).next_refresh_at == day(1)


# --- through the lifecycle service ---------------------------------------------------------


def test_activated_dynamic_audience_warms_up_daily_then_follows_its_interval(
    store: Store,
) -> None:
    with_buyers(store)
    draft = service.create_draft(store.catalog, purchased_within(30), by="ann", now=day(0))
    service.activate(
        store.catalog,
        draft.id,
        name="buyers_30d",
        refresh_interval=7 * DAY,
        by="ann",
        now=day(0),
    )
    refreshed_at = []
    for hour in range(0, 21 * 24, 6):  # a scheduler pass every 6 hours for three weeks
        now = day(0) + dt.timedelta(hours=hour)
        for outcome in run_due(store.warehouse, store.catalog, now, "s", TZ):
            assert outcome.status == "refreshed"
            refreshed_at.append(now)
    assert refreshed_at == [day(0), day(1), day(2), day(3), day(10), day(17)]
    triggers = [r.trigger for r in store.runs(draft.id)]
    assert triggers == ["activation"] + ["schedule"] * 5


def test_activated_static_audience_is_computed_once_and_again_after_reactivation(
    store: Store,
) -> None:
    for profile_id in (1, 2):
        store.profile(profile_id)
    store.event(1, "purchase", dt.datetime(2025, 2, 10, 12))
    february = purchased_between("2025-02-01", "2025-03-01")
    draft = service.create_draft(store.catalog, february, by="ann", now=day(0))
    service.activate(
        store.catalog, draft.id, name="february", refresh_interval=None, by="ann", now=day(0)
    )
    assert statuses(run_due(store.warehouse, store.catalog, day(0), "s", TZ)) == [
        (draft.id, "refreshed")
    ]
    assert store.get(draft.id).next_refresh_at is None
    assert run_due(store.warehouse, store.catalog, day(5), "s", TZ) == []
    # Archived, then restored and activated again: recomputed once more.
    service.archive(store.catalog, draft.id, by="ann", now=day(6))
    assert run_due(store.warehouse, store.catalog, day(7), "s", TZ) == []
    store.event(2, "purchase", dt.datetime(2025, 2, 20, 12))
    service.activate(
        store.catalog, draft.id, name="february", refresh_interval=None, by="ann", now=day(8)
    )
    outcomes = run_due(store.warehouse, store.catalog, day(8), "s", TZ)
    assert statuses(outcomes) == [(draft.id, "refreshed")]
    assert outcomes[0].result is not None and outcomes[0].result.entered == 1
    assert store.members(draft.id) == {1, 2}
    assert [r.trigger for r in store.runs(draft.id)] == ["activation", "activation"]
