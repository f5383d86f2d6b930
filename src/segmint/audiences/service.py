"""The audience lifecycle in the catalog (PRODUCT R6, R7, R8, R10, R13–R15).

    draft ──activate──▶ active ──archive──▶ archived
      ▲                   │ ▲                   │
      │                   │ └────activate───────┤
      └──────restore──────┴──── delete ──▶ deleted (restorable)

* A draft is a definition, maybe a name. Every change of the definition is a new version
  with who and when; an unchanged definition makes no version.
* Activation ("Save & Activate") needs a valid, unique name and, for a dynamic audience, a
  refresh interval from 1 hour to 30 days; a static one refuses an interval. It makes the
  audience due at once; :mod:`segmint.audiences.refresh` does the work.
* Archive stops refreshes (and syncs); delete hides the audience and frees its name;
  restore brings either back as a draft with its versions.

These functions take the catalog and an explicit ``now`` (naive UTC) and return plain
dataclasses, never ORM rows. They raise :class:`InvalidInput` for bad values (with the
field in ``path``), :class:`NotFound` and :class:`Conflict` for refused transitions, each
saying what to do instead.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, cast

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmint.audiences.diff import DefinitionDiff, diff_definitions
from segmint.audiences.names import MAX_LENGTH, check_name, suggest_name
from segmint.catalog import Catalog
from segmint.catalog.models import Audience, AudienceVersion
from segmint.definitions import (
    AudienceCondition,
    AudienceResolver,
    Definition,
    dump_definition,
    is_dynamic,
    iter_nodes,
    load_definition,
    parse_definition,
    validate_definition,
)
from segmint.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

Status = Literal["draft", "active", "archived", "deleted"]
STATUSES: tuple[Status, ...] = ("draft", "active", "archived", "deleted")
MIN_INTERVAL = dt.timedelta(hours=1)
MAX_INTERVAL = dt.timedelta(days=30)
WARMUP_PERIOD = dt.timedelta(days=3)
WARMUP_INTERVAL = dt.timedelta(days=1)

DefinitionInput = Definition | Mapping[str, Any] | str


# --- what callers get back -------------------------------------------------------------------


@dataclass(frozen=True)
class AudienceInfo:
    """An audience as the interfaces show it, with its current definition."""

    id: int
    name: str | None
    description: str
    status: Status
    current_version: int
    definition: Definition
    is_dynamic: bool
    refresh_interval_seconds: int | None
    warmup: bool
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    activated_at: dt.datetime | None
    archived_at: dt.datetime | None
    deleted_at: dt.datetime | None
    size: int | None
    last_refresh_at: dt.datetime | None
    next_refresh_at: dt.datetime | None
    consecutive_failures: int
    last_error: str | None

    @property
    def refresh_interval(self) -> dt.timedelta | None:
        """The chosen refresh interval (``None`` for static audiences and drafts)."""
        if self.refresh_interval_seconds is None:
            return None
        return dt.timedelta(seconds=self.refresh_interval_seconds)

    @property
    def label(self) -> str:
        """``'name'`` or ``#id`` for an audience without a name, for messages."""
        return _label(self.name, self.id)


@dataclass(frozen=True)
class VersionInfo:
    """One saved version of an audience's definition: what, who, when, why."""

    audience_id: int
    version: int
    definition: Definition
    created_at: dt.datetime
    created_by: str
    note: str


@dataclass(frozen=True)
class EditPlan:
    """What saving a proposed definition would do (see :func:`plan_edit`)."""

    audience: AudienceInfo
    definition: Definition
    diff: DefinitionDiff
    is_dynamic: bool
    needs_activation: str | None  # why only Save & Activate can apply it, or None

    @property
    def unchanged(self) -> bool:
        """True when the proposal equals the current version (saving does nothing)."""
        return self.diff.unchanged


class Schedulable(Protocol):
    """What the schedule depends on: an :class:`AudienceInfo` or a catalog row."""

    @property
    def is_dynamic(self) -> bool: ...
    @property
    def refresh_interval_seconds(self) -> int | None: ...
    @property
    def warmup(self) -> bool: ...
    @property
    def activated_at(self) -> dt.datetime | None: ...


