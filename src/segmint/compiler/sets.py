"""Profile sets as SQL, and their algebra (AND, OR, NOT) without needless scans.

A :class:`ProfileSet` is a query of ``profile_id`` (``positive``) or the complement of one
within the universe (``profiles``). Complements are kept symbolic so ``A AND NOT B`` becomes
``A EXCEPT B`` and ``at most 2 times`` becomes ``profiles EXCEPT (more than 2 times)``; the
universe is scanned only when the final answer is a complement.

Sets defined by a predicate on the profile row (traits, demographics, technology, first /
last touch UTM) keep that predicate: AND, OR and NOT of them become one predicate over one
scan of ``profiles`` (NOT as ``NOT COALESCE(p, FALSE)``, so a NULL comparison counts as
false, as in the positive set), which an events scan can then take as one semi-join filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from segmint.compiler import build
from segmint.warehouse.schema import SEGMENT_EVENT_NAMES

PROFILES = "profiles"
EVENTS = "events"
PROFILE_ID = "profile_id"

SEGMENT_EVENT_ROWS = "segment_event_rows"
# The events a refresh emits live in their own table (read through the view
# SEGMENT_EVENT_ROWS, shaped like ``events``). They are also the only events whose
# ``profile_id`` may no longer be a profile: a refresh writes them for members that identity
# resolution may since have merged away. Every collected event belongs to a profile
# (ingestion writes a profile row with every event, and a merge moves the merged profile's
# events to the surviving one; docs/warehouse.md), so a scan of ``events`` needs no
# semi-join with the universe.
SEGMENT_EVENTS = frozenset(SEGMENT_EVENT_NAMES)
# The columns a scan of both sources can use.
_SCANNED = (PROFILE_ID, "event", "timestamp", "properties")


def profile_bound(*event_names: str) -> bool:
    """True when events of these names always belong to a profile of the universe."""
    return not SEGMENT_EVENTS.intersection(event_names)


def events_from(*event_names: str) -> exp.Expr:
    """What to scan for events of these names, under the name ``events``: the collected
    events, the segment events, or (names of both kinds) the union of their common columns."""
    segment = SEGMENT_EVENTS.intersection(event_names)
    if not segment:
        return build.table(EVENTS)
    alias = exp.TableAlias(this=exp.to_identifier(EVENTS))
    if len(segment) == len(set(event_names)):
        return exp.Table(this=exp.to_identifier(SEGMENT_EVENT_ROWS), alias=alias)
    both = exp.Union(
        this=build.select(*_SCANNED, source=EVENTS),
        expression=build.select(*_SCANNED, source=SEGMENT_EVENT_ROWS),
        distinct=False,
    )
    return exp.Subquery(this=both, alias=alias)


@dataclass(frozen=True)
class ProfileSet:
    """``query`` selects profile ids; when ``complement`` the set is every profile not in it."""

    query: exp.Query
    complement: bool = False
    # True when the query can only return ids of ``profiles`` (it reads that table, or only
    # events that are always bound to a profile: see SEGMENT_EVENTS), so the final answer
    # needs no semi-join with the universe.
    within_universe: bool = False
    # When set, the set is exactly the profiles whose row makes this predicate TRUE, and
    # ``query`` is ``SELECT profile_id FROM profiles WHERE predicate`` (see profiles_where).
    predicate: exp.Expr | None = None

    def negated(self) -> ProfileSet:
        """The complement within the universe."""
        if self.predicate is not None:
            false_if_null = exp.Coalesce(this=self.predicate.copy(), expressions=[exp.false()])
            return profiles_where(exp.Not(this=false_if_null))
        return ProfileSet(self.query, not self.complement, self.within_universe)


def profiles_where(predicate: exp.Expr) -> ProfileSet:
    """Profiles whose row makes ``predicate`` TRUE (NULL counts as false)."""
    query = build.select(PROFILE_ID, source=PROFILES, where=predicate.copy())
    return ProfileSet(query, within_universe=True, predicate=predicate)


def _merge_predicates(sets: Sequence[ProfileSet], kind: str) -> list[ProfileSet]:
    """``sets`` with the predicate sets among them (two or more) merged into one, combined
    with ``kind`` (``and`` / ``or``); SQL's AND / OR are TRUE exactly when all / any of
    their operands are TRUE, as intersection / union need."""
    with_predicate = [s for s in sets if s.predicate is not None]
    if len(with_predicate) < 2:
        return list(sets)
    parts = [exp.Paren(this=s.predicate.copy()) for s in with_predicate if s.predicate]
    merged = profiles_where(build.and_(*parts) if kind == "and" else build.or_(*parts))
    return [merged, *(s for s in sets if s.predicate is None)]


def all_profiles() -> exp.Select:
    """SELECT profile_id FROM profiles."""
    return build.select(PROFILE_ID, source=PROFILES)


def nobody() -> ProfileSet:
    """The empty set (the complement of every profile)."""
    return ProfileSet(all_profiles(), complement=True)


def everybody() -> ProfileSet:
    """Every profile."""
    return ProfileSet(all_profiles(), within_universe=True)


def _chain(kind: type[exp.SetOperation], queries: Sequence[exp.Query]) -> exp.Query:
    result = queries[0]
    for query in queries[1:]:
        result = kind(this=_wrap(result), expression=_wrap(query), distinct=True)
    return result


def _wrap(query: exp.Query) -> exp.Query:
    """Parenthesize nested set operations so precedence never depends on the dialect."""
    return exp.Subquery(this=query) if isinstance(query, exp.SetOperation) else query


def intersect(queries: Sequence[exp.Query]) -> exp.Query:
    """Profiles in every query."""
    return _chain(exp.Intersect, queries)


def union(queries: Sequence[exp.Query]) -> exp.Query:
    """Profiles in any query."""
    return _chain(exp.Union, queries)


def except_(left: exp.Query, right: exp.Query) -> exp.Query:
    """Profiles in ``left`` and not in ``right``."""
    return exp.Except(this=_wrap(left), expression=_wrap(right), distinct=True)


def _scans_events(query: exp.Query) -> bool:
    """A plain ``SELECT … FROM events … GROUP BY profile_id`` (or DISTINCT)."""
    if not isinstance(query, exp.Select):
        return False
    source = query.args.get("from_")
    table = source.this if source is not None else None
    grouped = query.args.get("group") is not None or query.args.get("distinct") is not None
    return grouped and isinstance(table, exp.Table) and table.name == EVENTS


def _reads_events(query: exp.Query) -> bool:
    return any(table.name == EVENTS for table in query.find_all(exp.Table))


def _push_into_scan(sets: list[ProfileSet]) -> list[exp.Query]:
    """Intersect profile-table sets into an events scan as ``profile_id IN (…)`` filters, so
    the scan reads fewer rows before grouping (cheaper than INTERSECT after it). Filtering a
    scan grouped by profile on profile_id keeps exactly the intersection."""
    driver = next((s for s in sets if _scans_events(s.query)), None)
    cheap = [
        s for s in sets if s is not driver and s.within_universe and not _reads_events(s.query)
    ]
    if driver is None or not cheap:
        return [s.query for s in sets]
    query = driver.query.copy()
    assert isinstance(query, exp.Select)
    for item in cheap:
        query = query.where(
            exp.In(this=exp.column(PROFILE_ID), query=exp.Subquery(this=item.query.copy())),
            copy=False,
        )
    pushed = {id(s) for s in cheap}
    rest = [s.query for s in sets if s is not driver and id(s) not in pushed]
    return [query, *rest]


def all_of(sets: Sequence[ProfileSet]) -> ProfileSet:
    """AND: (P1 ∩ P2 …) EXCEPT (C1 ∪ C2 …), or the complement of (C1 ∪ C2 …)."""
    sets = _merge_predicates(sets, "and")
    if len(sets) == 1:
        return sets[0]
    positive_sets = [s for s in sets if not s.complement]
    negative = [s.query for s in sets if s.complement]
    if not positive_sets:
        return ProfileSet(union(negative), complement=True)
    positive = _push_into_scan(positive_sets)
    result = intersect(positive)
    within = any(s.within_universe for s in positive_sets)
    return ProfileSet(except_(result, union(negative)) if negative else result, False, within)


def any_of(sets: Sequence[ProfileSet]) -> ProfileSet:
    """OR: P1 ∪ P2 …, or NOT((C1 ∩ C2 …) EXCEPT (P1 ∪ P2 …)) when some are complements."""
    sets = _merge_predicates(sets, "or")
    if len(sets) == 1:
        return sets[0]
    positive = [s.query for s in sets if not s.complement]
    negative = [s.query for s in sets if s.complement]
    if not negative:
        return ProfileSet(union(positive), False, all(s.within_universe for s in sets))
    excluded = intersect(negative)
    if positive:
        excluded = except_(excluded, union(positive))
    return ProfileSet(excluded, complement=True)


def members(result: ProfileSet) -> exp.Select:
    """The final query: profile ids of the universe that are in the set."""
    universe = all_profiles()
    if result.complement:
        return build.select(
            PROFILE_ID,
            source=exp.Subquery(
                this=except_(universe, result.query),
                alias=exp.TableAlias(this=exp.to_identifier("members")),
            ),
        )
    if result.within_universe:
        if isinstance(result.query, exp.Select):
            return result.query
        return build.select(
            PROFILE_ID,
            source=exp.Subquery(
                this=result.query, alias=exp.TableAlias(this=exp.to_identifier("members"))
            ),
        )
    condition = exp.In(this=exp.column(PROFILE_ID), query=exp.Subquery(this=result.query))
    return universe.where(condition, copy=False)
