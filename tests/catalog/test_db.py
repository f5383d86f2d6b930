"""Opening the catalog: migrated to the newest schema, without Alembic once it is there."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from segmint.catalog import open_catalog
from segmint.catalog.db import HEAD_REVISION, alembic_config, sqlite_file
from segmint.catalog.keys import create_key, list_keys
from segmint.errors import NotWritable, SegmintError, StorageUnavailable
from tests.catalog.read_only import read_only_mounted


def test_the_head_revision_is_the_newest_migration() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_current_head() == HEAD_REVISION


def _revision(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [
                r[0] for r in connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            ]
    finally:
        engine.dispose()


def test_an_older_catalog_is_upgraded_and_one_at_the_head_opened_without_alembic(
    catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_catalog(catalog_url).dispose()  # a new catalog: every migration runs
    assert _revision(catalog_url) == [HEAD_REVISION]

    config = alembic_config(catalog_url)
    command.downgrade(config, "-1")  # as a catalog of the previous release
    assert _revision(catalog_url) != [HEAD_REVISION]
    catalog = open_catalog(catalog_url)
    assert _revision(catalog_url) == [HEAD_REVISION]
    with catalog.engine.connect() as connection:  # the newest migration's columns are back
        columns = {c["name"] for c in sa.inspect(connection).get_columns("audience_links")}
    assert "in_flight" in columns
    catalog.dispose()

    def no_alembic(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Alembic ran on a catalog already at the newest schema")

    monkeypatch.setattr(command, "upgrade", no_alembic)
    open_catalog(catalog_url).dispose()
    command.downgrade(config, "-1")
    with pytest.raises(AssertionError, match="Alembic ran"):  # it does run when needed
        open_catalog(catalog_url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("foo://x", "'foo://x' is not one Segmint can use (Can't load plugin"),
        ("not a url", "'not a url' is not one Segmint can use (Could not parse"),
        ("mysql+pymysql://u:p@h/db", "needs the Python module 'pymysql', which is not installed"),
        (
            "postgresql+psycopg://u:secret@127.0.0.1:1/db",
            "cannot open the catalog at postgresql+psycopg://u:***@127.0.0.1:1/db "
            "(SEGMINT_CATALOG_URL): connection failed",
        ),
    ],
)
def test_a_catalog_url_it_cannot_use_or_reach_is_one_clear_error(url: str, words: str) -> None:
    with pytest.raises(SegmintError) as raised:
        open_catalog(url)
    assert words in raised.value.message
    assert "secret" not in raised.value.message  # passwords are never shown


def test_a_damaged_sqlite_catalog_says_to_move_it_aside(tmp_path: Path) -> None:
    damaged = tmp_path / "catalog.db"
    damaged.write_bytes(b"not a database, whatever it was" * 100)
    with pytest.raises(StorageUnavailable, match=r"file is not a database\. If the file is dam"):
        open_catalog(f"sqlite:///{damaged}")
    assert damaged.read_bytes().startswith(b"not a database")  # left as it was


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("sqlite:////data/catalog.db", "/data/catalog.db"),
        ("sqlite:///relative/catalog.db", "relative/catalog.db"),
        ("sqlite:///file:/data/catalog.db?mode=ro&uri=true", "/data/catalog.db"),
        ("sqlite:///file:/data/my%20catalog.db?uri=true", "/data/my catalog.db"),
        ("sqlite:///file:memdb?mode=memory&uri=true", None),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://u:p@h/db", None),
        ("not a url", None),
    ],
)
def test_the_file_of_a_sqlite_catalog_url(url: str, file: str | None) -> None:
    assert sqlite_file(url) == (Path(file) if file else None)


def test_a_catalog_opened_read_only_refuses_writes_saying_so_without_the_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog.db"
    open_catalog(f"sqlite:///{path}").dispose()
    monkeypatch.chdir(tmp_path)
    catalog = open_catalog(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert not (tmp_path / "file:").exists()  # the URI form names the file, not a folder
    assert list_keys(catalog) == []  # reading works
    with pytest.raises(NotWritable) as refused:
        create_key(catalog, "website", "write")
    catalog.dispose()
    said = refused.value.message
    assert said == (
        f"cannot write to {path}: the database is read-only — check its permissions or "
        "choose another --data-dir (SEGMINT_DATA_DIR)"
    )


def test_database_errors_never_carry_the_parameters(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    with pytest.raises(sa.exc.StatementError) as raised, catalog.session() as session:
        session.execute(sa.text("INSERT INTO nowhere VALUES (:secret)"), {"secret": "hash123"})
    catalog.dispose()
    assert "hash123" not in str(raised.value)


def test_a_directory_where_the_catalog_file_should_be_is_not_called_damaged(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "catalog.db"
    folder.mkdir()
    with pytest.raises(StorageUnavailable) as raised:
        open_catalog(f"sqlite:///{folder}")
    said = raised.value.message
    assert "That is a directory: point SEGMINT_CATALOG_URL or --data-dir at the catalog" in said
    assert "move it aside" not in said and "backup" not in said


def test_a_catalog_on_a_read_only_file_system_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What SQLite says of a catalog in WAL mode on a file system mounted read-only (it
    cannot make the -shm file it needs even to read), on a folder that reports so."""
    path = tmp_path / "catalog.db"
    open_catalog(f"sqlite:///{path}").dispose()

    def read_only_connect(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite3.dbapi2, "connect", read_only_connect)
    read_only_mounted(monkeypatch, tmp_path)
    with pytest.raises(NotWritable) as refused:
        open_catalog(f"sqlite:///{path}")
    said = refused.value.message
    assert said.startswith(f"cannot write to {tmp_path}: read-only file system — check its")
    assert "move it aside" not in said and "backup" not in said