# --- drafts and versions ---------------------------------------------------------------------


def create_draft(
    catalog: Catalog,
    definition: DefinitionInput,
    *,
    by: str,
    now: dt.datetime,
    name: str | None = None,
    description: str = "",
) -> AudienceInfo:
    """Save a new draft (version 1). The definition is validated, including references to
    other audiences (saved, not deleted, no cycles). A ``name`` given now must be valid and
    unique among audiences that are not deleted."""
    parsed = as_definition(definition)
    with catalog.session() as session:
        if name is not None:
            _check_name_free(session, check_name(name), None)
        resolver = _session_resolver(session)
        validate_definition(parsed, resolve_audience=resolver, name=name)
        audience = Audience(
            name=name,
            description=description,
            status="draft",
            current_version=1,
            is_dynamic=is_dynamic(parsed, resolve_audience=resolver),
            refresh_interval_seconds=None,
            warmup=True,
            created_at=now,
            created_by=by,
            updated_at=now,
            consecutive_failures=0,
        )
        session.add(audience)
        _flush(session, _name_taken(name), path="name")
        session.add(_version_row(audience.id, 1, parsed, by, now, "created"))
        log.info("audience %s created as a draft by %s", _label(name, audience.id), by)
        return _info(audience, parsed)


def update_definition(
    catalog: Catalog,
    audience_id: int,
    definition: DefinitionInput,
    *,
    by: str,
    now: dt.datetime,
    note: str = "",
) -> VersionInfo:
    """Save ``definition`` as the audience's next version and return it; an unchanged
    definition returns the current version and saves nothing.

    Refused for a deleted audience (restore it first), and for an active audience whose
    change needs activating again: a static one (its members were computed at activation)
    or one that turns static ↔ dynamic (the refresh interval must change with it)."""
    parsed = as_definition(definition)
    with catalog.session() as session:
        audience = _load(session, audience_id, lock=True)
        if audience.status == "deleted":
            raise Conflict(
                f"audience {_label(audience.name, audience.id)} is deleted: restore it first, "
                "then edit it"
            )
        version = _save_version(session, audience, parsed, by=by, now=now, note=note)
        return _version_info(version)


def plan_edit(catalog: Catalog, audience_id: int, definition: DefinitionInput) -> EditPlan:
    """The catalog half of an impact preview (PRODUCT B3): validate a proposed definition
    without saving it and say what would change — the diff from the current version, whether
    the audience would be dynamic, and whether saving needs Save & Activate. (The members who
    would enter and leave come from a run on the warehouse.)"""
    parsed = as_definition(definition)
    with catalog.session() as session:
        audience = _load(session, audience_id)
        if audience.status == "deleted":
            raise Conflict(
                f"audience {_label(audience.name, audience.id)} is deleted: restore it first, "
                "then edit it"
            )
        current = _current_definition(session, audience)
        resolver = _session_resolver(session, exclude_id=audience.id)
        validate_definition(parsed, resolve_audience=resolver, name=audience.name)
        dynamic = is_dynamic(parsed, resolve_audience=resolver)
        unchanged = _canonical(current) == _canonical(parsed)
        return EditPlan(
            audience=_info(audience, current),
            definition=parsed,
            diff=diff_definitions(
                current,
                parsed,
                old_label=f"version {audience.current_version}",
                new_label="proposed",
            ),
            is_dynamic=dynamic,
            needs_activation=None if unchanged else _live_edit_problem(audience, dynamic),
        )


def versions(catalog: Catalog, audience_id: int) -> list[VersionInfo]:
    """Every version of the audience, oldest first."""
    with catalog.session() as session:
        _load(session, audience_id)
        rows = session.scalars(
            select(AudienceVersion)
            .where(AudienceVersion.audience_id == audience_id)
            .order_by(AudienceVersion.version)
        )
        return [_version_info(row) for row in rows]


