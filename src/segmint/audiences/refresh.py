"""Refreshing an audience (PRODUCT R7–R9, R11, B9): evaluate it as of an instant, diff the new
members against the current ones in SQL, and commit everything that follows from the diff
together.

A refresh has two sides. The *warehouse* side runs in one transaction: the new members are
folded into 64-bit words and diffed against the stored words of the current membership
(``audience_member_words``), one ``added_to_segment`` / ``removed_from_segment`` event is
appended per entering / leaving profile (to ``segment_events``, which conditions read as
events; the marker holds what all of them share), history appends the changed words' started
and ended spells as bits (``history_words``), the changed words are rewritten and their
flipped bits logged (``membership_changes``, which syncs read), and the
``audience_refreshes`` marker is written with the refresh's number. Either all of it commits
or none of it does, so a refresh that fails or is killed halfway leaves the previous state
and no events.

The *catalog* side follows: the run record, the usage record, the audience's size and next
refresh. If the process dies between the two, the marker tells a rerun with the same refresh
id that the warehouse side is done; the rerun only completes the catalog (idempotent). Event
message ids are ``{refresh_id}:{profile_id}:added|removed``, so nothing downstream can count a
change twice either.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlglot import exp

from segmint.audiences.service import audience_resolver, next_interval
from segmint.audiences.usage import record_usage
from segmint.catalog.db import Catalog
from segmint.catalog.models import Audience, AudienceVersion, RefreshRun
from segmint.compiler import compile_definition
from segmint.definitions import Definition
from segmint.errors import Conflict, NotFound, SegmintError
from segmint.warehouse.dialects import render
from segmint.warehouse.engine import Engine
from segmint.warehouse.schema import (
    EVERY_BIT,
    MEMBER_BUCKET,
    MEMBER_WORD,
    SEGMENT_EVENT_NAMES,
    bit_is_set,
    member_id,
)

log = logging.getLogger(__name__)

Trigger = Literal["schedule", "manual", "activation"]
TRIGGERS: tuple[Trigger, ...] = ("schedule", "manual", "activation")

# The steps of the warehouse transaction, in order; ``fail_after`` is called with each name
# (and with "committed" once the transaction has committed, before the catalog is written).
STEPS = ("materialize", "diff", "events", "history", "membership", "marker")
COMMITTED = "committed"

ADDED_EVENT, REMOVED_EVENT = SEGMENT_EVENT_NAMES

RETRY_BASE = dt.timedelta(minutes=5)
RETRY_CAP_STATIC = dt.timedelta(days=1)

_NEW = "segmint_refresh_new"
_CHANGED = "segmint_refresh_changed"
_SPELLS_CHANGED = "segmint_refresh_spells_changed"

FailAfter = Callable[[str], None]


class RefreshRefused(Conflict):
    """The audience cannot be refreshed in its current state (archived, static, ...)."""

    code = "refresh_refused"


class RefreshFailed(SegmintError):
    """A refresh started and failed; the previous membership is intact and it is retried."""

    status_code = 500
    code = "refresh_failed"

    def __init__(self, message: str, *, refresh_id: str, retry_at: dt.datetime | None) -> None:
        super().__init__(message)
        self.refresh_id = refresh_id
        self.retry_at = retry_at


@dataclass(frozen=True)
class RefreshMarker:
    """A committed refresh as recorded in the warehouse (``audience_refreshes``)."""

    refresh_id: str
    audience_id: int
    version: int
    as_of: dt.datetime
    size: int
    entered: int
    left: int
    committed_at: dt.datetime


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did. ``resumed`` is true when the warehouse side had already committed
    in an earlier attempt and this call only completed the catalog."""

    refresh_id: str
    audience_id: int
    version: int
    as_of: dt.datetime
    size: int
    entered: int
    left: int
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_seconds: float
    resumed: bool = False


@dataclass(frozen=True)
class RefreshTarget:
    """What the warehouse side of a refresh needs to know about the audience."""

    audience_id: int
    name: str
    version: int
    definition: Definition


