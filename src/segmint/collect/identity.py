"""Identity resolution: which profile each message belongs to, and which profiles are one person.

A profile is identified by any of its identifiers: ``anonymous_id``, ``user_id``, ``email`` and
``phone`` (email and phone come from identify traits and from ``context.traits`` on any message,
normalized by ``segmint.identifiers``; invalid ones are not linked). The ``identities`` table
maps each identifier to its profile; ``IdentityResolver`` keeps that map in memory because the
process that collects is the only writer of the warehouse, so the map stays true.

Rules, applied to the messages of a batch in the order given (so the outcome is deterministic):

1. A message's identifiers are looked up: its ``user_id``, its ``anonymous_id``, for an alias
   its ``previousId`` (under both ``user_id`` and ``anonymous_id``, since it may be either),
   and its email and phone.
2. None is known: the message starts a new profile (ids are given out in increasing order) and
   all its identifiers are linked to it.
3. One profile is known: unknown identifiers are linked to it. This is how anonymous history
   joins the known profile: anonymous events already carry the anonymous profile's id, so an
   identify of that anonymous id with a new ``user_id`` simply adds the ``user_id`` to it.
4. Several profiles are known: they are merged into the one with the lowest id (the oldest),
   whatever the order they were found in. The merged profiles' identifiers, events and
   profile row move to the winner, and a ``profile_merges`` row records each merge with its
   reason (``"identify via anonymous_id"``: the call and the identifier that linked them).
5. Alias links ``previousId``'s profile with ``userId``'s profile (a merge when both exist); an
   unknown ``previousId`` is linked as an ``anonymous_id``.
6. A profile holds at most one ``user_id``; two customers are never merged. The message's own
   ``user_id`` decides which customer the message is about (without one, the first of its
   identifiers, in the order of rule 1, whose profile has a ``user_id``). Profiles belonging to
   another ``user_id`` are left alone: their identifiers stay where they are, and the message
   joins the profile of its ``user_id`` (a new one if that ``user_id`` is unknown). So a shared
   device, or an email typed by two accounts, never merges two customers; alias of two
   different user ids does not merge them either.

Writing is two-phase so the in-memory map never runs ahead of the warehouse: ``resolve``
computes the batch's changes on a pending overlay (the map itself is untouched), the caller
writes them with ``apply_identity_changes`` inside its warehouse transaction, then calls
``commit(changes)`` once that transaction has committed, or ``discard()`` if it failed::

    changes = resolver.resolve(messages)
    try:
        with engine.transaction():
            engine.append("events", ...)          # messages carry their profile_id now
            apply_identity_changes(engine, changes, merged_at=now)
            upsert_profiles(engine, messages)
    except BaseException:
        resolver.discard()
        raise
    resolver.commit(changes)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from segmint.collect.messages import Message
from segmint.collect.profiles import merge_profile_rows, message_contacts
from segmint.warehouse.engine import Engine

log = logging.getLogger(__name__)

ID_TYPES = ("user_id", "anonymous_id", "email", "phone")

IdentityKey = tuple[str, str]
"""(id_type, id_value), the key of the ``identities`` table."""


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """A new row of ``identities``: this identifier belongs to this profile."""

    id_type: str
    id_value: str
    profile_id: int
    first_seen: datetime


@dataclass(frozen=True, slots=True)
class ProfileMerge:
    """``merged_profile_id`` became part of ``into_profile_id``; ``reason`` says which call and
    identifier linked them (``"alias via previous_id"``)."""

    merged_profile_id: int
    into_profile_id: int
    reason: str


@dataclass(slots=True)
class IdentityChanges:
    """What one resolved batch must write to the warehouse.

    ``new_identities`` point at final profiles (after all of this batch's merges).
    ``merges`` are in the order they happened; a profile that won one merge may lose a later
    one (7 into 5, then 5 into 1), and ``final_winners`` follows such chains. Moving existing
    identities and events is implied by the merges: every row of a merged profile moves.
    """

    new_identities: list[IdentityLink] = field(default_factory=list)
    merges: list[ProfileMerge] = field(default_factory=list)
    next_profile_id: int = 1

    def final_winners(self) -> dict[int, int]:
        """Each merged profile id → the profile it finally belongs to after the whole batch."""
        into = {merge.merged_profile_id: merge.into_profile_id for merge in self.merges}
        winners: dict[int, int] = {}
        for loser in into:
            winner = into[loser]
            while winner in into:
                winner = into[winner]
            winners[loser] = winner
        return winners

    @property
    def is_empty(self) -> bool:
        """True when the batch linked nothing new and merged nothing."""
        return not self.new_identities and not self.merges


@dataclass(slots=True)
class _Lookup:
    """One identifier of a message: the keys it may be stored under, the key to link it as
    when unknown, and a label for merge reasons."""

    keys: tuple[IdentityKey, ...]
    link_as: IdentityKey
    label: str


class _Overlay:
    """Pending state of one batch, read before the committed state and dropped on discard."""

    __slots__ = ("links", "merged_into", "next_id", "users")

    def __init__(self, next_id: int) -> None:
        self.links: dict[IdentityKey, tuple[int, datetime]] = {}
        self.merged_into: dict[int, int] = {}
        self.users: dict[int, str] = {}
        self.next_id = next_id


def signature(message: Message, default_region: str | None = None) -> tuple[str | None, ...]:
    """The identifiers ``IdentityResolver`` looks up for ``message`` (rule 1, in the order of
    its ``_lookups``): messages with equal signatures are resolved alike."""
    context = message.context
    if (message.traits and message.type == "identify") or (context and "traits" in context):
        email, phone = message_contacts(message, default_region)
    else:
        email = phone = None
    previous = message.previous_id
    if message.type != "alias" or previous == message.user_id:
        previous = None
    return (message.user_id or None, message.anonymous_id or None, previous or None, email, phone)


class IdentityResolver:
    """The identity map of one warehouse, kept in memory (rules in the module docstring).

    Not thread-safe by itself: the collector resolves and writes one batch at a time.
    """

    def __init__(self, engine: Engine, *, default_phone_region: str | None = None) -> None:
        """Load the identity map from ``engine``'s ``identities`` table."""
        self.default_phone_region = default_phone_region
        self._links: dict[IdentityKey, int] = {}
        # Merges done since loading; the warehouse has re-pointed its rows, the map follows
        # these pointers instead of rewriting every entry of a merged profile.
        self._merged_into: dict[int, int] = {}
        self._users: dict[int, str] = {}
        self._pending: IdentityChanges | None = None
        self._overlay: _Overlay | None = None
        self._load(engine)

    def _load(self, engine: Engine) -> None:
        table = engine.arrow(
            "SELECT id_type, id_value, profile_id FROM identities "
            "ORDER BY profile_id, id_type, id_value"
        )
        types = table.column("id_type").to_pylist()
        values = table.column("id_value").to_pylist()
        profiles = table.column("profile_id").to_pylist()
        self._links = dict(zip(zip(types, values, strict=True), profiles, strict=True))
        for (id_type, value), profile_id in self._links.items():
            if id_type == "user_id":
                self._users.setdefault(profile_id, value)
        (highest,) = engine.rows(
            "SELECT greatest("
            "(SELECT coalesce(max(profile_id), 0) FROM identities), "
            "(SELECT coalesce(max(profile_id), 0) FROM profiles), "
            "(SELECT coalesce(max(greatest(merged_profile_id, into_profile_id)), 0) "
            "FROM profile_merges))"
        )[0]
        # Merged-away ids are never reused: their events and history rows still name them.
        self._next_id = int(highest) + 1
        log.info("identity map loaded: %d identifiers", len(self._links))

    # --- reading -------------------------------------------------------------------------

    def profile_of(self, id_type: str, id_value: str) -> int | None:
        """The committed profile of an identifier, or ``None`` when it is unknown."""
        profile_id = self._links.get((id_type, id_value))
        return None if profile_id is None else self._final(profile_id, None)

    def snapshot(self) -> dict[IdentityKey, int]:
        """The committed map, every identifier → its current profile (for tests and checks)."""
        return {key: self._final(pid, None) for key, pid in sorted(self._links.items())}

    @property
    def next_profile_id(self) -> int:
        """The id the next new profile will get (committed state)."""
        return self._next_id

    # --- resolving -----------------------------------------------------------------------

    def resolve(self, messages: list[Message]) -> IdentityChanges:
        """Set ``profile_id`` on every message and return what the warehouse must record.

        The committed map is not changed until ``commit``; only one batch may be pending.
        """
        if self._pending is not None:
            raise RuntimeError("a resolved batch is pending: commit() or discard() it first")
        overlay = _Overlay(self._next_id)
        changes = IdentityChanges()
        for message in messages:
            message.profile_id = self._resolve_one(message, overlay, changes)
        # Later messages of the batch may have merged the profiles earlier ones were given.
        for message in messages:
            assert message.profile_id is not None
            message.profile_id = self._final(message.profile_id, overlay)
        changes.new_identities = [
            IdentityLink(key[0], key[1], self._final(profile_id, overlay), first_seen)
            for key, (profile_id, first_seen) in overlay.links.items()
        ]
        changes.next_profile_id = overlay.next_id
        self._pending, self._overlay = changes, overlay
        return changes

    def commit(self, changes: IdentityChanges) -> None:
        """Fold a resolved batch into the map, after its warehouse transaction committed."""
        if changes is not self._pending:
            raise RuntimeError("commit() expects the changes of the pending resolve()")
        for merge in changes.merges:
            self._merged_into[merge.merged_profile_id] = merge.into_profile_id
        for loser in changes.final_winners():
            user = self._users.pop(loser, None)
            if user is not None:
                self._users.setdefault(self._final(loser, None), user)
        for link in changes.new_identities:
            self._links[(link.id_type, link.id_value)] = link.profile_id
            if link.id_type == "user_id":
                self._users[link.profile_id] = link.id_value
        self._next_id = changes.next_profile_id
        self._pending = self._overlay = None

    def discard(self) -> None:
        """Drop the pending batch (its warehouse transaction failed); the map is unchanged."""
        self._pending = self._overlay = None

    def _final(self, profile_id: int, overlay: _Overlay | None) -> int:
        while True:
            following = overlay.merged_into.get(profile_id) if overlay else None
            if following is None:
                following = self._merged_into.get(profile_id)
            if following is None:
                return profile_id
            profile_id = following

    def _find(self, key: IdentityKey, overlay: _Overlay) -> int | None:
        pending = overlay.links.get(key)
        profile_id = pending[0] if pending else self._links.get(key)
        return None if profile_id is None else self._final(profile_id, overlay)

    def _user_of(self, profile_id: int, overlay: _Overlay) -> str | None:
        return overlay.users.get(profile_id) or self._users.get(profile_id)

    def _lookups(self, message: Message) -> Iterator[_Lookup]:
        """The message's identifiers in priority order (rule 1 of the module docstring)."""
        if message.user_id:
            key = ("user_id", message.user_id)
            yield _Lookup((key,), key, "user_id")
        if message.anonymous_id:
            key = ("anonymous_id", message.anonymous_id)
            yield _Lookup((key,), key, "anonymous_id")
        previous = message.previous_id
        if message.type == "alias" and previous and previous != message.user_id:
            yield _Lookup(
                (("user_id", previous), ("anonymous_id", previous)),
                ("anonymous_id", previous),
                "previous_id",
            )
        email, phone = message_contacts(message, self.default_phone_region)
        if email:
            yield _Lookup((("email", email),), ("email", email), "email")
        if phone:
            yield _Lookup((("phone", phone),), ("phone", phone), "phone")

    def _resolve_one(self, message: Message, overlay: _Overlay, changes: IdentityChanges) -> int:
        found: list[tuple[int, str]] = []  # (profile, label), in priority order
        unknown: list[IdentityKey] = []
        for lookup in self._lookups(message):
            hit = False
            for key in lookup.keys:
                profile_id = self._find(key, overlay)
                if profile_id is not None:
                    found.append((profile_id, lookup.label))
                    hit = True
            if not hit:
                unknown.append(lookup.link_as)

        customer = message.user_id or next(
            (user for pid, _ in found if (user := self._user_of(pid, overlay)) is not None),
            None,
        )
        joining: dict[int, str] = {}  # compatible profile → the identifier that found it
        for profile_id, label in found:
            user = self._user_of(profile_id, overlay)
            if user is None or user == customer:
                joining.setdefault(profile_id, label)
        if joining:
            winner = min(joining)
        else:
            winner = overlay.next_id
            overlay.next_id += 1

        for loser, label in joining.items():
            if loser != winner:
                self._merge(loser, winner, f"{message.type} via {label}", overlay, changes)
        for key in dict.fromkeys(unknown):
            if key[0] == "user_id":
                if self._user_of(winner, overlay) not in (None, key[1]):
                    continue  # rule 6; unreachable while rule 6 picks the winner, kept as a guard
                overlay.users[winner] = key[1]
            overlay.links[key] = (winner, message.timestamp)
        return winner

    def _merge(
        self,
        loser: int,
        winner: int,
        reason: str,
        overlay: _Overlay,
        changes: IdentityChanges,
    ) -> None:
        overlay.merged_into[loser] = winner
        user = self._user_of(loser, overlay)
        if user is not None:
            overlay.users[winner] = user
        changes.merges.append(ProfileMerge(loser, winner, reason))


def apply_identity_changes(engine: Engine, changes: IdentityChanges, merged_at: datetime) -> None:
    """Write a resolved batch's identity changes, in one transaction (joining the caller's).

    Appends the new identities; for merges, moves every identity and event of each merged
    profile to its final winner (one statement each, for all merges of the batch), folds the
    merged profile rows into the winners' (see ``segmint.collect.profiles``) and records the
    merges in ``profile_merges`` with ``merged_at``.
    """
    with engine.transaction():
        if changes.new_identities:
            engine.append("identities", _identities_table(changes.new_identities))
        if changes.merges:
            _apply_merges(engine, changes, merged_at)
    log.debug(
        "identity: %d new identifiers, %d profile merges",
        len(changes.new_identities),
        len(changes.merges),
    )


def _apply_merges(engine: Engine, changes: IdentityChanges, merged_at: datetime) -> None:
    winners = changes.final_winners()
    losers = list(winners)
    moves = [losers, [winners[loser] for loser in losers]]
    for table in ("identities", "events", "segment_events"):
        # The table name is a constant; the ids are bound as list parameters.
        engine.execute(
            f"UPDATE {table} SET profile_id = moves.winner "
            "FROM (SELECT unnest(?::BIGINT[]) AS loser, unnest(?::BIGINT[]) AS winner) "
            f"AS moves WHERE {table}.profile_id = moves.loser",
            moves,
        )
    merge_profile_rows(engine, winners)
    engine.append(
        "profile_merges",
        pa.table(
            {
                "merged_profile_id": pa.array(
                    [m.merged_profile_id for m in changes.merges], pa.int64()
                ),
                "into_profile_id": pa.array(
                    [m.into_profile_id for m in changes.merges], pa.int64()
                ),
                "merged_at": pa.array([merged_at] * len(changes.merges), pa.timestamp("us")),
                "reason": pa.array([m.reason for m in changes.merges], pa.string()),
            }
        ),
    )


def _identities_table(links: list[IdentityLink]) -> pa.Table:
    return pa.table(
        {
            "id_type": pa.array([link.id_type for link in links], pa.string()),
            "id_value": pa.array([link.id_value for link in links], pa.string()),
            "profile_id": pa.array([link.profile_id for link in links], pa.int64()),
            "first_seen": pa.array([link.first_seen for link in links], pa.timestamp("us")),
        }
    )