def version(catalog: Catalog, audience_id: int, number: int) -> VersionInfo:
    """Version ``number`` of the audience (:class:`NotFound` says which exist)."""
    with catalog.session() as session:
        audience = _load(session, audience_id)
        return _version_info(_version_row_of(session, audience, number))


def diff_versions(catalog: Catalog, audience_id: int, old: int, new: int) -> DefinitionDiff:
    """What changed from version ``old`` to version ``new`` of the audience."""
    with catalog.session() as session:
        audience = _load(session, audience_id)
        before = _parse_stored(_version_row_of(session, audience, old).definition)
        after = _parse_stored(_version_row_of(session, audience, new).definition)
    return diff_definitions(before, after, old_label=f"version {old}", new_label=f"version {new}")


# --- lifecycle transitions -------------------------------------------------------------------


def activate(
    catalog: Catalog,
    audience_id: int,
    *,
    name: str | None,
    refresh_interval: dt.timedelta | None,
    by: str,
    now: dt.datetime,
    warmup: bool = True,
    definition: DefinitionInput | None = None,
    note: str = "",
) -> AudienceInfo:
    """Save & Activate: give the audience its name and refresh settings and make it due for
    a refresh at once (``next_refresh_at = now``). Allowed from draft, archived, deleted
    (restore and activate in one step) and active (new settings). ``name`` defaults to the
    audience's current name; one is required. ``definition``, when given, is saved as a new
    version first. Every activation restarts the warm-up and recomputes a static audience."""
    with catalog.session() as session:
        audience = _load(session, audience_id, lock=True)
        final_name = _activation_name(session, audience, name)
        if definition is not None:
            parsed = as_definition(definition)
            _save_version(
                session,
                audience,
                parsed,
                by=by,
                now=now,
                note=note,
                activating=True,
                name=final_name,
            )
        current = _current_definition(session, audience)
        resolver = _session_resolver(session, exclude_id=audience.id)
        validate_definition(current, resolve_audience=resolver, name=final_name)
        dynamic = is_dynamic(current, resolve_audience=resolver)
        seconds = check_interval(dynamic, refresh_interval, label=repr(final_name))
        audience.name = final_name
        audience.is_dynamic = dynamic
        audience.refresh_interval_seconds = seconds
        audience.warmup = warmup and dynamic
        audience.status = "active"
        audience.activated_at = now
        audience.archived_at = None
        audience.deleted_at = None
        audience.next_refresh_at = now
        audience.consecutive_failures = 0
        audience.last_error = None
        audience.updated_at = now
        _flush(session, _name_taken(final_name), path="name")
        log.info("audience %r activated by %s", final_name, by)
        return _info(audience, current)


def archive(catalog: Catalog, audience_id: int, *, by: str, now: dt.datetime) -> AudienceInfo:
    """Turn an active audience off: it stops refreshing and syncing, keeps its members and
    history, and can be activated again."""
    with catalog.session() as session:
        audience = _load(session, audience_id)
        label = _label(audience.name, audience.id)
        if audience.status != "active":
            remedy = {
                "draft": "it was never activated; delete it instead, or activate it",
                "archived": "it is already archived",
                "deleted": "restore it first",
            }[audience.status]
            raise Conflict(
                f"audience {label} is {audience.status} and cannot be archived: {remedy}"
            )
        audience.status = "archived"
        audience.archived_at = now
        audience.next_refresh_at = None
        audience.updated_at = now
        log.info("audience %s archived by %s", label, by)
        return _info(audience, _current_definition(session, audience))


def delete(catalog: Catalog, audience_id: int, *, by: str, now: dt.datetime) -> AudienceInfo:
    """Delete an audience (any status but deleted): it stops refreshing, leaves the lists,
    and its name may be reused. It keeps its versions and can be restored. Refused while
    other audiences that are not deleted use it in a condition."""
    with catalog.session() as session:
        audience = _load(session, audience_id)
        label = _label(audience.name, audience.id)
        if audience.status == "deleted":
            raise Conflict(f"audience {label} is already deleted; restore it to use it again")
        users = _dependents(session, audience)
        if users:
            raise Conflict(
                f"audience {label} is used by {_listing(users)}: remove those conditions (or "
                "delete those audiences) first"
            )
        audience.status = "deleted"
        audience.deleted_at = now
        audience.next_refresh_at = None
        audience.updated_at = now
        log.info("audience %s deleted by %s", label, by)
        return _info(audience, _current_definition(session, audience))


