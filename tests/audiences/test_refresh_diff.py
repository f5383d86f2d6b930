"""The warehouse side of a refresh on arbitrary member sets: the bitmap diff must find exactly
the profiles that entered and left, whatever the ids (bucket edges, sparse and huge ids,
empty sets), and write events, spells and membership to match. Python's set operations are
the reference."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.audiences.refresh import ADDED_EVENT, REMOVED_EVENT, RefreshTarget, write_membership
from segmint.warehouse import open_warehouse
from tests.audiences.helpers import VALUES_DEFINITION, members_query

AUDIENCE_ID = 7
START = dt.datetime(2026, 1, 1, 6, 0)

# Ids near the edges of 64-bit words, ids sharing a word, and far-apart ids.
profile_ids = st.one_of(
    st.integers(min_value=1, max_value=200),
    st.sampled_from([63, 64, 65, 127, 128, 4095, 4096, 2**31 - 1, 2**31, 2**40 + 63]),
    st.integers(min_value=1, max_value=2**62),
)
member_sets = st.lists(st.frozensets(profile_ids, max_size=40), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(member_sets)
def test_refreshes_write_exactly_the_set_differences(sets: list[frozenset[int]]) -> None:
    warehouse = open_warehouse(None)
    target = RefreshTarget(AUDIENCE_ID, "diffed", 1, VALUES_DEFINITION)
    previous: frozenset[int] = frozenset()
    try:
        for index, members in enumerate(sets):
            as_of = START + dt.timedelta(days=index)
            refresh_id = f"r{index}"
            marker = write_membership(
                warehouse, target, refresh_id, members_query(members), as_of, as_of
            )
            entered, left = members - previous, previous - members
            assert (marker.size, marker.entered, marker.left) == (
                len(members),
                len(entered),
                len(left),
            )
            current = warehouse.rows(
                "SELECT profile_id FROM audience_members WHERE audience_id = ?", [AUDIENCE_ID]
            )
            assert {row[0] for row in current} == members
            events = warehouse.rows(
                "SELECT event, profile_id FROM segment_events WHERE refresh_id = ?", [refresh_id]
            )
            assert sorted(events) == sorted(
                [(ADDED_EVENT, p) for p in entered] + [(REMOVED_EVENT, p) for p in left]
            )
            open_spells = warehouse.rows(
                "SELECT profile_id FROM membership_history "
                "WHERE audience_id = ? AND left_at IS NULL",
                [AUDIENCE_ID],
            )
            assert sorted(row[0] for row in open_spells) == sorted(members)
            closed_now = warehouse.rows(
                "SELECT profile_id FROM membership_history WHERE left_refresh_id = ?",
                [refresh_id],
            )
            assert {row[0] for row in closed_now} == left
            previous = members
    finally:
        warehouse.close()
