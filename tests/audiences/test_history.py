"""Membership history as a ledger (R12, B2): sizes over time, members as of any instant,
changes per refresh, overlap and cohort retention."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pytest

from segmint.audiences.history import (
    Overlap,
    cohort_retention,
    members_as_of,
    overlap,
    refresh_changes,
    size_as_of,
    size_over_time,
)
from segmint.audiences.refresh import ADDED_EVENT, REMOVED_EVENT, RefreshResult, refresh_audience
from segmint.errors import NotFound
from tests.audiences.helpers import TZ, Store, day, open_store, purchased_within


@pytest.fixture
def store(catalog_url: str) -> Iterator[Store]:
    with open_store(catalog_url) as opened:
        yield opened


def refresh(store: Store, audience_id: int, at: dt.datetime) -> RefreshResult:
    return refresh_audience(store.warehouse, store.catalog, audience_id, as_of=at, timezone=TZ)


def shoppers(store: Store, seed: int = 7, profiles: int = 60) -> None:
    """Profiles with purchases and views scattered over a month and a half."""
    rng = random.Random(seed)
    for profile_id in range(1, profiles + 1):
        store.profile(profile_id)
        for d in rng.sample(range(-10, 32), rng.randint(0, 5)):
            store.event(profile_id, "purchase", day(d, rng.uniform(0, 24)))
        for d in rng.sample(range(-10, 32), rng.randint(0, 3)):
            store.event(profile_id, "view", day(d, rng.uniform(0, 24)))


def test_members_as_of_each_refresh_equal_a_fresh_evaluation_over_a_month(store: Store) -> None:
    """PRODUCT B2: for daily refreshes over a month, the membership the history reports as of
    each refresh instant equals a fresh evaluation of the compiled SQL as of that instant."""
    shoppers(store)
    buyers = store.audience("buyers_7d", purchased_within(7))
    viewers = store.audience("viewers_3d", purchased_within(3, event="view"))
    instants = [day(n, 6 + (n % 5)) for n in range(30)]  # not always the same hour
    for at in instants:
        refresh(store, buyers, at)
        refresh(store, viewers, at)
    for audience_id in (buyers, viewers):
        for at in instants:
            assert set(members_as_of(store.warehouse, audience_id, at)) == store.evaluate(
                audience_id, at
            )


def test_between_refreshes_the_history_reports_the_last_refresh(store: Store) -> None:
    shoppers(store)
    buyers = store.audience("buyers_7d", purchased_within(7))
    refresh(store, buyers, day(0))
    after_first = store.members(buyers)
    refresh(store, buyers, day(5))
    middle = day(2, 18)
    assert set(members_as_of(store.warehouse, buyers, middle)) == after_first
    assert size_as_of(store.warehouse, buyers, middle) == len(after_first)
    assert members_as_of(store.warehouse, buyers, day(-1)) == []  # before the first refresh
    assert set(members_as_of(store.warehouse, buyers, day(9))) == store.members(buyers)


def test_size_over_time_lists_every_refresh_with_entered_and_left(store: Store) -> None:
    shoppers(store)
    buyers = store.audience("buyers_7d", purchased_within(7))
    results = [refresh(store, buyers, day(n)) for n in range(10)]
    points = size_over_time(store.warehouse, buyers)
    assert [(p.refresh_id, p.as_of, p.size, p.entered, p.left) for p in points] == [
        (r.refresh_id, r.as_of, r.size, r.entered, r.left) for r in results
    ]
    window = size_over_time(store.warehouse, buyers, since=day(3), until=day(5))
    assert [p.as_of for p in window] == [day(3), day(4), day(5)]
    assert [p.size for p in points] == [r.size for r in store.runs(buyers)]


def test_refresh_changes_match_the_emitted_events(store: Store) -> None:
    shoppers(store)
    buyers = store.audience("buyers_7d", purchased_within(7))
    refresh(store, buyers, day(0))
    result = refresh(store, buyers, day(6))
    changes = refresh_changes(store.warehouse, buyers, result.refresh_id)
    events = store.segment_events(buyers, result.refresh_id)
    assert {(ADDED_EVENT, p) for p in changes.entered} | {
        (REMOVED_EVENT, p) for p in changes.left
    } == events
    assert (len(changes.entered), len(changes.left)) == (result.entered, result.left)
    assert changes.entered == sorted(changes.entered)
    limited = refresh_changes(store.warehouse, buyers, result.refresh_id, limit=1)
    assert len(limited.entered) <= 1 and len(limited.left) <= 1


def test_overlap_counts_both_only_a_and_only_b(store: Store) -> None:
    for profile_id in range(1, 7):
        store.profile(profile_id)
    for profile_id in (1, 2, 3, 4):
        store.event(profile_id, "purchase", day(-1, 12))
    for profile_id in (3, 4, 5):
        store.event(profile_id, "view", day(-1, 12))
    buyers = store.audience("buyers", purchased_within(7))
    viewers = store.audience("viewers", purchased_within(7, event="view"))
    refresh(store, buyers, day(0))
    refresh(store, viewers, day(0))
    now = overlap(store.warehouse, buyers, viewers)
    assert now == Overlap(both=2, only_a=2, only_b=1)
    assert now.union == 5
    # After the window passes both are empty; as of day 0 the history still says the above.
    refresh(store, buyers, day(9))
    refresh(store, viewers, day(9))
    assert overlap(store.warehouse, buyers, viewers) == Overlap(0, 0, 0)
    assert overlap(store.warehouse, buyers, viewers, as_of=day(0, 12)) == now


def test_cohort_retention_counts_entrants_still_members_later(store: Store) -> None:
    for profile_id in range(1, 5):
        store.profile(profile_id)
    # All four enter on day 0; 1 and 2 buy again and stay, 3 comes back on day 9, 4 never.
    for profile_id in (1, 2, 3, 4):
        store.event(profile_id, "purchase", day(-1, 12))
    for profile_id in (1, 2):
        store.event(profile_id, "purchase", day(4, 12))
    store.event(3, "purchase", day(8, 12))
    buyers = store.audience("buyers", purchased_within(7))
    first = refresh(store, buyers, day(0))
    for n in (3, 7, 9):
        refresh(store, buyers, day(n))
    retention = cohort_retention(store.warehouse, buyers, first.refresh_id)
    assert [(p.as_of, p.cohort_size, p.retained) for p in retention] == [
        (day(0), 4, 4),
        (day(3), 4, 4),
        (day(7), 4, 2),
        (day(9), 4, 3),
    ]
    assert retention[2].rate == 0.5


def test_retention_of_every_cohort_matches_fresh_evaluations_over_weeks(store: Store) -> None:
    """B2, checked independently of the history: each refresh's cohort is read from its
    added_to_segment events and each later membership from a fresh evaluation."""
    shoppers(store, seed=11)
    buyers = store.audience("buyers_7d", purchased_within(7))
    instants = [day(n, 6 + (n % 5)) for n in range(20)]
    results = [refresh(store, buyers, at) for at in instants]
    fresh = [store.evaluate(buyers, at) for at in instants]
    assert any(r.left for r in results) and any(r.entered for r in results[1:])
    for k, result in enumerate(results):
        cohort = {p for e, p in store.segment_events(buyers, result.refresh_id) if e == ADDED_EVENT}
        points = cohort_retention(store.warehouse, buyers, result.refresh_id)
        assert [p.refresh_id for p in points] == [r.refresh_id for r in results[k:]]
        assert [(p.cohort_size, p.retained) for p in points] == [
            (len(cohort), len(cohort & members)) for members in fresh[k:]
        ]
    first = cohort_retention(store.warehouse, buyers, results[0].refresh_id)
    assert cohort_retention(store.warehouse, buyers) == first  # the default cohort


def test_cohort_retention_of_an_unknown_refresh_is_not_found(store: Store) -> None:
    store.profile(1)
    buyers = store.audience("buyers", purchased_within(7))
    with pytest.raises(NotFound, match="no committed refresh 'no-such-refresh'"):
        cohort_retention(store.warehouse, buyers, "no-such-refresh")
    with pytest.raises(NotFound, match="not been refreshed yet"):
        cohort_retention(store.warehouse, buyers)
