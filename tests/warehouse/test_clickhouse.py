"""The embedded ClickHouse engine, and SQL rendered for it meaning what it means on DuckDB.

Each value a compiled definition reads from a JSON document (its text if a string, its number,
whether it is set, whether it is ``true``, its type, its date or instant) is computed on both
engines from the same expressions and must be the same, document by document.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from segmint.compiler import to_sql
from segmint.compiler.values import json_field, json_type
from segmint.warehouse import DuckDBEngine, open_warehouse
from segmint.warehouse.clickhouse import ChDBEngine, ClickHouseUnavailable
from segmint.warehouse.dialects import render
from segmint.warehouse.portable import read_tables

DOCUMENTS: list[str | None] = [
    json.dumps(value, ensure_ascii=False)
    for value in (
        {"v": "pro"},
        {"v": "Café ☕"},
        {"v": ""},
        {"v": "19.99"},
        {"v": " 19.99"},
        {"v": "true"},
        {"v": 42},
        {"v": -7},
        {"v": 1.5},
        {"v": 1e300},
        {"v": 2**63},
        {"v": True},
        {"v": False},
        {"v": None},
        {"w": 1},
        {"v": {"x": 1}},
        {"v": [1, "a"]},
        {"v": "2024-02-29"},
        {"v": "2024-02-30"},
        {"v": "2023-13-01"},
        {"v": "1969-12-31"},
        {"v": "2024-03-10T02:30:00.123456Z"},
        {"v": "2024-02-30 10:00:00"},
        {"v": "2024-03-10 10:00:00.5"},
    )
] + ['{"a": {"v": "nested"}}', "{}", None]


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[DuckDBEngine, ChDBEngine]]:
    duck, house = open_warehouse(None), ChDBEngine()
    table = pa.table({"n": list(range(len(DOCUMENTS))), "doc": DOCUMENTS})
    duck.execute("CREATE TABLE docs (n INTEGER, doc JSON)")
    duck.append("docs", table)
    house.execute("CREATE TABLE docs (n Int32, doc Nullable(String)) ENGINE = Memory")
    house.append("docs", table)
    try:
        yield duck, house
    finally:
        duck.close()
        house.close()


def both(engines: tuple[DuckDBEngine, ChDBEngine], value: exp.Expr) -> tuple[list[Any], list[Any]]:
    """The value of ``value`` for each document (in order) on DuckDB and on ClickHouse."""
    query = exp.select(exp.column("n"), exp.alias_(value, "value")).from_("docs").order_by("n")
    duck, house = engines
    return (
        [row[1] for row in duck.rows(to_sql(query, "duckdb"))],
        [row[1] for row in house.rows(to_sql(query, "clickhouse"))],
    )


@pytest.mark.parametrize(
    ("read", "path"),
    [
        pytest.param(lambda f: f.text(), "v", id="text"),
        pytest.param(lambda f: f.text(), "a.v", id="nested-text"),
        pytest.param(lambda f: f.is_set(), "v", id="is_set"),
        pytest.param(lambda f: f.is_set(), "a.v", id="nested-is_set"),
        pytest.param(lambda f: f.boolean_is(True), "v", id="is_true"),
        pytest.param(lambda f: f.boolean_is(False), "v", id="is_false"),
        pytest.param(lambda f: f.date_only(), "v", id="date"),
        pytest.param(lambda f: f.date_time(), "v", id="instant"),
    ],
)
def test_json_values_are_the_same_on_both_engines(
    engines: tuple[DuckDBEngine, ChDBEngine], path: str, read: Any
) -> None:
    on_duckdb, on_clickhouse = both(engines, read(json_field("doc", path)))
    assert on_clickhouse == on_duckdb
    assert any(value not in (None, False) for value in on_duckdb)  # it compares some values


def test_json_numbers_are_the_same_on_both_engines(
    engines: tuple[DuckDBEngine, ChDBEngine],
) -> None:
    on_duckdb, on_clickhouse = both(engines, json_field("doc", "v").number())
    # numeric text counts ("19.99"; not " 19.99")
    expected = [19.99, 42.0, -7.0, 1.5, 1e300, 2.0**63]
    assert [n for n in on_duckdb if n is not None] == expected
    assert on_clickhouse == on_duckdb


def test_json_types_use_duckdb_names_on_clickhouse(
    engines: tuple[DuckDBEngine, ChDBEngine],
) -> None:
    on_duckdb, on_clickhouse = both(engines, json_type("doc", "v"))
    # DuckDB calls a non-negative integer UBIGINT, ClickHouse an Int64 when it fits: the
    # compiled SQL takes both as numbers (aggregate.NUMBER_TYPES)
    integer = {"BIGINT": "UBIGINT"}
    assert [integer.get(t, t) for t in on_clickhouse] == [integer.get(t, t) for t in on_duckdb]
    assert {"VARCHAR", "BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN", "NULL", "OBJECT", "ARRAY"} <= set(
        on_duckdb
    )


def test_integers_beyond_64_bits_are_text_on_clickhouse() -> None:
    """The one known difference (dialects.py): ClickHouse reads such a number as a string, so
    a text comparison sees it, while on DuckDB it is a number. Either way it is a number."""
    engine = ChDBEngine()
    try:
        field = json_field("doc", "v")
        query = exp.select(field.text(), json_type("doc", "v"), field.number()).from_(
            exp.select(
                exp.alias_(exp.Literal.string('{"v": 18446744073709551616}'), "doc")
            ).subquery()
        )
        assert engine.rows(to_sql(query, "clickhouse")) == [
            ("18446744073709551616", "VARCHAR", 2.0**64)
        ]
    finally:
        engine.close()


def test_impossible_dates_are_not_dates_on_clickhouse(
    engines: tuple[DuckDBEngine, ChDBEngine],
) -> None:
    """ClickHouse's parser rolls 30 February over to 1 March; the rendered SQL does not."""
    _, house = engines
    date = exp.TryCast(this=exp.Literal.string("2024-02-30"), to=exp.DataType.build("DATE"))
    leap = exp.TryCast(this=exp.Literal.string("2024-02-29"), to=exp.DataType.build("DATE"))
    rows = house.rows(render(exp.select(date, leap), "clickhouse"))
    assert rows == [(None, dt.date(2024, 2, 29))]


