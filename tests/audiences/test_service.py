"""The audience lifecycle in the catalog: drafts, versions, activation, archive, delete,
restore, names, schedules and dependency order — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from segmint.audiences import service
from segmint.audiences.operations import resolve_ref
from segmint.audiences.service import (
    AudienceInfo,
    activate,
    archive,
    create_draft,
    delete,
    describe_schedule,
    next_interval,
    restore,
    topological_order,
    update_definition,
)
from segmint.catalog import Catalog, open_catalog
from segmint.definitions import DefinitionError
from segmint.errors import Conflict, InvalidInput, NotFound

T0 = dt.datetime(2025, 6, 1, 9, 0)
T = TypeVar("T")
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    catalog = open_catalog(catalog_url)
    yield catalog
    catalog.dispose()


def rolling(days: int = 30, event: str = "product_viewed") -> dict[str, Any]:
    """A dynamic definition: ``event`` in the last ``days`` days."""
    window = {"type": "relative", "last": days, "unit": "days"}
    return {"version": 1, "root": {"kind": "event", "event": event, "window": window}}


def fixed(event: str = "order_completed") -> dict[str, Any]:
    """A static definition: ``event`` in Q4 2025."""
    window = {"type": "absolute", "from": "2025-10-01", "to": "2026-01-01"}
    return {"version": 1, "root": {"kind": "event", "event": event, "window": window}}


def member_of(*names: str) -> dict[str, Any]:
    conditions = [{"kind": "audience", "audience": name} for name in names]
    return {"version": 1, "root": {"kind": "and", "conditions": conditions}}


def draft(catalog: Catalog, definition: dict[str, Any] | None = None, **kw: Any) -> AudienceInfo:
    return create_draft(catalog, definition or rolling(), by="ana", now=T0, **kw)


def active(
    catalog: Catalog,
    name: str,
    definition: dict[str, Any] | None = None,
    interval: dt.timedelta | None = DAY,
) -> AudienceInfo:
    info = draft(catalog, definition)
    return activate(catalog, info.id, name=name, refresh_interval=interval, by="ana", now=T0)


# --- drafts and names ------------------------------------------------------------------------


def test_create_draft_saves_version_one_with_who_and_when(catalog: Catalog) -> None:
    info = draft(catalog, description="Viewed, not bought")
    assert info.status == "draft" and info.name is None and info.current_version == 1
    assert info.is_dynamic and info.refresh_interval is None and info.next_refresh_at is None
    assert info.created_by == "ana" and info.created_at == T0
    [v1] = service.versions(catalog, info.id)
    assert (v1.version, v1.created_by, v1.created_at) == (1, "ana", T0)
    assert v1.definition == info.definition


def test_static_definition_makes_a_static_draft(catalog: Catalog) -> None:
    assert not draft(catalog, fixed()).is_dynamic


def test_create_draft_accepts_json_text(catalog: Catalog) -> None:
    text = '{"root": {"kind": "trait", "trait": "plan", "operator": "equals", "value": "pro"}}'
    info = create_draft(catalog, text, by="ana", now=T0)
    assert info.definition.root.kind == "trait" and not info.is_dynamic


def test_create_draft_refuses_a_bad_definition_with_its_path(catalog: Catalog) -> None:
    bad = {"root": {"kind": "event", "event": "x", "window": {"type": "relative"}}}
    with pytest.raises(DefinitionError) as caught:
        create_draft(catalog, bad, by="ana", now=T0)
    assert caught.value.path == "root.window.last"


def test_invalid_name_is_refused_with_a_suggestion(catalog: Catalog) -> None:
    with pytest.raises(InvalidInput, match="'abandoned_checkout_30d'") as caught:
        draft(catalog, name="Abandoned Checkout (30d)")
    assert caught.value.path == "name"


def test_duplicate_name_is_refused_naming_the_other_and_suggesting_a_free_one(
    catalog: Catalog,
) -> None:
    first = draft(catalog, name="buyers")
    draft(catalog, name="buyers_2")
    with pytest.raises(Conflict) as caught:
        draft(catalog, name="buyers")
    assert f"audience #{first.id}" in caught.value.message
    assert "'buyers_3'" in caught.value.message and caught.value.path == "name"


def test_a_deleted_audiences_name_can_be_reused(catalog: Catalog) -> None:
    old = draft(catalog, name="buyers")
    delete(catalog, old.id, by="ana", now=T0)
    new = draft(catalog, name="buyers")
    assert service.get_by_name(catalog, "buyers").id == new.id


def test_unknown_audience_reference_is_refused(catalog: Catalog) -> None:
    with pytest.raises(DefinitionError, match="unknown audience 'vips'"):
        draft(catalog, member_of("vips"))


def test_reference_to_a_deleted_audience_is_refused(catalog: Catalog) -> None:
    vips = draft(catalog, name="vips")
    delete(catalog, vips.id, by="ana", now=T0)
    with pytest.raises(DefinitionError, match="unknown audience 'vips'"):
        draft(catalog, member_of("vips"))


def test_a_cycle_between_audiences_is_refused(catalog: Catalog) -> None:
    a = draft(catalog, name="a")
    draft(catalog, member_of("a"), name="b")
    with pytest.raises(DefinitionError, match="refers back") as caught:
        update_definition(catalog, a.id, member_of("b"), by="ana", now=T0)
    assert "a → b → a" in caught.value.message
    with pytest.raises(DefinitionError, match="refers back"):
        update_definition(catalog, a.id, member_of("a"), by="ana", now=T0)


def test_referring_to_a_dynamic_audience_makes_an_audience_dynamic(catalog: Catalog) -> None:
    draft(catalog, rolling(), name="recent")
    both = fixed()
    both["root"] = {"kind": "and", "conditions": [both["root"], member_of("recent")["root"]]}
    assert draft(catalog, both).is_dynamic


# --- versions --------------------------------------------------------------------------------


def test_every_change_is_a_version_with_who_and_when(catalog: Catalog) -> None:
    info = draft(catalog, rolling(30))
    later = T0 + HOUR
    v2 = update_definition(catalog, info.id, rolling(14), by="bo", now=later, note="shorter")
    assert (v2.version, v2.created_by, v2.created_at, v2.note) == (2, "bo", later, "shorter")
    got = service.get(catalog, info.id)
    assert got.current_version == 2 and got.updated_at == later
    assert [v.version for v in service.versions(catalog, info.id)] == [1, 2]
    assert service.version(catalog, info.id, 1).definition.root.window.last == 30  # type: ignore[union-attr]
    diff = service.diff_versions(catalog, info.id, 1, 2)
    assert diff.summary == ["root window: last 30 days → last 14 days"]
    assert diff.text.startswith("--- version 1\n+++ version 2\n")


def test_an_unchanged_definition_makes_no_version(catalog: Catalog) -> None:
    info = draft(catalog, rolling(30))
    same = update_definition(catalog, info.id, rolling(30), by="bo", now=T0 + DAY)
    assert (same.version, same.created_by) == (1, "ana")
    assert service.get(catalog, info.id).current_version == 1


def in_parallel(count: int, work: Callable[[int], T]) -> tuple[list[T], list[Exception]]:
    """Run ``work(0)`` … ``work(count - 1)`` on as many threads, released together; what
    they returned and what they raised."""
    start = threading.Barrier(count)
    results: list[T] = []
    errors: list[Exception] = []

    def run(index: int) -> None:
        start.wait()
        try:
            results.append(work(index))
        except Exception as exc:  # collected for the test to judge
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_concurrent_saves_each_become_the_next_version(catalog: Catalog) -> None:
    info = draft(catalog, rolling(1))

    def save(index: int) -> int:
        edit = rolling(index + 2)
        return update_definition(catalog, info.id, edit, by=f"u{index}", now=T0).version

    saved, errors = in_parallel(10, save)
    assert errors == []
    assert sorted(saved) == list(range(2, 12))
    versions = service.versions(catalog, info.id)
    assert [v.version for v in versions] == list(range(1, 12))
    assert service.get(catalog, info.id).current_version == 11
    # every saved definition is there once, under the number its save returned
    lasts = {v.definition.root.window.last for v in versions[1:]}  # type: ignore[union-attr]
    assert lasts == set(range(2, 12))


def test_a_save_that_loses_a_race_is_a_conflict_not_a_crash(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the row lock, two saves can both take the next number: the unique constraint
    refuses one, which is told to save again."""
    load = service._load
    monkeypatch.setattr(
        service, "_load", lambda session, audience_id, lock=False: load(session, audience_id)
    )
    info = draft(catalog, rolling(1))

    def save(index: int) -> int:
        return update_definition(catalog, info.id, rolling(index + 2), by="u", now=T0).version

    saved, errors = in_parallel(10, save)
    assert saved and all(isinstance(e, Conflict) for e in errors), errors
    assert all("reload it and save again" in e.message for e in errors if isinstance(e, Conflict))
    assert [v.version for v in service.versions(catalog, info.id)] == list(range(1, 2 + len(saved)))


