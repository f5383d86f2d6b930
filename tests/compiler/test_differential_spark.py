"""The same audiences give the same members on Spark (PRODUCT B7).

The differential checks of test_differential.py and test_differential_boundaries.py, run on
a local Spark (segmint.warehouse.spark): each generated definition is compiled for the
``spark`` dialect (sequences as window functions: Spark has no ASOF join) and run on the
generated rows loaded into Spark's tables; its members — of the whole definition and of every
node — must equal the reference evaluator's. Spark answers each query in about a third of a
second, so these runs draw fewer definitions than DuckDB's and ClickHouse's
(SEGMINT_DIFFERENTIAL_EXAMPLES / 10, at least 20).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from segmint.definitions import iter_nodes
from segmint.warehouse.spark import SparkEngine
from tests.compiler.test_differential import compiled_members, load, reference
from tests.compiler.test_differential_boundaries import BOUNDARY_SETTINGS, check
from tests.reference.strategies import Scenario, boundary_scenarios, scenarios

EXAMPLES = max(20, int(os.environ.get("SEGMINT_DIFFERENTIAL_EXAMPLES", "300")) // 10)
_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# One Spark (a JVM) per test process: these tests run on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("spark")


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkEngine]:
    engine = SparkEngine.with_tables()
    try:
        yield engine
    finally:
        engine.close()


def _differences(actual: set[int], expected: set[int]) -> str:
    return (
        f"only on Spark: {sorted(actual - expected)}, "
        f"only in reference: {sorted(expected - actual)}"
    )


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **_SETTINGS)
@given(scenario=scenarios())
def test_spark_gives_the_reference_members(spark: SparkEngine, scenario: Scenario) -> None:
    load(spark, scenario)
    expected = reference(scenario)
    actual = compiled_members(spark, scenario)
    assert actual == expected.members, _differences(actual, expected.members)
    for path, node in iter_nodes(scenario.definition.root):
        assert node.id is not None
        actual = compiled_members(spark, scenario, node)
        assert actual == expected.nodes[node.id], f"node {path}: " + _differences(
            actual, expected.nodes[node.id]
        )


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **BOUNDARY_SETTINGS)
@given(scenario=boundary_scenarios())
def test_spark_gives_the_reference_members_at_boundaries(
    spark: SparkEngine, scenario: Scenario
) -> None:
    """Values on and next to each bound (test_differential_boundaries.py), on Spark."""
    check(spark, scenario)


@settings(max_examples=5, **_SETTINGS)
@given(scenario=scenarios(max_depth=1))
def test_spark_gives_the_reference_members_quick(spark: SparkEngine, scenario: Scenario) -> None:
    """A short run of the same check for every test run (the slow ones run in CI)."""
    load(spark, scenario)
    assert compiled_members(spark, scenario) == reference(scenario).members