def test_timestamps_keep_microseconds_on_clickhouse(
    engines: tuple[DuckDBEngine, ChDBEngine],
) -> None:
    _, house = engines
    stamp = exp.cast(exp.Literal.string("2024-03-10 02:30:00.000001"), "TIMESTAMP")
    query = exp.select(
        exp.GT(
            this=stamp, expression=exp.cast(exp.Literal.string("2024-03-10 02:30:00"), "TIMESTAMP")
        )
    )
    assert house.rows(render(query, "clickhouse")) == [(True,)]


def test_lower_case_of_non_ascii_text_on_clickhouse(
    engines: tuple[DuckDBEngine, ChDBEngine],
) -> None:
    _, house = engines
    query = exp.select(exp.Lower(this=exp.Literal.string("CAFÉ")))
    assert house.rows(render(query, "clickhouse")) == [("café",)]


@pytest.mark.parametrize("dialect", ["duckdb", "clickhouse", "spark"])
def test_rendering_leaves_the_given_tree_as_it_was(dialect: str) -> None:
    """The rewrites and the generator work on a copy: a tree rendered for one engine renders
    the same again, and for another engine as if it had not been rendered."""
    query = exp.select(
        json_field("properties", "price").raw(),
        json_type("properties", "price"),
        exp.Lower(this=exp.TryCast(this=exp.column("v"), to=exp.DataType.build("DATE"))),
        exp.RegexpLike(this=exp.column("v"), expression=exp.Literal.string("^a$")),
    ).from_("events")
    before = query.sql("duckdb")
    first = render(query, dialect)
    assert query.sql("duckdb") == before
    assert render(query, dialect) == first
    assert render(query, "duckdb") == before