def test_concurrent_drafts_with_one_name_give_one_audience_and_conflicts(catalog: Catalog) -> None:
    created, errors = in_parallel(6, lambda _: draft(catalog, name="buyers"))
    assert len(created) == 1 and len(errors) == 5
    assert all(isinstance(e, Conflict) and e.path == "name" for e in errors), errors


def test_a_missing_version_is_not_found_with_the_range(catalog: Catalog) -> None:
    info = draft(catalog)
    with pytest.raises(NotFound, match="versions are 1 to 1"):
        service.version(catalog, info.id, 5)


def test_updating_a_deleted_audience_says_restore_first(catalog: Catalog) -> None:
    info = draft(catalog)
    delete(catalog, info.id, by="ana", now=T0)
    with pytest.raises(Conflict, match="restore it first"):
        update_definition(catalog, info.id, rolling(7), by="ana", now=T0)


def test_an_active_dynamic_audience_takes_an_edit_at_its_next_refresh(catalog: Catalog) -> None:
    info = active(catalog, "viewers")
    v2 = update_definition(catalog, info.id, rolling(7), by="bo", now=T0 + DAY)
    got = service.get(catalog, info.id)
    assert v2.version == 2 and got.status == "active" and got.next_refresh_at == T0


def test_an_active_static_audience_is_edited_through_activation(catalog: Catalog) -> None:
    info = active(catalog, "q4_buyers", fixed(), interval=None)
    with pytest.raises(Conflict, match="Save & Activate"):
        update_definition(catalog, info.id, fixed("refund_issued"), by="bo", now=T0)
    again = activate(
        catalog,
        info.id,
        name="q4_buyers",
        refresh_interval=None,
        definition=fixed("refund_issued"),
        by="bo",
        now=T0 + DAY,
    )
    assert again.current_version == 2 and again.activated_at == T0 + DAY


