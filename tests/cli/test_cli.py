"""The command line, run through Typer's runner: keys, import, generate, friendly errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from segmint.cli import data as cli_data
from segmint.cli.main import app
from segmint.collect.importer import import_file
from segmint.settings import Settings
from segmint.warehouse import open_warehouse

runner = CliRunner()


def test_keys_create_list_revoke(settings: Settings) -> None:
    created = runner.invoke(app, ["keys", "create", "website"])
    assert created.exit_code == 0, created.output
    assert "sgw_" in created.output
    listed = runner.invoke(app, ["keys", "list"])
    assert "website" in listed.output
    assert runner.invoke(app, ["keys", "revoke", "1"]).exit_code == 0
    missing = runner.invoke(app, ["keys", "revoke", "42"])
    assert missing.exit_code == 2
    assert "no key with id 42" in missing.output


def test_keys_create_refuses_a_bad_scope(settings: Settings) -> None:
    result = runner.invoke(app, ["keys", "create", "x", "--scope", "root"])
    assert result.exit_code == 2
    assert "scope must be" in result.output
    assert "Traceback" not in result.output


def test_import_prints_a_summary(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(
        orjson.dumps({"type": "track", "event": "a", "userId": "u", "messageId": "1"})
        + b"\n"
        + orjson.dumps({"type": "track", "userId": "u"})
        + b"\n"
    )
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output and "rejected" in result.output
    assert "track needs an event name" in result.output
    assert (tmp_path / "e.jsonl.rejected.jsonl").exists()


def test_import_takes_the_number_of_preparation_processes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(orjson.dumps({"type": "track", "event": "a", "userId": "u"}) + b"\n")
    seen: list[int | None] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["processes"])
        return import_file(*args, **kwargs)

    monkeypatch.setattr(cli_data, "import_file", recording)
    assert runner.invoke(app, ["import", str(path), "--processes", "0"]).exit_code == 0
    assert runner.invoke(app, ["import", str(path)]).exit_code == 0
    assert seen == [0, None]  # None: one per core for files of more than one chunk
    refused = runner.invoke(app, ["import", str(path), "--processes", "-1"])
    assert refused.exit_code == 2 and "--processes" in refused.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["import", "/nonexistent/file.jsonl"], "no such file"),
        (["import", "README"], "cannot tell the format"),
    ],
)
def test_import_errors_are_clear(
    settings: Settings, args: list[str], words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README").write_text("x")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert words in result.output


def test_generate_loads_the_warehouse(settings: Settings) -> None:
    result = runner.invoke(app, ["generate", "--users", "40", "--days", "5", "--seed", "3"])
    assert result.exit_code == 0, result.output
    engine = open_warehouse(settings.warehouse_file, read_only=True)
    (events, profiles) = engine.rows(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM profiles)"
    )[0]
    engine.close()
    assert events > 40 and 0 < profiles <= 80


def test_generate_to_a_file(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "shop.jsonl"
    result = runner.invoke(app, ["generate", "--users", "10", "--days", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_bytes().splitlines()
    assert lines and all("messageId" in orjson.loads(line) for line in lines)


def test_bad_setting_is_reported(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMINT_TIMEZONE", "Mars/Olympus")
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 2
    assert "unknown time zone" in result.output
