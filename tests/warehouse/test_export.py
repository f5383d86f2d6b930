"""Exporting the tables audience queries read to Parquet (`segmint export`), and loading
ClickHouse and Spark from those files: the same rows, and the same members of audiences
(PRODUCT B7 at scale: the rows never pass through Python)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from segmint.cli.main import app
from segmint.compiler import compile_definition, to_sql
from segmint.definitions import parse_definition
from segmint.errors import InvalidInput
from segmint.settings import Settings
from segmint.warehouse import DuckDBEngine, open_warehouse
from segmint.warehouse.clickhouse import ChDBEngine
from segmint.warehouse.portable import (
    READ_TABLES,
    SharedServerEngine,
    export_read_tables,
    parquet_files,
)
from segmint.warehouse.spark import SparkEngine
from tests.reference.loading import store_segment_events
from tests.reference.strategies import segment_properties

# Spark's local session is one per process: these tests share the worker of test_spark.py.
pytestmark = pytest.mark.xdist_group("spark")

runner = CliRunner()
AS_OF = dt.datetime(2026, 3, 1)

# Each kind of value a definition reads from the exported tables: JSON properties and
# traits, profile columns, windows on timestamps, segment events, aggregates.
DEFINITIONS: list[dict[str, Any]] = [
    {"kind": "event", "event": "order_completed", "window": {"type": "relative", "last": 30}},
    {
        "kind": "aggregate",
        "event": "order_completed",
        "property": "revenue",
        "function": "sum",
        "operator": "gte",
        "value": 100,
    },
    {"kind": "trait", "trait": "email", "operator": "contains", "value": "@"},
    {"kind": "demographic", "field": "country", "operator": "equals", "value": "US"},
    {
        "kind": "event",
        "event": "product_viewed",
        "filters": [{"property": "category", "operator": "is_set"}],
        "count": {"operator": "at_least", "value": 3},
    },
    {"kind": "event", "event": "added_to_segment"},
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DuckDBEngine, Path]]:
    """A generated shop's warehouse, with segment events, exported to a directory."""
    data = tmp_path_factory.mktemp("shop")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGMINT_DATA_DIR", str(data / "data"))
        patch.setenv("SEGMINT_SCHEDULER", "false")
        generated = runner.invoke(
            app, ["generate", "--users", "150", "--days", "40", "--end", "2026-03-01"]
        )
        assert generated.exit_code == 0, generated.output
        settings = Settings()
    warehouse = open_warehouse(settings.warehouse_file)
    profiles = [row[0] for row in warehouse.rows("SELECT profile_id FROM profiles LIMIT 40")]
    stamp = AS_OF - dt.timedelta(days=2)
    store_segment_events(
        warehouse,
        [
            {
                "profile_id": profile,
                "event": "added_to_segment",
                "timestamp": stamp,
                "properties": segment_properties(7, "buyers", stamp),
            }
            for profile in profiles
        ],
    )
    exported = data / "export"
    counts = export_read_tables(warehouse, exported)
    assert counts["events"] > 1_000 and counts["segment_events"] == 40
    try:
        yield warehouse, exported
    finally:
        warehouse.close()


