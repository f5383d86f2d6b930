"""The catalog: small transactional metadata (write keys, audiences, destinations, logs)
through SQLAlchemy 2, migrated with Alembic. SQLite by default, PostgreSQL in production."""

from segmint.catalog.db import Catalog, open_catalog

__all__ = ["Catalog", "open_catalog"]
