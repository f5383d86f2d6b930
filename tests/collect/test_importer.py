"""Bulk import of JSON lines, CSV and Parquet through the collection pipeline."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmint.collect import workers
from segmint.collect.importer import detect_format, import_file
from segmint.errors import InvalidInput
from segmint.runtime import Runtime

GOOD = [
    {
        "type": "identify",
        "userId": "u1",
        "anonymousId": "a1",
        "messageId": "g-1",
        "timestamp": "2025-05-01T10:00:00Z",
        "traits": {"email": "u1@example.com"},
    },
    {
        "type": "track",
        "event": "order_completed",
        "userId": "u1",
        "messageId": "g-2",
        "timestamp": "2025-05-02T10:00:00Z",
        "properties": {"revenue": 30},
    },
    {
        "type": "page",
        "anonymousId": "a2",
        "messageId": "g-3",
        "timestamp": "2025-05-03T10:00:00Z",
        "context": {"page": {"url": "https://s.example/?utm_source=newsletter"}},
    },
]
BAD = [
    {"type": "track", "userId": "u1", "messageId": "b-1"},  # no event
    {"type": "track", "event": "x", "messageId": "b-2"},  # no ids
    {"type": "track", "event": "x", "userId": "u", "timestamp": "not a date", "messageId": "b-3"},
]


def write_jsonl(path: Path, rows: list[object], extra_lines: list[str] = ()) -> Path:  # type: ignore[assignment]
    with path.open("wb") as handle:
        for row in rows:
            handle.write(orjson.dumps(row) + b"\n")
        for line in extra_lines:
            handle.write(line.encode() + b"\n")
    return path


def test_jsonl_import_stores_good_rows_and_reports_bad_ones(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", GOOD + BAD, ["{broken json"])
    summary = import_file(runtime.collector, path)
    assert (summary.rows, summary.imported, summary.rejected) == (7, 3, 4)
    assert summary.rejected_file == tmp_path / "events.jsonl.rejected.jsonl"
    rejected = [orjson.loads(line) for line in summary.rejected_file.read_text().splitlines()]
    assert [r["line"] for r in rejected] == [4, 5, 6, 7]
    assert [r["field"] for r in rejected] == ["event", "userId", "timestamp", None]
    assert "not valid JSON" in rejected[3]["reason"]
    assert rejected[0]["row"]["messageId"] == "b-1"
    rows = runtime.warehouse.rows("SELECT message_id, utm_source FROM events ORDER BY 1")
    assert rows == [("g-1", None), ("g-2", None), ("g-3", "newsletter")]
    (profiles,) = runtime.warehouse.rows("SELECT count(*) FROM profiles")[0]
    assert profiles == 2


def test_reimport_skips_duplicates(runtime: Runtime, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", GOOD)
    import_file(runtime.collector, path)
    again = import_file(runtime.collector, path)
    assert (again.imported, again.duplicates) == (0, 3)
    (count,) = runtime.warehouse.rows("SELECT count(*) FROM events")[0]
    assert count == 3


def test_duplicates_in_the_table_are_found_beyond_the_recent_window(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", GOOD)
    import_file(runtime.collector, path)
    runtime.collector.recent = type(runtime.collector.recent)(runtime.collector.recent.window)
    assert import_file(runtime.collector, path).duplicates == 3


def test_csv_with_dotted_and_json_columns(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "type,event,userId,anonymousId,messageId,timestamp,properties,context.page.url,traits.email\n"
        'track,order_completed,u9,,c-1,2025-05-01T00:00:00Z,"{""revenue"": 99.5}",,\n'
        "identify,,u9,,c-2,2025-05-01T00:01:00Z,,,u9@example.com\n"
        "page,,,a9,c-3,2025-05-01T00:02:00Z,,https://s.example/?utm_source=fb,\n"
        "track,,u9,,c-4,2025-05-01T00:03:00Z,,,\n"
    )
    summary = import_file(runtime.collector, path)
    assert (summary.imported, summary.rejected) == (3, 1)
    rows = dict(
        runtime.warehouse.rows(
            "SELECT message_id, coalesce(properties->>'revenue', utm_source, traits->>'email') "
            "FROM events"
        )
    )
    assert rows == {"c-1": "99.5", "c-2": "u9@example.com", "c-3": "fb"}


def test_parquet_import(runtime: Runtime, tmp_path: Path) -> None:
    table = pa.table(
        {
            "type": ["track", "track", "identify"],
            "event": ["product_viewed", None, None],
            "userId": ["p1", "p1", "p1"],
            "messageId": ["q-1", "q-2", "q-3"],
            "timestamp": pa.array([1_714_521_600_000_000] * 3, pa.timestamp("us", tz="UTC")),
            "properties": ['{"price": 5}', None, None],
            "traits": [None, None, '{"plan": "pro"}'],
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    summary = import_file(runtime.collector, path)
    assert (summary.imported, summary.rejected) == (2, 1)
    assert summary.reasons == {"track needs an event name (a non-empty string)": 1}
    (traits,) = runtime.warehouse.rows("SELECT traits FROM profiles")[0]
    assert orjson.loads(traits) == {"plan": "pro"}


def _progress_rows() -> list[dict[str, Any]]:
    return [
        {"type": "track", "event": "e", "userId": f"u{i % 7}", "messageId": f"p-{i:03}"}
        for i in range(25)
    ]


def _progress_of_import(
    runtime: Runtime, path: Path, *, chunk_size: int, processes: int
) -> list[tuple[int, float | None]]:
    """What an import of ``path`` reports as it goes: (rows done, share done) per chunk."""
    seen: list[tuple[int, float | None]] = []
    import_file(
        runtime.collector,
        path,
        chunk_size=chunk_size,
        progress=lambda rows, share: seen.append((rows, share)),
        processes=processes,
    )
    return seen


def _write_progress_file(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".parquet":
        flat = [{**row, "properties": "{}"} for row in rows]
        pq.write_table(pa.Table.from_pylist(flat), path)
    elif path.suffix == ".csv":
        lines = ["type,event,userId,messageId"]
        lines += [f"{r['type']},{r['event']},{r['userId']},{r['messageId']}" for r in rows]
        path.write_text("\n".join(lines) + "\n")
    elif path.name.endswith(".gz"):
        import gzip

        path.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in rows)))
    else:
        write_jsonl(path, rows)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize("name", ["e.jsonl", "e.jsonl.gz", "e.csv", "e.parquet"])
def test_progress_is_reported_per_chunk_with_the_share_of_the_file(
    runtime: Runtime, tmp_path: Path, name: str
) -> None:
    path = _write_progress_file(tmp_path / name, _progress_rows())
    seen = _progress_of_import(runtime, path, chunk_size=10, processes=0)
    assert [rows for rows, _ in seen] == [10, 20, 25]
    shares = [share for _, share in seen]
    assert all(share is not None for share in shares)
    assert shares[-1] == 1.0 and shares == sorted(shares)
    if name in ("e.jsonl", "e.parquet"):  # equal rows: ten of 25 are 40% of the file
        assert shares[0] == pytest.approx(0.4, abs=0.05)
        assert shares[1] == pytest.approx(0.8, abs=0.05)


def test_progress_follows_the_chunks_stored_not_those_read_ahead(
    runtime: Runtime, tmp_path: Path
) -> None:
    """With a preparation process, blocks are read ahead of storing; each report is the share
    of the file up to the chunk just stored."""
    path = write_jsonl(tmp_path / "e.jsonl", _progress_rows())  # type: ignore[arg-type]
    seen = _progress_of_import(runtime, path, chunk_size=5, processes=1)
    assert [rows for rows, _ in seen] == [5, 10, 15, 20, 25]
    for rows, share in seen:
        assert share == pytest.approx(rows / 25, abs=0.03)


def test_unreadable_parquet_is_a_clear_error(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match="not a readable Parquet file"):
        import_file(runtime.collector, path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_without_a_type_column_is_refused_before_any_row(
    runtime: Runtime, tmp_path: Path, suffix: str
) -> None:
    # Every message names its type: without the column, every row would be rejected.
    path = tmp_path / f"orders{suffix}"
    if suffix == ".csv":
        path.write_text("event,userId\norder_completed,u1\n")
    else:
        pq.write_table(pa.table({"event": ["order_completed"], "userId": ["u1"]}), path)
    with pytest.raises(InvalidInput, match=r"has no 'type' column \(its columns: 'event', 'user"):
        import_file(runtime.collector, path)
    assert runtime.warehouse.rows("SELECT count(*) FROM events") == [(0,)]
    assert not path.with_name(path.name + ".rejected.jsonl").exists()


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("a.jsonl", None, "jsonl"),
        ("a.ndjson", None, "jsonl"),
        ("a.json.gz", None, "jsonl"),
        ("a.CSV", None, "csv"),
        ("a.parquet", None, "parquet"),
        ("a.txt", "csv", "csv"),
    ],
)
def test_format_detection(name: str, declared: str | None, expected: str) -> None:
    assert detect_format(Path(name), declared) == expected


def test_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidInput, match="pass --format"):
        detect_format(Path("events.txt"))
    with pytest.raises(InvalidInput, match="format must be one of"):
        detect_format(Path("events.txt"), "xml")


def test_import_keeps_historical_timestamps_even_with_sent_at(
    runtime: Runtime, tmp_path: Path
) -> None:
    row = {
        "type": "track",
        "event": "old",
        "userId": "h1",
        "messageId": "h-1",
        "timestamp": "2024-03-01T10:00:00Z",
        "sentAt": "2024-03-01T10:00:01Z",
    }
    import_file(runtime.collector, write_jsonl(tmp_path / "history.jsonl", [row]))
    ((timestamp,),) = runtime.warehouse.rows("SELECT timestamp FROM events")
    assert timestamp.isoformat() == "2024-03-01T10:00:00"


def test_no_more_preparation_processes_than_cores_are_started(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "many.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps({"type": "track", "event": "e", "userId": f"u{n}", "messageId": f"m{n}"})
            + b"\n"
            for n in range(12)
        )
    )
    started: list[int] = []

    class Recording(workers.PreparationPool):
        def __init__(self, *args: Any, processes: int = 1, **kwargs: Any) -> None:
            started.append(processes)
            super().__init__(*args, processes=processes, **kwargs)

    monkeypatch.setattr(workers, "PreparationPool", Recording)
    monkeypatch.setattr(workers, "worker_count", lambda: 2)
    summary = import_file(runtime.collector, path, chunk_size=5, processes=99)
    assert started == [2]  # 99 asked for, as many as cores started: each holds blocks
    assert summary.imported == 12


def test_parquet_values_json_lacks_are_converted_and_dotted_columns_nest(
    runtime: Runtime, tmp_path: Path
) -> None:
    price = pa.array([Decimal("19.90"), Decimal("5")], pa.decimal128(10, 2))
    details = pa.StructArray.from_arrays(
        [
            pa.array([date(2025, 5, 1), None], pa.date32()),
            pa.array([b"gift", b"\xff\x00"], pa.binary()),
            pa.array([timedelta(seconds=90), None], pa.duration("s")),
        ],
        names=["shipped", "note", "wait"],
    )
    table = pa.table(
        {
            "type": ["track", "track"],
            "event": ["order_completed", "order_completed"],
            "userId": ["p1", "p2"],
            "messageId": ["dec-1", "dec-2"],
            "properties": pa.StructArray.from_arrays([details], names=["details"]),
            "properties.price": price,
            "context.page.url": ["https://s.example/?utm_source=mail", None],
        }
    )
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    summary = import_file(runtime.collector, path)
    assert (summary.imported, summary.rejected) == (2, 0)
    rows = runtime.warehouse.rows(
        "SELECT message_id, properties, utm_source FROM events ORDER BY message_id"
    )
    assert [(r[0], orjson.loads(r[1]), r[2]) for r in rows] == [
        (
            "dec-1",
            {"details": {"shipped": "2025-05-01", "note": "gift", "wait": 90.0}, "price": 19.9},
            "mail",
        ),
        ("dec-2", {"details": {"note": "/wA=", "shipped": None, "wait": None}, "price": 5}, None),
    ]


def test_a_parquet_dotted_column_conflicting_with_a_value_rejects_its_row(
    runtime: Runtime, tmp_path: Path
) -> None:
    table = pa.table(
        {
            "type": ["track", "track"],
            "event": ["e", "e"],
            "userId": ["p1", "p2"],
            "context": ['{"page": "home"}', None],  # context.page is text in the first row
            "context.page.url": ["https://s.example/", "https://s.example/"],
        }
    )
    path = tmp_path / "conflict.parquet"
    pq.write_table(table, path)
    summary = import_file(runtime.collector, path)
    assert (summary.imported, summary.rejected) == (1, 1)
    assert summary.reasons == {
        "cannot read the row: column 'context.page.url' conflicts with column 'page'": 1
    }


def test_a_message_nested_too_deep_to_store_is_rejected_with_its_field(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "deep.jsonl"
    deep = '{"a": ' * 300 + "1" + "}" * 300
    path.write_text(
        '{"type": "track", "event": "x", "userId": "u", "messageId": "ok-1"}\n'
        f'{{"type": "track", "event": "x", "userId": "u", "properties": {deep}}}\n'
    )
    summary = import_file(runtime.collector, path)
    assert (summary.imported, summary.rejected) == (1, 1)
    assert summary.rejected_file is not None
    (rejected,) = [orjson.loads(line) for line in summary.rejected_file.read_text().splitlines()]
    assert (rejected["line"], rejected["field"], rejected["row"]) == (2, "properties", None)
    assert "more than 254 levels deep" in rejected["reason"]
