"""Group commit for the HTTP API: concurrent requests hand their messages to one writer
thread, which stores everything queued so far in one warehouse transaction and then answers
each request. A request is answered only after its messages are committed (durable)."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

from segmint.collect.messages import Message
from segmint.collect.pipeline import Collector, IngestResult

log = logging.getLogger(__name__)

_STOP = object()


class GroupCommitWriter:
    """Serializes writes from many threads, committing queued requests together."""

    def __init__(self, collector: Collector, max_messages: int = 50_000) -> None:
        self.collector = collector
        self.max_messages = max_messages
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="segmint-writer", daemon=True)
        self._thread.start()

    def submit(self, messages: list[Message]) -> IngestResult:
        """Store ``messages``; block until they are committed; raise what storing raised."""
        future: Future[IngestResult] = Future()
        self._queue.put((messages, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            pending = [item]
            count = len(item[0])  # type: ignore[index]
            while count < self.max_messages:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                pending.append(more)
                count += len(more[0])  # type: ignore[index]
            self._write(pending)  # type: ignore[arg-type]

    def _write(self, pending: list[tuple[list[Message], Future[IngestResult]]]) -> None:
        messages = [m for batch, _ in pending for m in batch]
        try:
            result = self.collector.ingest(messages)
        except Exception as exc:  # every waiting request learns of the failure
            log.exception("storing %d messages failed", len(messages))
            for _, future in pending:
                future.set_exception(exc)
            return
        for batch, future in pending:
            future.set_result(IngestResult(stored=len(batch), duplicates=0, merges=result.merges))
