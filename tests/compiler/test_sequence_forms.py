"""Both SQL forms of sequence conditions against the reference evaluator.

Sequences with a span compile to ASOF joins for DuckDB and ClickHouse and to window
functions for other dialects (src/segmint/compiler/sequence.py). Here both forms run on
DuckDB (the window form by compiling with ``dialect=None``) over sequence-heavy generated
definitions and over planted boundary cases (pairs exactly ``within`` apart, a microsecond
either side, spans ending exactly at the window end). Each form must give the reference
members, for the whole definition and for every node. The transpile of each dialect's own
form is checked too.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from segmint.compiler import compile_definition, compile_node_query, to_sql
from segmint.definitions import iter_nodes
from segmint.warehouse import DuckDBEngine
from tests.compiler.test_differential import OTHER_DIALECTS, engine, load, reference
from tests.reference.strategies import (
    Scenario,
    sequence_boundary_scenarios,
    sequence_scenarios,
)

__all__ = ["engine"]  # the module-scoped warehouse fixture of test_differential

# A quarter of SEGMINT_DIFFERENTIAL_EXAMPLES (75 sequence-heavy and 75 boundary definitions
# per run, each in both forms, for the whole definition and every node): test_differential.py's
# 300 cover sequences among every other kind of condition.
EXAMPLES = int(os.environ.get("SEGMINT_DIFFERENTIAL_EXAMPLES", "300")) // 4
FORMS = {"asof": "duckdb", "window": None}  # form → the dialect compiled for
_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _members(
    engine: DuckDBEngine, scenario: Scenario, dialect: str | None, node: object
) -> set[int]:
    if node is None:
        query = compile_definition(
            scenario.definition, as_of=scenario.as_of, timezone=scenario.timezone, dialect=dialect
        )
    else:
        query = compile_node_query(
            node,  # type: ignore[arg-type]
            as_of=scenario.as_of,
            timezone=scenario.timezone,
            dialect=dialect,
        )
    return {row[0] for row in engine.rows(to_sql(query, "duckdb"))}


def check_both_forms(engine: DuckDBEngine, scenario: Scenario) -> None:
    """Each form, for the definition and each node, gives the reference members."""
    load(engine, scenario)
    expected = reference(scenario)
    for dialect in OTHER_DIALECTS:
        query = compile_definition(
            scenario.definition, as_of=scenario.as_of, timezone=scenario.timezone, dialect=dialect
        )
        to_sql(query, dialect)  # each dialect's own form transpiles
    targets = [("root", None, expected.members)]
    for path, node in iter_nodes(scenario.definition.root):
        assert node.id is not None
        targets.append((path, node, expected.nodes[node.id]))
    for form, dialect in FORMS.items():
        for path, node, wanted in targets:
            actual = _members(engine, scenario, dialect, node)
            assert actual == wanted, (
                f"{form} form, {path}: only in SQL: {sorted(actual - wanted)}, "
                f"only in reference: {sorted(wanted - actual)}; definition "
                f"{scenario.definition.model_dump_json(by_alias=True, exclude_none=True)}"
            )


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **_SETTINGS)
@given(scenario=sequence_scenarios())
def test_both_sequence_forms_give_the_reference_members(
    engine: DuckDBEngine, scenario: Scenario
) -> None:
    check_both_forms(engine, scenario)


@pytest.mark.slow
@settings(max_examples=EXAMPLES, phases=(Phase.explicit, Phase.reuse, Phase.generate), **_SETTINGS)
@given(scenario=sequence_boundary_scenarios())
def test_both_sequence_forms_give_the_reference_members_at_boundaries(
    engine: DuckDBEngine, scenario: Scenario
) -> None:
    check_both_forms(engine, scenario)


@pytest.mark.shortened("test_both_sequence_forms_give_the_reference_members")
@settings(max_examples=15, **_SETTINGS)
@given(scenario=sequence_scenarios(max_depth=1))
def test_both_sequence_forms_quick(engine: DuckDBEngine, scenario: Scenario) -> None:
    """A short run of the same checks for every test run (the slow ones run in CI)."""
    check_both_forms(engine, scenario)


@pytest.mark.shortened("test_both_sequence_forms_give_the_reference_members_at_boundaries")
@settings(max_examples=15, phases=(Phase.explicit, Phase.reuse, Phase.generate), **_SETTINGS)
@given(scenario=sequence_boundary_scenarios())
def test_both_sequence_forms_at_boundaries_quick(engine: DuckDBEngine, scenario: Scenario) -> None:
    check_both_forms(engine, scenario)
