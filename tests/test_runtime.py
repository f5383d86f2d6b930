"""Opening the runtime: a data directory or warehouse that cannot be written is refused as
such, before DuckDB's error (which reads like a damaged file) and its advice."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmint.errors import NotWritable, NoWarehouse
from segmint.runtime import Runtime
from segmint.settings import Settings
from tests.catalog.read_only import read_only_mounted


def test_a_warehouse_on_a_read_only_file_system_is_refused_with_what_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    Runtime.open(settings).close()
    read_only_mounted(monkeypatch, settings.data_dir)
    with pytest.raises(NotWritable) as refused:
        Runtime.open(settings)
    said = refused.value.message
    assert said.startswith(f"cannot write to {settings.data_dir}: read-only file system")
    assert "move it aside" not in said and "new warehouse" not in said


def test_a_warehouse_elsewhere_that_cannot_be_written_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ro").mkdir()
    settings = Settings(data_dir=tmp_path / "data", warehouse_path=tmp_path / "ro" / "w.duckdb")
    read_only_mounted(monkeypatch, tmp_path / "ro")
    with pytest.raises(NotWritable, match=r"/ro: read-only file system"):
        Runtime.open(settings)


def test_opening_to_read_makes_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "typo")
    with pytest.raises(NoWarehouse):
        Runtime.open(settings, read_only=True)
    assert not settings.data_dir.exists()