def utc_naive(instant: dt.datetime) -> dt.datetime:
    """``instant`` as naive UTC, how both stores keep time (naive input is taken as UTC)."""
    if instant.tzinfo is None:
        return instant
    return instant.astimezone(dt.UTC).replace(tzinfo=None)


def retry_delay(failures: int, interval_seconds: int | None) -> dt.timedelta:
    """How long to wait after ``failures`` consecutive failures: 5 minutes doubled per
    failure (5, 10, 20 … minutes), never longer than the audience's interval (a day for a
    static audience)."""
    cap = dt.timedelta(seconds=interval_seconds) if interval_seconds else RETRY_CAP_STATIC
    exponent = min(max(failures, 1) - 1, 20)  # 2**20 × 5 min is far beyond any cap
    return min(RETRY_BASE * (2**exponent), cap)


# --- the public entry point ----------------------------------------------------------------


def refresh_audience(
    warehouse: Engine,
    catalog: Catalog,
    audience_id: int,
    *,
    as_of: dt.datetime,
    timezone: str,
    trigger: Trigger = "manual",
    refresh_id: str | None = None,
    now: dt.datetime | None = None,
    fail_after: FailAfter | None = None,
) -> RefreshResult:
    """Refresh ``audience_id`` as of ``as_of`` (windows in the workspace ``timezone``).

    ``now`` (default ``as_of``) stamps the run, ``received_at`` of the emitted events and the
    next refresh time. Passing the ``refresh_id`` of an earlier attempt reruns it safely: if
    its warehouse side committed, only the catalog side is completed; if it already succeeded,
    its result is returned unchanged.

    Raises :class:`NotFound` for an unknown audience, :class:`RefreshRefused` when the audience
    is not active, is static and already computed, or ``as_of`` is before its last refresh,
    and :class:`RefreshFailed` when the refresh ran and failed (recorded, retried later).
    ``fail_after`` is a test hook called with each step name of :data:`STEPS` inside the
    transaction and with ``"committed"`` after it.
    """
    if trigger not in TRIGGERS:
        raise SegmintError(f"unknown refresh trigger {trigger!r}; use one of {', '.join(TRIGGERS)}")
    as_of = utc_naive(as_of)
    now = utc_naive(now) if now is not None else as_of
    run_id = refresh_id or str(uuid.uuid4())
    step = fail_after or _no_hook

    finished = _succeeded_result(catalog, run_id)
    if finished is not None:
        return finished
    marker = read_marker(warehouse, run_id)
    if marker is not None:
        if marker.audience_id != audience_id:
            raise SegmintError(
                f"refresh {run_id} belongs to audience {marker.audience_id}, not {audience_id}"
            )
        log.info("refresh %s committed earlier; completing the catalog", run_id)
        return complete_refresh(catalog, marker, timezone=timezone, now=now)

    target = _refreshable(warehouse, catalog, audience_id, trigger, as_of, now)
    attempt = _start_run(catalog, run_id, target, trigger, as_of, now)
    clock = time.perf_counter()
    log.info(
        "refreshing audience %s as of %s (refresh %s, attempt %d)",
        target.name,
        as_of.isoformat(),
        run_id,
        attempt,
        extra={"audience_id": audience_id, "refresh_id": run_id, "trigger": trigger},
    )
    committed = False
    try:
        query = compile_definition(
            target.definition,
            as_of=as_of,
            timezone=timezone,
            dialect=warehouse.dialect,
            resolve_audience=audience_resolver(catalog),
        )
        marker = write_membership(warehouse, target, run_id, query, as_of, now, step)
        committed = True
        step(COMMITTED)
        elapsed = time.perf_counter() - clock
        return complete_refresh(catalog, marker, timezone=timezone, now=now, elapsed=elapsed)
    except Exception as exc:
        elapsed = time.perf_counter() - clock
        retry_at = _record_failure(catalog, run_id, audience_id, exc, now, elapsed)
        state = (
            "its new members were committed; the next attempt completes its records"
            if committed
            else "its previous members are unchanged"
        )
        when = f"; it will be retried at {retry_at:%Y-%m-%d %H:%M} UTC" if retry_at else ""
        raise RefreshFailed(
            f"refreshing audience {target.name!r} failed ({type(exc).__name__}: {exc}); "
            f"{state}{when}",
            refresh_id=run_id,
            retry_at=retry_at,
        ) from exc


