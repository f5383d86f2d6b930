"""Scheduled refreshes (PRODUCT R10, B9): what is due, leases so two schedulers never refresh
the same audience at once, stuck-run recovery, dependency order and a background loop.

A *lease* is a pair of columns on the audience (``lease_owner``, ``lease_expires_at``) taken
with one conditional UPDATE, which the catalog database applies atomically: it succeeds only
when nobody holds the lease or the holder's lease has expired. A scheduler takes the lease,
refreshes, and releases it. A refresh whose process died keeps its run ``running`` while its
lease expires; :func:`recover_stuck_runs` finds it, completes it if its warehouse side had
committed, else marks it failed ("stuck: lease expired") and makes the audience due at once.

``segmint serve`` runs a :class:`Scheduler` in a background thread; ``segmint refresh --due``
calls :func:`run_due` once; ``segmint refresh NAME`` calls :func:`refresh_now`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import and_, or_, select, update

from segmint.audiences.refresh import (
    RETRY_BASE,
    FailAfter,
    RefreshFailed,
    RefreshRefused,
    RefreshResult,
    Trigger,
    complete_committed_runs,
    complete_refresh,
    mark_failed,
    read_marker,
    refresh_audience,
    utc_naive,
)
from segmint.audiences.service import dependency_order
from segmint.catalog.db import Catalog
from segmint.catalog.models import Audience, RefreshRun
from segmint.errors import Conflict
from segmint.warehouse.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = dt.timedelta(minutes=30)
STUCK_MESSAGE = "stuck: lease expired"

OutcomeStatus = Literal[
    "refreshed", "completed", "failed", "refused", "leased", "skipped", "recovered"
]


@dataclass(frozen=True)
class DueOutcome:
    """What one scheduler pass did for one audience."""

    audience_id: int
    status: OutcomeStatus
    result: RefreshResult | None = None
    error: str | None = None


def default_owner() -> str:
    """A lease owner name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]


# --- what is due ---------------------------------------------------------------------------


def due_audiences(catalog: Catalog, now: dt.datetime) -> list[int]:
    """Active audiences whose next refresh time has come, the longest overdue first.
    (Leases are not considered here: :func:`run_due` skips audiences it cannot lease.)"""
    now = utc_naive(now)
    with catalog.session() as session:
        return list(
            session.scalars(
                select(Audience.id)
                .where(
                    Audience.status == "active",
                    Audience.next_refresh_at.is_not(None),
                    Audience.next_refresh_at <= now,
                )
                .order_by(Audience.next_refresh_at, Audience.id)
            )
        )


# --- leases --------------------------------------------------------------------------------