def test_an_edit_turning_an_active_audience_static_needs_activation(catalog: Catalog) -> None:
    info = active(catalog, "viewers")
    with pytest.raises(Conflict, match="static"):
        update_definition(catalog, info.id, fixed(), by="bo", now=T0)
    assert service.get(catalog, info.id).current_version == 1


# --- activation ------------------------------------------------------------------------------


def test_activate_makes_a_draft_active_and_due_at_once(catalog: Catalog) -> None:
    info = draft(catalog)
    got = activate(catalog, info.id, name="viewers", refresh_interval=7 * DAY, by="bo", now=T0)
    assert got.status == "active" and got.name == "viewers"
    assert got.activated_at == T0 and got.next_refresh_at == T0
    assert got.refresh_interval == 7 * DAY and got.warmup


def test_activate_without_a_name_is_refused_with_a_suggestion(catalog: Catalog) -> None:
    info = draft(catalog, description="Abandoned Checkout (30d)")
    with pytest.raises(InvalidInput, match="'abandoned_checkout_30d'") as caught:
        activate(catalog, info.id, name=None, refresh_interval=DAY, by="bo", now=T0)
    assert caught.value.path == "name"
    assert service.get(catalog, info.id).status == "draft"


def test_activate_keeps_the_name_given_to_the_draft(catalog: Catalog) -> None:
    info = draft(catalog, name="viewers")
    got = activate(catalog, info.id, name=None, refresh_interval=DAY, by="bo", now=T0)
    assert got.name == "viewers"


