"""File export: audience changes written as CSV or Parquet files into a directory the user
chose (R18's "file export"), for List Sync and Event Sync.

Layout: ``<directory>/<audience folder>/<UTC stamp>-<sequence>-<kind>.<csv|parquet>``, e.g.
``Cart abandoners/20261129T050000123456Z-000001-add.csv``. Names sort in the order the files
were written (a clock that steps back never breaks that: the stamp never goes below the newest
file's), so replaying the files in name order rebuilds the current member set —
:func:`read_membership` does exactly that.

Each file is written to a hidden temporary name in the same folder, flushed to disk, then
renamed into place, so a reader never sees half a file: a crash leaves at most a
``.*.tmp`` file, which readers ignore. Identifiers are in clear text: this is the user's own
export, written where they said.

List files hold ``action`` (``add`` / ``remove``), ``key`` (the profile key) and every
identifier; event files hold ``action``, ``key`` and the event's fields (``traits`` and
``click_ids`` as JSON text, cookies as ``cookie_fbp`` / ``cookie_fbc`` / ``cookie_ga``).
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from segmint.destinations.base import Destination, DestinationLimits, MembersChange
from segmint.destinations.registry import register
from segmint.errors import InvalidInput
from segmint.sync.batching import chunk
from segmint.sync.errors import BadRequest, DestinationError, Transient
from segmint.sync.normalize import IdentifierKind, ListMember

log = logging.getLogger(__name__)

CREDENTIAL_FIELDS: tuple[str, ...] = ()
"""Nothing secret: the directory is reached with Segmint's own file-system rights."""
CONFIG_FIELDS: tuple[str, ...] = ("directory", "format")
"""Where files go, and ``csv`` (default) or ``parquet``."""
FIELD_HINTS = {
    "directory": "a directory path Segmint can write to, e.g. /var/lib/segmint/exports",
    "format": "csv or parquet",
    "max_rows_per_file": "a whole number of at least 1, e.g. 100000",
}
"""What to put in each setting, for the messages about a missing or wrong one."""

FORMATS = ("csv", "parquet")
MAX_ROWS_PER_FILE = 100_000
MEMBER_COLUMNS = (
    "action",
    "key",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "crm_id",
    "device_id",
    "user_id",
    "anonymous_id",
)
EVENT_COLUMNS = (
    "action",
    "key",
    "event",
    "message_id",
    "timestamp",
    "audience_id",
    "audience_name",
    "refresh_id",
    "profile_id",
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "traits",
    "cookie_fbp",
    "cookie_fbc",
    "cookie_ga",
    "click_ids",
)
EVENT_ACTIONS = {"added_to_segment": "add", "removed_from_segment": "remove"}
FILE_NAME = re.compile(
    r"^(?P<stamp>\d{8}T\d{12}Z)-(?P<seq>\d{6,})-(?:add|remove|events)\.(?P<format>csv|parquet)$"
)
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
# Out of space or I/O errors may clear up; a missing or read-only directory will not.
_TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EAGAIN, errno.EDQUOT})

Row = tuple[str | None, ...]


def audience_folder(name: str) -> str:
    """The folder an audience's files go in: its name with path separators and characters
    Windows forbids replaced by ``_``, at most 200 characters, no leading or trailing dots or
    spaces. Applying it twice changes nothing, so a folder name is its own audience id."""
    folder = _UNSAFE.sub("_", name)[:200].strip(" .")
    return folder or "_"


def _member_row(action: str, member: ListMember) -> Row:
    return (
        action,
        member.key,
        member.email,
        member.phone,
        member.first_name,
        member.last_name,
        member.country,
        member.crm_id,
        member.device_id,
        member.user_id,
        member.anonymous_id,
    )


def _event_row(event: Mapping[str, Any]) -> Row:
    audience = event.get("audience") or {}
    cookies = event.get("cookies") or {}

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return (
        EVENT_ACTIONS[event["event"]],
        text(event.get("profile_id")),
        event["event"],
        text(event.get("message_id")),
        text(event.get("timestamp")),
        text(audience.get("id")),
        text(audience.get("name")),
        text(event.get("refresh_id")),
        text(event.get("profile_id")),
        text(event.get("user_id")),
        text(event.get("anonymous_id")),
        text(event.get("email")),
        text(event.get("phone")),
        json.dumps(event.get("traits") or {}, sort_keys=True, default=str),
        text(cookies.get("fbp")),
        text(cookies.get("fbc")),
        text(cookies.get("ga")),
        json.dumps(event.get("click_ids") or {}, sort_keys=True, default=str),
    )


