"""Fixtures for compiler tests: a fresh in-memory warehouse per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from segmint.warehouse import open_warehouse
from tests.compiler.fixtures import Warehouse


@pytest.fixture
def wh() -> Iterator[Warehouse]:
    engine = open_warehouse(None)
    try:
        yield Warehouse(engine)
    finally:
        engine.close()
