"""The analytics store: events, identities, profiles, memberships, behind one engine interface."""

from segmint.warehouse.engine import Engine
from segmint.warehouse.duckdb import DuckDBEngine, open_warehouse

__all__ = ["DuckDBEngine", "Engine", "open_warehouse"]
