"""The compiled SQL against the reference evaluator, on generated definitions and data.

Hypothesis draws a clock (``as_of`` near DST changes and month ends, a workspace zone), a
random definition (every condition kind and operator, nested and negated groups, relative,
calendar and absolute windows, references to other audiences) and random warehouse rows
clustered around the definition's own window bounds. The members from DuckDB must equal the
members from tests/reference/evaluator.py, profile for profile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from segmint.audiences.refresh import RefreshTarget, write_membership
from segmint.compiler import compile_definition, compile_node_query, to_sql
from segmint.definitions import iter_nodes
from segmint.warehouse import DuckDBEngine, Engine, open_warehouse
from tests.reference.evaluator import Evaluation, evaluate
from tests.reference.loading import load_scenario
from tests.reference.strategies import Scenario, scenarios

# At least 300 definitions per CI run (issue 3); each also transpiles to the other dialects.
# SEGMINT_DIFFERENTIAL_EXAMPLES=5000 hunts longer locally.
EXAMPLES = int(os.environ.get("SEGMINT_DIFFERENTIAL_EXAMPLES", "300"))
OTHER_DIALECTS = ("clickhouse", "spark")
UNDONE_AUDIENCE = 999_999  # no generated definition refers to it


def load(engine: Engine, scenario: Scenario) -> None:
    load_scenario(engine, scenario.profiles, scenario.events)


def compiled_query(engine: Engine, scenario: Scenario, node: Any = None) -> str:
    """The SQL compiled for the engine's dialect, of the whole definition or of one node."""
    options: dict[str, Any] = dict(
        as_of=scenario.as_of,
        timezone=scenario.timezone,
        dialect=engine.dialect,
        resolve_audience=scenario.audiences.get,
    )
    query = (
        compile_definition(scenario.definition, **options)
        if node is None
        else compile_node_query(node, **options)
    )
    return to_sql(query, engine.dialect)


def compiled_members(engine: Engine, scenario: Scenario, node: Any = None) -> set[int]:
    """Members from the SQL compiled for the engine's dialect (of the whole definition, or
    of one node)."""
    return {row[0] for row in engine.rows(compiled_query(engine, scenario, node))}


def compiled_members_of(engine: Engine, scenario: Scenario, nodes: list[Any]) -> list[set[int]]:
    """:func:`compiled_members` of each of ``nodes`` (``None`` for the whole definition), from
    few queries: each compiled query unchanged, as a subquery of a ``UNION ALL`` whose rows
    carry the subquery's place, up to ~200 KB of SQL per query. (Spark spends ~0.4 s on a
    query however small, so combining a definition's nodes halves the time of a scenario
    there.)"""
    parts = [
        f"SELECT {place} AS place, profile_id FROM ({compiled_query(engine, scenario, node)}) "
        f"AS q{place}"
        for place, node in enumerate(nodes)
    ]
    members: list[set[int]] = [set() for _ in nodes]
    while parts:
        size, count = len(parts[0]), 1
        while count < len(parts) and size + len(parts[count]) <= _UNION_SIZE:
            size, count = size + len(parts[count]), count + 1
        for place, profile_id in engine.rows(" UNION ALL ".join(parts[:count])):
            members[place].add(profile_id)
        del parts[:count]
    return members


_UNION_SIZE = 200_000


class _Undo(Exception):
    """Rolls back what :func:`refreshed_members` wrote."""


def refreshed_members(engine: DuckDBEngine, scenario: Scenario) -> set[int]:
    """Members as a refresh stores them: the compiled query folded into membership words
    (its duplicate removal dropped, see ``refresh.folding_duplicates``), read back through
    ``audience_members`` — then rolled back, so the scenario's data stays as generated."""
    query = compile_definition(
        scenario.definition,
        as_of=scenario.as_of,
        timezone=scenario.timezone,
        resolve_audience=scenario.audiences.get,
    )
    target = RefreshTarget(UNDONE_AUDIENCE, "refreshed", 1, scenario.definition)
    members: set[int] = set()
    try:
        with engine.transaction():
            write_membership(engine, target, "differential", query, scenario.as_of, scenario.as_of)
            rows = engine.rows(
                "SELECT profile_id FROM audience_members WHERE audience_id = ?", [UNDONE_AUDIENCE]
            )
            members = {row[0] for row in rows}
            raise _Undo
    except _Undo:
        pass
    return members


@pytest.fixture(scope="module")
def engine() -> Iterator[DuckDBEngine]:
    warehouse = open_warehouse(None)
    try:
        yield warehouse
    finally:
        warehouse.close()


def reference(scenario: Scenario) -> Evaluation:
    return evaluate(
        scenario.definition,
        events=scenario.events,
        profiles=scenario.profiles,
        as_of=scenario.as_of,
        timezone=scenario.timezone,
        audiences=scenario.audiences,
    )


_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **_SETTINGS)
@given(scenario=scenarios())
def test_compiled_sql_gives_the_reference_members(engine: DuckDBEngine, scenario: Scenario) -> None:
    """Whole definitions, and every node of them on its own (the per-condition counts of
    Run Query and the node values of explain rest on those)."""
    load(engine, scenario)
    expected = reference(scenario)
    for dialect in OTHER_DIALECTS:  # each dialect's own SQL must transpile without error
        to_sql(
            compile_definition(
                scenario.definition,
                as_of=scenario.as_of,
                timezone=scenario.timezone,
                dialect=dialect,
                resolve_audience=scenario.audiences.get,
            ),
            dialect,
        )
    actual = compiled_members(engine, scenario)
    assert actual == expected.members, (
        f"only in SQL: {sorted(actual - expected.members)}, "
        f"only in reference: {sorted(expected.members - actual)}"
    )
    refreshed = refreshed_members(engine, scenario)
    assert refreshed == expected.members, (
        f"refreshed: only in SQL: {sorted(refreshed - expected.members)}, "
        f"only in reference: {sorted(expected.members - refreshed)}"
    )
    for path, node in iter_nodes(scenario.definition.root):
        assert node.id is not None
        actual = compiled_members(engine, scenario, node)
        assert actual == expected.nodes[node.id], (
            f"node {path}: only in SQL: {sorted(actual - expected.nodes[node.id])}, "
            f"only in reference: {sorted(expected.nodes[node.id] - actual)}"
        )


@pytest.mark.shortened("test_compiled_sql_gives_the_reference_members")
@settings(max_examples=25, **_SETTINGS)
@given(scenario=scenarios(max_depth=1))
def test_compiled_sql_gives_the_reference_members_quick(
    engine: DuckDBEngine, scenario: Scenario
) -> None:
    """A short run of the same check for every test run (the slow one runs in CI)."""
    load(engine, scenario)
    expected = reference(scenario).members
    assert compiled_members(engine, scenario) == expected
    assert refreshed_members(engine, scenario) == expected