def test_activate_refuses_a_name_taken_by_another_audience(catalog: Catalog) -> None:
    active(catalog, "viewers")
    info = draft(catalog)
    with pytest.raises(Conflict, match="'viewers_2'"):
        activate(catalog, info.id, name="viewers", refresh_interval=DAY, by="bo", now=T0)


def test_static_audience_refuses_a_refresh_interval(catalog: Catalog) -> None:
    info = draft(catalog, fixed())
    with pytest.raises(InvalidInput, match="static audiences are computed once") as caught:
        activate(catalog, info.id, name="q4_buyers", refresh_interval=DAY, by="bo", now=T0)
    assert caught.value.path == "refresh_interval"
    got = activate(catalog, info.id, name="q4_buyers", refresh_interval=None, by="bo", now=T0)
    assert not got.is_dynamic and got.refresh_interval is None and not got.warmup
    assert got.next_refresh_at == T0  # computed once, at activation


@pytest.mark.parametrize(
    ("interval", "problem"),
    [
        (None, "needs a refresh interval from 1 hour to 30 days"),
        (dt.timedelta(minutes=30), "30 minutes is not allowed: choose one from 1 hour to 30"),
        (31 * DAY, "31 days is not allowed"),
        (dt.timedelta(0), "a refresh interval of zero is not allowed"),
    ],
)
def test_dynamic_audience_needs_an_interval_in_range(
    catalog: Catalog, interval: dt.timedelta | None, problem: str
) -> None:
    info = draft(catalog)
    with pytest.raises(InvalidInput, match=problem) as caught:
        activate(catalog, info.id, name="viewers", refresh_interval=interval, by="bo", now=T0)
    assert caught.value.path == "refresh_interval"


@pytest.mark.parametrize("interval", [HOUR, 30 * DAY])
def test_interval_bounds_are_allowed(catalog: Catalog, interval: dt.timedelta) -> None:
    info = draft(catalog)
    got = activate(catalog, info.id, name="viewers", refresh_interval=interval, by="b", now=T0)
    assert got.refresh_interval == interval


def test_reactivating_an_active_audience_changes_its_settings(catalog: Catalog) -> None:
    info = active(catalog, "viewers")
    later = T0 + 5 * DAY
    got = activate(
        catalog, info.id, name="viewers", refresh_interval=3 * DAY, warmup=False, by="b", now=later
    )
    assert got.refresh_interval == 3 * DAY and not got.warmup
    assert got.activated_at == later and got.next_refresh_at == later


def test_renaming_an_audience_used_by_others_is_refused(catalog: Catalog) -> None:
    base = active(catalog, "viewers")
    draft(catalog, member_of("viewers"), name="keen")
    with pytest.raises(Conflict, match="'keen'"):
        activate(catalog, base.id, name="lookers", refresh_interval=DAY, by="b", now=T0)


# --- archive, delete, restore ----------------------------------------------------------------


def test_archive_stops_refreshes(catalog: Catalog) -> None:
    info = active(catalog, "viewers")
    got = archive(catalog, info.id, by="bo", now=T0 + DAY)
    assert got.status == "archived" and got.archived_at == T0 + DAY
    assert got.next_refresh_at is None
    assert [a.name for a in service.list_audiences(catalog, "archived")] == ["viewers"]
    assert service.list_audiences(catalog, "active") == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("draft", "never activated; delete it instead"),
        ("archived", "already archived"),
        ("deleted", "restore it first"),
    ],
)
def test_archive_refuses_audiences_that_are_not_active(
    catalog: Catalog, setup: str, message: str
) -> None:
    info = draft(catalog) if setup == "draft" else active(catalog, "viewers")
    if setup == "archived":
        archive(catalog, info.id, by="bo", now=T0)
    if setup == "deleted":
        delete(catalog, info.id, by="bo", now=T0)
    with pytest.raises(Conflict, match=message):
        archive(catalog, info.id, by="bo", now=T0)


