"""The collection journal: an append-only file where the HTTP API writes each accepted
request (its body and how it was accepted) and syncs it to disk before answering 200.

The writer thread stores journaled requests in the warehouse in large groups; a segment file
is deleted once every request in it is committed. After a crash, :func:`recover` stores what
the journal still holds (messages already committed are skipped by their ``messageId``), so
an acknowledged event is never lost.

A record is a 16-byte header (magic, meta length, body length, CRC-32 of meta and body),
the meta as JSON, then the body as received (after gunzip). A record cut short by a crash
(its request was never answered) fails its length or CRC check and is ignored.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from segmint.errors import StorageUnavailable

log = logging.getLogger(__name__)

MAGIC = b"SGJ1"
_HEADER = struct.Struct("<4sIII")
SEGMENT_BYTES = 64 * 1024 * 1024
SUFFIX = ".journal"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Record:
    """One journaled request: ``meta`` says how it was accepted, ``body`` is what was sent."""

    segment: Path
    meta: dict[str, Any]
    body: bytes


def _encode(meta: dict[str, Any], body: bytes) -> bytes:
    meta_bytes = orjson.dumps(meta)
    crc = zlib.crc32(body, zlib.crc32(meta_bytes))
    return _HEADER.pack(MAGIC, len(meta_bytes), len(body), crc) + meta_bytes + body


def read_segment(path: Path) -> Iterator[Record]:
    """The complete records of one segment file, in order; stops at a torn or corrupt tail."""
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        magic, meta_len, body_len, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + meta_len + body_len
        if magic != MAGIC or end > len(data):
            break
        meta_bytes, body = data[start : start + meta_len], data[start + meta_len : end]
        if zlib.crc32(body, zlib.crc32(meta_bytes)) != crc:
            break
        offset = end
        yield Record(path, orjson.loads(meta_bytes), body)
    if offset < len(data):
        log.warning(
            "journal %s: ignored %d bytes of an incomplete record at its end "
            "(a request cut short before it was answered)",
            path,
            len(data) - offset,
        )


def segments(directory: Path) -> list[Path]:
    """Segment files waiting to be stored: the journal's own, then those set aside after a
    failure, oldest first."""
    found = sorted(directory.glob(f"*{SUFFIX}"))
    return found + sorted((directory / FAILED).glob(f"*{SUFFIX}"))


@dataclass(frozen=True, slots=True)
class SetAside:
    """A segment file in ``failed/``: acknowledged requests the warehouse refused, kept to be
    tried again at the next start."""

    path: Path
    requests: int
    messages: int
    error: str | None  # the last refusal's cause


def set_aside(directory: Path) -> list[SetAside]:
    """What the journal in ``directory`` keeps aside after failures (usually nothing)."""
    found = []
    for path in sorted((directory / FAILED).glob(f"*{SUFFIX}")):
        try:
            records = list(read_segment(path))
        except OSError:  # deleted meanwhile (stored by a restart)
            continue
        errors = [r.meta.get("error") for r in records if r.meta.get("error")]
        found.append(
            SetAside(
                path,
                requests=len(records),
                messages=sum(len(r.meta.get("ids", ())) for r in records),
                error=errors[-1] if errors else None,
            )
        )
    return found


def keep_aside(directory: Path, record: Record, error: str) -> Path:
    """Write ``record`` with ``error`` to its own file in the journal's ``failed/``, synced:
    what the warehouse refused, tried again at the next start. Returns the file."""
    failed = directory / FAILED
    failed.mkdir(exist_ok=True)
    path = failed / f"{time.time_ns():020d}{SUFFIX}"
    data = _encode({**record.meta, "error": error}, record.body)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    _sync_directory(failed)
    return path


class Journal:
    """Appends records with an fsync each and deletes segment files once all their records
    are committed to the warehouse. Thread-safe."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open: dict[Path, int] = {}  # segment -> records not yet committed
        self._active: Path | None = None
        self._fd = -1
        self._size = 0

    def _new_segment(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd, self._active = -1, None
        path = self.directory / f"{time.time_ns():020d}{SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active, self._size = path, 0
        self._open[path] = 0
        _sync_directory(self.directory)

    def append(self, meta: dict[str, Any], body: bytes, then: Callable[[Path], None]) -> Path:
        """Write one record and sync it to disk; call ``then(segment)`` while still holding
        the journal's lock (so whatever it queues is in journal order). Returns the segment."""
        record = _encode(meta, body)
        with self._lock:
            try:
                if self._active is None or self._size + len(record) > self.segment_bytes:
                    self._new_segment()
                assert self._active is not None
                _write_all(self._fd, record)
                os.fdatasync(self._fd)
            except OSError as exc:
                self._abandon_segment()
                raise StorageUnavailable(
                    f"the request could not be written to the collection journal ({exc}); "
                    "nothing of it was stored — retry later"
                ) from exc
            self._size += len(record)
            self._open[self._active] += 1
            then(self._active)
            return self._active

    def _abandon_segment(self) -> None:
        """After a failed write: cut off what part of the record reached the file (a torn
        record in the middle would hide every record after it) and start the next request in
        a new segment. The old one stays until its records are committed."""
        if self._fd < 0:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            log.exception("could not cut a failed write off the journal %s", self._active)
        os.close(self._fd)
        self._fd = -1
        self._active = None

    def committed(self, segments_of_records: list[Path]) -> None:
        """The records (given by their segments, one entry per record) are in the warehouse:
        delete segments with nothing left to store; empty the active one when it is done."""
        with self._lock:
            for segment in segments_of_records:
                self._open[segment] -= 1
            for segment, left in list(self._open.items()):
                if left:
                    continue
                if segment == self._active:
                    if self._size:
                        os.ftruncate(self._fd, 0)
                        self._size = 0
                else:
                    segment.unlink(missing_ok=True)
                    del self._open[segment]

    def set_aside(self, record: Record, error: str) -> Path:
        """Keep a record the warehouse refused in ``failed/`` (it is tried again at the next
        start) and count it as done here."""
        path = keep_aside(self.directory, record, error)
        self.committed([record.segment])
        return path

    def close(self) -> None:
        """Close the active segment; delete it when nothing in it is waiting."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._active is not None and not self._open.get(self._active):
                self._active.unlink(missing_ok=True)
            self._active = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _sync_directory(directory: Path) -> None:
    """Make a created file's name durable (its directory entry)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