def _no_hook(_step: str) -> None:
    return None


# --- checks before a refresh ---------------------------------------------------------------


def _refreshable(
    warehouse: Engine,
    catalog: Catalog,
    audience_id: int,
    trigger: Trigger,
    as_of: dt.datetime,
    now: dt.datetime,
) -> RefreshTarget:
    """The audience to refresh, or a clear refusal saying what to do first."""
    with catalog.session() as session:
        audience = session.get(Audience, audience_id)
        if audience is None:
            raise NotFound(f"there is no audience with id {audience_id}")
        label = repr(audience.name) if audience.name else f"#{audience_id}"
        _check_status(audience, label)
        if not audience.is_dynamic and trigger != "activation":
            _check_static_not_computed(session, audience, label)
        text = session.scalars(
            select(AudienceVersion.definition).where(
                AudienceVersion.audience_id == audience_id,
                AudienceVersion.version == audience.current_version,
            )
        ).one_or_none()
        if text is None:
            raise NotFound(f"audience {label} has no version {audience.current_version}")
        name, version = audience.name or f"audience_{audience_id}", audience.current_version
    last = latest_as_of(warehouse, audience_id)
    if last is not None and as_of < last:
        raise RefreshRefused(
            f"audience {label} was last refreshed as of {last.isoformat()}; a refresh as of "
            f"{as_of.isoformat()} would rewrite history (membership history only moves forward)"
        )
    # Validated when saved; read as stored, so a version saved before a limit was
    # introduced (definitions/limits.py) keeps refreshing.
    definition = Definition.model_validate_json(text)
    return RefreshTarget(audience_id, name, version, definition)


def _check_status(audience: Audience, label: str) -> None:
    if audience.status == "active":
        return
    remedy = {
        "draft": "save and activate it first",
        "archived": "restore it and activate it again first",
        "deleted": "restore it and activate it again first",
    }.get(audience.status, "activate it first")
    raise RefreshRefused(f"audience {label} is {audience.status} and is not refreshed: {remedy}")


def _check_static_not_computed(session: Session, audience: Audience, label: str) -> None:
    """A static audience (R7) is computed once, at activation; a retry is allowed only while
    that computation has not succeeded."""
    since = audience.activated_at or dt.datetime.min
    done = session.scalars(
        select(RefreshRun.started_at)
        .where(
            RefreshRun.audience_id == audience.id,
            RefreshRun.status == "succeeded",
            RefreshRun.started_at >= since,
        )
        .limit(1)
    ).first()
    if done is not None:
        raise RefreshRefused(
            f"audience {label} is static (all its windows are fixed date ranges): it was "
            f"computed at activation ({done:%Y-%m-%d %H:%M}) and its members never change; "
            "edit it and activate it again to recompute it"
        )


# --- the warehouse side --------------------------------------------------------------------