@pytest.mark.parametrize("status", ["draft", "active", "archived"])
def test_delete_works_from_any_status_but_deleted(catalog: Catalog, status: str) -> None:
    info = draft(catalog) if status == "draft" else active(catalog, "viewers")
    if status == "archived":
        archive(catalog, info.id, by="bo", now=T0)
    got = delete(catalog, info.id, by="bo", now=T0 + DAY)
    assert got.status == "deleted" and got.deleted_at == T0 + DAY and got.next_refresh_at is None
    assert service.list_audiences(catalog) == []
    assert [a.id for a in service.list_audiences(catalog, "deleted")] == [info.id]
    with pytest.raises(Conflict, match="already deleted"):
        delete(catalog, info.id, by="bo", now=T0)


def test_delete_refuses_an_audience_used_by_another(catalog: Catalog) -> None:
    base = active(catalog, "viewers")
    draft(catalog, member_of("viewers"), name="keen")
    assert service.dependents(catalog, base.id) == ["'keen'"]
    with pytest.raises(Conflict, match="used by audience 'keen'"):
        delete(catalog, base.id, by="bo", now=T0)


def test_dependents_ignore_similar_names(catalog: Catalog) -> None:
    base = active(catalog, "buyers")
    active(catalog, "buyers_eu")
    draft(catalog, member_of("buyers_eu"), name="keen")
    assert service.dependents(catalog, base.id) == []


@pytest.mark.parametrize("status", ["archived", "deleted"])
def test_restore_brings_an_audience_back_as_a_draft_with_its_versions(
    catalog: Catalog, status: str
) -> None:
    info = active(catalog, "viewers")
    update_definition(catalog, info.id, rolling(7), by="bo", now=T0 + HOUR)
    (archive if status == "archived" else delete)(catalog, info.id, by="bo", now=T0 + DAY)
    got = restore(catalog, info.id, by="cy", now=T0 + 2 * DAY)
    assert got.status == "draft" and got.name == "viewers" and got.current_version == 2
    assert got.archived_at is None and got.deleted_at is None and got.next_refresh_at is None
    assert len(service.versions(catalog, info.id)) == 2
    # … then edit, run, and Save & Activate again
    again = activate(catalog, info.id, name="viewers", refresh_interval=DAY, by="cy", now=T0)
    assert again.status == "active"


@pytest.mark.parametrize("status", ["archived", "deleted"])
def test_activate_restores_in_one_step(catalog: Catalog, status: str) -> None:
    info = active(catalog, "viewers")
    (archive if status == "archived" else delete)(catalog, info.id, by="bo", now=T0)
    got = activate(catalog, info.id, name="viewers", refresh_interval=DAY, by="bo", now=T0 + DAY)
    assert got.status == "active" and got.deleted_at is None and got.archived_at is None


@pytest.mark.parametrize("status", ["draft", "active"])
def test_restore_refuses_audiences_that_are_not_archived_or_deleted(
    catalog: Catalog, status: str
) -> None:
    info = draft(catalog) if status == "draft" else active(catalog, "viewers")
    with pytest.raises(Conflict, match="only archived or deleted audiences can be restored"):
        restore(catalog, info.id, by="bo", now=T0)


def test_restore_refuses_a_name_now_taken_and_accepts_a_new_one(catalog: Catalog) -> None:
    old = active(catalog, "viewers")
    delete(catalog, old.id, by="bo", now=T0)
    newer = active(catalog, "viewers")
    with pytest.raises(Conflict) as caught:
        restore(catalog, old.id, by="bo", now=T0)
    message = caught.value.message
    assert f"audience #{newer.id}" in message and "restore it with a new name" in message
    assert "'viewers_2'" in message
    with pytest.raises(InvalidInput, match="'old_viewers'"):
        restore(catalog, old.id, by="bo", now=T0, name="Old Viewers")
    got = restore(catalog, old.id, by="bo", now=T0, name="viewers_2")
    assert got.name == "viewers_2" and got.status == "draft"


