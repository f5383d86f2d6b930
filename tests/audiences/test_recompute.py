"""Saving an edit with "recompute history" (B3): past membership is re-evaluated with the
new definition; what was delivered (events, current members) stays."""

from __future__ import annotations

import datetime as dt

from segmint.audiences import history, operations
from segmint.audiences.refresh import refresh_audience
from segmint.compiler import compile_definition, to_sql
from segmint.definitions import parse_definition
from tests.audiences.helpers import TZ, day, open_store, purchased_within


def test_recompute_history_rewrites_spells_and_sizes(catalog_url: str) -> None:
    with open_store(catalog_url) as store:
        for profile in range(1, 7):
            store.profile(profile)
            store.event(profile, "purchase", day(profile, hour=3))
        audience_id = store.audience("buyers", purchased_within(3))
        instants = [day(n) for n in range(1, 9)]
        for instant in instants:
            refresh_audience(
                store.warehouse, store.catalog, audience_id, as_of=instant, timezone=TZ
            )
        events_before = store.segment_events(audience_id)
        members_before = store.members(audience_id)

        narrower = {"root": purchased_within(1)}
        saved = operations.save_definition(
            store.warehouse,
            store.catalog,
            audience_id,
            narrower,
            by="test",
            timezone=TZ,
            apply="recompute_history",
            now=day(9),
        )
        assert saved.version == 2 and saved.recomputed_refreshes == len(instants)

        definition = parse_definition(narrower)
        expected_sizes = []
        for instant in instants:
            query = compile_definition(definition, as_of=instant, timezone=TZ)
            fresh = {row[0] for row in store.warehouse.rows(to_sql(query, "duckdb"))}
            assert set(history.members_as_of(store.warehouse, audience_id, instant)) == fresh
            expected_sizes.append(len(fresh))
        points = history.size_over_time(store.warehouse, audience_id)
        assert [p.size for p in points] == expected_sizes
        assert points[0].entered - points[0].left == expected_sizes[0]
        # What was delivered stays: the events already emitted and the current members.
        assert store.segment_events(audience_id) == events_before
        assert store.members(audience_id) == members_before


def test_from_now_keeps_history(catalog_url: str) -> None:
    with open_store(catalog_url) as store:
        store.profile(1)
        store.event(1, "purchase", day(1, hour=3))
        audience_id = store.audience("buyers", purchased_within(3))
        refresh_audience(store.warehouse, store.catalog, audience_id, as_of=day(2), timezone=TZ)
        before = store.snapshot()
        saved = operations.save_definition(
            store.warehouse,
            store.catalog,
            audience_id,
            {"root": purchased_within(1)},
            by="test",
            timezone=TZ,
            now=day(2) + dt.timedelta(hours=1),
        )
        assert saved.recomputed_refreshes == 0
        assert store.snapshot() == before


def test_refreshes_after_a_recompute_keep_history_equal_to_fresh_evaluations(
    catalog_url: str,
) -> None:
    """A wider definition recomputed: history's open spells now differ from the current
    members (what destinations were told). The next refreshes must reconcile both: history
    as of each later refresh equals a fresh evaluation, with one open spell per member."""
    with open_store(catalog_url) as store:
        for profile in range(1, 9):
            store.profile(profile)
            store.event(profile, "purchase", day(profile, hour=3))
        audience_id = store.audience("buyers", purchased_within(1))
        for n in range(1, 7):
            refresh_audience(store.warehouse, store.catalog, audience_id, as_of=day(n), timezone=TZ)
        wider = {"root": purchased_within(4)}
        operations.save_definition(
            store.warehouse,
            store.catalog,
            audience_id,
            wider,
            by="test",
            timezone=TZ,
            apply="recompute_history",
            now=day(6, hour=7),
        )
        definition = parse_definition(wider)
        for n in range(7, 12):
            result = refresh_audience(
                store.warehouse, store.catalog, audience_id, as_of=day(n), timezone=TZ
            )
            query = compile_definition(definition, as_of=day(n), timezone=TZ)
            fresh = {row[0] for row in store.warehouse.rows(to_sql(query, "duckdb"))}
            assert history.members_as_of(store.warehouse, audience_id, day(n)) == sorted(fresh)
            assert store.members(audience_id) == fresh
            assert result.size == len(fresh)
            open_spells = store.warehouse.rows(
                "SELECT profile_id, count(*) FROM membership_history "
                "WHERE audience_id = ? AND left_at IS NULL GROUP BY 1 HAVING count(*) > 1",
                [audience_id],
            )
            assert open_spells == []
