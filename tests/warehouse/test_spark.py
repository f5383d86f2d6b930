"""The Spark engine, and SQL rendered for it meaning what it means on DuckDB.

As for ClickHouse (test_clickhouse.py): each value a compiled definition reads from a JSON
document, and each portable regular expression on texts with line ends, is computed on
DuckDB and on a local Spark from the same expressions and must be the same.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from segmint.compiler import to_sql
from segmint.compiler.values import json_field, json_type, regexp
from segmint.warehouse import DuckDBEngine, open_warehouse
from segmint.warehouse.portable import read_tables
from segmint.warehouse.spark import SparkEngine
from tests.definitions.test_regex import ACCEPTED
from tests.warehouse.test_clickhouse import DOCUMENTS

pytestmark = pytest.mark.xdist_group("spark")

TEXTS = ["abc", "abc\n", "abc\r", "a\rc", "a\u2028c", "x.com", "", "éé", "$x", "\n", "aaa"]


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[DuckDBEngine, SparkEngine]]:
    duck, spark = open_warehouse(None), SparkEngine.with_tables()
    documents = pa.table({"n": list(range(len(DOCUMENTS))), "doc": DOCUMENTS})
    texts = pa.table({"n": list(range(len(TEXTS))), "t": TEXTS})
    duck.execute("CREATE TABLE docs (n INTEGER, doc JSON)")
    duck.execute("CREATE TABLE texts (n INTEGER, t VARCHAR)")
    spark.execute("CREATE TABLE docs (n INT, doc STRING) USING parquet")
    spark.execute("CREATE TABLE texts (n INT, t STRING) USING parquet")
    for engine in (duck, spark):
        engine.append("docs", documents)
        engine.append("texts", texts)
    try:
        yield duck, spark
    finally:
        spark.execute("DROP TABLE docs")
        spark.execute("DROP TABLE texts")
        duck.close()
        spark.close()


def both(
    engines: tuple[DuckDBEngine, SparkEngine], value: exp.Expr, table: str = "docs"
) -> tuple[list[Any], list[Any]]:
    """The value of ``value`` for each row of ``table`` (in order) on DuckDB and on Spark."""
    query = exp.select(exp.column("n"), exp.alias_(value, "value")).from_(table).order_by("n")
    duck, spark = engines
    return (
        [row[1] for row in duck.rows(to_sql(query, "duckdb"))],
        [row[1] for row in spark.rows(to_sql(query, "spark"))],
    )


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda f: f.text(), id="text"),
        pytest.param(lambda f: f.is_set(), id="is_set"),
        pytest.param(lambda f: f.boolean_is(True), id="is_true"),
        pytest.param(lambda f: f.boolean_is(False), id="is_false"),
        pytest.param(lambda f: f.number(), id="number"),
        pytest.param(lambda f: f.date_only(), id="date"),
        pytest.param(lambda f: f.date_time(), id="instant"),
    ],
)
def test_json_values_are_the_same_on_both_engines(
    engines: tuple[DuckDBEngine, SparkEngine], read: Any
) -> None:
    on_duckdb, on_spark = both(engines, read(json_field("doc", "v")))
    assert on_spark == on_duckdb
    assert any(value not in (None, False) for value in on_duckdb)  # it compares some values


def test_json_types_on_spark(engines: tuple[DuckDBEngine, SparkEngine]) -> None:
    """DuckDB's names, except that every integer is a BIGINT (DuckDB: UBIGINT when not
    negative); compiled SQL takes both as numbers (aggregate.NUMBER_TYPES)."""
    on_duckdb, on_spark = both(engines, json_type("doc", "v"))
    assert on_spark == [{"UBIGINT": "BIGINT"}.get(t, t) for t in on_duckdb]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_regexes_match_as_on_duckdb(
    engines: tuple[DuckDBEngine, SparkEngine], pattern: str
) -> None:
    """RE2's meaning on Java's engine: ``$`` only at the very end, ``.`` across ``\\r``."""
    on_duckdb, on_spark = both(engines, regexp(exp.column("t"), pattern), table="texts")
    assert on_spark == on_duckdb


def test_the_engine_appends_arrow_tables_and_reads_rows(
    engines: tuple[DuckDBEngine, SparkEngine],
) -> None:
    _, spark = engines
    profiles = pa.table(
        {
            "profile_id": pa.array([1, 2], pa.int64()),
            "traits": ['{"plan": "pro"}', "{}"],
            "first_seen": pa.array([dt.datetime(2025, 1, 1, 0, 0, 0, 1)] * 2, pa.timestamp("us")),
            "country": ["DE", None],
        }
    )
    spark.execute("TRUNCATE TABLE profiles")
    assert spark.append("profiles", profiles) == 2
    assert spark.append("profiles", profiles.slice(0, 0)) == 0
    rows = spark.rows("SELECT profile_id, country, first_seen, city FROM profiles ORDER BY 1")
    assert rows == [
        (1, "DE", dt.datetime(2025, 1, 1, 0, 0, 0, 1), None),
        (2, None, dt.datetime(2025, 1, 1, 0, 0, 0, 1), None),
    ]
    with pytest.raises(TypeError, match="no bound parameters: build the statement"):
        spark.rows("SELECT ?", [1])


def test_the_tables_have_the_warehouse_columns(engines: tuple[DuckDBEngine, SparkEngine]) -> None:
    _, spark = engines
    for table, columns in read_tables().items():
        described = spark.rows(f"DESCRIBE TABLE {table}")
        assert [row[0] for row in described][: len(columns)] == [c.name for c in columns]


def test_a_sparksession_given_reads_timestamps_in_utc(
    engines: tuple[DuckDBEngine, SparkEngine],
) -> None:
    _, spark = engines
    spark.execute("SET spark.sql.session.timeZone = America/New_York")
    try:
        again = SparkEngine(spark._spark)  # an engine over a session someone else made
        assert again.rows("SELECT current_timezone()") == [("UTC",)]
    finally:
        spark.execute("SET spark.sql.session.timeZone = UTC")


def test_engines_in_one_process_keep_their_tables_apart(
    engines: tuple[DuckDBEngine, SparkEngine],
) -> None:
    """A process has one SparkSession: each engine works in a database of its own."""
    _, first = engines
    second = SparkEngine.with_tables()
    try:
        first.execute("TRUNCATE TABLE segment_events")
        events = pa.table({"refresh_seq": [1], "profile_id": [7], "added": [True]})
        second.append("segment_events", events)
        assert first.rows("SELECT count(*) FROM segment_events") == [(0,)]
        assert second.rows("SELECT profile_id FROM segment_events") == [(7,)]
    finally:
        second.close()
    databases = {row[0] for row in first.rows("SHOW DATABASES")}
    assert first.database in databases and second.database not in databases


def test_a_missing_java_is_named_clearly(tmp_path: Path) -> None:
    """Without Java, starting the local Spark fails with what it needs, not a traceback of
    PySpark's launcher (run in a fresh process: this one has its Spark already)."""
    script = (
        "from segmint.warehouse.spark import SparkEngine, SparkUnavailable\n"
        "try:\n"
        "    SparkEngine()\n"
        "except SparkUnavailable as exc:\n"
        "    print('refused:', exc)\n"
    )
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"), "PATH": "/nonexistent"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stdout.startswith("refused: could not start a local Spark"), result.stderr
    assert "Java 17 or newer" in result.stdout