def test_a_deleted_audience_is_found_by_name_only_to_be_restored(catalog: Catalog) -> None:
    first = active(catalog, "viewers")
    delete(catalog, first.id, by="bo", now=T0)
    second = active(catalog, "viewers")
    delete(catalog, second.id, by="bo", now=T0 + HOUR)
    with pytest.raises(NotFound, match=f"'viewers' is deleted \\(id {second.id}\\)"):
        resolve_ref(catalog, "viewers")
    # The audience last deleted under the name, whichever has the higher id.
    assert resolve_ref(catalog, "viewers", deleted=True).id == second.id
    restore(catalog, second.id, by="bo", now=T0 + DAY)
    # A name that a live audience has means that one, even to restore.
    assert resolve_ref(catalog, "viewers", deleted=True).id == second.id
    with pytest.raises(NotFound, match="no audience named 'watchers'"):
        resolve_ref(catalog, "watchers", deleted=True)


def test_activating_a_deleted_audience_whose_name_was_taken_is_refused(catalog: Catalog) -> None:
    old = active(catalog, "viewers")
    delete(catalog, old.id, by="bo", now=T0)
    active(catalog, "viewers")
    with pytest.raises(Conflict, match="already used"):
        activate(catalog, old.id, name=None, refresh_interval=DAY, by="bo", now=T0)


def test_unknown_audience_id_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="no audience with id 42"):
        archive(catalog, 42, by="bo", now=T0)


# --- reading ---------------------------------------------------------------------------------


def test_get_by_name_hints_at_close_and_deleted_names(catalog: Catalog) -> None:
    active(catalog, "abandoned_checkout_30d")
    gone = active(catalog, "old_viewers")
    delete(catalog, gone.id, by="bo", now=T0)
    with pytest.raises(NotFound, match="did you mean 'abandoned_checkout_30d'"):
        service.get_by_name(catalog, "abandoned_checkout_3d")
    with pytest.raises(NotFound, match=f"deleted \\(id {gone.id}\\); restore it"):
        service.get_by_name(catalog, "old_viewers")


def test_list_shows_every_audience_but_deleted_ones_by_default(catalog: Catalog) -> None:
    active(catalog, "b_viewers")
    draft(catalog)
    archived = active(catalog, "a_viewers")
    archive(catalog, archived.id, by="bo", now=T0)
    gone = active(catalog, "c_viewers")
    delete(catalog, gone.id, by="bo", now=T0)
    listed = service.list_audiences(catalog)
    assert [(a.name, a.status) for a in listed] == [
        ("a_viewers", "archived"),
        ("b_viewers", "active"),
        (None, "draft"),
    ]
    with pytest.raises(InvalidInput, match="use one of draft, active, archived, deleted"):
        service.list_audiences(catalog, "paused")


def test_the_resolver_gives_current_definitions_of_audiences_not_deleted(
    catalog: Catalog,
) -> None:
    info = active(catalog, "viewers")
    update_definition(catalog, info.id, rolling(7), by="bo", now=T0)
    resolve = service.audience_resolver(catalog)
    found = resolve("viewers")
    assert found is not None and found.root.window.last == 7  # type: ignore[union-attr]
    assert resolve("nobody") is None
    archive(catalog, info.id, by="bo", now=T0)
    delete(catalog, info.id, by="bo", now=T0)
    assert resolve("viewers") is None


# --- dependency order ------------------------------------------------------------------------


def test_dependency_order_puts_referenced_audiences_first(catalog: Catalog) -> None:
    base = active(catalog, "viewers")
    other = active(catalog, "other")
    mid = active(catalog, "keen", member_of("viewers"))
    top = active(catalog, "keenest", member_of("keen", "other"))
    ids = [top.id, mid.id, other.id, base.id]
    assert service.dependency_order(catalog, ids) == [other.id, base.id, mid.id, top.id]
    # through an audience that is not in the list
    assert service.dependency_order(catalog, [top.id, base.id]) == [base.id, top.id]