def restore(
    catalog: Catalog,
    audience_id: int,
    *,
    by: str,
    now: dt.datetime,
    name: str | None = None,
) -> AudienceInfo:
    """Bring an archived or deleted audience back as a draft with all its versions, to
    edit, run and activate again. ``name`` renames it; it is needed when another audience
    took its name in the meantime (the :class:`Conflict` suggests one)."""
    with catalog.session() as session:
        audience = _load(session, audience_id)
        label = _label(audience.name, audience.id)
        if audience.status not in ("archived", "deleted"):
            raise Conflict(
                f"audience {label} is {audience.status}; only archived or deleted audiences "
                "can be restored"
            )
        final_name = audience.name if name is None else check_name(name)
        if final_name is not None:
            _check_name_free(session, final_name, audience.id, renaming_hint=name is None)
        audience.name = final_name
        audience.status = "draft"
        audience.archived_at = None
        audience.deleted_at = None
        audience.next_refresh_at = None
        audience.updated_at = now
        _flush(session, _name_taken(final_name), path="name")
        log.info("audience %s restored as a draft by %s", _label(final_name, audience.id), by)
        return _info(audience, _current_definition(session, audience))


# --- reading ---------------------------------------------------------------------------------


def get(catalog: Catalog, audience_id: int) -> AudienceInfo:
    """The audience with id ``audience_id``, whatever its status."""
    with catalog.session() as session:
        audience = _load(session, audience_id)
        return _info(audience, _current_definition(session, audience))


def get_by_name(catalog: Catalog, name: str, *, deleted: bool = False) -> AudienceInfo:
    """The audience called ``name`` that is not deleted, or with ``deleted`` (to restore it)
    the one last deleted under that name when no other has it. :class:`NotFound` suggests
    close names, or says when only a deleted audience has that name."""
    with catalog.session() as session:
        audience = _by_name(session, name)
        if audience is None and deleted:
            audience = _deleted_by_name(session, name)
        if audience is None:
            raise NotFound(_not_found_by_name(session, name), path="name")
        return _info(audience, _current_definition(session, audience))


