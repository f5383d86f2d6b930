"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

from segmint.catalog import open_catalog
from segmint.settings import Settings


@pytest.fixture
def workspace(settings: Settings) -> Settings:
    """A data directory holding an empty catalog and no warehouse yet, as `segmint keys
    create` leaves a new one: commands that only read accept it (a data directory without
    Segmint data is refused)."""
    settings.ensure_data_dir()
    open_catalog(settings.catalog_database_url).dispose()
    return settings
