"""Bulk import of historical events from files in Segment-spec shape: JSON lines, CSV and
Parquet. Every row goes through the same validation, enrichment and identity resolution as
the HTTP API; rejected rows are written, with their reasons, to a JSON-lines file.

CSV columns are message fields (``type``, ``event``, ``userId``, ``timestamp`` ...); nested
fields are either dotted columns (``properties.price``, ``context.page.url``) or a column
holding a JSON object (``properties``). Empty CSV cells are treated as absent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from segmint.collect.messages import Message
from segmint.collect.pipeline import Collector, IngestResult, utcnow
from segmint.collect.validate import validate_message
from segmint.errors import InvalidInput, SegmintError
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


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        import gzip

        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


# A lone carriage return ends a line too (as in text mode with newline=""); binary reading
# only splits at "\n", so such lines are split again after each "\r" not followed by "\n".
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


def read_jsonl(path: Path) -> Iterator[Row]:
    """Rows of a JSON-lines file. Read as bytes (orjson parses UTF-8 bytes directly, which
    saves decoding every line to text first); lines are numbered as a text reader would."""
    loads = orjson.loads
    number = 0
    with _open_binary(path) as handle:
        for raw_line in handle:
            lines = _LONE_CR.split(raw_line) if b"\r" in raw_line else (raw_line,)
            for line in lines:
                if not line:  # after a final lone "\r"
                    continue
                number += 1
                try:
                    yield Row(number, loads(line))
                except orjson.JSONDecodeError:
                    text = line.decode("utf-8")  # not UTF-8: fails as a text reader would
                    if not text.strip():
                        continue
                    try:  # parse the text again: error positions count characters, not bytes
                        yield Row(number, loads(text))
                    except orjson.JSONDecodeError as exc:
                        error = f"not valid JSON: {exc}"
                        yield Row(number, text.rstrip("\n")[:2000], error=error)


def _nest(flat: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for column, cell in flat.items():
        if cell is None or cell == "" or column is None:
            continue
        if column in _JSON_OBJECT_FIELDS and cell.lstrip().startswith("{"):
            doc[column] = {**orjson.loads(cell), **doc.get(column, {})}
            continue
        parts = column.split(".")
        target = doc
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"column {column!r} conflicts with column {part!r}")
        target[parts[-1]] = cell
    return doc


def read_csv(path: Path) -> Iterator[Row]:
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            return
        for record in reader:
            try:
                yield Row(reader.line_num, _nest(record))
            except (ValueError, orjson.JSONDecodeError) as exc:
                yield Row(reader.line_num, record, error=f"cannot read the row: {exc}")


def read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise InvalidInput(f"{path.name} is not a readable Parquet file: {exc}") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=50_000):
        for record in batch.to_pylist():
            number += 1
            doc = {k: v for k, v in record.items() if v is not None}
            for key in _JSON_OBJECT_FIELDS:
                if isinstance(doc.get(key), str):
                    # When it is not JSON, validation reports that it is not an object.
                    with contextlib.suppress(orjson.JSONDecodeError):
                        doc[key] = orjson.loads(doc[key])
            for key in ("timestamp", "sentAt", "originalTimestamp"):
                if hasattr(doc.get(key), "isoformat"):
                    doc[key] = doc[key].isoformat()
            yield Row(number, doc)


READERS: dict[str, Callable[[Path], Iterator[Row]]] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "parquet": read_parquet,
}


def import_file(
    collector: Collector,
    path: Path,
    *,
    fmt: str | None = None,
    rejected_path: Path | None = None,
    chunk_size: int = 50_000,
    max_message_bytes: int | None = 32 * 1024,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import ``path`` through the collection pipeline; call ``progress(rows_done)`` after
    each chunk. Rejected rows go to ``rejected_path`` (default ``<file>.rejected.jsonl``),
    which is only created when something was rejected."""
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    reader = READERS[detect_format(path, fmt)]
    return import_rows(
        collector,
        reader(path),
        source=f"import:{path.name}",
        rejected_path=rejected_path or path.with_name(path.name + ".rejected.jsonl"),
        chunk_size=chunk_size,
        max_message_bytes=max_message_bytes,
        progress=progress,
    )


def import_rows(
    collector: Collector,
    rows: Iterable[Row],
    *,
    source: str,
    rejected_path: Path,
    chunk_size: int = 50_000,
    max_message_bytes: int | None = 32 * 1024,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Validate and ingest ``rows`` in chunks of ``chunk_size`` (each chunk all or nothing);
    rejected rows are appended, with their reasons, to ``rejected_path``."""
    summary = ImportSummary()
    rejected_out: IO[bytes] | None = None

    def reject(row: Row, field: str | None, reason: str) -> None:
        nonlocal rejected_out
        if rejected_out is None:
            rejected_out = rejected_path.open("wb")
            summary.rejected_file = rejected_path
        summary.rejected += 1
        summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
        record = {"line": row.line, "field": field, "reason": reason, "row": row.value}
        rejected_out.write(orjson.dumps(record, default=str) + b"\n")

    chunk: list[Message] = []
    # One chunk is stored (by a writer thread) while the next is read, validated and enriched
    # here: DuckDB releases the GIL while it writes, so the two overlap. Chunks are stored
    # one at a time, in file order, so the outcome is the same as storing them in turn.
    storing: Future[IngestResult] | None = None

    def wait_for_stored() -> None:
        nonlocal storing
        if storing is not None:
            result, storing = storing.result(), None
            summary.imported += result.stored
            summary.duplicates += result.duplicates
            summary.merges += result.merges

    def flush(writer: ThreadPoolExecutor) -> None:
        nonlocal storing
        if chunk:
            batch = chunk.copy()
            chunk.clear()
            collector.prepare(batch)
            wait_for_stored()
            storing = writer.submit(collector.ingest, batch, check_table=True)
        if progress:
            progress(summary.rows)

    with (
        cyclic_gc_paused(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="segmint-import") as writer,
    ):
        try:
            received_at = utcnow()
            for row in rows:
                summary.rows += 1
                if row.error is not None:
                    reject(row, None, row.error)
                else:
                    try:
                        chunk.append(
                            validate_message(
                                row.value,
                                received_at=received_at,
                                max_bytes=max_message_bytes,
                                source=source,
                                correct_clock_skew=False,
                            )
                        )
                    except SegmintError as exc:
                        reject(row, exc.path, exc.message)
                if len(chunk) >= chunk_size:
                    flush(writer)
            flush(writer)
            wait_for_stored()
        finally:
            if rejected_out is not None:
                rejected_out.close()
    return summary
