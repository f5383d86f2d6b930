"""One retry policy for every destination: exponential backoff with jitter on rate limits,
server errors and dropped connections, honouring ``Retry-After``; other errors are final.

Destination requests are idempotent on the platform side (adding a member twice is a no-op),
so replaying a request whose response was lost is safe.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import tenacity

from segmint.sync.errors import RateLimited, Transient
from segmint.sync.ratelimit import RateLimiter

T = TypeVar("T")

RETRYABLE: tuple[type[BaseException], ...] = (RateLimited, Transient, httpx.TransportError)
"""Errors worth another attempt; AuthExpired and BadRequest are not among them."""


_retrying = threading.local()
"""``active`` while this thread runs an operation under :meth:`RetryPolicy.call`."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in total, waits growing from ``initial`` seconds
    doubling up to ``maximum`` (a ``Retry-After`` longer than ``maximum`` is capped to it)."""

    attempts: int = 8
    initial: float = 0.5
    maximum: float = 60.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = tenacity.nap.sleep
    limiter: RateLimiter | None = None
    """Paces every attempt to the platform's rate limit (see :mod:`segmint.sync.ratelimit`)."""

    def wait_seconds(self, attempt: int, error: BaseException | None) -> float:
        """The wait before attempt ``attempt + 1``: the platform's ``Retry-After`` when it
        gave one, else exponential backoff with jitter."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(error.retry_after, self.maximum)
        backoff = self.initial * 2 ** (attempt - 1) + random.uniform(0, self.jitter * self.initial)
        return min(backoff, self.maximum)

    def call(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` until it succeeds, a non-retryable error is raised, or the
        attempts run out (the last error is re-raised as is).

        Called inside another retried operation (in the same thread) it runs ``operation``
        once, paced: the outer retry repeats the whole. Retries nested in each other would
        multiply (8 attempts of 8 attempts, minutes of backoff against a host that cannot
        be reached)."""
        limiter = self.limiter
        if getattr(_retrying, "active", False):
            if limiter is not None:
                limiter.acquire()
            return operation()
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RETRYABLE),
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self._wait,
            sleep=self.sleep,
            reraise=True,
        )

        def attempt() -> T:
            if limiter is not None:
                limiter.acquire()
            return operation()

        _retrying.active = True
        try:
            return retrying(attempt)
        finally:
            _retrying.active = False

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self.wait_seconds(state.attempt_number, error)
