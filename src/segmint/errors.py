"""One exception hierarchy. Each error says what happened and what to do about it.

Interfaces (REST API, CLI, web pages) map these to status codes / exit codes in one place;
no stack trace reaches a user.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class SegmintError(Exception):
    """Base of every error a user may see. ``message`` says what went wrong and how to fix it;
    ``path`` points at the bad input when there is one (``batch[3].timestamp``)."""

    status_code = 400
    code = "invalid_request"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.path:
            body["field"] = self.path
        return body


class InvalidInput(SegmintError):
    """Input that does not have the shape or values required."""


class InvalidMessage(InvalidInput):
    """A tracking message that breaks the Segment spec (missing ids, wrong types ...)."""

    code = "invalid_message"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class Unauthorized(SegmintError):
    status_code = 401
    code = "unauthorized"


class NotFound(SegmintError):
    status_code = 404
    code = "not_found"


class NoWarehouse(NotFound):
    """A command that only reads found no warehouse file to read."""

    code = "no_warehouse"


class NoData(NotFound):
    """A command that does not make data found none where the settings point (a mistyped
    ``--data-dir`` would otherwise leave an empty workspace behind)."""

    code = "no_data"


class NotWritable(SegmintError):
    """The data directory, or a file in it, cannot be written: a read-only file system or
    missing permissions. Nothing is wrong with the data."""

    status_code = 503
    code = "not_writable"


class Conflict(SegmintError):
    status_code = 409
    code = "conflict"


class WarehouseBusy(SegmintError):
    """The warehouse file is opened for writing by another process (usually `segmint serve`)."""

    status_code = 503
    code = "warehouse_busy"


class StorageUnavailable(SegmintError):
    """Events could not be made durable (e.g. the disk is full); the client should retry."""

    status_code = 503
    code = "storage_unavailable"


class ConfigurationError(SegmintError):
    status_code = 500
    code = "configuration_error"


def require_file(path: Path) -> None:
    """Refuse a ``path`` that is not a readable file, saying whether it is missing or a
    directory."""
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory: name a file in it")
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")


def write_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written — ``"read-only file system"`` or ``"permission
    denied"`` — or ``None`` when it can. A missing path is judged by the nearest folder above
    it that exists (where it would be made)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    statvfs = getattr(os, "statvfs", None)  # not on Windows
    try:
        if statvfs is not None and statvfs(existing).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return None if os.access(existing, os.W_OK) else "permission denied"


def not_writable(path: Path | str, reason: str) -> NotWritable:
    """The error for a ``path`` Segmint must write and cannot, with what to do (and nothing
    that would touch the data: the data is fine, its place is not writable)."""
    return NotWritable(
        f"cannot write to {path}: {reason} — check its permissions or choose another "
        "--data-dir (SEGMINT_DATA_DIR)"
    )


# OS errors that mean "not allowed to write here", with the words the messages use.
WRITE_REFUSED = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
