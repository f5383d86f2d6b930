"""Syncs that follow refreshes, run on a thread of their own inside the server.

A platform can be slow (rate limits, retries with backoff, big lists), so the server does not
sync inside the scheduler's pass or an API request: the refresh paths hand the audience id to
a :class:`SyncWorker` and go on. Audiences are synced one at a time in the order they were
handed over; an audience already waiting is not queued twice (its sync sends everything
pending anyway). Stopping the worker drops what is still queued: those changes stay in the
outbox and go out with the next sync. The CLI's refresh commands sync in line instead (the
process ends when they do).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from segmint.sync.runner import SyncContext, sync_audience

log = logging.getLogger(__name__)


class SyncWorker:
    """A queue of audiences to sync and the thread that syncs them."""

    def __init__(self, ctx: SyncContext) -> None:
        self._ctx = ctx
        self._pending: list[int] = []
        self._busy = False
        self._stopping = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="segmint-sync", daemon=True)
            self._thread.start()

    def submit(self, audience_id: int) -> None:
        """Sync the audience's links soon; returns at once."""
        with self._changed:
            if audience_id not in self._pending:
                self._pending.append(audience_id)
                self._changed.notify_all()

    def pending(self) -> list[int]:
        """Audiences waiting for their sync, oldest first."""
        with self._changed:
            return list(self._pending)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or running; False when ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the sync under way (up to ``timeout`` seconds) and drop the queue."""
        with self._changed:
            self._stopping = True
            dropped, self._pending = self._pending, []
            self._changed.notify_all()
        if dropped:
            log.info("sync worker stopped; %d audiences sync with their next refresh", len(dropped))
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    return
                audience_id = self._pending.pop(0)
                self._busy = True
            try:
                sync_audience(self._ctx, audience_id, trigger="refresh")
            except Exception:  # a sync failure is in the sync log; the worker goes on
                log.exception("sync after the refresh of audience %s failed", audience_id)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()


def after_refresh(state: object) -> Callable[[int], None] | None:
    """The server's hook for its refresh paths: hand the audience to the app's worker
    (``app.state.sync_worker``); None when there is none (no sync then)."""
    worker = getattr(state, "sync_worker", None)
    return worker.submit if isinstance(worker, SyncWorker) else None
