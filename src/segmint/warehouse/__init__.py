"""The analytics store: events, identities, profiles, memberships, behind one engine interface."""

from segmint.warehouse.duckdb import DuckDBEngine, open_warehouse
from segmint.warehouse.engine import Engine

__all__ = ["DuckDBEngine", "Engine", "open_warehouse"]
