"""Identity resolution through a real in-memory DuckDB warehouse: every test resolves batches,
writes them as the collector does (events, identities, merges, profiles in one transaction)
and checks the warehouse."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from segmint.collect.identity import IdentityChanges, IdentityResolver, apply_identity_changes
from segmint.collect.messages import Message
from segmint.collect.profiles import upsert_profiles
from segmint.warehouse.duckdb import DuckDBEngine, open_warehouse

T0 = datetime(2024, 5, 1, 12, 0)
_ids = itertools.count(1)


def msg(
    type: str = "track",
    *,
    at: int = 0,
    user: str | None = None,
    anon: str | None = None,
    previous: str | None = None,
    traits: dict[str, Any] | None = None,
    context_traits: dict[str, Any] | None = None,
) -> Message:
    """A validated message, ``at`` minutes after T0."""
    return Message(
        message_id=f"m{next(_ids)}",
        type=type,
        event="Viewed" if type == "track" else type,
        timestamp=T0 + timedelta(minutes=at),
        received_at=T0 + timedelta(minutes=at),
        user_id=user,
        anonymous_id=anon,
        previous_id=previous,
        traits=traits or {},
        context={"traits": context_traits} if context_traits else {},
    )


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    warehouse = open_warehouse(None)
    yield warehouse
    warehouse.close()


def ingest(engine: DuckDBEngine, resolver: IdentityResolver, messages: list[Message]) -> None:
    """Store a batch the way the collector does."""
    changes = resolver.resolve(messages)
    try:
        with engine.transaction():
            engine.append("events", events_table(messages))
            apply_identity_changes(engine, changes, merged_at=T0)
            upsert_profiles(engine, messages)
    except BaseException:
        resolver.discard()
        raise
    resolver.commit(changes)


def events_table(messages: list[Message]) -> pa.Table:
    return pa.table(
        {
            "message_id": [m.message_id for m in messages],
            "profile_id": pa.array([m.profile_id for m in messages], pa.int64()),
            "type": [m.type for m in messages],
            "event": [m.event for m in messages],
            "timestamp": pa.array([m.timestamp for m in messages], pa.timestamp("us")),
            "received_at": pa.array([m.received_at for m in messages], pa.timestamp("us")),
        }
    )


def event_profiles(engine: DuckDBEngine) -> dict[str, int]:
    return dict(engine.rows("SELECT message_id, profile_id FROM events"))


def identities(engine: DuckDBEngine) -> dict[tuple[str, str], int]:
    rows = engine.rows("SELECT id_type, id_value, profile_id FROM identities")
    return {(t, v): p for t, v, p in rows}


def merges(engine: DuckDBEngine) -> list[tuple[int, int, str]]:
    return engine.rows(
        "SELECT merged_profile_id, into_profile_id, reason FROM profile_merges ORDER BY ALL"
    )


def profile_rows(engine: DuckDBEngine) -> dict[int, tuple[Any, ...]]:
    rows = engine.rows("SELECT profile_id, user_id, event_count FROM profiles ORDER BY 1")
    return {row[0]: row[1:] for row in rows}


def test_each_unknown_anonymous_id_starts_a_new_profile(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    batch = [msg(anon="a1"), msg(anon="a2"), msg(anon="a1", at=1)]
    ingest(engine, resolver, batch)

    assert [m.profile_id for m in batch] == [1, 2, 1]
    assert identities(engine) == {("anonymous_id", "a1"): 1, ("anonymous_id", "a2"): 2}
    assert profile_rows(engine) == {1: (None, 2), 2: (None, 1)}
    assert merges(engine) == []
    assert resolver.next_profile_id == 3


def test_identify_attaches_user_id_to_the_anonymous_profile(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    browsing = [msg(anon="a1"), msg("page", anon="a1", at=1)]
    ingest(engine, resolver, browsing)
    login = msg("identify", anon="a1", user="u1", at=2)
    ingest(engine, resolver, [login, msg(user="u1", at=3)])

    assert login.profile_id == 1
    assert set(event_profiles(engine).values()) == {1}
    assert identities(engine) == {("anonymous_id", "a1"): 1, ("user_id", "u1"): 1}
    assert merges(engine) == []
    assert profile_rows(engine) == {1: ("u1", 4)}


def test_login_on_a_second_device_merges_its_history_into_the_user(
    engine: DuckDBEngine,
) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg(anon="laptop"), msg("identify", anon="laptop", user="u1")])
    ingest(engine, resolver, [msg(anon="phone", at=5), msg(anon="phone", at=6)])
    assert set(event_profiles(engine).values()) == {1, 2}

    ingest(engine, resolver, [msg("identify", anon="phone", user="u1", at=7)])

    assert set(event_profiles(engine).values()) == {1}
    assert merges(engine) == [(2, 1, "identify via anonymous_id")]
    assert identities(engine) == {
        ("anonymous_id", "laptop"): 1,
        ("anonymous_id", "phone"): 1,
        ("user_id", "u1"): 1,
    }
    assert profile_rows(engine) == {1: ("u1", 5)}
    assert resolver.profile_of("anonymous_id", "phone") == 1


def test_lowest_profile_id_wins_even_when_the_user_is_on_the_newer_profile(
    engine: DuckDBEngine,
) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg(anon="phone")])  # profile 1, anonymous
    ingest(engine, resolver, [msg("identify", anon="laptop", user="u1", at=1)])  # profile 2
    ingest(engine, resolver, [msg("identify", anon="phone", user="u1", at=2)])

    assert merges(engine) == [(2, 1, "identify via user_id")]
    assert set(event_profiles(engine).values()) == {1}
    assert profile_rows(engine) == {1: ("u1", 3)}
    assert resolver.profile_of("user_id", "u1") == 1


def test_alias_merges_two_known_profiles(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg(anon="visitor")])  # 1
    ingest(engine, resolver, [msg("identify", anon="app", user="u1", at=1)])  # 2
    alias = msg("alias", user="u1", previous="visitor", at=2)
    ingest(engine, resolver, [alias])

    assert alias.profile_id == 1
    assert merges(engine) == [(2, 1, "alias via user_id")]
    assert set(identities(engine).values()) == {1}
    assert profile_rows(engine) == {1: ("u1", 3)}


def test_a_merge_moves_the_segment_events_of_the_merged_profile(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg(anon="visitor")])  # 1
    ingest(engine, resolver, [msg("identify", anon="app", user="u1", at=1)])  # 2
    engine.execute(
        "INSERT INTO segment_events (refresh_seq, profile_id, added) VALUES (1, 2, true)"
    )
    ingest(engine, resolver, [msg("alias", user="u1", previous="visitor", at=2)])

    assert merges(engine) == [(2, 1, "alias via user_id")]
    assert engine.rows("SELECT profile_id FROM segment_events") == [(1,)]


def test_alias_with_a_previous_user_id_finds_it_under_user_id(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg("identify", anon="a1", user="crm-7")])  # 1
    ingest(engine, resolver, [msg(anon="a2", at=1)])  # 2, anonymous
    alias = msg("alias", anon="a2", previous="crm-7", at=2)
    ingest(engine, resolver, [alias])

    assert alias.profile_id == 1
    assert merges(engine) == [(2, 1, "alias via anonymous_id")]
    assert ("anonymous_id", "crm-7") not in identities(engine)


def test_alias_with_an_unknown_previous_id_links_it_as_an_anonymous_id(
    engine: DuckDBEngine,
) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg("alias", user="u1", previous="old-cookie")])
    assert identities(engine) == {("user_id", "u1"): 1, ("anonymous_id", "old-cookie"): 1}


def test_email_links_devices_of_one_person(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(
        engine,
        resolver,
        [msg("identify", anon="laptop", user="u1", traits={"email": "Jane@Example.com"})],
    )
    ingest(engine, resolver, [msg(anon="tablet", at=1)])  # 2, anonymous so far
    # the tablet's newsletter form sends the email in context.traits, cased differently
    signup = msg(anon="tablet", at=2, context_traits={"email": " JANE@example.COM "})
    fresh_device = msg(anon="tv", at=3, context_traits={"email": "jane@example.com"})
    ingest(engine, resolver, [signup, fresh_device])

    assert signup.profile_id == fresh_device.profile_id == 1
    assert merges(engine) == [(2, 1, "track via anonymous_id")]
    assert identities(engine)[("email", "jane@example.com")] == 1
    assert identities(engine)[("anonymous_id", "tv")] == 1
    assert set(event_profiles(engine).values()) == {1}


def test_invalid_emails_and_phones_are_not_linked(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(
        engine,
        resolver,
        [
            msg("identify", anon="a1", traits={"email": "not-an-email", "phone": "12"}),
            msg("identify", anon="a2", traits={"email": "not-an-email", "phone": "12"}),
            msg("identify", anon="a3", traits={"phone": "+1 415 555 0123"}),
        ],
    )
    assert identities(engine) == {
        ("anonymous_id", "a1"): 1,
        ("anonymous_id", "a2"): 2,
        ("anonymous_id", "a3"): 3,
        ("phone", "+14155550123"): 3,
    }


def test_shared_device_never_merges_two_customers(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg("identify", anon="family-ipad", user="alice")])  # 1
    bob_login = msg("identify", anon="family-ipad", user="bob", at=1)
    bob_event = msg(anon="family-ipad", user="bob", at=2)
    anonymous = msg(anon="family-ipad", at=3)
    ingest(engine, resolver, [bob_login, bob_event, anonymous])

    assert merges(engine) == []
    assert bob_login.profile_id == bob_event.profile_id == 2
    assert anonymous.profile_id == 1  # the device stays with the customer it belonged to
    assert identities(engine) == {
        ("anonymous_id", "family-ipad"): 1,
        ("user_id", "alice"): 1,
        ("user_id", "bob"): 2,
    }
    assert profile_rows(engine) == {1: ("alice", 2), 2: ("bob", 2)}


def test_a_shared_email_never_merges_two_customers(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg("identify", user="alice", traits={"email": "home@example.com"})])
    bob = msg("identify", user="bob", traits={"email": "home@example.com"}, at=1)
    ingest(engine, resolver, [bob])
    # an anonymous visitor giving the email joins the email's customer
    visitor = msg(anon="v1", at=2, context_traits={"email": "home@example.com"})
    ingest(engine, resolver, [visitor])

    assert merges(engine) == []
    assert bob.profile_id == 2
    assert visitor.profile_id == 1
    assert identities(engine)[("email", "home@example.com")] == 1


def test_alias_of_two_different_user_ids_does_not_merge_them(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg("identify", user="alice"), msg("identify", user="bob")])
    alias = msg("alias", user="bob", previous="alice", at=1)
    ingest(engine, resolver, [alias])

    assert merges(engine) == []
    assert alias.profile_id == 2


def test_without_a_user_id_the_first_customer_found_decides(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(
        engine,
        resolver,
        [
            msg("identify", user="alice", traits={"email": "alice@example.com"}),  # 1
            msg("identify", user="bob", traits={"phone": "+14155550123"}),  # 2
            msg(anon="stray"),  # 3
        ],
    )
    both = msg(
        anon="stray",
        at=1,
        context_traits={"email": "alice@example.com", "phone": "+1 415 555 0123"},
    )
    ingest(engine, resolver, [both])

    assert both.profile_id == 1
    assert merges(engine) == [(3, 1, "track via anonymous_id")]
    assert identities(engine)[("phone", "+14155550123")] == 2


def test_chained_merges_in_one_batch_end_in_the_final_winner(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg(anon="x"), msg(anon="y"), msg(anon="z")])  # 1, 2, 3
    batch = [
        msg("identify", anon="z", user="u1", at=1),  # u1 joins 3
        msg("alias", user="u1", previous="y", at=2),  # 3 into 2
        msg("identify", anon="x", user="u1", at=3),  # 2 into 1
        msg(anon="z", at=4),
    ]
    ingest(engine, resolver, batch)

    assert [m.profile_id for m in batch] == [1, 1, 1, 1]
    assert merges(engine) == [(2, 1, "identify via user_id"), (3, 2, "alias via user_id")]
    assert set(event_profiles(engine).values()) == {1}
    assert set(identities(engine).values()) == {1}
    assert profile_rows(engine) == {1: ("u1", 7)}
    assert engine.rows("SELECT first_seen FROM profiles") == [(T0,)]


def test_chained_merges_of_profiles_created_in_the_same_batch(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    batch = [
        msg(anon="x"),
        msg(anon="y"),
        msg(anon="z"),
        msg("identify", anon="z", user="u1", at=1),
        msg("alias", user="u1", previous="y", at=2),
        msg("identify", anon="x", user="u1", at=3),
    ]
    ingest(engine, resolver, batch)

    assert {m.profile_id for m in batch} == {1}
    assert profile_rows(engine) == {1: ("u1", 6)}
    assert len(merges(engine)) == 2
    assert resolver.next_profile_id == 4  # merged-away ids are not reused


def random_stream(seed: int, batches: int = 6, size: int = 40) -> list[list[Message]]:
    """Messages from a few people across devices, with logins, aliases and emails."""
    rng = random.Random(seed)
    stream: list[list[Message]] = []
    minute = 0
    for _ in range(batches):
        batch: list[Message] = []
        for _ in range(size):
            minute += 1
            person = rng.randrange(8)
            anon = f"device-{person}-{rng.randrange(3)}"
            kind = rng.choice(["track", "track", "page", "identify", "alias"])
            user = f"user-{person}" if kind != "track" or rng.random() < 0.3 else None
            if kind == "alias":
                batch.append(msg("alias", at=minute, user=user, previous=anon))
                continue
            email = f"p{person}@example.com" if rng.random() < 0.2 else None
            traits = {"email": email} if kind == "identify" and email else None
            batch.append(msg(kind, at=minute, user=user, anon=anon, traits=traits))
        stream.append(batch)
    return stream


def run_stream(stream: list[list[Message]]) -> tuple[Any, ...]:
    engine = open_warehouse(None)
    resolver = IdentityResolver(engine)
    try:
        for batch in stream:
            ingest(engine, resolver, batch)
        return (
            engine.rows("SELECT message_id, profile_id FROM events ORDER BY ALL"),
            sorted(identities(engine).items()),
            merges(engine),
            engine.rows("SELECT profile_id, user_id, event_count FROM profiles ORDER BY ALL"),
        )
    finally:
        engine.close()


def copy_stream(stream: list[list[Message]]) -> list[list[Message]]:
    return [
        [Message(**{f: getattr(m, f) for f in Message.__dataclass_fields__}) for m in batch]
        for batch in stream
    ]


def test_same_input_gives_the_same_profile_ids() -> None:
    stream = random_stream(seed=7)
    first = run_stream(copy_stream(stream))
    second = run_stream(copy_stream(stream))
    assert first == second
    assert first[2], "the stream should exercise merges"


@pytest.mark.parametrize("seed", range(5))
def test_no_profile_ever_holds_two_user_ids(seed: int) -> None:
    _events, ids, _merges, _profiles = run_stream(random_stream(seed))
    users_by_profile: dict[int, set[str]] = {}
    for (id_type, value), profile_id in ids:
        if id_type == "user_id":
            users_by_profile.setdefault(profile_id, set()).add(value)
    assert all(len(users) == 1 for users in users_by_profile.values())


def test_every_event_points_at_an_existing_profile(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    for batch in random_stream(seed=3):
        ingest(engine, resolver, batch)
    orphans = engine.rows(
        "SELECT count(*) FROM events WHERE profile_id NOT IN (SELECT profile_id FROM profiles)"
    )
    assert orphans == [(0,)]
    counted = engine.rows("SELECT sum(event_count) FROM profiles")[0][0]
    assert counted == engine.rows("SELECT count(*) FROM events")[0][0]


def test_discard_leaves_the_resolver_unchanged(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg(anon="a1"), msg("identify", anon="a2", user="u1")])
    before = (resolver.snapshot(), resolver.next_profile_id)

    batch = [msg("identify", anon="a1", user="u1", at=1), msg(anon="a3", at=2)]
    changes = resolver.resolve(batch)
    assert changes.merges and changes.new_identities
    resolver.discard()

    assert (resolver.snapshot(), resolver.next_profile_id) == before
    again = resolver.resolve([msg("identify", anon="a1", user="u1", at=1), msg(anon="a3", at=2)])
    assert again.new_identities == changes.new_identities
    assert again.merges == changes.merges


def test_a_failed_write_leaves_warehouse_and_resolver_as_they_were(
    engine: DuckDBEngine,
) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg(anon="a1"), msg("identify", anon="a2", user="u1")])
    before = (resolver.snapshot(), resolver.next_profile_id, identities(engine))

    batch = [msg("identify", anon="a1", user="u1", at=1), msg(anon="a3", at=2)]
    changes = resolver.resolve(batch)
    with pytest.raises(RuntimeError, match="disk full"):
        try:
            with engine.transaction():
                apply_identity_changes(engine, changes, merged_at=T0)
                raise RuntimeError("disk full")
        except BaseException:
            resolver.discard()
            raise

    assert (resolver.snapshot(), resolver.next_profile_id, identities(engine)) == before
    assert merges(engine) == []
    ingest(engine, resolver, batch)  # the retry goes through
    assert merges(engine) == [(2, 1, "identify via user_id")]


def test_only_one_batch_may_be_pending(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    changes = resolver.resolve([msg(anon="a1")])
    with pytest.raises(RuntimeError, match="pending"):
        resolver.resolve([msg(anon="a2")])
    with pytest.raises(RuntimeError, match="pending"):
        resolver.commit(IdentityChanges())
    resolver.commit(changes)
    assert resolver.profile_of("anonymous_id", "a1") == 1


def test_a_new_resolver_on_the_same_warehouse_sees_the_same_map(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    for batch in random_stream(seed=11, batches=4):
        ingest(engine, resolver, batch)

    reloaded = IdentityResolver(engine)
    assert reloaded.snapshot() == resolver.snapshot()
    assert reloaded.snapshot() == dict(sorted(identities(engine).items()))
    assert reloaded.next_profile_id == resolver.next_profile_id


def test_merged_away_profile_ids_are_not_reused_after_reload(engine: DuckDBEngine) -> None:
    resolver = IdentityResolver(engine)
    ingest(engine, resolver, [msg("identify", anon="a1", user="u1"), msg(anon="a2")])
    ingest(engine, resolver, [msg("identify", anon="a2", user="u1", at=1)])  # 2 into 1
    assert engine.rows("SELECT max(profile_id) FROM identities") == [(1,)]

    reloaded = IdentityResolver(engine)
    fresh = msg(anon="a3", at=2)
    ingest(engine, reloaded, [fresh])
    assert fresh.profile_id == 3


def test_final_winners_follow_chains() -> None:
    from segmint.collect.identity import ProfileMerge

    changes = IdentityChanges(
        merges=[
            ProfileMerge(9, 7, "r"),
            ProfileMerge(7, 4, "r"),
            ProfileMerge(5, 4, "r"),
            ProfileMerge(4, 1, "r"),
        ]
    )
    assert changes.final_winners() == {9: 1, 7: 1, 5: 1, 4: 1}
