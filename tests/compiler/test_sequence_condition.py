"""kind: sequence — A then B within a span, and A not followed by B (abandonment).

Every example runs twice: SQL compiled for DuckDB (ASOF joins) and portable SQL (window
functions, what Spark gets), both executed on DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from segmint.compiler import compile_definition, to_sql
from segmint.definitions import parse_definition
from segmint.warehouse import open_warehouse
from tests.compiler.fixtures import AS_OF, Warehouse, at


def seq(
    within: dict[str, Any] | None = None, followed: bool = True, **extra: Any
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "kind": "sequence",
        "first": {"event": "product_viewed"},
        "then": {"event": "order_completed"},
        "followed": followed,
        **extra,
    }
    if within:
        node["within"] = within
    return node


DAY = {"amount": 1, "unit": "days"}


@pytest.fixture(params=["duckdb", "portable"])
def wh(request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    """A fresh warehouse whose ``members`` use one of the two SQL forms."""
    engine = open_warehouse(None)
    try:
        warehouse = Warehouse(engine)
        warehouse.form = request.param
        yield warehouse
    finally:
        engine.close()


@pytest.fixture
def shoppers(wh: Warehouse) -> Warehouse:
    for pid in range(1, 8):
        wh.profile(pid)
    # 1: viewed, bought 2 hours later
    wh.event(1, "product_viewed", at(10))
    wh.event(1, "order_completed", at(10, hours=-2))
    # 2: viewed, bought 3 days later
    wh.event(2, "product_viewed", at(10))
    wh.event(2, "order_completed", at(7))
    # 3: bought, then viewed (wrong order)
    wh.event(3, "order_completed", at(10))
    wh.event(3, "product_viewed", at(9))
    # 4: viewed and bought at the same instant (not strictly after)
    wh.event(4, "product_viewed", at(10))
    wh.event(4, "order_completed", at(10))
    # 5: viewed 2 hours ago, nothing since (span not over yet)
    wh.event(5, "product_viewed", at(0, hours=2))
    # 6: viewed, bought exactly 1 day later (span end is inclusive)
    wh.event(6, "product_viewed", at(10))
    wh.event(6, "order_completed", at(9))
    # 7: viewed twice; the second view is not followed within a day
    wh.event(7, "product_viewed", at(20))
    wh.event(7, "order_completed", at(20, hours=-1))
    wh.event(7, "product_viewed", at(15))
    return wh


def test_then_without_span(shoppers: Warehouse) -> None:
    assert shoppers.members(seq()) == {1, 2, 6, 7}


def test_then_within_one_day(shoppers: Warehouse) -> None:
    assert shoppers.members(seq(DAY)) == {1, 6, 7}


def test_not_followed_within_one_day(shoppers: Warehouse) -> None:
    # 5 is not yet abandoned: its day has not passed at as_of
    assert shoppers.members(seq(DAY, followed=False)) == {2, 3, 4, 7}


def test_not_followed_at_all(shoppers: Warehouse) -> None:
    assert shoppers.members(seq(followed=False)) == {3, 4, 5, 7}


def test_sequence_window_applies_to_both_steps(shoppers: Warehouse) -> None:
    # last 10 days starts exactly at the views of 1, 2, 4, 6 (start inclusive)
    ten = {"type": "relative", "last": 10, "unit": "days"}
    assert shoppers.members(seq(window=ten)) == {1, 2, 6}
    # last 9 days: only 3's view (9 days ago) and 5's view are A events in the window
    nine = {"type": "relative", "last": 9, "unit": "days"}
    assert shoppers.members(seq(DAY, followed=False, window=nine)) == {3}
    eight = {"type": "relative", "last": 8, "unit": "days"}
    assert shoppers.members(seq(window=eight)) == set()


def test_same_event_twice_in_sequence(wh: Warehouse) -> None:
    wh.profile(1)
    wh.profile(2)
    wh.event(1, "page", at(3))
    wh.event(1, "page", at(3, hours=-1))
    wh.event(2, "page", at(3))
    node = {
        "kind": "sequence",
        "first": {"event": "page"},
        "then": {"event": "page"},
        "within": {"amount": 2, "unit": "hours"},
    }
    assert wh.members(node) == {1}


def test_step_filters(wh: Warehouse) -> None:
    wh.profile(1)
    wh.profile(2)
    wh.event(1, "add_to_cart", at(3), {"sku": "A"})
    wh.event(1, "order_completed", at(2), {"sku": "B"})
    wh.event(2, "add_to_cart", at(3), {"sku": "A"})
    wh.event(2, "order_completed", at(2), {"sku": "A"})
    node = {
        "kind": "sequence",
        "first": {
            "event": "add_to_cart",
            "filters": [{"property": "sku", "operator": "equals", "value": "A"}],
        },
        "then": {
            "event": "order_completed",
            "filters": [{"property": "sku", "operator": "equals", "value": "A"}],
        },
        "within": DAY | {"amount": 2},
        "followed": False,
    }
    assert wh.members(node) == {1}


def test_not_followed_observation_ends_at_window_end(wh: Warehouse) -> None:
    wh.profile(1)
    wh.event(1, "product_viewed", AS_OF.replace(day=1, hour=0))
    window = {"type": "absolute", "from": "2025-03-01", "to": "2025-03-01T12:00:00"}
    assert wh.members(seq(DAY, followed=False, window=window)) == set()
    window = {"type": "absolute", "from": "2025-03-01", "to": "2025-03-02T00:00:01"}
    assert wh.members(seq(DAY, followed=False, window=window)) == {1}


def _sql(node: dict[str, Any], dialect: str | None, render: str) -> str:
    definition = parse_definition({"version": 1, "root": node})
    return to_sql(
        compile_definition(definition, as_of=AS_OF, timezone="UTC", dialect=dialect), render
    )


@pytest.mark.parametrize("followed", [True, False])
def test_sequence_form_follows_the_dialect(followed: bool) -> None:
    node = seq(DAY, followed=followed)
    for dialect in ("duckdb", "clickhouse"):
        assert " ASOF " in _sql(node, dialect, dialect)
    for dialect, render in ((None, "duckdb"), ("spark", "spark"), (None, "clickhouse")):
        sql = _sql(node, dialect, render)
        assert "ASOF" not in sql and " OVER (" in sql


def test_asof_query_refuses_a_dialect_without_asof_joins() -> None:
    definition = parse_definition({"version": 1, "root": seq(DAY)})
    query = compile_definition(definition, as_of=AS_OF, timezone="UTC", dialect="duckdb")
    with pytest.raises(ValueError, match="dialect='spark'"):
        to_sql(query, "spark")


def test_abandonment_with_an_unmatched_next_event_in_both_forms(wh: Warehouse) -> None:
    # 1: viewed, never bought; 2: viewed, bought much later; 3: bought just before viewing
    for pid in (1, 2, 3):
        wh.profile(pid)
    wh.event(1, "product_viewed", at(5))
    wh.event(2, "product_viewed", at(5))
    wh.event(2, "order_completed", at(2))
    wh.event(3, "order_completed", at(5, seconds=1))
    wh.event(3, "product_viewed", at(5))
    assert wh.members(seq(DAY, followed=False)) == {1, 2, 3}
    assert wh.members(seq(DAY)) == set()
