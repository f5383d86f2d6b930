"""Write and admin keys in the catalog."""

from __future__ import annotations

import pytest

from segmint.catalog import open_catalog
from segmint.catalog.keys import KeyChecker, create_key, list_keys, revoke_key
from segmint.errors import InvalidInput, NotFound, Unauthorized


@pytest.fixture
def catalog(catalog_url: str):  # type: ignore[no-untyped-def]
    catalog = open_catalog(catalog_url)
    yield catalog
    catalog.dispose()


def test_keys_are_shown_once_and_stored_hashed(catalog) -> None:  # type: ignore[no-untyped-def]
    info, key = create_key(catalog, "website")
    assert key.startswith("sgw_") and info.key_prefix == key[:12]
    with catalog.engine.connect() as con:
        stored = con.exec_driver_sql("SELECT key_hash FROM keys").scalar_one()
    assert key not in stored and len(stored) == 64
    assert [k.name for k in list_keys(catalog)] == ["website"]


def test_checker_accepts_valid_and_refuses_revoked_keys(catalog) -> None:  # type: ignore[no-untyped-def]
    info, key = create_key(catalog, "website")
    checker = KeyChecker(catalog, "write", ttl_seconds=0)
    assert checker.name_for(key, 0) == "website"
    revoke_key(catalog, info.id)
    with pytest.raises(Unauthorized, match="revoked"):
        checker.name_for(key, 1)


def test_scopes_do_not_mix(catalog) -> None:  # type: ignore[no-untyped-def]
    _, admin = create_key(catalog, "ops", "admin")
    with pytest.raises(Unauthorized):
        KeyChecker(catalog, "write").name_for(admin, 0)
    assert KeyChecker(catalog, "admin").name_for(admin, 0) == "ops"


@pytest.mark.parametrize(
    ("name", "scope", "words"),
    [
        ("", "write", "name of 1 to 100"),
        ("x" * 101, "write", "name of 1 to 100"),
        ("ok", "root", "scope must be"),
    ],
)
def test_bad_key_requests(catalog, name: str, scope: str, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=words):
        create_key(catalog, name, scope)


def test_revoking_an_unknown_key(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound, match="no key with id 99"):
        revoke_key(catalog, 99)