@pytest.mark.parametrize(
    ("items", "deps", "expected"),
    [
        (["a", "b", "c"], {}, ["a", "b", "c"]),
        (["c", "b", "a"], {"c": {"b"}, "b": {"a"}}, ["a", "b", "c"]),
        (["x", "a", "b"], {"a": {"b"}, "b": {"a"}}, ["x", "a", "b"]),  # a cycle keeps its order
        (["a", "a", "b"], {"a": {"b", "zzz"}}, ["b", "a"]),
    ],
)
def test_topological_order(
    items: list[str], deps: dict[str, set[str]], expected: list[str]
) -> None:
    assert topological_order(items, lambda item: deps.get(item, set())) == expected


# --- schedule --------------------------------------------------------------------------------


@dataclass
class Settings:
    is_dynamic: bool = True
    refresh_interval_seconds: int | None = int((7 * DAY).total_seconds())
    warmup: bool = True
    activated_at: dt.datetime | None = T0


@pytest.mark.parametrize(
    ("settings", "now", "expected"),
    [
        (Settings(), T0, DAY),
        (Settings(), T0 + 3 * DAY - HOUR, DAY),
        (Settings(), T0 + 3 * DAY, 7 * DAY),
        (Settings(warmup=False), T0, 7 * DAY),
        (Settings(refresh_interval_seconds=6 * 3600), T0, 6 * HOUR),
        (Settings(is_dynamic=False, refresh_interval_seconds=None), T0, None),
        (Settings(activated_at=None), T0, 7 * DAY),
    ],
    ids=["warm-up", "warm-up-last-hour", "after", "no-warm-up", "short", "static", "never"],
)
def test_next_interval_follows_the_warm_up_policy(
    settings: Settings, now: dt.datetime, expected: dt.timedelta | None
) -> None:
    assert next_interval(settings, now) == expected


@pytest.mark.parametrize(
    ("settings", "now", "expected"),
    [
        (Settings(), None, "daily for the first 3 days (until 2025-06-04), then every 7 days"),
        (Settings(), T0 + 4 * DAY, "every 7 days"),
        (Settings(warmup=False), None, "every 7 days"),
        (
            Settings(activated_at=None),
            None,
            "daily for the first 3 days after activation, then every 7 days",
        ),
        (Settings(refresh_interval_seconds=86400), None, "daily"),
        (Settings(refresh_interval_seconds=3600), None, "hourly"),
        (Settings(refresh_interval_seconds=6 * 3600), None, "every 6 hours"),
        (
            Settings(is_dynamic=False),
            None,
            "computed once at activation; static audiences are not refreshed",
        ),
    ],
)
def test_describe_schedule(settings: Settings, now: dt.datetime | None, expected: str) -> None:
    assert describe_schedule(settings, now) == expected


def test_activated_audience_schedule_reads_from_its_info(catalog: Catalog) -> None:
    info = active(catalog, "viewers", interval=7 * DAY)
    assert describe_schedule(info) == (
        "daily for the first 3 days (until 2025-06-04), then every 7 days"
    )
    assert next_interval(info, T0) == DAY


# --- impact preview (catalog half) -----------------------------------------------------------


def test_plan_edit_previews_a_change_without_saving_it(catalog: Catalog) -> None:
    info = active(catalog, "viewers")
    plan = service.plan_edit(catalog, info.id, rolling(14))
    assert plan.diff.summary == ["root window: last 30 days → last 14 days"]
    assert plan.diff.text.startswith("--- version 1\n+++ proposed\n")
    assert plan.is_dynamic and plan.needs_activation is None and not plan.unchanged
    assert service.get(catalog, info.id).current_version == 1


def test_plan_edit_says_when_only_activation_can_apply_a_change(catalog: Catalog) -> None:
    info = active(catalog, "viewers")
    plan = service.plan_edit(catalog, info.id, fixed())
    assert not plan.is_dynamic
    assert plan.needs_activation is not None and "Save & Activate" in plan.needs_activation
    assert service.plan_edit(catalog, info.id, rolling()).unchanged


def test_plan_edit_validates_the_proposal(catalog: Catalog) -> None:
    info = active(catalog, "viewers")
    with pytest.raises(DefinitionError, match="refers back"):
        service.plan_edit(catalog, info.id, member_of("viewers"))