def write_membership(
    warehouse: Engine,
    target: RefreshTarget,
    refresh_id: str,
    query: exp.Query,
    as_of: dt.datetime,
    now: dt.datetime,
    step: FailAfter = _no_hook,
) -> RefreshMarker:
    """The warehouse side of a refresh, all in one transaction (see the module docstring).
    Every statement is set-based; no member passes through Python."""
    audience_id = target.audience_id
    with warehouse.transaction():
        (seq,) = warehouse.rows(_NEXT_SEQ_SQL)[0]
        members = render(folding_duplicates(query), warehouse.dialect)
        warehouse.execute(_NEW_SQL.format(query=members))
        step("materialize")
        warehouse.execute(_changed_sql(_CHANGED, _STORED_WORDS), [audience_id])
        step("diff")
        warehouse.execute(_EVENTS_SQL, [seq])
        step("events")
        spells_changed = _CHANGED
        if warehouse.rows(_TO_RECONCILE_SQL, [audience_id]):
            # History was recomputed: its open spells are the new definition's members, not
            # the stored ones (what destinations were told), so history takes its own diff.
            warehouse.execute(_changed_sql(_SPELLS_CHANGED, _OPEN_SPELL_WORDS), [audience_id])
            warehouse.execute(_RECONCILED_SQL, [audience_id])
            spells_changed = _SPELLS_CHANGED
        warehouse.execute(_history_sql(spells_changed), [audience_id, seq])
        step("history")
        warehouse.execute(_DROP_CHANGED_WORDS_SQL, [audience_id])
        warehouse.execute(_ADD_CHANGED_WORDS_SQL, [audience_id])
        warehouse.execute(_LOG_CHANGES_SQL, [refresh_id, audience_id])
        step("membership")
        size, entered, left = warehouse.rows(_COUNTS_SQL)[0]
        marker = RefreshMarker(
            refresh_id, audience_id, target.version, as_of, size, entered, left, now
        )
        warehouse.execute(
            _MARKER_SQL,
            [
                refresh_id,
                audience_id,
                target.version,
                as_of,
                size,
                entered,
                left,
                now,
                target.name,
                seq,
            ],
        )
        for table in (_NEW, _CHANGED, _SPELLS_CHANGED):
            warehouse.execute(f"DROP TABLE IF EXISTS {table}")
        step("marker")
    return marker


# Membership as bitmaps (``audience_member_words``, see segmint.warehouse.schema): the new
# members (the compiled query's distinct profile ids) are folded into 64-bit words as they
# are evaluated, with no row per member kept. Joining the new words with the stored ones
# (about members / 64 rows each) finds the words that changed; only their differing bits are
# expanded into rows, and only they are rewritten.
_NEW_SQL = f"""
CREATE OR REPLACE TEMPORARY TABLE {_NEW} AS
SELECT {MEMBER_BUCKET} AS bucket, {MEMBER_WORD} AS bits
FROM ({{query}}) AS members
WHERE profile_id IS NOT NULL
GROUP BY 1
"""


def folding_duplicates(query: exp.Query) -> exp.Query:
    """``query`` without its outermost duplicate removal, when dropping it cannot change which
    profile ids it returns (only how often): folding ids into words with ``bit_or`` counts
    each once anyway, and removing duplicates is most of what evaluating a one-event audience
    costs (a hash aggregate over every matching id). A ``SELECT DISTINCT`` with no ``LIMIT``
    or ``OFFSET`` loses its ``DISTINCT``; a ``UNION`` becomes ``UNION ALL`` of its folded
    sides. Anything else is returned unchanged."""
    if isinstance(query, exp.Select):
        distinct = query.args.get("distinct")
        if (
            not isinstance(distinct, exp.Distinct)
            or distinct.args.get("on")
            or query.args.get("limit")
            or query.args.get("offset")
        ):
            return query
        folded = query.copy()
        folded.set("distinct", None)
        return folded
    # (older sqlglot makes EXCEPT and INTERSECT subclasses of UNION: they keep their meaning)
    set_operation = isinstance(query, exp.Except | exp.Intersect)
    if isinstance(query, exp.Union) and not set_operation and not query.args.get("limit"):
        left, right = query.this, query.expression
        if isinstance(left, exp.Query) and isinstance(right, exp.Query):
            return exp.union(
                folding_duplicates(left), folding_duplicates(right), distinct=False, copy=True
            )
    return query


# The words of the current members as stored, and as history's open spells have them.
_STORED_WORDS = "SELECT bucket, bits FROM audience_member_words WHERE audience_id = ?"
# Each start and each end flips a profile's bit, so the open spells are the XOR of them all.
_OPEN_SPELL_WORDS = """
SELECT bucket, bit_xor(entered_bits | left_bits) AS bits
FROM history_words WHERE audience_id = ?
GROUP BY 1 HAVING bit_xor(entered_bits | left_bits) <> 0
"""


