"""Chunking records to a platform's per-request limits (records and bytes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def row_bytes(row: Sequence[str]) -> int:
    """An upper-bound estimate of one row's size in a JSON payload: its values (ASCII hex,
    so characters are bytes) plus quotes, commas and brackets."""
    return sum(len(value) for value in row) + 3 * len(row) + 2


def chunk(
    records: Sequence[T],
    max_records: int,
    *,
    max_bytes: int | None = None,
    size_of: Callable[[T], int] | None = None,
) -> Iterator[Sequence[T]]:
    """Yield consecutive slices of ``records`` holding at most ``max_records`` records and, when
    ``max_bytes`` is given, at most ``max_bytes`` by ``size_of``. A single record larger than
    ``max_bytes`` goes alone in its own chunk (the platform then decides)."""
    if max_records < 1:
        raise ValueError("max_records must be at least 1")
    if max_bytes is None:
        for start in range(0, len(records), max_records):
            yield records[start : start + max_records]
        return
    measure = size_of or (lambda record: len(str(record)))
    start, size = 0, 0
    for index, record in enumerate(records):
        record_size = measure(record)
        full = index - start >= max_records or (index > start and size + record_size > max_bytes)
        if full:
            yield records[start:index]
            start, size = index, 0
        size += record_size
    if start < len(records):
        yield records[start:]
