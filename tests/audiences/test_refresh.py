"""Refreshing an audience: the diff, the emitted events, history, usage, all-or-nothing
commits, reruns, failures and refusals. Runs on a SQLite and a PostgreSQL catalog."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator

import pytest

from segmint.audiences import usage
from segmint.audiences.history import size_over_time
from segmint.audiences.refresh import (
    ADDED_EVENT,
    REMOVED_EVENT,
    STEPS,
    RefreshFailed,
    RefreshRefused,
    read_marker,
    refresh_audience,
    retry_delay,
)
from segmint.definitions.limits import MAX_NODES
from segmint.errors import NotFound
from tests.audiences.helpers import (
    DAY,
    T0,
    TZ,
    Crash,
    Killed,
    Store,
    crash_after,
    day,
    open_store,
    purchased_between,
    purchased_within,
)


@pytest.fixture
def store(catalog_url: str) -> Iterator[Store]:
    with open_store(catalog_url) as opened:
        yield opened


def refresh(store: Store, audience_id: int, at: dt.datetime, **kwargs: object) -> object:
    return refresh_audience(
        store.warehouse, store.catalog, audience_id, as_of=at, timezone=TZ, **kwargs
    )


def buyers(store: Store, profiles: range = range(1, 6)) -> int:
    """Profiles 1..5; 1 and 2 bought a day before day 0; a 7-day buyers audience."""
    for profile_id in profiles:
        store.profile(profile_id)
    store.event(1, "purchase", day(-1, 12))
    store.event(2, "purchase", day(-1, 13))
    store.event(3, "view", day(-1, 12))
    return store.audience("buyers", purchased_within(7))


# --- the diff and its events ---------------------------------------------------------------


def test_first_refresh_adds_every_member_and_emits_one_added_event_each(store: Store) -> None:
    audience_id = buyers(store)
    result = refresh_audience(
        store.warehouse, store.catalog, audience_id, as_of=day(0), timezone=TZ
    )
    assert (result.size, result.entered, result.left) == (2, 2, 0)
    assert store.members(audience_id) == {1, 2}
    assert store.segment_events(audience_id) == {(ADDED_EVENT, 1), (ADDED_EVENT, 2)}
    marker = read_marker(store.warehouse, result.refresh_id)
    assert marker is not None and (marker.size, marker.entered, marker.left) == (2, 2, 0)


def test_emitted_events_carry_audience_refresh_and_profile_identity(store: Store) -> None:
    audience_id = buyers(store)
    result = refresh_audience(
        store.warehouse,
        store.catalog,
        audience_id,
        as_of=day(0),
        now=day(0, 6.5),
        timezone=TZ,
    )
    rows = store.warehouse.rows(
        'SELECT message_id, type, event, user_id, anonymous_id, "timestamp", received_at, '
        "properties, source FROM all_events WHERE source = 'segmint' AND profile_id = 1"
    )
    assert len(rows) == 1
    message_id, kind, event, user_id, anonymous_id, timestamp, received_at, props, source = rows[0]
    assert message_id == f"{result.refresh_id}:1:added"
    assert (kind, event, source) == ("track", ADDED_EVENT, "segmint")
    assert (user_id, anonymous_id) == ("u1", "a1")
    assert (timestamp, received_at) == (day(0), day(0, 6.5))
    assert json.loads(props) == {
        "audience_id": audience_id,
        "audience_name": "buyers",
        "refresh_id": result.refresh_id,
    }


def test_dynamic_audience_drops_user_when_window_passes_without_new_events(store: Store) -> None:
    audience_id = buyers(store)
    refresh(store, audience_id, day(0))
    store.event(3, "purchase", day(3, 12))
    later = refresh_audience(store.warehouse, store.catalog, audience_id, as_of=day(7), timezone=TZ)
    # 1 and 2 bought on day -1: out of the last 7 days on day 7; 3 bought on day 3.
    assert store.members(audience_id) == {3}
    assert (later.size, later.entered, later.left) == (1, 1, 2)
    assert store.segment_events(audience_id, later.refresh_id) == {
        (ADDED_EVENT, 3),
        (REMOVED_EVENT, 1),
        (REMOVED_EVENT, 2),
    }


def test_refresh_without_changes_emits_nothing_but_still_meters_usage(store: Store) -> None:
    audience_id = buyers(store)
    refresh(store, audience_id, day(0))
    again = refresh_audience(
        store.warehouse, store.catalog, audience_id, as_of=day(0, 7), timezone=TZ
    )
    assert (again.size, again.entered, again.left) == (2, 0, 0)
    assert store.segment_events(audience_id, again.refresh_id) == set()
    assert [u.events for u in store.usage(audience_id)] == [2, 2]


def test_new_version_applies_from_the_next_refresh(store: Store) -> None:
    audience_id = buyers(store)
    refresh(store, audience_id, day(0))
    version = store.set_definition(audience_id, purchased_within(7, event="view"), day(0, 8))
    result = refresh_audience(
        store.warehouse, store.catalog, audience_id, as_of=day(0, 9), timezone=TZ
    )
    assert result.version == version == 2
    assert store.members(audience_id) == {3}
    assert store.runs(audience_id)[-1].version == 2


def test_a_version_saved_before_the_size_limits_keeps_refreshing(store: Store) -> None:
    """Definitions are limited when they are saved (definitions/limits.py); one saved before
    a limit existed is read as stored."""
    audience_id = buyers(store)
    events = ["purchase", *(f"other_{i}" for i in range(MAX_NODES + 20))]
    store.set_definition(
        audience_id, {"kind": "or", "conditions": [purchased_within(7, e) for e in events]}, T0
    )
    result = refresh_audience(
        store.warehouse, store.catalog, audience_id, as_of=day(0), timezone=TZ
    )
    assert result.size == 2


def _reference_members(purchases: dict[int, list[dt.datetime]], as_of: dt.datetime) -> set[int]:
    """Independent of the compiler: bought in [as_of − 7 days, as_of)."""
    return {
        profile_id
        for profile_id, times in purchases.items()
        if any(as_of - 7 * DAY <= t < as_of for t in times)
    }


def test_simulated_month_of_daily_refreshes(store: Store) -> None:
    """30 daily refreshes: members, added/removed events, history and usage all agree with
    the data and with each other after every refresh."""
    rng = random.Random(20250301)
    purchases: dict[int, list[dt.datetime]] = {}
    for profile_id in range(1, 41):
        store.profile(profile_id)
        days = rng.sample(range(-10, 32), rng.randint(0, 4))
        purchases[profile_id] = [day(d, 12 + rng.random() * 6) for d in days]
        for moment in purchases[profile_id]:
            store.event(profile_id, "purchase", moment, {"amount": rng.randint(5, 200)})
        store.event(profile_id, "page_view", day(rng.randint(-5, 30), 9))
    audience_id = store.audience("buyers_7d", purchased_within(7))

    previous: set[int] = set()
    for n in range(30):
        as_of = day(n)
        result = refresh_audience(
            store.warehouse,
            store.catalog,
            audience_id,
            as_of=as_of,
            timezone=TZ,
            trigger="schedule",
        )
        expected = _reference_members(purchases, as_of)
        assert store.members(audience_id) == expected == store.evaluate(audience_id, as_of)
        assert store.segment_events(audience_id, result.refresh_id) == {
            *((ADDED_EVENT, p) for p in expected - previous),
            *((REMOVED_EVENT, p) for p in previous - expected),
        }
        assert (result.size, result.entered, result.left) == (
            len(expected),
            len(expected - previous),
            len(previous - expected),
        )
        previous = expected

    runs = store.runs(audience_id)
    assert [r.status for r in runs] == ["succeeded"] * 30
    assert [u.events for u in store.usage(audience_id)] == [r.size for r in runs]
    assert [u.day for u in store.usage(audience_id)] == [day(n).date() for n in range(30)]
    sizes = [r.size or 0 for r in runs]
    assert usage.total_usage(store.catalog, audience_id=audience_id) == sum(sizes)
    per_day = usage.usage_per_day(store.catalog, start=day(0).date(), end=day(29).date())
    assert [(d.events, d.refreshes) for d in per_day] == [(size, 1) for size in sizes]
    assert [h.size for h in size_over_time(store.warehouse, audience_id)] == sizes
    spells = store.warehouse.rows(
        "SELECT count(*), count(left_at) FROM membership_history WHERE audience_id = ?",
        [audience_id],
    )[0]
    added = sum(r.entered or 0 for r in runs)
    removed = sum(r.left or 0 for r in runs)
    assert spells == (added, removed)
    assert store.count("segment_events") == added + removed
    audience = store.get(audience_id)
    assert audience.size == len(previous)
    assert audience.last_refresh_at == day(29)
    assert audience.next_refresh_at == day(30)


def test_segment_events_are_usable_in_other_audiences_conditions(store: Store) -> None:
    audience_id = buyers(store)
    newcomers = store.audience(
        "new_buyers",
        {
            "kind": "event",
            "event": ADDED_EVENT,
            "filters": [{"property": "audience_name", "operator": "equals", "value": "buyers"}],
            "window": {"type": "relative", "last": 1, "unit": "days"},
        },
    )
    refresh(store, audience_id, day(0))
    refresh(store, newcomers, day(0, 7))
    assert store.members(newcomers) == {1, 2}
    store.event(3, "purchase", day(1, 12))
    refresh(store, audience_id, day(2))
    refresh(store, newcomers, day(2, 7))
    assert store.members(newcomers) == {3}


# --- all or nothing ------------------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_crash_after_any_step_leaves_no_trace_and_a_rerun_succeeds(store: Store, step: str) -> None:
    audience_id = buyers(store)
    refresh(store, audience_id, day(0))
    store.event(3, "purchase", day(1, 12))
    before = store.snapshot()

    with pytest.raises(RefreshFailed) as failure:
        refresh(store, audience_id, day(2), fail_after=crash_after(step))
    assert store.snapshot() == before
    assert "previous members are unchanged" in failure.value.message
    failed = store.runs(audience_id)[-1]
    assert (failed.status, failed.error_class) == ("failed", "Crash")
    assert f"after {step}" in (failed.error_message or "")

    result = refresh_audience(
        store.warehouse,
        store.catalog,
        audience_id,
        as_of=day(2),
        timezone=TZ,
        refresh_id=failure.value.refresh_id,
    )
    assert store.members(audience_id) == {1, 2, 3}
    assert store.segment_events(audience_id, result.refresh_id) == {(ADDED_EVENT, 3)}
    rerun = store.runs(audience_id)[-1]
    assert (rerun.id, rerun.status, rerun.attempt) == (result.refresh_id, "succeeded", 2)
    assert len(store.usage(audience_id)) == 2


def test_killed_refresh_rolls_back_the_warehouse_and_stays_running(store: Store) -> None:
    audience_id = buyers(store)
    before = store.snapshot()
    with pytest.raises(Killed):
        refresh(store, audience_id, day(0), fail_after=crash_after("events", Killed))
    assert store.snapshot() == before
    assert [r.status for r in store.runs(audience_id)] == ["running"]  # a stuck run


def test_catalog_failure_after_commit_is_completed_by_a_rerun_without_new_events(
    store: Store,
) -> None:
    audience_id = buyers(store)
    with pytest.raises(RefreshFailed) as failure:
        refresh(store, audience_id, day(0), fail_after=crash_after("committed"))
    refresh_id = failure.value.refresh_id
    assert "new members were committed" in failure.value.message
    assert read_marker(store.warehouse, refresh_id) is not None
    assert store.members(audience_id) == {1, 2}
    assert store.usage(audience_id) == []

    result = refresh_audience(
        store.warehouse,
        store.catalog,
        audience_id,
        as_of=day(0),
        now=day(0, 7),
        timezone=TZ,
        refresh_id=refresh_id,
    )
    assert result.resumed and (result.size, result.entered) == (2, 2)
    assert store.segment_events(audience_id) == {(ADDED_EVENT, 1), (ADDED_EVENT, 2)}
    assert store.count("segment_events") == 2
    assert [u.events for u in store.usage(audience_id)] == [2]
    audience = store.get(audience_id)
    assert (audience.size, audience.consecutive_failures, audience.last_error) == (2, 0, None)
    assert store.runs(audience_id)[-1].status == "succeeded"


def test_rerunning_a_succeeded_refresh_changes_nothing(store: Store) -> None:
    audience_id = buyers(store)
    first = refresh_audience(store.warehouse, store.catalog, audience_id, as_of=day(0), timezone=TZ)
    before = store.snapshot()
    again = refresh_audience(
        store.warehouse,
        store.catalog,
        audience_id,
        as_of=day(0),
        timezone=TZ,
        refresh_id=first.refresh_id,
    )
    assert (again.refresh_id, again.size, again.entered) == (first.refresh_id, 2, 2)
    assert store.snapshot() == before
    assert len(store.usage(audience_id)) == 1


# --- failures and backoff ------------------------------------------------------------------


def test_failed_refresh_is_recorded_and_retried_with_growing_backoff(store: Store) -> None:
    store.profile(1)
    audience_id = store.audience(
        "broken", {"kind": "audience", "audience": "never_saved"}, interval=dt.timedelta(hours=1)
    )
    delays = []
    for attempt in range(1, 6):
        now = day(0) + dt.timedelta(hours=attempt)
        with pytest.raises(RefreshFailed) as failure:
            refresh(store, audience_id, now)
        assert "never_saved" in failure.value.message
        audience = store.get(audience_id)
        assert audience.consecutive_failures == attempt
        assert audience.last_error and "never_saved" in audience.last_error
        assert failure.value.retry_at == audience.next_refresh_at
        delays.append(audience.next_refresh_at - now)  # type: ignore[operator]
    minutes = [d.total_seconds() / 60 for d in delays]
    assert minutes == [5, 10, 20, 40, 60]  # doubled each time, capped at the 1-hour interval
    runs = store.runs(audience_id)
    assert [r.status for r in runs] == ["failed"] * 5
    assert [r.attempt for r in runs] == [1, 2, 3, 4, 5]
    assert {r.error_class for r in runs} == {"DefinitionError"}


def test_success_after_failures_resets_the_failure_count(store: Store) -> None:
    audience_id = buyers(store)
    with pytest.raises(RefreshFailed):
        refresh(store, audience_id, day(0), fail_after=crash_after("diff"))
    assert store.get(audience_id).consecutive_failures == 1
    refresh(store, audience_id, day(0, 6.5))
    audience = store.get(audience_id)
    assert (audience.consecutive_failures, audience.last_error) == (0, None)
    assert audience.next_refresh_at == day(0, 6.5) + DAY


@pytest.mark.parametrize(
    ("failures", "interval", "expected"),
    [
        (1, 86400, dt.timedelta(minutes=5)),
        (3, 86400, dt.timedelta(minutes=20)),
        (12, 86400, dt.timedelta(days=1)),
        (4, 3600, dt.timedelta(minutes=40)),
        (5, 3600, dt.timedelta(hours=1)),
        (100, None, dt.timedelta(days=1)),
    ],
)
def test_retry_delay_doubles_and_is_capped_at_the_interval(
    failures: int, interval: int | None, expected: dt.timedelta
) -> None:
    assert retry_delay(failures, interval) == expected


# --- schedule after a refresh --------------------------------------------------------------


def test_warmup_refreshes_daily_for_three_days_then_at_the_chosen_interval(store: Store) -> None:
    store.profile(1)
    audience_id = store.audience(
        "weekly", purchased_within(30), interval=7 * DAY, warmup=True, activated_at=day(0)
    )
    refresh(store, audience_id, day(0))
    assert store.get(audience_id).next_refresh_at == day(1)
    refresh(store, audience_id, day(3, 7))
    assert store.get(audience_id).next_refresh_at == day(10, 7)


def test_without_warmup_the_next_refresh_is_one_interval_later(store: Store) -> None:
    store.profile(1)
    audience_id = store.audience("weekly", purchased_within(30), interval=7 * DAY)
    refresh(store, audience_id, day(0))
    assert store.get(audience_id).next_refresh_at == day(7)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "remedy"),
    [
        ("draft", "activate"),
        ("archived", "restore it and activate it again"),
        ("deleted", "restore it and activate it again"),
    ],
)
def test_refreshing_an_inactive_audience_is_refused(store: Store, status: str, remedy: str) -> None:
    store.profile(1)
    audience_id = store.audience("paused", purchased_within(7), status=status)
    with pytest.raises(RefreshRefused) as refused:
        refresh(store, audience_id, day(0))
    assert status in refused.value.message and remedy in refused.value.message
    assert store.runs(audience_id) == []
    assert store.count("audience_refreshes") == 0


def test_refreshing_an_unknown_audience_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        refresh(store, 999, day(0))


def test_static_audience_is_computed_once_at_activation(store: Store) -> None:
    store.profile(1)
    store.profile(2)
    store.event(1, "purchase", dt.datetime(2025, 2, 10, 12))
    audience_id = store.audience(
        "february_buyers", purchased_between("2025-02-01", "2025-03-01"), interval=None
    )
    assert store.get(audience_id).is_dynamic is False
    first = refresh_audience(
        store.warehouse,
        store.catalog,
        audience_id,
        as_of=T0,
        timezone=TZ,
        trigger="activation",
    )
    assert first.size == 1
    assert store.get(audience_id).next_refresh_at is None
    for trigger in ("manual", "schedule"):
        with pytest.raises(RefreshRefused, match="static"):
            refresh(store, audience_id, day(1), trigger=trigger)
    # Editing and activating again recomputes it.
    store.event(2, "purchase", dt.datetime(2025, 2, 11, 12))
    again = refresh(store, audience_id, day(2), trigger="activation")
    assert store.members(audience_id) == {1, 2}
    assert again.entered == 1  # type: ignore[attr-defined]


def test_static_audience_whose_activation_refresh_failed_may_be_retried(store: Store) -> None:
    store.profile(1)
    store.event(1, "purchase", dt.datetime(2025, 2, 10, 12))
    audience_id = store.audience(
        "february_buyers", purchased_between("2025-02-01", "2025-03-01"), interval=None
    )
    with pytest.raises(RefreshFailed):
        refresh(store, audience_id, T0, trigger="activation", fail_after=crash_after("events"))
    assert store.get(audience_id).next_refresh_at == T0 + dt.timedelta(minutes=5)
    refresh(store, audience_id, T0 + dt.timedelta(minutes=5), trigger="schedule")
    assert store.members(audience_id) == {1}


def test_a_refresh_as_of_before_the_last_one_is_refused(store: Store) -> None:
    audience_id = buyers(store)
    refresh(store, audience_id, day(2))
    with pytest.raises(RefreshRefused, match="only moves forward"):
        refresh(store, audience_id, day(1))


def test_timezone_aware_instants_are_stored_as_utc(store: Store) -> None:
    audience_id = buyers(store)
    paris = dt.timezone(dt.timedelta(hours=1))
    result = refresh_audience(
        store.warehouse,
        store.catalog,
        audience_id,
        as_of=day(0).replace(tzinfo=dt.UTC).astimezone(paris),
        timezone=TZ,
    )
    assert result.as_of == day(0)
    assert isinstance(failure_free := result.duration_seconds, float) and failure_free >= 0
    assert Crash is not None
