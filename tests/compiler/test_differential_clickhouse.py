"""The same audiences give the same members on ClickHouse (PRODUCT B7).

The differential checks of test_differential.py and test_differential_boundaries.py, run on
embedded ClickHouse (chDB): each generated definition is compiled for the ``clickhouse``
dialect and run on the generated rows loaded into ClickHouse's tables
(segmint.warehouse.clickhouse); its members — of the whole definition and of every node —
must equal the reference evaluator's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from segmint.definitions import iter_nodes
from segmint.warehouse.clickhouse import ChDBEngine
from tests.compiler.test_differential import compiled_members, load, reference
from tests.compiler.test_differential_boundaries import BOUNDARY_SETTINGS, check
from tests.reference.strategies import Scenario, boundary_scenarios, scenarios

EXAMPLES = int(os.environ.get("SEGMINT_DIFFERENTIAL_EXAMPLES", "300"))
# One embedded ClickHouse per test process: these tests run on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("clickhouse")
_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def clickhouse() -> Iterator[ChDBEngine]:
    engine = ChDBEngine.with_tables()
    try:
        yield engine
    finally:
        engine.close()


def _differences(actual: set[int], expected: set[int]) -> str:
    return (
        f"only on ClickHouse: {sorted(actual - expected)}, "
        f"only in reference: {sorted(expected - actual)}"
    )


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **_SETTINGS)
@given(scenario=scenarios())
def test_clickhouse_gives_the_reference_members(clickhouse: ChDBEngine, scenario: Scenario) -> None:
    load(clickhouse, scenario)
    expected = reference(scenario)
    actual = compiled_members(clickhouse, scenario)
    assert actual == expected.members, _differences(actual, expected.members)
    for path, node in iter_nodes(scenario.definition.root):
        assert node.id is not None
        actual = compiled_members(clickhouse, scenario, node)
        assert actual == expected.nodes[node.id], f"node {path}: " + _differences(
            actual, expected.nodes[node.id]
        )


@settings(max_examples=25, **_SETTINGS)
@given(scenario=scenarios(max_depth=1))
def test_clickhouse_gives_the_reference_members_quick(
    clickhouse: ChDBEngine, scenario: Scenario
) -> None:
    """A short run of the same check for every test run (the slow one runs in CI)."""
    load(clickhouse, scenario)
    assert compiled_members(clickhouse, scenario) == reference(scenario).members


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **BOUNDARY_SETTINGS)
@given(scenario=boundary_scenarios())
def test_clickhouse_gives_the_reference_members_at_boundaries(
    clickhouse: ChDBEngine, scenario: Scenario
) -> None:
    """Values on and next to each bound (test_differential_boundaries.py), on ClickHouse."""
    check(clickhouse, scenario)
