"""Opening the catalog: migrated to the newest schema, without Alembic once it is there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from segmint.catalog import open_catalog
from segmint.catalog.db import HEAD_REVISION, alembic_config
from segmint.errors import SegmintError, StorageUnavailable


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