def _changed_sql(table: str, current_words: str) -> str:
    """The words that differ between the new members and ``current_words``: each with the new
    word and the bits that changed."""
    return f"""
CREATE OR REPLACE TEMPORARY TABLE {table} AS
SELECT coalesce(n.bucket, c.bucket) AS bucket,
       coalesce(n.bits, CAST(0 AS UBIGINT)) AS new_bits,
       xor(coalesce(n.bits, CAST(0 AS UBIGINT)), coalesce(c.bits, CAST(0 AS UBIGINT)))
           AS changed_bits
FROM {_NEW} AS n
FULL OUTER JOIN ({current_words}) AS c ON n.bucket = c.bucket
WHERE n.bits IS DISTINCT FROM c.bits
"""


# One row per change in ``segment_events`` (read as events through ``segment_event_rows``,
# which takes the rest from the marker: audience, timestamp, message id, properties): the
# changed bits of the changed words, each with whether it is now set.
_EVENTS_SQL = f"""
INSERT INTO segment_events (refresh_seq, profile_id, added)
SELECT CAST(? AS BIGINT), {member_id("bucket")}, {bit_is_set("new_bits")}
FROM {_CHANGED}, {EVERY_BIT}
WHERE {bit_is_set("changed_bits")}
"""


def _history_sql(changed: str) -> str:
    """History's words for the refresh: per changed word, the bits of the spells that start
    (set now) and of those that end (set before)."""
    return f"""
INSERT INTO history_words (audience_id, seq, bucket, entered_bits, left_bits)
SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), bucket, changed_bits & new_bits,
       changed_bits & ~new_bits
FROM {changed}
"""


# The refresh's number: refreshes are numbered in commit order (one writer at a time).
_NEXT_SEQ_SQL = "SELECT coalesce(max(seq), 0) + 1 FROM audience_refreshes"


# Audiences whose history was recomputed since their last refresh (segmint.audiences.recompute).
_TO_RECONCILE_SQL = "SELECT 1 FROM history_to_reconcile WHERE audience_id = ?"
_RECONCILED_SQL = "DELETE FROM history_to_reconcile WHERE audience_id = ?"

_DROP_CHANGED_WORDS_SQL = f"""
DELETE FROM audience_member_words
WHERE audience_id = ? AND bucket IN (SELECT bucket FROM {_CHANGED})
"""

_ADD_CHANGED_WORDS_SQL = f"""
INSERT INTO audience_member_words (audience_id, bucket, bits)
SELECT ?, bucket, new_bits FROM {_CHANGED} WHERE new_bits <> 0
"""

# The change log the sync outbox reads (``membership_changes``): the changed words' flipped
# bits, tagged with the refresh.
_LOG_CHANGES_SQL = f"""
INSERT INTO membership_changes (refresh_id, audience_id, bucket, changed_bits)
SELECT CAST(? AS VARCHAR), CAST(? AS BIGINT), bucket, changed_bits FROM {_CHANGED}
"""

_COUNTS_SQL = f"""
SELECT (SELECT coalesce(sum(bit_count(bits)), 0) FROM {_NEW}),
       coalesce(sum(bit_count(changed_bits & new_bits)), 0),
       coalesce(sum(bit_count(changed_bits & ~new_bits)), 0)
FROM {_CHANGED}
"""

