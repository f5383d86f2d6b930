"""The same audiences give the same members on ClickHouse and Spark (PRODUCT B7).

The differential checks of test_differential.py (random definitions on random rows) and
test_differential_boundaries.py (values on and next to every bound), run on embedded
ClickHouse (chDB) and on a local Spark: each definition is compiled for the engine's dialect
(ClickHouse: sequences as ASOF joins, as on DuckDB; Spark: as window functions) and run on
the generated rows loaded into the engine's tables (segmint.warehouse.clickhouse, .spark);
its members — of the whole definition and of every node — must equal the reference
evaluator's. To keep CI within its time, these runs draw fewer definitions than DuckDB's
300: on ClickHouse a fifteenth of SEGMINT_DIFFERENTIAL_EXAMPLES random definitions (20; 1 to
3.5 s each, depending on the draw) and a tenth boundary ones (30; ~0.4 s each); on Spark a
fiftieth of each (6; ~10 to 15 s per random definition, most of it Spark planning the few
queries the definition and its nodes run as, see ``compiled_members_of``). Raise
SEGMINT_DIFFERENTIAL_EXAMPLES to hunt longer (when this was written, 300 random and 300
boundary scenarios passed on ClickHouse, 50 of each on Spark).

Each engine's tests run on one pytest-xdist worker (``xdist_group``), its engine made once
per worker (a Spark session takes ~15 s to start).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from segmint.warehouse.clickhouse import ChDBEngine
from segmint.warehouse.spark import SparkEngine
from tests.compiler.test_differential_boundaries import BOUNDARY_SETTINGS, check
from tests.reference.strategies import Scenario, boundary_scenarios, scenarios

EXAMPLES = int(os.environ.get("SEGMINT_DIFFERENTIAL_EXAMPLES", "300"))
CLICKHOUSE_EXAMPLES = max(20, EXAMPLES // 15)
CLICKHOUSE_BOUNDARY_EXAMPLES = max(25, EXAMPLES // 10)
SPARK_EXAMPLES = max(6, EXAMPLES // 50)
# Random definitions shrink when they fail (boundary scenarios have nothing to shrink).
_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ON_CLICKHOUSE = pytest.mark.xdist_group("clickhouse")
ON_SPARK = pytest.mark.xdist_group("spark")


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[ChDBEngine]:
    engine = ChDBEngine.with_tables()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkEngine]:
    engine = SparkEngine.with_tables()
    try:
        yield engine
    finally:
        engine.close()


@ON_CLICKHOUSE
@pytest.mark.slow
@settings(max_examples=CLICKHOUSE_EXAMPLES, **_SETTINGS)
@given(scenario=scenarios())
def test_clickhouse_gives_the_reference_members(clickhouse: ChDBEngine, scenario: Scenario) -> None:
    check(clickhouse, scenario)


@ON_CLICKHOUSE
@pytest.mark.slow
@settings(max_examples=CLICKHOUSE_BOUNDARY_EXAMPLES, **BOUNDARY_SETTINGS)
@given(scenario=boundary_scenarios())
def test_clickhouse_gives_the_reference_members_at_boundaries(
    clickhouse: ChDBEngine, scenario: Scenario
) -> None:
    check(clickhouse, scenario)


@ON_SPARK
@pytest.mark.slow
@settings(max_examples=SPARK_EXAMPLES, **_SETTINGS)
@given(scenario=scenarios())
def test_spark_gives_the_reference_members(spark: SparkEngine, scenario: Scenario) -> None:
    check(spark, scenario)


@ON_SPARK
@pytest.mark.slow
@settings(max_examples=SPARK_EXAMPLES, **BOUNDARY_SETTINGS)
@given(scenario=boundary_scenarios())
def test_spark_gives_the_reference_members_at_boundaries(
    spark: SparkEngine, scenario: Scenario
) -> None:
    check(spark, scenario)


@pytest.mark.shortened("test_clickhouse_gives_the_reference_members")
@ON_CLICKHOUSE
@settings(max_examples=25, **_SETTINGS)
@given(scenario=scenarios(max_depth=1))
def test_clickhouse_gives_the_reference_members_quick(
    clickhouse: ChDBEngine, scenario: Scenario
) -> None:
    """Short runs of the same checks for every test run (the slow ones run in CI)."""
    check(clickhouse, scenario)


@pytest.mark.shortened("test_spark_gives_the_reference_members")
@ON_SPARK
@settings(max_examples=3, **_SETTINGS)
@given(scenario=scenarios(max_depth=1))
def test_spark_gives_the_reference_members_quick(spark: SparkEngine, scenario: Scenario) -> None:
    check(spark, scenario)
