"""Profile upserts and merges against a real in-memory DuckDB warehouse."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from segmint.collect.messages import Enrichment, Message
from segmint.collect.profiles import (
    fold_batch,
    merge_profile_rows,
    merge_traits,
    message_contacts,
    message_traits,
    upsert_profiles,
)
from segmint.warehouse.duckdb import DuckDBEngine, open_warehouse

T0 = datetime(2024, 5, 1, 12, 0)
_ids = itertools.count(1)


def msg(
    type: str = "track",
    *,
    profile: int = 1,
    at: int = 0,
    user: str | None = None,
    anon: str | None = None,
    traits: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    **enrichment: str | None,
) -> Message:
    """A resolved message for ``profile``, ``at`` minutes after T0."""
    return Message(
        message_id=f"m{next(_ids)}",
        type=type,
        event="Viewed" if type == "track" else type,
        timestamp=T0 + timedelta(minutes=at),
        received_at=T0 + timedelta(minutes=at),
        user_id=user,
        anonymous_id=anon,
        traits=traits or {},
        context=context or {},
        enrichment=Enrichment(**enrichment),
        profile_id=profile,
    )


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    warehouse = open_warehouse(None)
    yield warehouse
    warehouse.close()


def profile(engine: DuckDBEngine, profile_id: int = 1) -> dict[str, Any]:
    table = engine.arrow("SELECT * FROM profiles WHERE profile_id = ?", [profile_id])
    (row,) = table.to_pylist()
    row["traits"] = orjson.loads(row["traits"])
    return row


def test_counts_and_first_and_last_seen_accumulate(engine: DuckDBEngine) -> None:
    upsert_profiles(engine, [msg(at=5), msg(at=2), msg(profile=2, at=3)])
    upsert_profiles(engine, [msg(at=1), msg(at=9)])

    one, two = profile(engine, 1), profile(engine, 2)
    assert (one["event_count"], one["first_seen"], one["last_seen"]) == (4, at(1), at(9))
    assert (two["event_count"], two["first_seen"], two["last_seen"]) == (1, at(3), at(3))


def test_traits_are_merged_latest_wins_within_a_batch_by_timestamp(engine: DuckDBEngine) -> None:
    upsert_profiles(
        engine,
        [
            msg("identify", at=2, traits={"plan": "pro", "address": {"city": "Paris"}}),
            msg("identify", at=1, traits={"plan": "free", "name": "Jane"}),
            msg("identify", at=3, traits={"address": {"zip": "75001"}, "name": None}),
        ],
    )
    row = profile(engine)
    assert row["traits"] == {
        "plan": "pro",
        "name": "Jane",  # a null never erases a known trait
        "address": {"city": "Paris", "zip": "75001"},
    }
    assert row["traits_updated_at"] == at(3)


def test_a_late_batch_only_fills_traits_the_profile_lacks(engine: DuckDBEngine) -> None:
    upsert_profiles(engine, [msg("identify", at=10, traits={"plan": "pro"})])
    upsert_profiles(engine, [msg("identify", at=5, traits={"plan": "free", "name": "Jane"})])
    row = profile(engine)
    assert row["traits"] == {"plan": "pro", "name": "Jane"}
    assert row["traits_updated_at"] == at(10)

    upsert_profiles(engine, [msg("identify", at=11, traits={"plan": "team"})])
    assert profile(engine)["traits"] == {"plan": "team", "name": "Jane"}


def test_context_traits_count_and_group_traits_do_not(engine: DuckDBEngine) -> None:
    upsert_profiles(
        engine,
        [
            msg(at=1, context={"traits": {"plan": "pro"}}),
            msg("group", at=2, traits={"plan": "enterprise", "employees": 500}),
            msg("identify", at=3, traits={"name": "Jane"}, context={"traits": {"name": "J"}}),
        ],
    )
    row = profile(engine)
    assert row["traits"] == {"plan": "pro", "name": "Jane"}
    assert row["traits_updated_at"] == at(3)


def test_a_batch_without_traits_keeps_the_stored_ones(engine: DuckDBEngine) -> None:
    upsert_profiles(engine, [msg("identify", at=1, traits={"plan": "pro"})])
    upsert_profiles(engine, [msg(at=2)])
    row = profile(engine)
    assert (row["traits"], row["traits_updated_at"]) == ({"plan": "pro"}, at(1))


def test_identifiers_are_the_latest_known_and_normalized(engine: DuckDBEngine) -> None:
    upsert_profiles(
        engine,
        [
            msg("identify", at=1, anon="a1", traits={"email": " Jane@Example.COM "}),
            msg(at=2, anon="a2", user="u1", context={"traits": {"phone": "+1 (415) 555-0123"}}),
            msg("identify", at=3, traits={"email": "broken@", "phone": "12"}),
        ],
    )
    row = profile(engine)
    assert (row["user_id"], row["anonymous_id"]) == ("u1", "a2")
    assert (row["email"], row["phone"]) == ("jane@example.com", "+14155550123")

    upsert_profiles(engine, [msg(at=0, anon="a0", traits={"email": "old@example.com"})])
    assert profile(engine)["anonymous_id"] == "a2"  # an older batch does not replace


def test_first_touch_is_the_earliest_utm_and_last_touch_the_latest(engine: DuckDBEngine) -> None:
    upsert_profiles(
        engine,
        [
            msg(at=1),
            msg(at=3, utm_source="google", utm_medium="cpc", utm_campaign="spring"),
            msg(at=4),
            msg(at=5, utm_source="newsletter"),
        ],
    )
    row = profile(engine)
    assert (row["first_touch_at"], row["first_utm_source"], row["first_utm_campaign"]) == (
        at(3),
        "google",
        "spring",
    )
    assert (row["last_touch_at"], row["last_utm_source"], row["last_utm_campaign"]) == (
        at(5),
        "newsletter",
        None,  # the touch is taken as a whole, not mixed with the earlier campaign
    )

    upsert_profiles(engine, [msg(at=2, utm_source="facebook"), msg(at=6)])
    row = profile(engine)
    assert (row["first_touch_at"], row["first_utm_source"], row["first_utm_medium"]) == (
        at(2),
        "facebook",
        None,
    )
    assert (row["last_touch_at"], row["last_utm_source"]) == (at(5), "newsletter")

    upsert_profiles(engine, [msg(at=7, utm_source="tiktok", utm_medium="paid")])
    row = profile(engine)
    assert (row["first_utm_source"], row["last_utm_source"], row["last_utm_medium"]) == (
        "facebook",
        "tiktok",
        "paid",
    )


def test_no_utm_leaves_touch_columns_empty(engine: DuckDBEngine) -> None:
    upsert_profiles(engine, [msg(at=1, gclid="g1")])
    row = profile(engine)
    assert row["first_touch_at"] is None and row["last_utm_source"] is None
    assert row["gclid"] == "g1"


def test_context_columns_come_from_the_latest_event_that_has_them(engine: DuckDBEngine) -> None:
    device = {"device": {"id": "dev-1", "advertisingId": "idfa-1"}}
    upsert_profiles(
        engine,
        [
            msg(at=1, browser="Firefox", os="Linux", gclid="g1", country="FR", context=device),
            msg(at=2, browser="Chrome", fbp="fb.1.1", locale="fr-FR", language="fr"),
            msg(at=3),
        ],
    )
    row = profile(engine)
    assert (row["browser"], row["os"], row["gclid"], row["fbp"]) == (
        "Chrome",
        "Linux",
        "g1",
        "fb.1.1",
    )
    assert (row["country"], row["locale"], row["language"]) == ("FR", "fr-FR", "fr")
    assert (row["device_id"], row["advertising_id"]) == ("dev-1", "idfa-1")
    assert row["context_updated_at"] == at(2)

    # a late batch fills what is missing but does not overwrite newer values
    upsert_profiles(engine, [msg(at=0, browser="Safari", timezone="Europe/Paris")])
    row = profile(engine)
    assert (row["browser"], row["timezone"], row["context_updated_at"]) == (
        "Chrome",
        "Europe/Paris",
        at(2),
    )

    upsert_profiles(engine, [msg(at=9, browser="Edge", gclid="g2")])
    row = profile(engine)
    assert (row["browser"], row["gclid"], row["os"], row["context_updated_at"]) == (
        "Edge",
        "g2",
        "Linux",
        at(9),
    )


def test_messages_without_a_profile_id_are_refused(engine: DuckDBEngine) -> None:
    unresolved = msg()
    unresolved.profile_id = None
    with pytest.raises(ValueError, match="resolve identity first"):
        upsert_profiles(engine, [unresolved])


def test_an_empty_batch_writes_nothing(engine: DuckDBEngine) -> None:
    upsert_profiles(engine, [])
    assert engine.rows("SELECT count(*) FROM profiles") == [(0,)]


def test_merging_rows_keeps_the_best_of_each(engine: DuckDBEngine) -> None:
    upsert_profiles(
        engine,
        [
            # profile 1: older, known user, older traits, later touch
            msg("identify", profile=1, at=5, user="u1", traits={"plan": "free", "a": 1}),
            msg(profile=1, at=8, utm_source="newsletter", browser="Chrome"),
            # profile 2: earlier first touch, newer traits, a click id
            msg(profile=2, at=1, anon="anon-2", utm_source="google", gclid="g2"),
            msg("identify", profile=2, at=6, traits={"plan": "pro", "b": 2}),
            # profile 3: merged in a chain, only the oldest event
            msg(profile=3, at=0, anon="anon-3", browser="Safari"),
        ],
    )
    merge_profile_rows(engine, {2: 1, 3: 1})

    assert engine.rows("SELECT profile_id FROM profiles") == [(1,)]
    row = profile(engine)
    assert row["event_count"] == 5
    assert (row["first_seen"], row["last_seen"]) == (at(0), at(8))
    assert row["traits"] == {"plan": "pro", "a": 1, "b": 2}
    assert row["traits_updated_at"] == at(6)
    assert (row["first_touch_at"], row["first_utm_source"]) == (at(1), "google")
    assert (row["last_touch_at"], row["last_utm_source"]) == (at(8), "newsletter")
    assert (row["user_id"], row["anonymous_id"]) == ("u1", "anon-2")
    assert (row["browser"], row["gclid"]) == ("Chrome", "g2")


def test_merging_into_a_winner_without_a_row_moves_the_row(engine: DuckDBEngine) -> None:
    upsert_profiles(engine, [msg(profile=7, at=1, browser="Chrome")])
    merge_profile_rows(engine, {7: 3})
    assert engine.rows("SELECT profile_id, browser, event_count FROM profiles") == [
        (3, "Chrome", 1)
    ]


def test_upsert_after_a_merge_in_the_same_transaction(engine: DuckDBEngine) -> None:
    upsert_profiles(engine, [msg(profile=1, at=1), msg(profile=2, at=2)])
    with engine.transaction():
        merge_profile_rows(engine, {2: 1})
        upsert_profiles(engine, [msg(profile=1, at=3)])
    assert engine.rows("SELECT profile_id, event_count FROM profiles") == [(1, 3)]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({}, {"a": 1}, {"a": 1}),
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"a": 1}, {"a": None}, {"a": 1}),
        ({"a": {"x": 1}}, {"a": {"y": 2}}, {"a": {"x": 1, "y": 2}}),
        ({"a": {"x": 1}}, {"a": 3}, {"a": 3}),
        ({"a": 3}, {"a": {"x": 1, "y": None}}, {"a": {"x": 1}}),
        ({"tags": [1, 2]}, {"tags": [3]}, {"tags": [3]}),
    ],
)
def test_merge_traits_agrees_with_json_merge_patch(
    engine: DuckDBEngine, old: dict[str, Any], new: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert merge_traits(old, new) == expected
    clean_new = merge_traits({}, new)  # the warehouse only ever sees null-free traits
    (sql,) = engine.rows(
        "SELECT json_merge_patch(?::JSON, ?::JSON)",
        [orjson.dumps(old).decode(), orjson.dumps(clean_new).decode()],
    )[0]
    assert orjson.loads(sql) == expected


def test_message_traits_and_contacts() -> None:
    identify = msg(
        "identify",
        traits={"email": "A@Example.com", "plan": "pro"},
        context={"traits": {"email": "b@example.com", "phone": "020 7946 0958"}},
    )
    assert message_traits(identify) == {
        "email": "A@Example.com",
        "plan": "pro",
        "phone": "020 7946 0958",
    }
    assert message_contacts(identify) == ("a@example.com", None)
    assert message_contacts(identify, "GB") == ("a@example.com", "+442079460958")
    assert message_contacts(msg("track", traits={"email": "c@example.com"})) == (None, None)


def test_fold_of_a_large_batch_is_one_row_per_profile() -> None:
    messages = [
        msg(profile=i % 1000, at=i % 600, browser="Chrome", utm_source="x" if i % 7 else None)
        for i in range(20_000)
    ]
    rows = fold_batch(messages)
    assert len(rows) == 1000
    assert sum(row["event_count"] for row in rows) == 20_000
