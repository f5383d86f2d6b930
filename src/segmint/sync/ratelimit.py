"""Pacing requests to a platform's published rate limits (a token bucket).

Retries handle the 429s a platform sends; pacing avoids most of them. Each destination gets
one :class:`RateLimiter` shared by all its syncs in this process (:func:`limiter_for`), sized
from its adapter's :class:`~segmint.destinations.base.DestinationLimits`. A few lines, so no
dependency: the bucket holds ``burst`` tokens, refills at ``rate`` per second, and
:meth:`RateLimiter.acquire` waits until a token is free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most ``burst`` requests at once, then ``rate`` per second on average."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting for it when the bucket is empty; returns the wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


_LIMITERS: dict[tuple[int, float, int], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(destination_id: int, rate: float, burst: int) -> RateLimiter:
    """The process-wide limiter of one destination (so concurrent syncs share its budget)."""
    key = (destination_id, rate, burst)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(rate, burst)
        return limiter
