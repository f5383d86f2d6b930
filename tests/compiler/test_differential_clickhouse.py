"""The same audiences give the same members on ClickHouse (PRODUCT B7).

The differential check of test_differential.py, run on embedded ClickHouse (chDB): each
generated definition is compiled for the ``clickhouse`` dialect, run on the generated rows
loaded into ClickHouse's tables (segmint.warehouse.clickhouse), and its members — of the
whole definition and of every node — must equal the reference evaluator's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from segmint.compiler import compile_definition, compile_node_query, to_sql
from segmint.definitions import iter_nodes
from segmint.warehouse.clickhouse import ChDBEngine
from tests.compiler.test_differential import reference
from tests.reference.loading import load_scenario
from tests.reference.strategies import Scenario, scenarios

EXAMPLES = int(os.environ.get("SEGMINT_DIFFERENTIAL_EXAMPLES", "300"))
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


def members(engine: ChDBEngine, scenario: Scenario, node: Any = None) -> set[int]:
    options: dict[str, Any] = dict(
        as_of=scenario.as_of,
        timezone=scenario.timezone,
        dialect="clickhouse",
        resolve_audience=scenario.audiences.get,
    )
    query = (
        compile_definition(scenario.definition, **options)
        if node is None
        else compile_node_query(node, **options)
    )
    return {row[0] for row in engine.rows(to_sql(query, "clickhouse"))}


def _differences(actual: set[int], expected: set[int]) -> str:
    return (
        f"only on ClickHouse: {sorted(actual - expected)}, "
        f"only in reference: {sorted(expected - actual)}"
    )


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **_SETTINGS)
@given(scenario=scenarios())
def test_clickhouse_gives_the_reference_members(clickhouse: ChDBEngine, scenario: Scenario) -> None:
    load_scenario(clickhouse, scenario.profiles, scenario.events)
    expected = reference(scenario)
    actual = members(clickhouse, scenario)
    assert actual == expected.members, _differences(actual, expected.members)
    for path, node in iter_nodes(scenario.definition.root):
        assert node.id is not None
        actual = members(clickhouse, scenario, node)
        assert actual == expected.nodes[node.id], f"node {path}: " + _differences(
            actual, expected.nodes[node.id]
        )


@settings(max_examples=25, **_SETTINGS)
@given(scenario=scenarios(max_depth=1))
def test_clickhouse_gives_the_reference_members_quick(
    clickhouse: ChDBEngine, scenario: Scenario
) -> None:
    """A short run of the same check for every test run (the slow one runs in CI)."""
    load_scenario(clickhouse, scenario.profiles, scenario.events)
    assert members(clickhouse, scenario) == reference(scenario).members