_MARKER_SQL = """
INSERT INTO audience_refreshes (refresh_id, audience_id, version, as_of, size, entered, "left",
                                committed_at, audience_name, seq)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_MARKER_COLUMNS = 'refresh_id, audience_id, version, as_of, size, entered, "left", committed_at'


def read_marker(warehouse: Engine, refresh_id: str) -> RefreshMarker | None:
    """The committed refresh ``refresh_id``, or None when it never committed."""
    rows = warehouse.rows(
        f"SELECT {_MARKER_COLUMNS} FROM audience_refreshes WHERE refresh_id = ?", [refresh_id]
    )
    return RefreshMarker(*rows[0]) if rows else None


def committed_refresh_ids(warehouse: Engine, refresh_ids: list[str]) -> set[str]:
    """Those of ``refresh_ids`` whose warehouse side committed."""
    if not refresh_ids:
        return set()
    marks = ", ".join("?" for _ in refresh_ids)
    rows = warehouse.rows(
        f"SELECT refresh_id FROM audience_refreshes WHERE refresh_id IN ({marks})", refresh_ids
    )
    return {row[0] for row in rows}


def latest_as_of(warehouse: Engine, audience_id: int) -> dt.datetime | None:
    """The ``as_of`` of the audience's last committed refresh."""
    (value,) = warehouse.rows(
        "SELECT max(as_of) FROM audience_refreshes WHERE audience_id = ?", [audience_id]
    )[0]
    return value


# --- the catalog side ----------------------------------------------------------------------


def _start_run(
    catalog: Catalog,
    run_id: str,
    target: RefreshTarget,
    trigger: Trigger,
    as_of: dt.datetime,
    now: dt.datetime,
) -> int:
    """Record the run as ``running`` (so a crash shows up as a stuck run); return its
    attempt number. Rerunning an earlier refresh id counts as its next attempt."""
    with catalog.session() as session:
        run = session.get(RefreshRun, run_id)
        if run is not None:
            run.attempt += 1
        else:
            audience = session.get(Audience, target.audience_id)
            failures = audience.consecutive_failures if audience is not None else 0
            run = RefreshRun(id=run_id, audience_id=target.audience_id, attempt=failures + 1)
            session.add(run)
        run.version = target.version
        run.trigger = trigger
        run.as_of = as_of
        run.started_at = now
        run.finished_at = None
        run.status = "running"
        run.size = run.entered = run.left = None
        run.error_class = run.error_message = None
        return run.attempt


def complete_refresh(
    catalog: Catalog,
    marker: RefreshMarker,
    *,
    timezone: str,
    now: dt.datetime,
    elapsed: float | None = None,
) -> RefreshResult:
    """Write the catalog side of a committed refresh: the run, the usage record and the
    audience's size and schedule. Safe to repeat (the usage record is keyed by refresh id).
    ``elapsed`` is None when resuming an earlier attempt."""
    resumed = elapsed is None
    with catalog.session() as session:
        run = session.get(RefreshRun, marker.refresh_id)
        if run is None:  # the run row was lost (e.g. a restored catalog): recreate it
            run = RefreshRun(
                id=marker.refresh_id,
                audience_id=marker.audience_id,
                trigger="manual",
                started_at=now,
                attempt=1,
            )
            session.add(run)
        started = run.started_at
        finished = started + dt.timedelta(seconds=elapsed) if elapsed is not None else now
        run.version, run.as_of = marker.version, marker.as_of
        run.status, run.finished_at = "succeeded", max(finished, started)
        run.size, run.entered, run.left = marker.size, marker.entered, marker.left
        run.error_class = run.error_message = None
        _record_usage_once(session, marker, timezone, now)
        audience = session.get(Audience, marker.audience_id)
        if audience is not None:
            _update_audience(audience, marker, now)
        result = RefreshResult(
            refresh_id=marker.refresh_id,
            audience_id=marker.audience_id,
            version=marker.version,
            as_of=marker.as_of,
            size=marker.size,
            entered=marker.entered,
            left=marker.left,
            started_at=started,
            finished_at=run.finished_at,
            duration_seconds=(run.finished_at - started).total_seconds(),
            resumed=resumed,
        )
    log.info(
        "audience %s refreshed: %d members, +%d −%d (refresh %s)",
        marker.audience_id,
        marker.size,
        marker.entered,
        marker.left,
        marker.refresh_id,
        extra={"audience_id": marker.audience_id, "refresh_id": marker.refresh_id},
    )
    return result