def _rows(engine: Any, table: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = engine.rows(f"SELECT * FROM {table}")
    return sorted(rows, key=repr)


def _members(engine: Any, dialect: str, root: dict[str, Any]) -> set[int]:
    definition = parse_definition({"version": 1, "root": root})
    query = compile_definition(definition, as_of=AS_OF, timezone="UTC", dialect=dialect)
    return {row[0] for row in engine.rows(to_sql(query, dialect))}


def test_the_files_hold_the_tables_rows_with_json_as_text(
    shop: tuple[DuckDBEngine, Path],
) -> None:
    warehouse, exported = shop
    assert sorted(p.name for p in exported.iterdir()) == sorted(
        f"{table}.parquet" for table in READ_TABLES
    )  # no partial files left
    for table, path in parquet_files(exported).items():
        written = pq.read_table(path)
        columns = warehouse.rows(f"SELECT column_name, column_type FROM (DESCRIBE {table})")
        assert written.column_names == [name for name, _ in columns]
        for name, kind in columns:
            if kind == "JSON":  # text, which every engine's JSON functions read
                assert str(written.schema.field(name).type) == "string"
        assert written.num_rows == warehouse.rows(f"SELECT count(*) FROM {table}")[0][0]


@pytest.fixture(scope="module", params=["clickhouse", "spark"])
def loaded(
    request: pytest.FixtureRequest, shop: tuple[DuckDBEngine, Path]
) -> Iterator[tuple[str, SharedServerEngine]]:
    engine: SharedServerEngine = (
        ChDBEngine.with_tables() if request.param == "clickhouse" else SparkEngine.with_tables()
    )
    try:
        counts = engine.load_parquet(shop[1])
        assert counts == {
            table: shop[0].rows(f"SELECT count(*) FROM {table}")[0][0] for table in READ_TABLES
        }
        yield request.param, engine
    finally:
        engine.close()


def test_an_engine_loaded_from_the_files_holds_the_same_rows(
    shop: tuple[DuckDBEngine, Path], loaded: tuple[str, SharedServerEngine]
) -> None:
    warehouse, _ = shop
    _, engine = loaded
    for table in READ_TABLES:
        assert _rows(engine, table) == _rows(warehouse, table), table


@pytest.mark.parametrize("root", DEFINITIONS, ids=[d["kind"] for d in DEFINITIONS])
def test_an_engine_loaded_from_the_files_finds_the_same_members(
    shop: tuple[DuckDBEngine, Path], loaded: tuple[str, SharedServerEngine], root: dict[str, Any]
) -> None:
    warehouse, _ = shop
    dialect, engine = loaded
    expected = _members(warehouse, "duckdb", root)
    assert expected  # each definition finds someone in the shop
    assert _members(engine, dialect, root) == expected


def test_loading_from_a_directory_without_every_file_changes_nothing(
    shop: tuple[DuckDBEngine, Path], tmp_path: Path
) -> None:
    engine = ChDBEngine.with_tables()
    try:
        engine.load_parquet(shop[1])
        before = engine.rows("SELECT count() FROM events")
        partial = tmp_path / "partial"
        partial.mkdir()
        (partial / "events.parquet").write_bytes((shop[1] / "events.parquet").read_bytes())
        with pytest.raises(InvalidInput, match=r"has no profiles\.parquet, audience_refreshes"):
            engine.load_parquet(partial)
        assert engine.rows("SELECT count() FROM events") == before
    finally:
        engine.close()


def test_an_export_that_fails_leaves_the_earlier_files_whole(
    shop: tuple[DuckDBEngine, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse, _ = shop
    target = tmp_path / "export"
    export_read_tables(warehouse, target)
    before = {path.name: path.read_bytes() for path in target.iterdir()}
    calls = iter(range(10))

    def failing(sql: str, params: Any = None) -> Any:
        if next(calls) == 2:
            raise OSError("No space left on device")
        return DuckDBEngine.rows(warehouse, sql, params)

    monkeypatch.setattr(warehouse, "rows", failing)
    with pytest.raises(OSError, match="No space left"):
        export_read_tables(warehouse, target)
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before


def test_the_export_command_writes_the_files_and_refuses_a_file_for_a_directory(
    settings: Settings, tmp_path: Path
) -> None:
    generated = runner.invoke(app, ["generate", "--users", "20", "--days", "5"])
    assert generated.exit_code == 0, generated.output
    result = runner.invoke(app, ["export", str(tmp_path / "out")], terminal_width=200)
    assert result.exit_code == 0, result.output
    events = pq.read_table(tmp_path / "out" / "events.parquet").num_rows
    assert f"events             │ {events:,} " in result.output
    taken = tmp_path / "a-file"
    taken.write_text("")
    refused = runner.invoke(app, ["export", str(taken)])
    assert refused.exit_code == 2
    assert f"{taken} is a file: name a directory" in " ".join(refused.output.split())