def list_audiences(catalog: Catalog, status: str | None = None) -> list[AudienceInfo]:
    """Audiences with ``status`` (``draft``, ``active``, ``archived``, ``deleted``), or with
    ``None`` every audience that is not deleted; by name, unnamed drafts last."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"unknown status {status!r}; use one of {', '.join(STATUSES)}", path="status"
        )
    with catalog.session() as session:
        query = select(Audience)
        if status is None:
            query = query.where(Audience.status != "deleted")
        else:
            query = query.where(Audience.status == status)
        rows = list(session.scalars(query))
        rows.sort(key=lambda a: (a.name is None, a.name or "", a.id))
        definitions = _current_definitions(session, rows)
        return [_info(row, definitions[row.id]) for row in rows]


def audience_resolver(catalog: Catalog) -> AudienceResolver:
    """The resolver that validation and the compiler use: an audience name → the current
    definition of the audience of that name that is not deleted (``None`` when none)."""

    def resolve(name: str) -> Definition | None:
        with catalog.session() as session:
            return _session_resolver(session)(name)

    return resolve


def dependents(catalog: Catalog, audience_id: int) -> list[str]:
    """Names of the audiences (not deleted) whose current definition uses this one."""
    with catalog.session() as session:
        return _dependents(session, _load(session, audience_id))


def dependency_order(catalog: Catalog, audience_ids: Iterable[int]) -> list[int]:
    """``audience_ids`` ordered so that every audience comes after the ones it uses, directly
    or through audiences not in the list (refresh referenced audiences first); otherwise the
    given order is kept. A cycle (refused when saving) keeps its given order."""
    ids = list(dict.fromkeys(audience_ids))
    with catalog.session() as session:
        rows = list(session.scalars(select(Audience).where(Audience.status != "deleted")))
        definitions = _current_definitions(session, rows)
    by_name = {row.name: row.id for row in rows if row.name}
    uses = {
        row.id: {by_name[n] for n in _references(definitions[row.id]) if n in by_name}
        for row in rows
    }
    return topological_order(ids, lambda a: _reachable(a, uses))


T = TypeVar("T", bound=Hashable)


def topological_order(items: Sequence[T], depends_on: Callable[[T], Collection[T]]) -> list[T]:
    """``items`` with each one after the items it depends on, stable otherwise. Items of a
    cycle keep their given order (with a warning): nothing is dropped."""
    pending = list(dict.fromkeys(items))
    deps = {item: set(depends_on(item)) & (set(pending) - {item}) for item in pending}
    ordered: list[T] = []
    placed: set[T] = set()
    while pending:
        ready = next((item for item in pending if deps[item] <= placed), None)
        if ready is None:
            log.warning("audiences %s refer to each other in a cycle", pending)
            ready = pending[0]
        pending.remove(ready)
        ordered.append(ready)
        placed.add(ready)
    return ordered


# --- schedule --------------------------------------------------------------------------------


def check_interval(
    dynamic: bool, interval: dt.timedelta | None, *, label: str = "it"
) -> int | None:
    """The refresh interval in seconds, if it fits the audience (R7, R8, R10): none for a
    static audience, 1 hour to 30 days for a dynamic one."""
    if not dynamic:
        if interval is not None:
            raise InvalidInput(
                f"static audiences are computed once; remove the refresh interval (all the "
                f"windows of {label} are fixed date ranges)",
                path="refresh_interval",
            )
        return None
    allowed = interval_range()
    if interval is None:
        raise InvalidInput(
            f"{label} is dynamic (it uses rolling windows such as 'last 30 days') and needs a "
            f"refresh interval {allowed}, e.g. 1 day",
            path="refresh_interval",
        )
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise InvalidInput(
            f"a refresh interval of {describe_interval(interval)} is not allowed: choose one "
            f"{allowed}",
            path="refresh_interval",
        )
    return int(interval.total_seconds())


def interval_range() -> str:
    """The refresh intervals allowed, for messages: ``from 1 hour to 30 days``."""
    return f"from {describe_interval(MIN_INTERVAL)} to {describe_interval(MAX_INTERVAL)}"


def warmup_end(audience: Schedulable) -> dt.datetime | None:
    """When the warm-up of daily refreshes ends (``None`` without warm-up or activation)."""
    if not audience.warmup or audience.activated_at is None:
        return None
    return audience.activated_at + WARMUP_PERIOD


def next_interval(audience: Schedulable, now: dt.datetime) -> dt.timedelta | None:
    """How long after a refresh at ``now`` the next one is due (R10): the chosen interval,
    but at most a day while the warm-up runs (the first 3 days after activation, when warm-up
    is on). ``None`` for a static audience or one without an interval."""
    if not audience.is_dynamic or not audience.refresh_interval_seconds:
        return None
    interval = dt.timedelta(seconds=audience.refresh_interval_seconds)
    end = warmup_end(audience)
    if end is not None and now < end:
        return min(interval, WARMUP_INTERVAL)
    return interval


def describe_schedule(audience: Schedulable, now: dt.datetime | None = None) -> str:
    """The refresh schedule as a sentence for the UI: ``daily for the first 3 days (until
    2025-06-04), then every 7 days``. Given ``now``, a warm-up that has ended is left out."""
    if not audience.is_dynamic:
        return "computed once at activation; static audiences are not refreshed"
    if not audience.refresh_interval_seconds:
        return "no refresh interval yet: choose one when activating"
    interval = dt.timedelta(seconds=audience.refresh_interval_seconds)
    every = _every(interval)
    if not audience.warmup or interval <= WARMUP_INTERVAL:
        return every
    end = warmup_end(audience)
    if end is None:
        return f"daily for the first 3 days after activation, then {every}"
    if now is not None and now >= end:
        return every
    return f"daily for the first 3 days (until {end:%Y-%m-%d}), then {every}"


def describe_interval(interval: dt.timedelta) -> str:
    """``1 hour``, ``6 hours``, ``7 days``, ``90 minutes`` (``zero`` for none)."""
    seconds = int(interval.total_seconds())
    if seconds == 0:
        return "zero"  # whatever unit it was written in
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"  # pragma: no cover - the loop always returns


def _every(interval: dt.timedelta) -> str:
    if interval == dt.timedelta(days=1):
        return "daily"
    if interval == dt.timedelta(hours=1):
        return "hourly"
    return f"every {describe_interval(interval)}"


# --- internals: rows -------------------------------------------------------------------------


def _load(session: Session, audience_id: int, *, lock: bool = False) -> Audience:
    """The audience row; with ``lock``, locked until the session ends and read after the
    lock, so that concurrent changes of one audience take turns and each reads what the one
    before it saved (two saves never both take the same next version number)."""
    if lock:
        # An UPDATE that changes nothing is the row lock both catalogs share: PostgreSQL
        # locks the row, as SELECT … FOR UPDATE would; SQLite, which ignores FOR UPDATE,
        # takes its write lock (a second writer waits up to busy_timeout).
        session.execute(
            update(Audience)
            .where(Audience.id == audience_id)
            .values(current_version=Audience.current_version)
            .execution_options(synchronize_session=False)
        )
    audience = session.get(Audience, audience_id, populate_existing=lock)
    if audience is None:
        raise NotFound(
            f"there is no audience with id {audience_id}; list them with `segmint audiences list`"
        )
    return audience


def _by_name(session: Session, name: str) -> Audience | None:
    return session.scalars(
        select(Audience).where(Audience.name == name, Audience.status != "deleted")
    ).first()


def _deleted_by_name(session: Session, name: str) -> Audience | None:
    """The audience last deleted under ``name``."""
    return session.scalars(
        select(Audience)
        .where(Audience.name == name, Audience.status == "deleted")
        .order_by(Audience.deleted_at.desc(), Audience.id.desc())
    ).first()


def _not_found_by_name(session: Session, name: str) -> str:
    deleted = _deleted_by_name(session, name)
    if deleted is not None:
        return f"audience {name!r} is deleted (id {deleted.id}); restore it to use it again"
    names = list(
        session.scalars(
            select(Audience.name).where(Audience.status != "deleted", Audience.name.is_not(None))
        )
    )
    close = difflib.get_close_matches(name, [n for n in names if n], n=3)
    hint = f"; did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    return f"there is no audience named {name!r}{hint}"


def _flush(session: Session, conflict: str, *, path: str | None = None) -> None:
    """Write the pending changes now. A unique constraint that a concurrent change satisfied
    first (a version number, a name: the checks before read the catalog before that change
    committed) is a :class:`Conflict` saying ``conflict``, never an error at commit."""
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(conflict, path=path) from None


def _name_taken(name: str | None) -> str:
    return (
        f"another audience took the name {name!r} at the same time; choose another name"
        if name
        else "another change of the catalog got there first; try again"
    )


def _label(name: str | None, audience_id: int) -> str:
    return repr(name) if name else f"#{audience_id}"


def _info(audience: Audience, definition: Definition) -> AudienceInfo:
    return AudienceInfo(
        id=audience.id,
        name=audience.name,
        description=audience.description,
        status=cast(Status, audience.status),
        current_version=audience.current_version,
        definition=definition,
        is_dynamic=audience.is_dynamic,
        refresh_interval_seconds=audience.refresh_interval_seconds,
        warmup=audience.warmup,
        created_at=audience.created_at,
        created_by=audience.created_by,
        updated_at=audience.updated_at,
        activated_at=audience.activated_at,
        archived_at=audience.archived_at,
        deleted_at=audience.deleted_at,
        size=audience.size,
        last_refresh_at=audience.last_refresh_at,
        next_refresh_at=audience.next_refresh_at,
        consecutive_failures=audience.consecutive_failures,
        last_error=audience.last_error,
    )


def _version_row(
    audience_id: int, number: int, definition: Definition, by: str, now: dt.datetime, note: str
) -> AudienceVersion:
    return AudienceVersion(
        audience_id=audience_id,
        version=number,
        definition=dump_definition(definition),
        created_at=now,
        created_by=by,
        note=note,
    )


def _version_info(row: AudienceVersion) -> VersionInfo:
    return VersionInfo(
        audience_id=row.audience_id,
        version=row.version,
        definition=_parse_stored(row.definition),
        created_at=row.created_at,
        created_by=row.created_by,
        note=row.note,
    )


def _version_row_of(session: Session, audience: Audience, number: int) -> AudienceVersion:
    row = session.scalars(
        select(AudienceVersion).where(
            AudienceVersion.audience_id == audience.id, AudienceVersion.version == number
        )
    ).one_or_none()
    if row is None:
        raise NotFound(
            f"audience {_label(audience.name, audience.id)} has no version {number}; its "
            f"versions are 1 to {audience.current_version}",
            path="version",
        )
    return row


def _current_definition(session: Session, audience: Audience) -> Definition:
    return _parse_stored(_version_row_of(session, audience, audience.current_version).definition)


def _current_definitions(session: Session, rows: Sequence[Audience]) -> dict[int, Definition]:
    if not rows:
        return {}
    wanted = {row.id: row.current_version for row in rows}
    texts = session.execute(
        select(
            AudienceVersion.audience_id, AudienceVersion.version, AudienceVersion.definition
        ).where(AudienceVersion.audience_id.in_(wanted))
    )
    return {
        audience_id: _parse_stored(text)
        for audience_id, number, text in texts
        if wanted[audience_id] == number
    }


def _parse_stored(text: str) -> Definition:
    # stored definitions were validated when saved; only their shape is rebuilt here
    return Definition.model_validate_json(text)


def _canonical(definition: Definition) -> str:
    data = definition.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(data, sort_keys=True)


def as_definition(definition: DefinitionInput) -> Definition:
    """A validated :class:`Definition` from a model, plain data, or JSON/YAML text."""
    if isinstance(definition, Definition):
        return validate_definition(definition)
    if isinstance(definition, str):
        return load_definition(definition)
    return parse_definition(dict(definition))


# --- internals: rules ------------------------------------------------------------------------


def _save_version(
    session: Session,
    audience: Audience,
    definition: Definition,
    *,
    by: str,
    now: dt.datetime,
    note: str,
    activating: bool = False,
    name: str | None = None,
) -> AudienceVersion:
    """Validate and save ``definition`` as the next version, unless it is unchanged."""
    current = _version_row_of(session, audience, audience.current_version)
    if _canonical(_parse_stored(current.definition)) == _canonical(definition):
        return current
    resolver = _session_resolver(session, exclude_id=audience.id)
    validate_definition(definition, resolve_audience=resolver, name=name or audience.name)
    dynamic = is_dynamic(definition, resolve_audience=resolver)
    problem = None if activating else _live_edit_problem(audience, dynamic)
    if problem:
        raise Conflict(problem)
    audience.current_version += 1
    audience.is_dynamic = dynamic
    audience.updated_at = now
    row = _version_row(audience.id, audience.current_version, definition, by, now, note)
    session.add(row)
    _flush(
        session,
        f"audience {_label(audience.name, audience.id)} was changed by another save at the same "
        f"time (version {audience.current_version} exists now): reload it and save again",
    )
    log.info(
        "audience %s: version %d saved by %s",
        _label(audience.name, audience.id),
        audience.current_version,
        by,
    )
    return row


def _live_edit_problem(audience: Audience, dynamic: bool) -> str | None:
    """Why an edit of an active audience cannot simply apply at its next refresh (it needs
    new settings or a recomputation, so it goes through Save & Activate), or ``None``."""
    if audience.status != "active":
        return None
    label = _label(audience.name, audience.id)
    if not audience.is_dynamic:
        return (
            f"audience {label} is active and static: its members were computed once, at "
            "activation; save the change with Save & Activate to recompute it"
        )
    if not dynamic:
        return (
            f"this change makes the active audience {label} static (only fixed date ranges): "
            "save it with Save & Activate and no refresh interval"
        )
    return None


def _activation_name(session: Session, audience: Audience, name: str | None) -> str:
    chosen = name if name else audience.name
    if not chosen:
        base = suggest_name(audience.description) if audience.description else "audience"
        raise InvalidInput(
            "a name is required to activate an audience (lowercase letters, digits and "
            f"underscores, starting with a letter); try {_free_name(session, base)!r}",
            path="name",
        )
    check_name(chosen)
    _check_name_free(session, chosen, audience.id)
    if audience.name and audience.name != chosen:
        users = _dependents(session, audience)
        if users:
            raise Conflict(
                f"audience {audience.name!r} cannot be renamed to {chosen!r}: {_listing(users)} "
                f"refer to it by name; keep the name {audience.name!r} or change those first",
                path="name",
            )
    return chosen


def _check_name_free(
    session: Session, name: str, audience_id: int | None, *, renaming_hint: bool = False
) -> None:
    query = select(Audience).where(Audience.name == name, Audience.status != "deleted")
    if audience_id is not None:
        query = query.where(Audience.id != audience_id)
    other = session.scalars(query).first()
    if other is None:
        return
    suggestion = _free_name(session, name)
    remedy = (
        f"restore it with a new name, e.g. {suggestion!r}"
        if renaming_hint
        else f"choose another name, e.g. {suggestion!r}"
    )
    raise Conflict(
        f"the name {name!r} is already used by {other.status} audience #{other.id}; {remedy}",
        path="name",
    )


def _free_name(session: Session, base: str) -> str:
    """``base`` if no audience (not deleted) has it, else ``base_2``, ``base_3`` …"""
    taken = set(
        session.scalars(
            select(Audience.name).where(
                Audience.name.startswith(base, autoescape=True), Audience.status != "deleted"
            )
        )
    )
    if base not in taken:
        return base
    number = 2
    while True:
        suffix = f"_{number}"
        candidate = base[: MAX_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


def _session_resolver(session: Session, *, exclude_id: int | None = None) -> AudienceResolver:
    def resolve(name: str) -> Definition | None:
        audience = _by_name(session, name)
        if audience is None or audience.id == exclude_id:
            return None
        return _current_definition(session, audience)

    return resolve


def _references(definition: Definition) -> set[str]:
    return {
        node.audience
        for _, node in iter_nodes(definition.root)
        if isinstance(node, AudienceCondition)
    }


def _dependents(session: Session, audience: Audience) -> list[str]:
    if not audience.name:
        return []
    rows = list(
        session.scalars(
            select(Audience)
            .join(
                AudienceVersion,
                (AudienceVersion.audience_id == Audience.id)
                & (AudienceVersion.version == Audience.current_version),
            )
            .where(
                Audience.status != "deleted",
                Audience.id != audience.id,
                # a cheap filter; the parsed definition decides
                AudienceVersion.definition.contains(audience.name, autoescape=True),
            )
        )
    )
    definitions = _current_definitions(session, rows)
    return sorted(
        _label(row.name, row.id)
        for row in rows
        if audience.name in _references(definitions[row.id])
    )


def _reachable(start: int, uses: Mapping[int, set[int]]) -> set[int]:
    seen: set[int] = set()
    stack = list(uses.get(start, ()))
    while stack:
        item = stack.pop()
        if item not in seen:
            seen.add(item)
            stack.extend(uses.get(item, ()))
    return seen


def _listing(labels: Sequence[str]) -> str:
    noun = "audience" if len(labels) == 1 else "audiences"
    return f"{noun} {', '.join(labels)}"
