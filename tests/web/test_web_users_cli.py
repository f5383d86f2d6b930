"""``segmint users`` and the demo's web login."""

from __future__ import annotations

import json
import stat

from typer.testing import CliRunner

from segmint.catalog import open_catalog
from segmint.catalog.accounts import authenticate
from segmint.cli.main import app
from segmint.settings import Settings

runner = CliRunner()


def test_users_create_with_password_stdin_then_sign_in(settings: Settings) -> None:
    created = runner.invoke(
        app, ["users", "create", "alice", "--password-stdin"], input="a-long-password\n"
    )
    assert created.exit_code == 0, created.output
    assert "Created user alice" in created.output
    catalog = open_catalog(settings.catalog_database_url)
    try:
        assert authenticate(catalog, "alice", "a-long-password") is not None
        assert authenticate(catalog, "alice", "a-long-passwor") is None
    finally:
        catalog.dispose()
    listed = runner.invoke(app, ["users", "list"])
    assert "alice" in listed.output
    assert "a-long-password" not in listed.output


def test_users_create_refuses_duplicates_and_short_passwords(settings: Settings) -> None:
    ok = runner.invoke(app, ["users", "create", "bob", "--password-stdin"], input="x" * 12 + "\n")
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["users", "create", "Bob", "--password-stdin"], input="y" * 12)
    assert again.exit_code == 2
    assert "already exists" in again.output
    short = runner.invoke(app, ["users", "create", "carol", "--password-stdin"], input="short\n")
    assert short.exit_code == 2
    assert "too short" in short.output
    assert "Traceback" not in short.output


def test_users_create_without_a_terminal_says_how(settings: Settings) -> None:
    result = runner.invoke(app, ["users", "create", "dave"], input="")
    assert result.exit_code == 2
    assert "--password-stdin" in result.output


def test_set_password(settings: Settings) -> None:
    runner.invoke(app, ["users", "create", "erin", "--password-stdin"], input="first-password\n")
    changed = runner.invoke(
        app, ["users", "set-password", "erin", "--password-stdin"], input="second-password\n"
    )
    assert changed.exit_code == 0, changed.output
    catalog = open_catalog(settings.catalog_database_url)
    try:
        assert authenticate(catalog, "erin", "second-password") is not None
        assert authenticate(catalog, "erin", "first-password") is None
    finally:
        catalog.dispose()


def test_demo_creates_and_prints_a_web_login(settings: Settings) -> None:
    args = ["demo", "--users", "20", "--days", "5", "--no-serve"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    keys_file = settings.data_dir / "demo-keys.json"
    keys = json.loads(keys_file.read_text())
    assert keys["web_user"] == "admin"
    password = keys["web_password"]
    assert len(password) >= 12
    assert password in first.output
    assert "/login" in first.output
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    catalog = open_catalog(settings.catalog_database_url)
    try:
        assert authenticate(catalog, "admin", password) is not None
    finally:
        catalog.dispose()
    second = runner.invoke(app, args)  # a second run keeps the same login
    assert second.exit_code == 0, second.output
    assert json.loads(keys_file.read_text())["web_password"] == password
    assert password in second.output