def complete_committed_runs(
    warehouse: Engine,
    catalog: Catalog,
    audience_id: int,
    *,
    timezone: str,
    now: dt.datetime,
    recent: int = 10,
) -> list[RefreshResult]:
    """Complete the catalog side of the audience's recent failed runs whose warehouse side
    had committed (the catalog write failed after the commit). Returns what was completed,
    oldest first."""
    with catalog.session() as session:
        run_ids = list(
            session.scalars(
                select(RefreshRun.id)
                .where(RefreshRun.audience_id == audience_id, RefreshRun.status == "failed")
                .order_by(RefreshRun.started_at.desc())
                .limit(recent)
            )
        )
    committed = committed_refresh_ids(warehouse, run_ids)
    markers = [m for m in (read_marker(warehouse, i) for i in committed) if m is not None]
    return [
        complete_refresh(catalog, marker, timezone=timezone, now=now)
        for marker in sorted(markers, key=lambda m: (m.as_of, m.committed_at))
    ]


def _record_usage_once(
    session: Session, marker: RefreshMarker, timezone: str, now: dt.datetime
) -> None:
    """The usage record of the refresh (R11), on the local day of its ``as_of``; a repeat
    records nothing (``record_usage`` is idempotent on the refresh id)."""
    day = marker.as_of.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(timezone)).date()
    record_usage(session, marker.audience_id, marker.refresh_id, day, marker.size, now)


def _update_audience(audience: Audience, marker: RefreshMarker, now: dt.datetime) -> None:
    audience.consecutive_failures = 0
    audience.last_error = None
    if audience.last_refresh_at is not None and marker.as_of < audience.last_refresh_at:
        return  # a late completion of an older refresh must not roll the audience back
    audience.size = marker.size
    audience.last_refresh_at = marker.as_of
    if not audience.is_dynamic:
        audience.next_refresh_at = None  # static: computed once (R7)
        return
    interval = next_interval(audience, now)
    audience.next_refresh_at = None if interval is None else now + interval


def _record_failure(
    catalog: Catalog,
    run_id: str,
    audience_id: int,
    exc: BaseException,
    now: dt.datetime,
    elapsed: float,
) -> dt.datetime | None:
    """Mark the run failed, count the failure and schedule a retry with backoff; return the
    retry time. Never raises: the original error is what the caller reports."""
    message = str(exc) or type(exc).__name__
    log.error(
        "refresh %s of audience %s failed: %s: %s",
        run_id,
        audience_id,
        type(exc).__name__,
        message,
        exc_info=exc,
        extra={"audience_id": audience_id, "refresh_id": run_id},
    )
    try:
        with catalog.session() as session:
            run = session.get(RefreshRun, run_id)
            if run is not None:
                run.status = "failed"
                run.finished_at = run.started_at + dt.timedelta(seconds=elapsed)
                run.error_class = type(exc).__name__[:100]
                run.error_message = message
            audience = session.get(Audience, audience_id)
            if audience is None:
                return None
            return mark_failed(audience, f"{type(exc).__name__}: {message}", now)
    except Exception:
        log.exception("could not record the failure of refresh %s in the catalog", run_id)
        return None


def mark_failed(audience: Audience, error: str, now: dt.datetime) -> dt.datetime:
    """Count one more consecutive failure of ``audience`` and schedule its retry with
    backoff (:func:`retry_delay`); return the retry time."""
    audience.consecutive_failures += 1
    audience.last_error = error
    retry_at = now + retry_delay(audience.consecutive_failures, audience.refresh_interval_seconds)
    audience.next_refresh_at = retry_at
    return retry_at


def _succeeded_result(catalog: Catalog, run_id: str) -> RefreshResult | None:
    """The result of ``run_id`` if it already succeeded (a rerun changes nothing)."""
    with catalog.session() as session:
        run = session.get(RefreshRun, run_id)
        if run is None or run.status != "succeeded" or run.finished_at is None:
            return None
        return RefreshResult(
            refresh_id=run.id,
            audience_id=run.audience_id,
            version=run.version,
            as_of=run.as_of,
            size=run.size or 0,
            entered=run.entered or 0,
            left=run.left or 0,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=(run.finished_at - run.started_at).total_seconds(),
            resumed=True,
        )
