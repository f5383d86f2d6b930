"""Bulk import of historical events from files in Segment-spec shape: JSON lines, CSV and
Parquet. Every row goes through the same validation, enrichment and identity resolution as
the HTTP API; rejected rows are written, with their reasons, to a JSON-lines file.

CSV and Parquet columns are message fields (``type``, ``event``, ``userId``, ``timestamp``
...); nested fields are either dotted columns (``properties.price``, ``context.page.url``) or
a column holding a JSON object (``properties``; in Parquet also a struct). Empty CSV cells
are treated as absent. Parquet decimals, dates, times and bytes become JSON numbers and text.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import gzip
import io
import os
import re
import sys
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

from segmint.collect import workers
from segmint.collect.enrich import Enricher
from segmint.collect.messages import Message
from segmint.collect.pipeline import Collector, IngestResult, Prepared, prepare, utcnow
from segmint.collect.validate import validate_message
from segmint.errors import InvalidInput, SegmintError, require_file
from segmint.memory import cyclic_gc_paused

FORMATS = ("jsonl", "csv", "parquet")
_JSON_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")


@dataclass(slots=True)
class Row:
    """One input row: its line (1-based; for CSV the header is line 1) and its value, or the
    reason it could not be read at all."""

    line: int
    value: Any
    error: str | None = None


@dataclass
class ImportSummary:
    """What an import did. ``reasons`` counts rejections by reason."""

    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    merges: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejected_file: Path | None = None


def detect_format(path: Path, declared: str | None = None) -> str:
    """The file's format from ``declared`` or its extension (``.jsonl``/``.ndjson``/
    ``.json``, ``.csv``, ``.parquet``/``.pq``)."""
    if declared:
        if declared not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {declared!r}")
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    for fmt, exts in (
        ("jsonl", (".jsonl", ".ndjson", ".json")),
        ("csv", (".csv",)),
        ("parquet", (".parquet", ".pq")),
    ):
        if ext in exts:
            return fmt
    raise InvalidInput(
        f"cannot tell the format of {path.name} from its extension; name it .jsonl, .csv or "
        ".parquet, or pass --format"
    )


class _FileReading:
    """A file opened for reading (a .gz file gunzipped), telling what share of the file on
    disk has been read so far: how far an import has got."""

    def __init__(self, path: Path) -> None:
        self._disk = path.open("rb")
        self._size = os.fstat(self._disk.fileno()).st_size
        self.stream: IO[bytes] = (
            gzip.GzipFile(fileobj=self._disk, mode="rb")  # type: ignore[assignment]
            if path.suffix.lower() == ".gz"
            else self._disk
        )

    def share_read(self) -> float | None:
        return min(1.0, self._disk.tell() / self._size) if self._size else None

    def close(self) -> None:
        self.stream.close()
        self._disk.close()

    def __enter__(self) -> _FileReading:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# A lone carriage return ends a line too (as in text mode with newline=""); binary reading
# only splits at "\n", so such lines are split again after each "\r" not followed by "\n".
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


def read_jsonl(path: Path) -> Iterator[Row]:
    """Rows of a JSON-lines file. Read as bytes (orjson parses UTF-8 bytes directly, which
    saves decoding every line to text first); lines are numbered as a text reader would. A
    line that is not UTF-8 is a rejected row (the others are imported)."""
    with _FileReading(path) as reading:
        first = reading.stream.readline()
        yield from _jsonl_rows(chain([first.removeprefix(_BOM)], reading.stream), 1)


_BOM = b"\xef\xbb\xbf"
"""The byte order mark some editors put at the start of a UTF-8 file."""


def _jsonl_rows(lines: Iterable[bytes], number: int) -> Iterator[Row]:
    """Rows of JSON lines, the first numbered ``number``."""
    loads = orjson.loads
    for raw_line in lines:
        pieces = _LONE_CR.split(raw_line) if b"\r" in raw_line else (raw_line,)
        for line in pieces:
            if not line:  # after a final lone "\r"
                continue
            try:
                row: Row | None = Row(number, loads(line))
            except orjson.JSONDecodeError:
                row = _unparsed_row(number, line)
            if row is not None:
                yield row
            number += 1


def _unparsed_row(number: int, line: bytes) -> Row | None:
    """The row of a line orjson could not parse: rejected with the reason (not UTF-8, or not
    JSON with the error's position in characters), or ``None`` for a blank line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        error = (
            f"not UTF-8 text (byte 0x{line[exc.start]:02x} at byte {exc.start + 1} of the "
            "line): save the file as UTF-8"
        )
        return Row(number, line.decode("utf-8", "replace").rstrip("\n")[:2000], error=error)
    if not text.strip():
        return None
    try:  # parse the text again: error positions count characters, not bytes
        return Row(number, orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        return Row(number, text.rstrip("\n")[:2000], error=f"not valid JSON: {exc}")


def _numbered_lines(line: bytes) -> int:
    """How many numbered lines ``line`` (one line of a binary read) counts as: more than one
    when it holds lone carriage returns."""
    if b"\r" not in line:
        return 1
    return sum(1 for piece in _LONE_CR.split(line) if piece)


def _jsonl_blocks(stream: IO[bytes], size: int) -> Iterator[_Payload]:
    """JSON lines read from ``stream`` as blocks of ``size`` lines, each with the number of
    its first line: what a preparation process parses."""
    number = 1
    while lines := list(islice(stream, size)):
        if number == 1 and lines[0].startswith(_BOM):  # saved "UTF-8 with BOM" (Windows)
            lines[0] = lines[0][len(_BOM) :]
        block = b"".join(lines)
        yield ("jsonl", number, block)
        number += sum(map(_numbered_lines, lines)) if b"\r" in block else len(lines)


def _nest(flat: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for column, cell in flat.items():
        if cell is None or cell == "" or column is None:
            continue
        if column in _JSON_OBJECT_FIELDS and cell.lstrip().startswith("{"):
            doc[column] = {**orjson.loads(cell), **doc.get(column, {})}
            continue
        _put_dotted(doc, column, cell)
    return doc


def _require_type_column(columns: list[str], what: str) -> None:
    """Refuse, before any row is read, a file whose columns cannot make a message: every
    message names its ``type``, so without that column every row would be rejected."""
    if "type" not in columns:
        shown = ", ".join(repr(c) for c in columns[:8]) + (", ..." if len(columns) > 8 else "")
        raise InvalidInput(
            f"the {what} has no 'type' column (its columns: {shown}); its columns are message "
            "fields, e.g. type, event, userId, anonymousId, timestamp, properties (a JSON "
            "object) or properties.revenue"
        )


def _csv_rows(handle: IO[str]) -> Iterator[Row]:
    reader = csv.DictReader(handle)
    if not reader.fieldnames:
        return
    _require_type_column(list(reader.fieldnames), "CSV file's header")
    for record in reader:
        extra = record.pop(None, None)
        if extra:
            yield Row(
                reader.line_num,
                record,
                error=f"the row has {len(extra)} more cells than the header has columns "
                f"({', '.join(repr(cell) for cell in extra[:3])}); quote cells that hold commas",
            )
            continue
        try:
            yield Row(reader.line_num, _nest(record))
        except (ValueError, orjson.JSONDecodeError) as exc:
            yield Row(reader.line_num, record, error=f"cannot read the row: {exc}")


def _open_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise InvalidInput(f"{path.name} is not a readable Parquet file: {exc}") from None
    _require_type_column(parquet.schema_arrow.names, "Parquet file")
    return parquet


def _parquet_blocks(parquet: Any, size: int) -> Iterator[_Payload]:
    number = 1
    for batch in parquet.iter_batches(batch_size=size):
        yield ("parquet", number, batch)
        number += batch.num_rows


def _needs_json_values(kind: pa.DataType) -> bool:
    """Whether Parquet values of ``kind`` (at any depth) become Python values JSON has no
    type for: decimals, dates and times, binary."""
    if pa.types.is_decimal(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return True
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_duration(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_needs_json_values(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _needs_json_values(kind.value_type)
    if pa.types.is_map(kind):
        return _needs_json_values(kind.key_type) or _needs_json_values(kind.item_type)
    return False


def _json_value(value: Any) -> Any:
    """``value`` with what JSON cannot hold made JSON: a decimal becomes a number, a date,
    time or timestamp its ISO-8601 text, a duration its seconds, bytes their UTF-8 text
    (base64 when they are not text)."""
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    return value


def _parquet_rows(batch: Any, number: int) -> Iterator[Row]:
    convert = any(_needs_json_values(field.type) for field in batch.schema)
    dotted = [name for name in batch.schema.names if "." in name]
    for record in batch.to_pylist():
        if convert:
            record = _json_value(record)
        doc = {k: v for k, v in record.items() if v is not None}
        for key in _JSON_OBJECT_FIELDS:
            if isinstance(doc.get(key), str):
                # When it is not JSON, validation reports that it is not an object.
                with contextlib.suppress(orjson.JSONDecodeError):
                    doc[key] = orjson.loads(doc[key])
        for key in ("timestamp", "sentAt", "originalTimestamp"):
            if hasattr(doc.get(key), "isoformat"):
                doc[key] = doc[key].isoformat()
        try:
            for column in dotted:  # as in CSV files: properties.price → properties["price"]
                if column in doc:
                    _put_dotted(doc, column, doc.pop(column))
        except ValueError as exc:
            yield Row(number, record, error=f"cannot read the row: {exc}")
        else:
            yield Row(number, doc)
        number += 1


def _put_dotted(doc: dict[str, Any], column: str, value: Any) -> None:
    """Set ``doc``'s nested field named by dotted ``column`` (a column holding the whole
    object, e.g. ``properties``, may hold other fields of it)."""
    parts = column.split(".")
    target = doc
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ValueError(f"column {column!r} conflicts with column {part!r}")
    target[parts[-1]] = value


def _row_blocks(rows: Iterable[Row], size: int) -> Iterator[_Payload]:
    iterator = iter(rows)
    while block := list(islice(iterator, size)):
        yield ("rows", 0, block)


# A block of input to prepare: ("jsonl", first line, bytes), ("parquet", first row, record
# batch) or ("rows", 0, rows already read).
_Payload = tuple[str, int, Any]

Progress = Callable[[int, float | None], None]
"""Called after each stored chunk with the rows read so far and the share of the input that
is (0 to 1; None when unknown)."""


@dataclass(frozen=True, slots=True)
class _Options:
    received_at: datetime
    source: str
    max_message_bytes: int | None
    chunk_size: int


_POOL_MIN_CHUNK = 5_000


@dataclass(slots=True)
class _Chunk:
    """A block of input, prepared: how many rows it had, its rejected rows (line, field,
    reason, row) and its messages ready to store."""

    rows: int
    rejected: list[tuple[int, str | None, str, Any]]
    prepared: Prepared


def _payload_rows(payload: _Payload) -> Iterable[Row]:
    kind, first, data = payload
    if kind == "jsonl":
        return _jsonl_rows(io.BytesIO(data), first)
    if kind == "parquet":
        return _parquet_rows(data, first)
    rows: list[Row] = data
    return rows


def prepare_block(payload: _Payload, options: _Options, enricher: Enricher | None = None) -> _Chunk:
    """Read, validate and prepare one block of input (in a preparation process unless
    ``enricher`` is given)."""
    with cyclic_gc_paused():
        rows = 0
        rejected: list[tuple[int, str | None, str, Any]] = []
        messages: list[Message] = []
        for row in _payload_rows(payload):
            rows += 1
            if row.error is not None:
                rejected.append((row.line, None, row.error, row.value))
                continue
            try:
                messages.append(
                    validate_message(
                        row.value,
                        received_at=options.received_at,
                        # No limit still checks the message can be written as JSON.
                        max_bytes=options.max_message_bytes or sys.maxsize,
                        source=options.source,
                        correct_clock_skew=False,
                    )
                )
            except SegmintError as exc:
                rejected.append((row.line, exc.path, exc.message, row.value))
        return _Chunk(rows, rejected, prepare(messages, enricher or workers.enricher()))


def import_file(
    collector: Collector,
    path: Path,
    *,
    fmt: str | None = None,
    rejected_path: Path | None = None,
    chunk_size: int = 50_000,
    max_message_bytes: int | None = 32 * 1024,
    progress: Progress | None = None,
    processes: int | None = None,
) -> ImportSummary:
    """Import ``path`` through the collection pipeline; after each chunk is stored, call
    ``progress(rows_done, share_done)``, where ``share_done`` (0 to 1) is how much of the file
    that is (of its bytes on disk; of its rows for Parquet). Rejected rows go to
    ``rejected_path`` (default ``<file>.rejected.jsonl``), which is only created when
    something was rejected.

    A file of more than one chunk is read, validated and enriched in ``processes``
    preparation processes (see :mod:`segmint.collect.workers`) while this process stores
    the chunks before; by default one per core when chunks have at least 5,000 rows, none
    for smaller ones, and never more than one per core. 0 prepares everything here."""
    require_file(path)
    kind = detect_format(path, fmt)
    rejected_path = rejected_path or path.with_name(path.name + ".rejected.jsonl")
    _check_writable(rejected_path)
    options = _Options(utcnow(), f"import:{path.name}", max_message_bytes, chunk_size)
    with contextlib.ExitStack() as open_files:
        blocks, share_read = _file_blocks(path, kind, chunk_size, open_files)
        return _import(
            collector,
            _read_clearly(path, blocks),
            options,
            rejected_path,
            progress,
            processes,
            share_read,
        )


def _file_blocks(
    path: Path, kind: str, size: int, open_files: contextlib.ExitStack
) -> tuple[Iterator[_Payload], Callable[[_Payload], float | None]]:
    """The blocks of ``path`` and how to tell what share of the file is read up to the end of
    one (its bytes on disk; its rows for Parquet). Files opened are closed by ``open_files``."""
    if kind == "parquet":
        parquet = _open_parquet(path)
        total = parquet.metadata.num_rows

        def rows_read(payload: _Payload) -> float | None:
            _, first, batch = payload
            return (first - 1 + batch.num_rows) / total if total else None

        return _parquet_blocks(parquet, size), rows_read
    reading = open_files.enter_context(_FileReading(path))
    if kind == "jsonl":
        blocks = _jsonl_blocks(reading.stream, size)
    else:
        # Held until the import ends: dropped when the rows run out, it would close the file
        # before the share read up to the last block is told.
        text = open_files.enter_context(
            io.TextIOWrapper(reading.stream, encoding="utf-8-sig", newline="")
        )
        blocks = _row_blocks(_csv_rows(text), size)
    return blocks, lambda _: reading.share_read()


def _check_writable(rejected_path: Path) -> None:
    """Refuse to start an import whose rejected rows could not be written (the file is only
    created at the first rejected row, which may come after chunks were stored)."""
    folder = rejected_path.parent
    if not folder.is_dir():
        raise InvalidInput(
            f"cannot write rejected rows to {rejected_path}: there is no directory {folder}",
            path="--rejected",
        )
    if rejected_path.is_dir() or not os.access(folder, os.W_OK):
        raise InvalidInput(
            f"cannot write rejected rows to {rejected_path}; choose a file with --rejected",
            path="--rejected",
        )


def _read_clearly(path: Path, blocks: Iterator[_Payload]) -> Iterator[_Payload]:
    """``blocks``, with what goes wrong reading ``path`` itself — a .gz file that is not gzip
    or is cut short, a CSV file that is not UTF-8 text, a damaged Parquet file (only the
    reading: what storing raises passes through) — raised as :class:`InvalidInput`."""
    read = 0
    try:
        for block in blocks:
            read += 1
            yield block
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        problem = f"{path.name} is not a whole gzip file ({exc})"
    except UnicodeDecodeError as exc:
        problem = (
            f"{path.name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} cannot be "
            "read): save it as UTF-8"
        )
    except (pa.ArrowException, OSError) as exc:  # e.g. a Parquet file damaged inside
        problem = f"{path.name} could not be read to its end ({exc})"
    else:
        return
    if read:
        problem += (
            "; rows read before the problem may have been imported, and importing the file "
            "again skips those that have a messageId"
        )
    raise InvalidInput(problem)


def import_rows(
    collector: Collector,
    rows: Iterable[Row],
    *,
    source: str,
    rejected_path: Path,
    chunk_size: int = 50_000,
    max_message_bytes: int | None = 32 * 1024,
    progress: Progress | None = None,
    processes: int | None = None,
) -> ImportSummary:
    """Validate and ingest ``rows`` in chunks of ``chunk_size`` (each chunk all or nothing);
    rejected rows are appended, with their reasons, to ``rejected_path``. Preparation
    processes as in :func:`import_file`; ``progress(rows_done, None)`` after each chunk (how
    many rows are to come is not known)."""
    return _import(
        collector,
        _row_blocks(rows, chunk_size),
        _Options(utcnow(), source, max_message_bytes, chunk_size),
        rejected_path,
        progress,
        processes,
    )


def _import(
    collector: Collector,
    blocks: Iterator[_Payload],
    options: _Options,
    rejected_path: Path,
    progress: Progress | None,
    processes: int | None,
    share_read: Callable[[_Payload], float | None] = lambda _: None,
) -> ImportSummary:
    summary = ImportSummary()
    rejected_out: IO[bytes] | None = None
    # Chunks are stored one at a time, in file order, by a writer thread (DuckDB releases the
    # interpreter lock while it writes), so the outcome is that of storing them in turn;
    # meanwhile the next chunks are prepared, in preparation processes when there are more.
    # The chunk being stored, the rows read up to its end and the share of the input that is.
    storing: tuple[Future[IngestResult], int, float | None] | None = None
    # Each block with the share of the input read up to its end, taken just after reading it
    # (blocks are read ahead of storing when there are preparation processes).
    measured = ((payload, share_read(payload)) for payload in blocks)

    def wait_for_stored() -> None:
        nonlocal storing
        if storing is not None:
            (future, rows, share), storing = storing, None
            result = future.result()
            summary.imported += result.stored
            summary.duplicates += result.duplicates
            summary.merges += result.merges
            if progress:
                progress(rows, share)

    def store(chunk: _Chunk, share: float | None) -> None:
        nonlocal rejected_out, storing
        summary.rows += chunk.rows
        for line, field_, reason, value in chunk.rejected:
            if rejected_out is None:
                rejected_out = rejected_path.open("wb")
                summary.rejected_file = rejected_path
            summary.rejected += 1
            summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
            record = {"line": line, "field": field_, "reason": reason, "row": value}
            try:
                text = orjson.dumps(record, default=str)
            except orjson.JSONEncodeError:  # too deep to write back: the file has it
                text = orjson.dumps({**record, "row": None})
            rejected_out.write(text + b"\n")
        wait_for_stored()
        future = writer.submit(collector.store, chunk.prepared, check_table=True)
        storing = (future, summary.rows, share)

    def here(payload: _Payload) -> Callable[[], _Chunk]:
        return lambda: prepare_block(payload, options, collector.enricher)

    first = next(measured, None)
    second = next(measured, None) if first is not None else None
    if processes is None:  # worth it for large chunks only: a process takes ~1 s to start
        processes = workers.worker_count() if options.chunk_size >= _POOL_MIN_CHUNK else 0
    # Preparation is CPU-bound: processes beyond the cores add no speed, only blocks held in
    # memory (each process keeps one in hand and one waiting).
    processes = min(processes, workers.worker_count())
    pool = (
        workers.PreparationPool(collector.enricher, processes=processes)
        if second is not None and processes > 0
        else None
    )
    ahead: deque[tuple[_Payload, float | None, Future[str]]] = deque()
    with (
        cyclic_gc_paused(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="segmint-import") as writer,
    ):
        try:
            for item in chain((first, second), measured):
                if item is None:
                    break
                payload, share = item
                if pool is None:
                    store(here(payload)(), share)
                    continue
                ahead.append((payload, share, pool.submit(prepare_block, payload, options)))
                if len(ahead) > pool.processes:  # keep every process busy, one block ahead
                    done, done_share, future = ahead.popleft()
                    store(pool.result(future, here(done)), done_share)
            while ahead:
                done, done_share, future = ahead.popleft()
                store(pool.result(future, here(done)), done_share)  # type: ignore[union-attr]
            wait_for_stored()
        finally:
            if pool is not None:
                pool.close()
            if rejected_out is not None:
                rejected_out.close()
    if progress and not summary.rows:
        progress(0, None)
    return summary