def acquire_lease(
    catalog: Catalog, audience_id: int, owner: str, now: dt.datetime, ttl: dt.timedelta
) -> bool:
    """Take (or renew, for the same owner) the audience's refresh lease until ``now + ttl``.
    True when taken. One conditional UPDATE: of two schedulers racing, exactly one wins."""
    now = utc_naive(now)
    with catalog.session() as session:
        taken = session.execute(
            update(Audience)
            .where(
                Audience.id == audience_id,
                or_(
                    Audience.lease_owner.is_(None),
                    Audience.lease_expires_at.is_(None),
                    Audience.lease_expires_at < now,
                    Audience.lease_owner == owner,
                ),
            )
            .values(lease_owner=owner, lease_expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def release_lease(catalog: Catalog, audience_id: int, owner: str) -> bool:
    """Give the lease back if ``owner`` still holds it; True when released."""
    with catalog.session() as session:
        released = session.execute(
            update(Audience)
            .where(Audience.id == audience_id, Audience.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return bool(released.rowcount == 1)  # type: ignore[attr-defined]


def refresh_now(
    warehouse: Engine,
    catalog: Catalog,
    audience_id: int,
    *,
    owner: str,
    now: dt.datetime,
    timezone: str,
    trigger: Trigger = "manual",
    lease_ttl: dt.timedelta = DEFAULT_LEASE_TTL,
    fail_after: FailAfter | None = None,
) -> RefreshResult:
    """Refresh one audience now under its lease (``segmint refresh NAME``, activation).
    Raises :class:`Conflict` when another process is refreshing it."""
    now = utc_naive(now)
    if not acquire_lease(catalog, audience_id, owner, now, lease_ttl):
        raise Conflict(
            f"audience {audience_id} is being refreshed by another process right now; "
            "try again when it finishes"
        )
    try:
        return refresh_audience(
            warehouse,
            catalog,
            audience_id,
            as_of=now,
            now=now,
            timezone=timezone,
            trigger=trigger,
            fail_after=fail_after,
        )
    finally:
        release_lease(catalog, audience_id, owner)


# --- stuck runs ----------------------------------------------------------------------------


def stuck_runs(
    catalog: Catalog, now: dt.datetime, *, lease_ttl: dt.timedelta = DEFAULT_LEASE_TTL
) -> list[tuple[str, int]]:
    """``(refresh_id, audience_id)`` of runs still ``running`` whose audience's lease has
    expired (or that hold no lease and started more than ``lease_ttl`` ago)."""
    now = utc_naive(now)
    with catalog.session() as session:
        rows = session.execute(
            select(RefreshRun.id, RefreshRun.audience_id)
            .join(Audience, Audience.id == RefreshRun.audience_id)
            .where(
                RefreshRun.status == "running",
                or_(
                    Audience.lease_expires_at < now,
                    and_(
                        Audience.lease_owner.is_(None),
                        RefreshRun.started_at <= now - lease_ttl,
                    ),
                ),
            )
            .order_by(RefreshRun.started_at)
        ).all()
    return [(run_id, audience_id) for run_id, audience_id in rows]


def recover_stuck_runs(
    warehouse: Engine,
    catalog: Catalog,
    now: dt.datetime,
    *,
    owner: str,
    timezone: str,
    lease_ttl: dt.timedelta = DEFAULT_LEASE_TTL,
) -> list[DueOutcome]:
    """Deal with every stuck run: if its warehouse side committed, complete its catalog side;
    otherwise mark it failed (``stuck: lease expired``) and make its audience due now, so the
    same pass reruns it."""
    now = utc_naive(now)
    outcomes: list[DueOutcome] = []
    for run_id, audience_id in stuck_runs(catalog, now, lease_ttl=lease_ttl):
        if not acquire_lease(catalog, audience_id, owner, now, lease_ttl):
            continue  # another scheduler is recovering it
        try:
            marker = read_marker(warehouse, run_id)
            if marker is not None:
                result = complete_refresh(catalog, marker, timezone=timezone, now=now)
                outcomes.append(DueOutcome(audience_id, "completed", result=result))
                continue
            _mark_stuck(catalog, run_id, audience_id, now)
            outcomes.append(DueOutcome(audience_id, "recovered", error=STUCK_MESSAGE))
        finally:
            release_lease(catalog, audience_id, owner)
    return outcomes


def _mark_stuck(catalog: Catalog, run_id: str, audience_id: int, now: dt.datetime) -> None:
    log.error(
        "refresh %s of audience %s is stuck (its lease expired); marking it failed and rerunning",
        run_id,
        audience_id,
        extra={"audience_id": audience_id, "refresh_id": run_id},
    )
    with catalog.session() as session:
        run = session.get(RefreshRun, run_id)
        if run is not None and run.status == "running":
            run.status = "failed"
            run.finished_at = now
            run.error_class = "StuckRun"
            run.error_message = STUCK_MESSAGE
        audience = session.get(Audience, audience_id)
        if audience is not None:
            mark_failed(audience, f"StuckRun: {STUCK_MESSAGE}", now)
            audience.next_refresh_at = now  # rerun at once, not after a backoff


# --- one pass ------------------------------------------------------------------------------


def run_due(
    warehouse: Engine,
    catalog: Catalog,
    now: dt.datetime,
    owner: str,
    timezone: str,
    *,
    lease_ttl: dt.timedelta = DEFAULT_LEASE_TTL,
    fail_after: FailAfter | None = None,
    on_refreshed: Callable[[int], None] | None = None,
) -> list[DueOutcome]:
    """One scheduler pass: recover stuck runs, then refresh every due audience as of ``now``
    in dependency order (an audience after those it refers to), each under its lease.
    Failures are recorded (and retried later with backoff) and never stop the pass.
    ``on_refreshed(audience_id)`` runs after each refresh that committed (the sync to the
    audience's destinations)."""
    now = utc_naive(now)
    outcomes = recover_stuck_runs(
        warehouse, catalog, now, owner=owner, timezone=timezone, lease_ttl=lease_ttl
    )
    for audience_id in dependency_order(catalog, due_audiences(catalog, now)):
        if not acquire_lease(catalog, audience_id, owner, now, lease_ttl):
            outcomes.append(DueOutcome(audience_id, "leased"))
            continue
        try:
            trigger = _due_trigger(catalog, audience_id, now)
            if trigger is None:  # refreshed by another scheduler since the due list was read
                outcomes.append(DueOutcome(audience_id, "skipped"))
                continue
            outcome = _refresh_due(
                warehouse, catalog, audience_id, now, timezone, trigger, fail_after
            )
            outcomes.append(outcome)
        finally:
            release_lease(catalog, audience_id, owner)
        if on_refreshed is not None and outcome.status in ("refreshed", "completed"):
            on_refreshed(audience_id)
    return outcomes


def _due_trigger(catalog: Catalog, audience_id: int, now: dt.datetime) -> Trigger | None:
    """Re-read under the lease: ``None`` when the audience is no longer due (another
    scheduler refreshed it meanwhile); ``activation`` for its first refresh since activation
    (activating makes an audience due at once), else ``schedule``."""
    with catalog.session() as session:
        audience = session.get(Audience, audience_id)
        if (
            audience is None
            or audience.status != "active"
            or audience.next_refresh_at is None
            or audience.next_refresh_at > now
        ):
            return None
        first = audience.last_refresh_at is None or (
            audience.activated_at is not None and audience.last_refresh_at < audience.activated_at
        )
        return "activation" if first else "schedule"


def _refresh_due(
    warehouse: Engine,
    catalog: Catalog,
    audience_id: int,
    now: dt.datetime,
    timezone: str,
    trigger: Trigger,
    fail_after: FailAfter | None,
) -> DueOutcome:
    completed = complete_committed_runs(warehouse, catalog, audience_id, timezone=timezone, now=now)
    if completed:  # an earlier attempt had committed: it counts as this refresh
        return DueOutcome(audience_id, "completed", result=completed[-1])
    try:
        result = refresh_audience(
            warehouse,
            catalog,
            audience_id,
            as_of=now,
            now=now,
            timezone=timezone,
            trigger=trigger,
            fail_after=fail_after,
        )
    except RefreshFailed as exc:  # recorded and rescheduled with backoff by refresh_audience
        return DueOutcome(audience_id, "failed", error=exc.message)
    except RefreshRefused as exc:
        _postpone_refused(catalog, audience_id, exc.message, now)
        return DueOutcome(audience_id, "refused", error=exc.message)
    except Exception as exc:  # e.g. the audience vanished mid-pass: report, keep going
        log.exception("scheduled refresh of audience %s failed", audience_id)
        return DueOutcome(audience_id, "failed", error=f"{type(exc).__name__}: {exc}")
    return DueOutcome(audience_id, "refreshed", result=result)


def _postpone_refused(catalog: Catalog, audience_id: int, message: str, now: dt.datetime) -> None:
    """A refused scheduled refresh is not retried every pass: a static audience leaves the
    schedule, a dynamic one waits a little."""
    log.warning("scheduled refresh of audience %s refused: %s", audience_id, message)
    with catalog.session() as session:
        audience = session.get(Audience, audience_id)
        if audience is not None:
            audience.last_error = message
            audience.next_refresh_at = None if not audience.is_dynamic else now + RETRY_BASE


# --- the background loop -------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Scheduler:
    """Runs :func:`run_due` every ``every_seconds`` in a background thread (``segmint
    serve``). ``clock`` gives "now" (the wall clock by default; tests pass their own)."""

    def __init__(
        self,
        warehouse: Engine,
        catalog: Catalog,
        *,
        timezone: str,
        every_seconds: float = 60.0,
        owner: str | None = None,
        lease_ttl: dt.timedelta = DEFAULT_LEASE_TTL,
        clock: Callable[[], dt.datetime] = _utcnow,
        on_refreshed: Callable[[int], None] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.catalog = catalog
        self.timezone = timezone
        self.every_seconds = every_seconds
        self.owner = owner or default_owner()
        self.lease_ttl = lease_ttl
        self.clock = clock
        self.on_refreshed = on_refreshed
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def run_once(self) -> list[DueOutcome]:
        """One pass now (what the background thread does every interval)."""
        outcomes = run_due(
            self.warehouse,
            self.catalog,
            self.clock(),
            self.owner,
            self.timezone,
            lease_ttl=self.lease_ttl,
            on_refreshed=self.on_refreshed,
        )
        self.passes += 1
        return outcomes

    def start(self) -> None:
        """Start the background thread (no-op when already running)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="segmint-scheduler", daemon=True)
        self._thread.start()
        log.info("scheduler %s started (every %ss)", self.owner, self.every_seconds)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to stop after its current pass and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        log.info("scheduler %s stopped", self.owner)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must survive anything one pass throws
                log.exception("scheduler pass failed; trying again in %ss", self.every_seconds)
            self._stop.wait(self.every_seconds)