def test_queries_longer_than_clickhouse_default_limit_run() -> None:
    """A definition of many conditions compiles to a long query: ClickHouse's default limits
    (256 KiB of query text, 50,000 elements of syntax tree) are raised for the engine's
    sessions."""
    engine = ChDBEngine()
    try:
        terms = " OR ".join(f"number = {n}" for n in range(0, 40_000, 2))
        query = f"SELECT count() FROM numbers(50000) WHERE {terms}"
        assert len(query) > 256 * 1024  # and 20,000 comparisons of two elements each
        assert engine.rows(query) == [(20_000,)]
    finally:
        engine.close()


def test_the_engine_appends_arrow_tables_and_reads_rows() -> None:
    engine = ChDBEngine.with_tables()
    try:
        profiles = pa.table(
            {
                "profile_id": pa.array([1, 2], pa.int64()),
                "traits": ['{"plan": "pro"}', "{}"],
                "first_seen": pa.array([dt.datetime(2025, 1, 1)] * 2, pa.timestamp("us")),
                "last_seen": pa.array([dt.datetime(2025, 1, 2)] * 2, pa.timestamp("us")),
                "country": ["DE", None],
            }
        )
        assert engine.append("profiles", profiles) == 2
        assert engine.append("profiles", profiles.slice(0, 0)) == 0
        rows = engine.rows("SELECT profile_id, country, event_count FROM profiles ORDER BY 1")
        assert rows == [(1, "DE", 0), (2, None, 0)]
        assert engine.arrow("SELECT count() AS n FROM profiles").to_pylist() == [{"n": 2}]
        with engine.transaction():
            engine.execute(exp.delete("profiles", where="profile_id = 2"))
        assert engine.rows("SELECT profile_id FROM profiles") == [(1,)]
    finally:
        engine.close()


def test_bound_parameters_are_refused_with_what_to_do_instead() -> None:
    engine = ChDBEngine()
    try:
        with pytest.raises(TypeError, match="no bound parameters: build the statement"):
            engine.rows("SELECT ?", [1])
    finally:
        engine.close()


def test_a_missing_chdb_is_named_with_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real_import = builtins.__import__

    def without_chdb(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("chdb"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_chdb)
    with pytest.raises(ClickHouseUnavailable, match=r"pip install 'segmint\[clickhouse\]'"):
        ChDBEngine()


def test_expressions_given_to_the_engine_keep_duckdb_meaning() -> None:
    """The engine renders a sqlglot expression as to_sql does (dialects.render), so library
    code that hands it compiled expressions gets the same answers."""
    engine = ChDBEngine()
    try:
        query = exp.select(exp.Lower(this=exp.Literal.string("CAFÉ")))
        assert engine.rows(query) == [("café",)]
    finally:
        engine.close()


def test_the_tables_have_the_warehouse_columns() -> None:
    engine = ChDBEngine.with_tables()
    try:
        for table, columns in read_tables().items():
            described = engine.rows(f"DESCRIBE TABLE {table}")
            assert [row[0] for row in described] == [c.name for c in columns]
            nullable = [row[1].startswith("Nullable(") for row in described]
            assert nullable == [c.nullable for c in columns]
    finally:
        engine.close()


def test_engines_in_one_process_keep_their_tables_apart() -> None:
    """chDB has one server per process: each engine works in a database of its own."""
    first, second = ChDBEngine.with_tables(), ChDBEngine.with_tables()
    try:
        first.append(
            "segment_events", pa.table({"refresh_seq": [1], "profile_id": [7], "added": [True]})
        )
        assert second.rows("SELECT count() FROM segment_events") == [(0,)]
        assert first.rows("SELECT profile_id FROM segment_events") == [(7,)]
    finally:
        first.close()
        second.close()
    other = ChDBEngine()
    try:
        assert (first.database,) not in other.rows("SHOW DATABASES")  # dropped at close
    finally:
        other.close()


def test_a_second_data_directory_in_one_process_is_refused_clearly(tmp_path: Path) -> None:
    engine = ChDBEngine()  # this process's ClickHouse keeps temporary data
    try:
        with pytest.raises(ClickHouseUnavailable, match="one ClickHouse per process"):
            ChDBEngine(tmp_path / "clickhouse")
    finally:
        engine.close()
