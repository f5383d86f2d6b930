"""The shared delivery machinery: chunking to platform limits, and the retry policy."""

from __future__ import annotations

import httpx
import pytest

from segmint.sync.batching import chunk, row_bytes
from segmint.sync.errors import (
    AuthExpired,
    BadRequest,
    RateLimited,
    Transient,
    auth_expired_message,
    parse_retry_after,
)
from segmint.sync.retry import RetryPolicy


@pytest.mark.parametrize(
    ("count", "limit", "sizes"),
    [(0, 10, []), (5, 10, [5]), (10, 10, [10]), (25_000, 10_000, [10_000, 10_000, 5_000])],
)
def test_chunk_respects_records_per_request(count: int, limit: int, sizes: list[int]) -> None:
    records = list(range(count))
    chunks = list(chunk(records, limit))
    assert [len(c) for c in chunks] == sizes
    assert [r for c in chunks for r in c] == records


def test_chunk_respects_bytes_per_request() -> None:
    rows = [["a" * 64, "b" * 64]] * 10
    one = row_bytes(rows[0])
    chunks = list(chunk(rows, 100, max_bytes=3 * one, size_of=row_bytes))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]


def test_chunk_puts_an_oversized_record_alone() -> None:
    chunks = list(chunk(["x" * 50, "y", "z"], 10, max_bytes=10, size_of=len))
    assert [list(c) for c in chunks] == [["x" * 50], ["y", "z"]]


def test_chunk_rejects_a_zero_limit() -> None:
    with pytest.raises(ValueError):
        list(chunk([1], 0))


class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def fast_policy(waits: list[float], attempts: int = 5) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, initial=0.5, maximum=30, sleep=waits.append)


def test_retry_recovers_from_rate_limits_server_errors_and_dropped_connections() -> None:
    waits: list[float] = []
    operation = Flaky(
        RateLimited("slow down"), Transient("500"), httpx.RemoteProtocolError("dropped")
    )
    assert fast_policy(waits).call(operation) == "ok"
    assert operation.calls == 4
    assert len(waits) == 3
    assert waits[0] < waits[2]  # exponential


def test_retry_honours_retry_after_capped_to_the_maximum() -> None:
    waits: list[float] = []
    operation = Flaky(RateLimited("x", retry_after=7), RateLimited("x", retry_after=600))
    assert fast_policy(waits).call(operation) == "ok"
    assert waits == [7, 30]


@pytest.mark.parametrize("error", [BadRequest("no"), AuthExpired("Meta")])
def test_retry_gives_up_at_once_on_other_errors(error: Exception) -> None:
    waits: list[float] = []
    operation = Flaky(error)
    with pytest.raises(type(error)):
        fast_policy(waits).call(operation)
    assert operation.calls == 1
    assert waits == []


def test_retry_reraises_the_last_error_when_attempts_run_out() -> None:
    waits: list[float] = []
    operation = Flaky(*[Transient(f"fail {i}") for i in range(5)])
    with pytest.raises(Transient, match="fail 2"):
        fast_policy(waits, attempts=3).call(operation)
    assert operation.calls == 3


def test_auth_expired_says_where_to_reauthenticate() -> None:
    assert (
        AuthExpired("Shop Meta").message
        == auth_expired_message("Shop Meta")
        == (
            "Error Fetching Data: the destination's authentication has expired — "
            "re-authenticate in Destinations → Shop Meta → Configuration Settings"
        )
    )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("", None), ("12", 12.0), (" 1.5 ", 1.5), ("-3", 0.0), ("Wed, 21 Oct", None)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
