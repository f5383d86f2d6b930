"""The warehouse side of a refresh on arbitrary member sets: the bitmap diff must find exactly
the profiles that entered and left, whatever the ids (bucket edges, sparse and huge ids,
empty sets), and write events, spells and membership to match. Python's set operations are
the reference."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp, parse_one

from segmint.audiences.refresh import (
    ADDED_EVENT,
    REMOVED_EVENT,
    RefreshTarget,
    folding_duplicates,
    write_membership,
)
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
                "SELECT event, profile_id FROM segment_event_rows "
                "WHERE properties ->> '$.refresh_id' = ?",
                [refresh_id],
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


@pytest.mark.parametrize(
    ("query", "folded"),
    [
        ("SELECT DISTINCT p FROM t WHERE a = 1", "SELECT p FROM t WHERE a = 1"),
        (
            "SELECT DISTINCT p FROM a UNION SELECT p FROM b",
            "SELECT p FROM a UNION ALL SELECT p FROM b",
        ),
        # a LIMIT counts distinct rows, DISTINCT ON keeps one row per key: both stay
        ("SELECT DISTINCT p FROM t LIMIT 3", "SELECT DISTINCT p FROM t LIMIT 3"),
        ("SELECT DISTINCT ON (p) p FROM t", "SELECT DISTINCT ON (p) p FROM t"),
        ("SELECT p FROM a EXCEPT SELECT p FROM b", "SELECT p FROM a EXCEPT SELECT p FROM b"),
        ("SELECT p FROM a INTERSECT SELECT p FROM b", "SELECT p FROM a INTERSECT SELECT p FROM b"),
        (
            "SELECT p FROM t GROUP BY p HAVING count(*) > 1",
            "SELECT p FROM t GROUP BY p HAVING COUNT(*) > 1",
        ),
    ],
)
def test_folding_drops_only_duplicate_removal_that_cannot_change_the_ids(
    query: str, folded: str
) -> None:
    parsed = parse_one(query)
    assert isinstance(parsed, exp.Query)
    assert folding_duplicates(parsed).sql() == folded


def test_a_folded_query_returns_the_same_ids() -> None:
    warehouse = open_warehouse(None)
    try:
        warehouse.execute("CREATE TABLE t AS SELECT i % 7 AS p FROM range(100) AS r(i)")
        query = parse_one("SELECT DISTINCT p FROM t WHERE p > 1")
        assert isinstance(query, exp.Query)
        folded = warehouse.rows(folding_duplicates(query).sql(dialect="duckdb"))
        assert len(folded) > 5 and sorted(set(folded)) == sorted(warehouse.rows(query.sql()))
    finally:
        warehouse.close()
