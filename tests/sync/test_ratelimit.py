"""Request pacing: the token bucket, and that the runner gives rate-limited platforms a shared
limiter (while tests with their own retry policy run unpaced)."""

from __future__ import annotations

import pytest

from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync.ratelimit import RateLimiter, limiter_for
from segmint.sync.retry import RetryPolicy
from segmint.sync.runner import SyncContext, build_adapter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_allows_a_burst_then_paces_to_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, burst=3, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(7)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert clock.now == pytest.approx(2.0)  # 7 requests: 3 at once, then 4 at 2 per second
    clock.now += 10  # idle time refills the bucket, but never above the burst
    assert [limiter.acquire() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.5])


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst >= 1"):
        RateLimiter(1, burst=0)


def test_retry_policy_paces_every_attempt() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, burst=1, clock=clock, sleep=clock.sleep)
    policy = RetryPolicy(attempts=3, initial=0.0, maximum=0.0, jitter=0.0, limiter=limiter)
    calls = iter([ConnectionError, None])

    def flaky() -> str:
        from segmint.sync.errors import Transient

        if next(calls) is ConnectionError:
            raise Transient("try again")
        return "ok"

    assert policy.call(flaky) == "ok"
    assert clock.slept == [1.0]  # the retry waited for the next token


def test_runner_paces_rate_limited_platforms_with_one_shared_limiter(runtime: Runtime) -> None:
    dest = sync_catalog.create_destination(
        runtime.catalog,
        runtime.secrets,
        "Shop Klaviyo",
        "klaviyo",
        {"api_key": "pk_test"},
        {},
    )
    first = build_adapter(SyncContext.of(runtime), dest.id)
    second = build_adapter(SyncContext.of(runtime), dest.id)
    assert first.retry.limiter is not None  # type: ignore[attr-defined]
    assert first.retry.limiter is second.retry.limiter  # type: ignore[attr-defined]
    assert first.retry.limiter is limiter_for(dest.id, 2.5, 10)  # type: ignore[attr-defined]
    unpaced = build_adapter(SyncContext.of(runtime, retry=RetryPolicy(attempts=2)), dest.id)
    assert unpaced.retry.limiter is None  # type: ignore[attr-defined]
    meta = sync_catalog.create_destination(
        runtime.catalog,
        runtime.secrets,
        "Meta",
        "meta",
        {"access_token": "t"},
        {"ad_account_id": "1"},
    )
    assert build_adapter(SyncContext.of(runtime), meta.id).retry.limiter is None  # type: ignore[attr-defined]


def test_a_retried_call_inside_another_runs_once_per_outer_attempt() -> None:
    # Meta's find-or-create retries the whole look-up, whose requests are retried calls too:
    # nested, 8 attempts of 8 attempts took minutes against a host that could not be reached.
    from segmint.sync.errors import Transient

    policy = RetryPolicy(attempts=3, initial=0.0, maximum=0.0, jitter=0.0)
    inner_calls: list[int] = []

    def request() -> str:
        inner_calls.append(1)
        raise Transient("connection failed")

    def find_or_create() -> str:
        return policy.call(request)

    with pytest.raises(Transient):
        policy.call(find_or_create)
    assert len(inner_calls) == 3  # not 9
    inner_calls.clear()
    with pytest.raises(Transient):  # outside any retry, a call retries on its own again
        policy.call(request)
    assert len(inner_calls) == 3
