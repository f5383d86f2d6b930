"""Remembering recent messageIds so a message retried by a client is stored once.

The window (``SEGMINT_DEDUPE_WINDOW_HOURS``, a week by default) bounds memory: ids of messages
received within it are kept in a dict, loaded from the warehouse at start-up. Bulk imports
also check the whole events table (see ``Collector.ingest(check_table=True)``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

from segmint.warehouse.engine import Engine


class RecentMessageIds:
    """The messageIds received within the window, oldest first for cheap pruning."""

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self._seen: set[str] = set()
        self._order: deque[tuple[datetime, str]] = deque()

    @classmethod
    def load(cls, engine: Engine, window: timedelta, now: datetime) -> RecentMessageIds:
        index = cls(window)
        rows = engine.rows(
            "SELECT received_at, message_id FROM events WHERE received_at >= ? "
            "ORDER BY received_at",
            [now - window],
        )
        index.add_all((received_at, message_id) for received_at, message_id in rows)
        return index

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._seen

    def isdisjoint(self, message_ids: set[str]) -> bool:
        """True when none of ``message_ids`` was received within the window."""
        return self._seen.isdisjoint(message_ids)

    def __len__(self) -> int:
        return len(self._seen)

    def add_all(self, items: Iterable[tuple[datetime, str]]) -> None:
        for received_at, message_id in items:
            if message_id not in self._seen:
                self._seen.add(message_id)
                self._order.append((received_at, message_id))

    def add_new(self, received_at: list[datetime], message_ids: list[str]) -> None:
        """Remember ids known to be new: none within the window, none twice."""
        self._seen.update(message_ids)
        self._order.extend(zip(received_at, message_ids, strict=True))

    def prune(self, now: datetime) -> None:
        """Forget ids received before the window."""
        cutoff = now - self.window
        while self._order and self._order[0][0] < cutoff:
            _, message_id = self._order.popleft()
            self._seen.discard(message_id)
