"""The outbox: what a link has to send is computed from the warehouse's membership ledger
since the link's cursor, and the cursor moves only after the platform accepted (issue 5
point 5). Catalogs on SQLite and PostgreSQL; the warehouse is an in-memory DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.audiences.refresh import RefreshTarget, write_membership
from segmint.catalog import open_catalog
from segmint.catalog.db import Catalog
from segmint.catalog.models import Audience
from segmint.errors import Conflict
from segmint.sync.catalog import create_destination, get_link, link_audience
from segmint.sync.outbox import advance_cursor, link_changes, pending_changes
from segmint.sync.secrets import SecretBox
from segmint.warehouse.duckdb import open_warehouse
from segmint.warehouse.engine import Engine
from tests.audiences.helpers import VALUES_DEFINITION, members_query

T0 = datetime(2026, 11, 30, 6, 0)
AUDIENCE = 7


@pytest.fixture
def warehouse() -> Iterator[Engine]:
    engine = open_warehouse(None)
    yield engine
    engine.close()


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    opened = open_catalog(catalog_url)
    yield opened
    opened.dispose()


def words(profiles: set[int]) -> dict[int, int]:
    """Profile ids as 64-bit words: bit ``p & 63`` of the word of bucket ``p >> 6``."""
    folded: dict[int, int] = {}
    for profile in profiles:
        folded[profile >> 6] = folded.get(profile >> 6, 0) | 1 << (profile & 63)
    return folded


def commit_refresh(
    warehouse: Engine,
    refresh_id: str,
    hour: int,
    members: set[int],
    audience: int = AUDIENCE,
    *,
    committed_at: datetime | None = None,
) -> None:
    """Write what a committed refresh leaves in the warehouse for the outbox: the membership
    replaced, the change log, the marker with the next number (the outbox reads nothing
    else)."""
    as_of = T0 + timedelta(hours=hour)
    current = {
        row[0]
        for row in warehouse.rows(
            "SELECT profile_id FROM audience_members WHERE audience_id = ?", [audience]
        )
    }
    with warehouse.transaction():
        warehouse.execute("DELETE FROM audience_member_words WHERE audience_id = ?", [audience])
        for bucket, bits in words(members).items():  # as refresh stores them
            warehouse.execute(
                "INSERT INTO audience_member_words VALUES (?, ?, ?)", [audience, bucket, bits]
            )
        for bucket, bits in words(members ^ current).items():  # the change log
            warehouse.execute(
                "INSERT INTO membership_changes VALUES (?, ?, ?, ?)",
                [refresh_id, audience, bucket, bits],
            )
        warehouse.execute(
            "INSERT INTO audience_refreshes (refresh_id, audience_id, version, as_of, size, "
            'entered, "left", committed_at, seq) '
            "SELECT ?, ?, 1, ?, ?, ?, ?, ?, coalesce(max(seq), 0) + 1 FROM audience_refreshes",
            [
                refresh_id,
                audience,
                as_of,
                len(members),
                len(members - current),
                len(current - members),
                committed_at or as_of,
            ],
        )


def test_an_audience_never_refreshed_has_nothing_to_send(warehouse: Engine) -> None:
    delta = pending_changes(warehouse, AUDIENCE, None)
    assert (delta.to_refresh_id, delta.added, delta.removed) == (None, [], [])
    assert delta.is_full and delta.is_empty


def test_first_sync_sends_the_full_current_membership(warehouse: Engine) -> None:
    commit_refresh(warehouse, "r1", 1, {1, 2, 3})
    commit_refresh(warehouse, "r2", 2, {2, 3, 4})
    commit_refresh(warehouse, "x1", 2, {99}, audience=8)  # another audience is ignored
    delta = pending_changes(warehouse, AUDIENCE, None)
    assert (delta.added, delta.removed) == ([2, 3, 4], [])
    assert (delta.to_refresh_id, delta.to_as_of) == ("r2", T0 + timedelta(hours=2))


def test_later_syncs_send_the_changes_since_the_cursor(warehouse: Engine) -> None:
    commit_refresh(warehouse, "r1", 1, {1, 2, 3})
    commit_refresh(warehouse, "r2", 2, {2, 3, 4})
    delta = pending_changes(warehouse, AUDIENCE, "r1")
    assert (delta.from_refresh_id, delta.added, delta.removed) == ("r1", [4], [1])
    assert pending_changes(warehouse, AUDIENCE, "r2").is_empty


def test_changes_that_cancel_out_are_not_sent(warehouse: Engine) -> None:
    commit_refresh(warehouse, "r1", 1, {1, 2})
    commit_refresh(warehouse, "r2", 2, {2, 3})  # 1 leaves, 3 enters
    commit_refresh(warehouse, "r3", 3, {1, 2})  # 1 comes back, 3 leaves again
    commit_refresh(warehouse, "r4", 4, {1, 2, 5})
    delta = pending_changes(warehouse, AUDIENCE, "r1")
    assert (delta.added, delta.removed) == ([5], [])
    assert pending_changes(warehouse, AUDIENCE, "r1", until="r2").removed == [1]


def test_refreshes_are_ordered_by_as_of_not_by_id(warehouse: Engine) -> None:
    commit_refresh(warehouse, "zzz", 1, {1})
    commit_refresh(warehouse, "aaa", 2, {2})
    delta = pending_changes(warehouse, AUDIENCE, "zzz")
    assert (delta.to_refresh_id, delta.added, delta.removed) == ("aaa", [2], [1])


def test_refreshes_at_the_same_instant_are_ordered_as_they_were_committed(
    warehouse: Engine,
) -> None:
    # Two refreshes as of the same instant; the later one was stamped with an earlier clock
    # (clocks are explicit): the outbox follows the order the flips were applied in.
    commit_refresh(warehouse, "first", 1, {1, 2}, committed_at=T0 + timedelta(hours=5))
    commit_refresh(warehouse, "second", 1, {2, 3}, committed_at=T0 + timedelta(hours=4))
    full = pending_changes(warehouse, AUDIENCE, None)
    assert (full.to_refresh_id, full.added) == ("second", [2, 3])
    delta = pending_changes(warehouse, AUDIENCE, "first")
    assert (delta.to_refresh_id, delta.added, delta.removed) == ("second", [3], [1])
    assert pending_changes(warehouse, AUDIENCE, None, until="first").added == [1, 2]


def test_an_unknown_cursor_is_refused(warehouse: Engine) -> None:
    commit_refresh(warehouse, "r1", 1, {1})
    with pytest.raises(Conflict, match="not a committed refresh"):
        pending_changes(warehouse, AUDIENCE, "gone")


def make_link(catalog: Catalog) -> int:
    with catalog.session() as session:
        audience = Audience(
            id=AUDIENCE,
            name="buyers",
            status="active",
            created_at=T0,
            created_by="test",
            updated_at=T0,
        )
        session.add(audience)
    box = SecretBox(Fernet.generate_key())
    create_destination(catalog, box, "Meta", "meta", {"access_token": "t"}, {"ad_account_id": "1"})
    return link_audience(catalog, AUDIENCE, "Meta").id


def test_a_failed_delivery_leaves_the_cursor_and_nothing_is_lost(
    catalog: Catalog, warehouse: Engine
) -> None:
    link = make_link(catalog)
    commit_refresh(warehouse, "r1", 1, {1, 2, 3})
    first = link_changes(catalog, warehouse, link)
    assert first.added == [1, 2, 3]
    advance_cursor(catalog, link, first.to_refresh_id, expected=None, now=T0)
    assert (get_link(catalog, link).cursor, get_link(catalog, link).last_synced_at) == ("r1", T0)

    commit_refresh(warehouse, "r2", 2, {2, 3, 4})
    attempt = link_changes(catalog, warehouse, link)
    # The platform failed: the cursor is not advanced, and the next sync sees the same
    # changes plus whatever came after.
    assert link_changes(catalog, warehouse, link) == attempt
    commit_refresh(warehouse, "r3", 3, {3, 4, 5})
    retry = link_changes(catalog, warehouse, link)
    assert (retry.added, retry.removed) == ([4, 5], [1, 2])
    advance_cursor(catalog, link, retry.to_refresh_id, expected=retry.from_refresh_id)
    assert link_changes(catalog, warehouse, link).is_empty


def test_advancing_from_a_stale_cursor_is_refused(catalog: Catalog, warehouse: Engine) -> None:
    link = make_link(catalog)
    commit_refresh(warehouse, "r1", 1, {1})
    commit_refresh(warehouse, "r2", 2, {2})
    advance_cursor(catalog, link, "r2")
    with pytest.raises(Conflict, match="synced by another run"):
        advance_cursor(catalog, link, "r1", expected=None)
    assert get_link(catalog, link).cursor == "r2"
    advance_cursor(catalog, link, None)  # a reset sends the full membership again
    assert link_changes(catalog, warehouse, link).added == [2]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.frozensets(st.integers(min_value=1, max_value=300), max_size=30), min_size=1),
    st.data(),
)
def test_pending_changes_are_the_set_differences_between_any_two_refreshes(
    memberships: list[frozenset[int]], data: st.DataObject
) -> None:
    """Refreshes through the real warehouse side; then for any cursor and target the outbox
    adds exactly M(target) − M(cursor) and removes M(cursor) − M(target)."""
    engine = open_warehouse(None)
    try:
        target = RefreshTarget(AUDIENCE, "outboxed", 1, VALUES_DEFINITION)
        for index, members in enumerate(memberships):
            as_of = T0 + timedelta(hours=index)
            write_membership(engine, target, f"r{index}", members_query(members), as_of, as_of)
        last = len(memberships) - 1
        until = data.draw(st.integers(min_value=0, max_value=last), label="until")
        cursor = data.draw(st.integers(min_value=-1, max_value=until), label="cursor")
        delta = pending_changes(
            engine, AUDIENCE, f"r{cursor}" if cursor >= 0 else None, until=f"r{until}"
        )
        before = memberships[cursor] if cursor >= 0 else frozenset()
        after = memberships[until]
        assert delta.added == sorted(after - before)
        assert delta.removed == sorted(before - after)
    finally:
        engine.close()
