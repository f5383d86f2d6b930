"""The data directory the settings point to: made when missing, refused when it cannot be
written or (for commands that make no data) holds no Segmint data."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from segmint.errors import InvalidInput, NoData, NotWritable
from segmint.settings import Settings
from tests.catalog.read_only import read_only_mounted


def test_the_data_directory_is_made_when_missing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "a" / "b")
    assert settings.ensure_data_dir().is_dir()


def test_a_file_in_the_way_of_the_data_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    settings = Settings(data_dir=tmp_path / "a-file" / "data")
    with pytest.raises(InvalidInput) as refused:
        settings.ensure_data_dir()
    assert refused.value.message == (
        f"cannot make the data directory {tmp_path}/a-file/data: {tmp_path}/a-file is a file, "
        "not a directory — choose another --data-dir (SEGMINT_DATA_DIR)"
    )


def test_a_data_directory_on_a_read_only_file_system_is_refused_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    read_only_mounted(monkeypatch, tmp_path)
    with pytest.raises(NotWritable) as refused:
        Settings(data_dir=tmp_path / "data").ensure_data_dir()
    assert refused.value.message == (
        f"cannot write to {tmp_path}/data: read-only file system — check its permissions or "
        "choose another --data-dir (SEGMINT_DATA_DIR)"
    )


def test_a_data_directory_that_cannot_be_made_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused_mkdir(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", refused_mkdir)
    with pytest.raises(NotWritable, match=r"/new: read-only file system — check its perm"):
        Settings(data_dir=tmp_path / "new").ensure_data_dir()


def test_holds_data_looks_for_the_warehouse_or_the_catalog(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert not settings.holds_data()  # missing
    settings.data_dir.mkdir()
    assert not settings.holds_data()  # empty
    (settings.data_dir / "catalog.db").write_text("")
    assert settings.holds_data()
    (settings.data_dir / "catalog.db").unlink()
    settings.warehouse_file.write_text("")
    assert settings.holds_data()
    elsewhere = Settings(data_dir=tmp_path / "data", catalog_url="postgresql+psycopg://h/db")
    settings.warehouse_file.unlink()
    assert elsewhere.holds_data()  # the catalog is elsewhere: the folder is what we know
    assert not Settings(data_dir=tmp_path / "typo", catalog_url="postgresql://h/db").holds_data()


def test_require_data_names_the_directory_and_how_to_make_data(tmp_path: Path) -> None:
    with pytest.raises(NoData) as refused:
        Settings(data_dir=tmp_path / "typo").require_data()
    assert refused.value.message == (
        f"no Segmint data in {tmp_path}/typo — check --data-dir / SEGMINT_DATA_DIR, or create "
        "it with `segmint demo` / `segmint generate`"
    )
    assert not (tmp_path / "typo").exists()