@register("file")
class FileExport(Destination):
    """List Sync and Event Sync into CSV or Parquet files under one directory."""

    name = "file"
    identifier_schema: tuple[IdentifierKind, ...] = (
        "email",
        "phone",
        "first_name",
        "last_name",
        "country",
    )
    supports_event_sync = True

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str],
        format: str = "csv",
        destination_name: str = "File export",
        max_rows_per_file: int = MAX_ROWS_PER_FILE,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``directory`` is where audience folders are made; ``format`` is ``csv`` or
        ``parquet``; ``clock`` (UTC) names the files, for tests."""
        if format not in FORMATS:
            raise InvalidInput(
                f"file export format {format!r} is not supported: use csv or parquet",
                path="config.format",
            )
        if max_rows_per_file < 1:
            raise InvalidInput(
                f"max_rows_per_file must be at least 1, not {max_rows_per_file}",
                path="config.max_rows_per_file",
            )
        self.directory = Path(directory)
        self.format = format
        self.destination_name = destination_name
        self.limits = DestinationLimits(max_records_per_request=max_rows_per_file)
        self._clock = clock or (lambda: datetime.now(UTC))

    def close(self) -> None:
        """Nothing is held open between calls."""

    def check_credentials(self) -> None:
        """Create the directory if needed and write (then remove) a probe file; a clear
        BadRequest says what to fix when that fails."""
        try:
            self._probe()
        except OSError as error:
            raise self._os_error(error, self.directory) from error

    def check_locally(self) -> None:
        """What saving the destination checks (docs/destinations/file.md): the probe of
        :meth:`check_credentials`, failing with :class:`InvalidInput` on ``config.directory``
        since nothing is saved yet to fix in Configuration Settings."""
        try:
            self._probe()
        except OSError as error:
            reason = error.strerror or str(error)
            raise InvalidInput(
                f"Segmint cannot write to the export directory {self.directory}: {reason}. "
                "Choose a directory that exists or can be created and that the user running "
                "Segmint can write to.",
                path="config.directory",
            ) from None

    def _probe(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        probe = self.directory / f".segmint-probe-{uuid.uuid4().hex}.tmp"
        probe.write_bytes(b"ok")
        probe.unlink()

    def ensure_audience(self, name: str) -> str:
        """Create the audience's folder; its name (see :func:`audience_folder`) is the id."""
        folder = audience_folder(name)
        try:
            (self.directory / folder).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise self._os_error(error, self.directory / folder) from error
        return folder

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Append ``add`` file(s), at most ``max_rows_per_file`` rows each."""
        return self._write_members("add", remote_id, members)

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Append ``remove`` file(s), at most ``max_rows_per_file`` rows each."""
        return self._write_members("remove", remote_id, members)

    def delete_audience(self, remote_id: str) -> None:
        """Remove the audience's folder and every file in it (R22 Delete)."""
        folder = self.directory / audience_folder(remote_id)
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            return
        except OSError as error:
            raise self._os_error(error, folder) from error

    def send_events(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Append one ``events`` file per audience (per ``max_rows_per_file`` rows); returns
        how many events were written."""
        return self.deliver_events(events).sent

    def deliver_events(self, events: Sequence[Mapping[str, Any]]) -> MembersChange:
        """:meth:`send_events` with the number of files written."""
        for index, event in enumerate(events):
            if event.get("event") not in EVENT_ACTIONS:
                raise BadRequest(
                    f"events[{index}]: unknown event {event.get('event')!r}; expected "
                    "added_to_segment or removed_from_segment"
                )
        by_folder: dict[str, list[Mapping[str, Any]]] = {}
        for event in events:
            name = str((event.get("audience") or {}).get("name") or "_")
            by_folder.setdefault(audience_folder(name), []).append(event)
        change = MembersChange()
        for folder, group in by_folder.items():
            self.ensure_audience(folder)
            for batch in chunk(group, self.limits.max_records_per_request):
                rows = (_event_row(event) for event in batch)
                self._write_file(folder, "events", EVENT_COLUMNS, rows)
                change.sent += len(batch)
                change.requests += 1
        return change

    def _write_members(
        self, action: str, remote_id: str, members: Sequence[ListMember]
    ) -> MembersChange:
        change = MembersChange()
        folder = audience_folder(remote_id)
        for batch in chunk(members, self.limits.max_records_per_request):
            rows = (_member_row(action, member) for member in batch)
            path = self._write_file(folder, action, MEMBER_COLUMNS, rows)
            change.sent += len(batch)
            change.requests += 1
            log.info(
                "file export %s: %d members to %s",
                action,
                len(batch),
                path,
                extra={"destination": self.destination_name, "audience_id": remote_id},
            )
        return change

    def _write_file(
        self, folder_name: str, kind: str, columns: Sequence[str], rows: Iterable[Row]
    ) -> Path:
        """Write ``rows`` to a temporary file, flush it to disk, rename it into place; on any
        failure the temporary file is removed and nothing is left behind."""
        folder = self.directory / folder_name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / self._next_name(folder, kind)
        except OSError as error:
            raise self._os_error(error, folder) from error
        temporary = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
        try:
            if self.format == "csv":
                _write_csv(temporary, columns, rows)
            else:
                _write_parquet(temporary, columns, rows)
            os.replace(temporary, final)
            _fsync_directory(folder)
        except BaseException as error:
            temporary.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise self._os_error(error, final) from error
            raise
        return final

    def _next_name(self, folder: Path, kind: str) -> str:
        """A name sorting after every file already in ``folder``."""
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        sequence = 1
        existing = [m for m in map(FILE_NAME.match, os.listdir(folder)) if m is not None]
        if existing:
            last = max(existing, key=lambda m: (m["stamp"], int(m["seq"])))
            if stamp <= last["stamp"]:
                stamp, sequence = last["stamp"], int(last["seq"]) + 1
        return f"{stamp}-{sequence:06d}-{kind}.{self.format}"

    def _os_error(self, error: OSError, path: Path) -> DestinationError:
        reason = error.strerror or str(error)
        if error.errno in _TRANSIENT_ERRNOS:
            return Transient(f"file export could not write {path}: {reason}")
        return BadRequest(
            f"Segmint cannot write to the export directory {path}: {reason}. Check that the "
            "path exists, is a directory and is writable by the user running Segmint, then "
            f"update Destinations → {self.destination_name} → Configuration Settings.",
            platform_code=error.errno,
        )


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Row]) -> None:
    with open(path, "x", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if value is None else value for value in row])
        handle.flush()
        os.fsync(handle.fileno())


def _write_parquet(path: Path, columns: Sequence[str], rows: Iterable[Row]) -> None:
    values: list[list[str | None]] = [[] for _ in columns]
    for row in rows:
        for column, value in zip(values, row, strict=True):
            column.append(value)
    schema = pa.schema([(name, pa.string()) for name in columns])
    table = pa.table(values, schema=schema)
    pq.write_table(table, path)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def export_files(directory: str | os.PathLike[str], audience: str) -> list[Path]:
    """The audience's complete export files in the order they were written (temporary files
    of an interrupted write are left out)."""
    folder = Path(directory) / audience_folder(audience)
    if not folder.is_dir():
        return []
    return sorted(
        (folder / name for name in os.listdir(folder) if FILE_NAME.match(name)),
        key=lambda path: _order(path.name),
    )


def _order(name: str) -> tuple[str, int]:
    match = FILE_NAME.match(name)
    assert match is not None
    return match["stamp"], int(match["seq"])


def read_rows(path: Path) -> Iterator[dict[str, str | None]]:
    """The rows of one export file (CSV or Parquet), empty values as ``None``."""
    if path.suffix == ".parquet":
        for row in pq.read_table(path).to_pylist():
            yield {key: value or None for key, value in row.items()}
        return
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            yield {key: value or None for key, value in record.items()}


def read_membership(
    directory: str | os.PathLike[str], audience: str
) -> dict[str, dict[str, str | None]]:
    """Replay an audience's export files in order: the current members, by profile key, each
    with the fields of the row that last added it."""
    members: dict[str, dict[str, str | None]] = {}
    for path in export_files(directory, audience):
        for row in read_rows(path):
            key = row.get("key")
            if key is None:
                continue
            if row.get("action") == "add":
                members[key] = {name: value for name, value in row.items() if name != "action"}
            else:
                members.pop(key, None)
    return members
