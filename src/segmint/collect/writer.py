"""Group commit for the HTTP API: concurrent requests hand their messages to one writer
thread, which stores everything queued so far in one warehouse transaction.

When a request is answered depends on the acknowledgement mode (``SEGMINT_INGEST_ACK``):
- ``journal`` (default): once its body is synced to the collection journal; the writer
  commits in the background in groups of up to ``max_messages``, so a group no longer has to
  wait for clients to send the next requests. What is journaled but not yet committed is
  stored at the next start if the process dies (:func:`recover_journal`).
- ``commit``: once its messages are committed to the warehouse (visible to every read that
  starts after the answer).

In journal mode at most ``max_pending`` messages wait in memory; a request beyond that waits
for room before it is journaled (back-pressure instead of unbounded memory). With a
preparation pool, groups of journaled messages are prepared (accepted again from their
journal records, enriched, turned into rows) in another process while the writer stores the
group before (see :mod:`segmint.collect.workers`); the first group of at least ``pool_min``
messages starts the processes (and waits for one), and smaller groups before it are
prepared here.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from segmint.collect.journal import (
    Journal,
    Record,
    SetAside,
    keep_aside,
    read_segment,
    segments,
    set_aside,
)
from segmint.collect.messages import Message
from segmint.collect.pipeline import Collector, IngestResult
from segmint.collect.workers import PreparationPool, prepare_records
from segmint.errors import StorageUnavailable

log = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True, slots=True)
class IngestStatus:
    """What ``/health`` and the Events page report about collection."""

    pending: int  # acknowledged messages not yet in the warehouse
    set_aside: list[SetAside]  # refused by the warehouse, tried again at the next start
    # The preparation processes: "off" (none), "not started", "starting" or "ready".
    preparation: str = "off"

    @property
    def set_aside_messages(self) -> int:
        return sum(entry.messages for entry in self.set_aside)


@dataclass(slots=True)
class _Request:
    messages: list[Message] | None  # None when they can be accepted again from ``record``
    count: int
    future: Future[IngestResult] | None  # commit mode: the answer waits on it
    record: Record | None  # journal mode: where the request is kept until committed
    settled: bool = False  # counted out of the pending messages


class GroupCommitWriter:
    """Serializes writes from many threads, committing queued requests together."""

    def __init__(
        self,
        collector: Collector,
        *,
        journal: Journal | None = None,
        max_messages: int = 50_000,
        max_pending: int = 100_000,
        pool: PreparationPool | None = None,
        pool_min: int = 2_000,
        accept: Callable[[dict[str, Any], bytes], list[Message]] | None = None,
    ) -> None:
        self.collector = collector
        self.journal = journal
        self.max_messages = max_messages
        self.max_pending = max_pending
        self.pool = pool if journal is not None else None
        self.pool_min = pool_min
        # With a pool, large groups are accepted again from their journal records there, so
        # a journaled request does not keep its messages (~3 KB each, for the garbage
        # collector to scan again and again): groups prepared here accept them again too.
        self.accept = accept if self.pool is not None else None
        self._queue: queue.Queue[object] = queue.Queue()
        self._room = threading.Condition()
        self._pending = 0  # messages submitted and not yet committed (or set aside)
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name="segmint-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Messages accepted but not yet committed to the warehouse."""
        return self._pending

    def status(self, journal_dir: Path) -> IngestStatus:
        """How collection is doing: what waits to be stored, what was set aside."""
        preparation = "off" if self.pool is None else self.pool.state
        return IngestStatus(self._pending, set_aside(journal_dir), preparation)

    def submit(self, messages: list[Message], meta: dict[str, Any], body: bytes) -> None:
        """Make ``messages`` durable; return when they are (journaled or committed, by the
        mode). ``meta`` and ``body`` are what the journal keeps to accept them again."""
        with self._room:
            while self._pending and self._pending + len(messages) > self.max_pending:
                self._room.wait()
            self._pending += len(messages)
        if self.journal is None:
            future: Future[IngestResult] = Future()
            self._queue.put(_Request(messages, len(messages), future, None))
            future.result()
            return

        kept = None if self.accept is not None else messages

        def enqueue(segment: Path) -> None:
            self._queue.put(_Request(kept, len(messages), None, Record(segment, meta, body)))

        try:
            self.journal.append(meta, body, then=enqueue)
        except BaseException:
            self._done(len(messages))
            raise

    def wait_until_stored(self, timeout: float = 60.0) -> bool:
        """Block until nothing accepted is waiting to be committed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._room:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(left)
        return True

    def close(self, timeout: float = 120.0, grace: float = 60.0) -> None:
        """Store what is queued (up to ``timeout`` seconds), then stop after the group being
        stored (waiting up to ``grace`` more). In journal mode what was not stored stays in
        the journal for the next start; in commit mode its requests get an error."""
        self._queue.put(_STOP)
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            self._abandon = True
            where = (
                "they are kept in the journal and stored at the next start"
                if self.journal is not None
                else "their requests are answered with an error"
            )
            log.warning("stopping with %d messages not yet stored; %s", self._pending, where)
            self._thread.join(timeout=grace)
            while True:  # commit mode: whoever still waits learns it was not stored
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Request) and item.future is not None:
                    item.future.set_exception(
                        StorageUnavailable("the server stopped before storing the events; retry")
                    )
        if self.journal is not None:
            self.journal.close()
        if self.pool is not None:
            self.pool.close()

    def _done(self, count: int) -> None:
        with self._room:
            self._pending -= count
            self._room.notify_all()

    def _settle(self, requests: list[_Request]) -> None:
        """Count requests out of the pending messages (once each, whatever happened)."""
        count = 0
        for request in requests:
            if not request.settled:
                request.settled = True
                count += request.count
        self._done(count)

    def _gather(self, block: bool) -> list[_Request] | None:
        """The next group of queued requests (up to ``max_messages``; empty when nothing
        waits and ``block`` is false), or None when the writer is to stop."""
        try:
            item = self._queue.get() if block else self._queue.get_nowait()
        except queue.Empty:
            return []
        if item is _STOP:
            return None
        assert isinstance(item, _Request)
        group = [item]
        count = item.count
        while count < self.max_messages:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is _STOP:
                self._queue.put(_STOP)
                break
            assert isinstance(more, _Request)
            group.append(more)
            count += more.count
        return group

    def _begin(self, group: list[_Request]) -> tuple[list[_Request], Future[str] | None]:
        """Start preparing ``group`` in the pool. Its processes are started (in the
        background) by the first group of ``pool_min`` messages, which waits for one of them;
        smaller groups before are prepared here. Once started, every group goes to the pool,
        however small: one prepared here would hold the interpreter lock the threads
        answering requests need (a group of 50,000 took 4.3 s here under load, 2.5 s in a
        preparation process)."""
        if self.pool is None:
            return group, None
        if self.pool.state == "not started":
            if sum(request.count for request in group) < self.pool_min:
                return group, None
            self.pool.start()
        # A pool is kept in journal mode only, where every request has its record.
        bodies = [(r.record.meta, r.record.body) for r in group if r.record is not None]
        return group, self.pool.submit(prepare_records, bodies)

    def _run(self) -> None:
        # Groups under way: one being stored here, and while it is, as many more being
        # prepared in the pool as it has processes.
        ahead: deque[tuple[list[_Request], Future[str] | None]] = deque()
        under_way = 1 + (self.pool.processes if self.pool is not None else 1)
        stopping = False
        while not self._abandon:
            if not ahead:
                group = None if stopping else self._gather(block=True)
                if group is None:
                    return
                ahead.append(self._begin(group))
            while not stopping and len(ahead) < under_way:
                group = self._gather(block=False)
                if group is None:
                    stopping = True
                elif not group:
                    break
                else:
                    ahead.append(self._begin(group))
            pending, prepared = ahead.popleft()
            try:
                self._write(pending, prepared)
            except Exception:  # never let the writer die: later requests need it
                log.exception("the collection writer failed on %d requests", len(pending))
                for request in pending:
                    if request.future is not None and not request.future.done():
                        request.future.set_exception(RuntimeError("the writer failed"))
                self._settle(pending)

    def _write(self, pending: list[_Request], preparing: Future[str] | None = None) -> None:
        def messages() -> list[Message]:
            return [m for request in pending for m in self._messages(request)]

        try:
            if preparing is not None and self.pool is not None:
                prepared = self.pool.result(preparing, lambda: self.collector.prepare(messages()))
                result = self.collector.store(prepared)
            else:
                result = self.collector.ingest(messages())
        except Exception as exc:
            count = sum(request.count for request in pending)
            if len(pending) > 1:
                # Find the request the warehouse refuses; store the others.
                log.warning(
                    "storing %d messages failed (%s); retrying request by request", count, exc
                )
                for request in pending:
                    self._write([request])
                return
            log.exception("storing %d messages failed", count)
            for request in pending:
                self._store_one_by_one(request, exc)
            return
        if self.journal is not None:
            self.journal.committed([r.record.segment for r in pending if r.record is not None])
        for request in pending:
            if request.future is not None:
                request.future.set_result(IngestResult(stored=request.count, merges=result.merges))
        self._settle(pending)

    def _messages(self, request: _Request) -> list[Message]:
        if request.messages is not None:
            return request.messages
        assert self.accept is not None and request.record is not None
        return self.accept(request.record.meta, request.record.body)

    def _store_one_by_one(self, request: _Request, exc: Exception) -> None:
        """A journaled batch the warehouse refuses as a whole: store its messages one by
        one, so that a message that cannot be stored does not keep its neighbours out, and
        keep aside (in the journal's ``failed/``) only the messages refused."""
        record = request.record
        if record is None or request.count < 2 or record.meta.get("route") != "batch":
            self._failed(request, exc)
            return
        try:
            messages = self._messages(request)
        except Exception:
            self._failed(request, exc)
            return
        _, refused, exc = _one_by_one(self.collector, messages, exc)
        if not refused:
            assert self.journal is not None
            self.journal.committed([record.segment])
            self._settle([request])
            return
        log.warning(
            "stored %d of the request's %d messages one by one; %d refused",
            len(messages) - len(refused),
            len(messages),
            len(refused),
        )
        self._failed(replace(request, record=_only(record, refused)), exc)

    def _failed(self, request: _Request, exc: Exception) -> None:
        if request.future is not None:  # commit mode: the request answers with the error
            request.future.set_exception(exc)
        elif request.record is not None and self.journal is not None:
            try:
                kept = self.journal.set_aside(request.record, f"{type(exc).__name__}: {exc}")
            except OSError:
                log.exception(
                    "%d acknowledged messages could not be stored (%s) nor set aside; they "
                    "stay in %s and are stored at the next start",
                    request.count,
                    exc,
                    request.record.segment,
                )
                self._settle([request])
                return
            log.error(
                "%d acknowledged messages could not be stored (%s); they are kept in %s and "
                "tried again at the next start",
                request.count,
                exc,
                kept,
            )
        self._settle([request])


def _one_by_one(
    collector: Collector, messages: list[Message], error: Exception, *, check_table: bool = False
) -> tuple[int, list[int], Exception]:
    """Store ``messages`` one at a time: how many were stored, the positions of those the
    warehouse refused, and the last refusal (``error`` when there was none)."""
    stored, refused = 0, []
    for index, message in enumerate(messages):
        try:
            stored += collector.ingest([message], check_table=check_table).stored
        except Exception as exc:
            refused.append(index)
            error = exc
    return stored, refused, error


def _only(record: Record, keep: list[int]) -> Record:
    """``record`` narrowed to the accepted messages at positions ``keep`` (positions in the
    order they were accepted): the batch's other messages are marked rejected, so that
    accepting the record again gives those messages alone, with their ids."""
    rejected = set(record.meta.get("rejected") or ())
    ids = record.meta["ids"]
    accepted_at = [i for i in range(len(rejected) + len(ids)) if i not in rejected]
    kept_at = {accepted_at[k] for k in keep}
    meta = {
        **record.meta,
        "rejected": [i for i in range(len(accepted_at) + len(rejected)) if i not in kept_at],
        "ids": [ids[k] for k in keep],
    }
    return Record(record.segment, meta, record.body)


def recover_journal(
    directory: Path,
    collector: Collector,
    accept: Callable[[dict[str, Any], bytes], list[Message]],
    group: int = 50_000,
) -> int:
    """Store what the journal in ``directory`` still holds (after a crash or a failure) and
    delete what was stored. ``accept`` rebuilds a record's messages. Messages committed
    before are skipped by their ids. A segment the warehouse refuses as a whole is stored
    request by request and a refused batch message by message: only the messages refused
    are kept aside (in ``failed/``, tried again at the next start). Returns the messages
    stored now."""
    stored = 0
    left = []
    for segment in segments(directory):
        if segment.stat().st_size:
            left.append(segment)
        else:  # the emptied active segment of a run that stopped with nothing waiting
            segment.unlink()
    if left:
        log.warning(
            "storing the requests the journal kept from the previous run (%d segment files)",
            len(left),
        )
    for segment in left:
        try:
            records = list(read_segment(segment))
            try:
                stored += _store_records(records, collector, accept, group)
            except Exception as exc:
                log.warning("storing %s failed (%s); storing it request by request", segment, exc)
                stored += _store_isolating(directory, records, collector, accept)
        except Exception as exc:
            if segment.parent.name != "failed":
                failed = directory / "failed"
                failed.mkdir(exist_ok=True)
                segment.rename(failed / segment.name)
            log.error(
                "could not store the journaled requests in %s: %s; they are kept in "
                "%s and tried again at the next start",
                segment.name,
                exc,
                directory / "failed",
            )
            continue
        segment.unlink()
    if stored:
        log.warning("stored %d journaled messages left from the previous run", stored)
    return stored


def _store_records(
    records: list[Record],
    collector: Collector,
    accept: Callable[[dict[str, Any], bytes], list[Message]],
    group: int,
) -> int:
    messages = [m for record in records for m in accept(record.meta, record.body)]
    stored = 0
    for start in range(0, len(messages), group):
        stored += collector.ingest(messages[start : start + group], check_table=True).stored
    return stored


def _store_isolating(
    directory: Path,
    records: list[Record],
    collector: Collector,
    accept: Callable[[dict[str, Any], bytes], list[Message]],
) -> int:
    """Store ``records`` one by one, a refused batch message by message; keep aside what
    the warehouse refuses. Raises when nothing at all could be stored (the warehouse is
    failing, not a message): the segment is then kept whole, as it was."""
    stored = 0
    aside: list[tuple[Record, str]] = []
    for record in records:
        messages = accept(record.meta, record.body)
        try:
            stored += collector.ingest(messages, check_table=True).stored
            continue
        except Exception as exc:
            error: Exception = exc
        refused = list(range(len(messages)))
        if record.meta.get("route") == "batch" and len(messages) > 1:
            alone, refused, error = _one_by_one(collector, messages, error, check_table=True)
            stored += alone
        if refused:
            narrowed = record if len(refused) == len(messages) else _only(record, refused)
            aside.append((narrowed, f"{type(error).__name__}: {error}"))
    if aside and len(aside) == len(records) and not stored:
        raise RuntimeError(aside[-1][1])
    for record, error_text in aside:
        kept = keep_aside(directory, record, error_text)
        log.error(
            "%d journaled messages could not be stored (%s); they are kept in %s and tried "
            "again at the next start",
            len(record.meta.get("ids", ())),
            error_text,
            kept,
        )
    return stored
