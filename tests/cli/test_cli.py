"""The command line, run through Typer's runner: keys, import, generate, friendly errors."""

from __future__ import annotations

import errno
import gc
import gzip
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from segmint.cli import data as cli_data
from segmint.cli.main import app
from segmint.collect.importer import import_file
from segmint.settings import Settings
from segmint.warehouse import open_warehouse
from tests.catalog.read_only import read_only_mounted
from tests.conftest import free_port

runner = CliRunner()
TRACK = {"type": "track", "event": "viewed", "userId": "u1"}


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


def test_keys_list_without_keys_says_how_to_make_one(workspace: Settings) -> None:
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    said = " ".join(listed.output.split())
    assert said.startswith("No keys yet: `segmint keys create NAME` makes a write key")
    assert runner.invoke(app, ["keys", "create", "website"]).exit_code == 0
    assert "website" in runner.invoke(app, ["keys", "list"]).output


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


def _cut_gzip(path: Path) -> None:
    whole = gzip.compress(
        b"".join(orjson.dumps(TRACK | {"messageId": str(n)}) + b"\n" for n in range(500))
    )
    path.write_bytes(whole[: len(whole) // 2])


def _damaged_parquet(path: Path) -> None:
    """A Parquet file whose footer is sound and whose first column's data is not."""
    rows = [TRACK | {"messageId": f"m{n}"} for n in range(2000)]
    pq.write_table(pa.Table.from_pylist(rows), path, compression="none")
    data = bytearray(path.read_bytes())
    data[8:400] = b"\xff" * 392
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["import", "/nonexistent/file.jsonl"], "no such file"),
        (["import", "README"], "cannot tell the format"),
        (["import", "folder.jsonl"], "folder.jsonl is a directory: name a file in it"),
        (["import", "plain.jsonl.gz"], "plain.jsonl.gz is not a whole gzip file (Not a gzipped"),
        (["import", "cut.jsonl.gz"], "cut.jsonl.gz is not a whole gzip file (Compressed file"),
        (["import", "latin1.csv"], "latin1.csv is not UTF-8 text (byte 0xe9 cannot be read)"),
        (["generate", "--out", "nowhere/shop.jsonl"], "there is no directory nowhere"),
        (["import", "damaged.parquet"], "damaged.parquet could not be read to its end ("),
        (
            ["import", "ok.jsonl", "--rejected", "nowhere/rejected.jsonl"],
            "cannot write rejected rows to nowhere/rejected.jsonl: there is no directory nowhere",
        ),
        (
            ["import", "ok.jsonl", "--rejected", "folder.jsonl"],
            "cannot write rejected rows to folder.jsonl; choose a file with --rejected",
        ),
    ],
)
def test_import_errors_are_clear(
    settings: Settings, args: list[str], words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README").write_text("x")
    (tmp_path / "folder.jsonl").mkdir()
    (tmp_path / "plain.jsonl.gz").write_bytes(orjson.dumps(TRACK) + b"\n")
    _cut_gzip(tmp_path / "cut.jsonl.gz")
    (tmp_path / "latin1.csv").write_bytes(b"type,userId,event\ntrack,u1,caf\xe9\n")
    _damaged_parquet(tmp_path / "damaged.parquet")
    (tmp_path / "ok.jsonl").write_bytes(orjson.dumps(TRACK) + b"\n")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())  # as one line, however it wrapped
    assert "Unexpected" not in result.output and "Traceback" not in result.output
    if settings.warehouse_file.exists():  # (generating to a file does not open it)
        engine = open_warehouse(settings.warehouse_file, read_only=True)
        assert engine.rows("SELECT count(*) FROM events") == [(0,)]  # nothing half-imported
        engine.close()


def test_lines_that_are_not_utf8_are_rejected_and_the_rest_imported(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        orjson.dumps(TRACK | {"messageId": "a"})
        + b'\n{"type":"track","event":"caf\xe9","userId":"u"}\n'
        + orjson.dumps(TRACK | {"messageId": "b"})
        + b"\n"
    )
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    rejected = [orjson.loads(line) for line in (tmp_path / "mixed.jsonl.rejected.jsonl").open()]
    assert [(r["line"], r["reason"]) for r in rejected] == [
        (2, "not UTF-8 text (byte 0xe9 at byte 29 of the line): save the file as UTF-8")
    ]
    assert rejected[0]["row"] == '{"type":"track","event":"caf\ufffd","userId":"u"}'
    engine = open_warehouse(settings.warehouse_file, read_only=True)
    assert engine.rows("SELECT message_id FROM events ORDER BY 1") == [("a",), ("b",)]
    engine.close()


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


def test_serve_refuses_a_port_out_of_range(settings: Settings) -> None:
    result = runner.invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "less than or equal to 65535" in result.output


@pytest.fixture
def serve_in_process() -> Iterator[None]:
    """`segmint serve` run in the test's process: what it sets up for a server before it
    opens the warehouse (the segmint logger at INFO, the garbage collector tuned) is put back
    afterwards, for the tests that run next in this process."""
    level = logging.getLogger("segmint").level
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        logging.getLogger("segmint").setLevel(level)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@pytest.mark.usefixtures("serve_in_process")
@pytest.mark.parametrize("content", [None, b"not a database"])
def test_serve_with_a_geoip_database_it_cannot_read_says_so_in_one_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None
) -> None:
    database = tmp_path / "city.mmdb"
    if content is not None:
        database.write_bytes(content)
    monkeypatch.setenv("SEGMINT_GEOIP_CITY_DB", str(database))
    monkeypatch.setenv("SEGMINT_PORT", str(free_port()))
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2, result.output  # refused before the server starts
    said = "".join(result.output.split())  # however the terminal wrapped it
    assert f"GeoIPCitydatabase'{database}'" in said and "SEGMINT_GEOIP_CITY_DB" in said
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("serve_in_process")
def test_serve_on_an_address_it_cannot_listen_on_says_so_before_starting(
    settings: Settings,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = runner.invoke(app, ["serve", "--port", str(port)])
    assert busy.exit_code == 2
    said = " ".join(busy.output.split())
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use; stop what" in said
    assert not settings.warehouse_file.exists()  # refused before anything was opened
    nowhere = runner.invoke(app, ["serve", "--host", "999.1.1.1"])
    assert nowhere.exit_code == 2
    assert "choose an address of this machine with --host" in " ".join(nowhere.output.split())


def test_a_second_server_on_the_same_warehouse_gets_one_clear_line(settings: Settings) -> None:
    env = {**os.environ, "SEGMINT_DATA_DIR": str(settings.data_dir), "SEGMINT_SCHEDULER": "false"}
    segmint = [sys.executable, "-m", "segmint", "serve", "--port"]
    port = free_port()
    first = subprocess.Popen([*segmint, str(port)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the first server did not start"
                time.sleep(0.1)
        second = subprocess.run(
            [*segmint, str(free_port())], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        first.terminate()
        first.wait(timeout=30)
    assert second.returncode == 2
    message = " ".join(second.stderr.split())
    assert "is in use by another Segmint process (usually `segmint serve`)" in message
    assert "Traceback" not in second.stderr and "Uvicorn running" not in second.stderr


@pytest.mark.slow
def test_the_segmint_program_starts_preparation_processes_without_the_command_line(
    settings: Settings, tmp_path: Path
) -> None:
    """A preparation process starts by running its parent's main script again: the
    ``segmint`` script must be light, or every process loads all the commands, the web app and
    the catalog first (~0.8 s more CPU each). Python's import-time report, which preparation
    processes inherit, shows what each process imported."""
    program = Path(sys.executable).with_name("segmint")
    assert program.exists(), "the segmint program is installed beside the test's Python"
    path = tmp_path / "two-chunks.jsonl"  # chunks are of 50,000 events: a second one
    path.write_bytes(
        b"".join(orjson.dumps(TRACK | {"messageId": f"m{n}"}) + b"\n" for n in range(50_001))
    )
    env = {**os.environ, "SEGMINT_DATA_DIR": str(settings.data_dir), "PYTHONPROFILEIMPORTTIME": "1"}
    result = subprocess.run(
        [str(program), "import", str(path), "--processes", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "50,001" in " ".join(result.stdout.split())

    def imports_of(module: str) -> int:
        lines = result.stderr.splitlines()
        return sum(1 for line in lines if line.rpartition("|")[2].strip() == module)

    assert imports_of("segmint.collect.workers") == 2  # this process, and its one helper
    assert imports_of("segmint.cli.main") == 1
    assert imports_of("segmint.audiences.refresh") == 1


@pytest.mark.parametrize("group", [[], ["audiences"], ["sync"], ["destinations"], ["keys"]])
def test_the_command_lists_show_each_first_paragraph_as_one_text(group: list[str]) -> None:
    # A docstring's line breaks are not the reader's: each command's summary is wrapped
    # to the terminal only (Typer's rich mode kept the source's breaks in these lists).
    listing = runner.invoke(app, [*group, "--help"], env={"COLUMNS": "250"}, terminal_width=250)
    assert listing.exit_code == 0, listing.output
    commands = (
        app
        if not group
        else next(g.typer_instance for g in app.registered_groups if g.name == group[0])
    )
    assert commands is not None
    summaries = [
        " ".join((c.callback.__doc__ or "").split("\n\n")[0].split())
        for c in commands.registered_commands
        if c.callback is not None
    ]
    assert summaries
    lines = [" ".join(line.strip(" │").split()) for line in listing.output.splitlines()]
    for summary in summaries:
        assert any(line.endswith(summary) for line in lines), summary


def test_names_are_printed_as_they_are_never_read_as_markup(settings: Settings) -> None:
    for name in ("[/]", "[bold]x[/bold]"):
        created = runner.invoke(app, ["keys", "create", name])
        assert created.exit_code == 0, created.output
        assert "key #" in created.output and name in created.output
    listed = runner.invoke(app, ["keys", "list"], terminal_width=200)
    assert "[/]" in listed.output and "[bold]x[/bold]" in listed.output
    missing = runner.invoke(app, ["audiences", "show", "[/]"])
    assert missing.exit_code == 2
    assert "there is no audience named '[/]'" in missing.output
    assert "Traceback" not in missing.output


def test_a_data_dir_that_is_a_file_is_an_invalid_setting(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    monkeypatch.setenv("SEGMINT_DATA_DIR", str(taken))
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert f"Invalid setting SEGMINT_DATA_DIR: Value error, {taken} is a file" in said


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_file_saved_with_a_byte_order_mark_imports_whole(
    settings: Settings, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"bom{suffix}"
    if suffix == ".jsonl":
        path.write_bytes(
            b"\xef\xbb\xbf"
            + orjson.dumps(TRACK | {"messageId": "a"})
            + b"\n"
            + orjson.dumps(TRACK | {"messageId": "b"})
            + b"\n"
        )
    else:
        path.write_bytes(b"\xef\xbb\xbftype,event,userId,messageId\ntrack,e,u,a\ntrack,e,u,b\n")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / f"bom{suffix}.rejected.jsonl").exists()
    engine = open_warehouse(settings.warehouse_file, read_only=True)
    assert engine.rows("SELECT message_id FROM events ORDER BY 1") == [("a",), ("b",)]
    engine.close()


def test_a_csv_row_with_more_cells_than_columns_is_rejected_not_cut(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "extra.csv"
    path.write_text("type,event,userId,messageId\ntrack,e,u,a\ntrack,e,u,b,SURPRISE,MORE\n")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    (rejected,) = [orjson.loads(line) for line in (tmp_path / "extra.csv.rejected.jsonl").open()]
    assert rejected["line"] == 3
    assert rejected["reason"] == (
        "the row has 2 more cells than the header has columns ('SURPRISE', 'MORE'); "
        "quote cells that hold commas"
    )
    engine = open_warehouse(settings.warehouse_file, read_only=True)
    assert engine.rows("SELECT message_id FROM events") == [("a",)]
    engine.close()


def test_importing_nothing_exits_2(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = runner.invoke(app, ["import", str(empty)])
    assert result.exit_code == 2, result.output
    assert "empty.jsonl has no rows: nothing was imported" in " ".join(result.output.split())
    rejected_only = tmp_path / "bad.jsonl"
    rejected_only.write_bytes(orjson.dumps({"type": "track", "userId": "u"}) + b"\n")
    assert runner.invoke(app, ["import", str(rejected_only)]).exit_code == 2


EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "segmint" / "examples" / "audiences"
AUDIENCE_FILE = EXAMPLES / "q4_2025_purchasers.yaml"
NO_DATA_COMMANDS = [
    ["audiences", "list"],
    ["audiences", "show", "x"],
    ["audiences", "versions", "x"],
    ["audiences", "history", "x"],
    ["audiences", "update", "x", str(AUDIENCE_FILE)],
    ["audiences", "restore", "x"],
    ["refresh", "x"],
    ["usage"],
    ["keys", "list"],
    ["keys", "revoke", "1"],
    ["users", "list"],
    ["logs", "x"],
    ["destinations", "list"],
    ["sync", "links", "x"],
    ["preview", str(AUDIENCE_FILE)],
    ["explain", str(AUDIENCE_FILE), "7"],
    ["export", "{out}"],
]


@pytest.mark.parametrize("args", NO_DATA_COMMANDS, ids=lambda args: " ".join(args[:2]))
@pytest.mark.parametrize("where", ["missing", "empty"])
def test_commands_that_make_no_data_refuse_a_data_dir_without_segmint_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], where: str
) -> None:
    typo = tmp_path / "typo"
    if where == "empty":
        typo.mkdir()
    monkeypatch.delenv("SEGMINT_DATA_DIR", raising=False)
    out = tmp_path / "out"
    command = ["--data-dir", str(typo), *(a.format(out=out) for a in args)]
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert flat(result.output) == flat(
        f"Error: no Segmint data in {typo} — check --data-dir / SEGMINT_DATA_DIR, or create it "
        "with `segmint demo` / `segmint generate`"
    )
    made = sorted(typo.iterdir()) if typo.exists() else None
    assert made == ([] if where == "empty" else None)  # nothing was made
    assert not out.exists()


def test_commands_that_make_data_make_the_data_dir_and_sql_needs_none(tmp_path: Path) -> None:
    new = tmp_path / "new"
    created = runner.invoke(
        app, ["--data-dir", str(new), "audiences", "create", str(AUDIENCE_FILE)]
    )
    assert created.exit_code == 0, created.output
    assert (new / "catalog.db").is_file()
    compiled = runner.invoke(app, ["--data-dir", str(tmp_path / "none"), "sql", str(AUDIENCE_FILE)])
    assert compiled.exit_code == 0, compiled.output
    assert compiled.output.startswith("SELECT") and not (tmp_path / "none").exists()


def test_a_catalog_that_refuses_writes_says_so_without_sql_or_key_hashes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["keys", "create", "website"]).exit_code == 0
    catalog = settings.data_dir / "catalog.db"
    monkeypatch.setenv("SEGMINT_CATALOG_URL", f"sqlite:///file:{catalog}?mode=ro&uri=true")
    result = runner.invoke(app, ["keys", "create", "app"])
    assert result.exit_code == 2, result.output
    assert flat(result.output) == flat(
        f"Error: cannot write to {catalog}: the database is read-only — check its permissions "
        "or choose another --data-dir (SEGMINT_DATA_DIR)"
    )
    assert "website" in runner.invoke(app, ["keys", "list"]).output  # reading still works


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "website"],
        ["generate", "--users", "5", "--days", "1"],
        ["refresh", "x"],
        ["logs", "x"],
    ],
)
def test_a_read_only_data_dir_is_reported_as_such_never_as_damage(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    assert runner.invoke(app, ["generate", "--users", "5", "--days", "1"]).exit_code == 0
    read_only_mounted(monkeypatch, settings.data_dir)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert flat(result.output) == flat(
        f"Error: cannot write to {settings.data_dir}: read-only file system — check its "
        "permissions or choose another --data-dir (SEGMINT_DATA_DIR)"
    )


def test_a_data_dir_that_cannot_be_made_says_why(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == settings.data_dir:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(Path, "mkdir", mkdir)
        for command in (["keys", "create", "x"], ["generate", "--users", "5", "--days", "1"]):
            result = runner.invoke(app, command)
            assert result.exit_code == 2, result.output
            assert flat(result.output).startswith(
                flat(f"Error: cannot write to {settings.data_dir}: read-only file system — check")
            )
    (tmp_path / "a-file").write_text("")
    under_a_file = tmp_path / "a-file" / "data"
    made = runner.invoke(app, ["--data-dir", str(under_a_file), "keys", "create", "x"])
    assert made.exit_code == 2
    assert flat(f"{tmp_path}/a-file is a file, not a directory — choose another") in flat(
        made.output
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not stop root")
def test_a_data_dir_without_write_permission_says_so(settings: Settings) -> None:
    assert runner.invoke(app, ["keys", "create", "website"]).exit_code == 0
    settings.data_dir.chmod(0o555)
    try:
        result = runner.invoke(app, ["keys", "create", "app"])
    finally:
        settings.data_dir.chmod(0o755)
    assert result.exit_code == 2, result.output
    assert flat("permission denied — check its permissions or choose another --data-dir") in flat(
        result.output
    )


def test_an_os_refusal_anywhere_is_one_line_and_a_database_error_shows_no_sql() -> None:
    import sqlalchemy as sa
    import typer

    from segmint.cli.common import friendly_errors

    def failing(error: Exception) -> typer.Typer:
        small = typer.Typer()

        @small.command()
        @friendly_errors
        def go() -> None:
            raise error

        return small

    refused = OSError(errno.EROFS, "Read-only file system", "/mnt/x/out.csv")
    result = runner.invoke(failing(refused), [])
    assert result.exit_code == 2
    assert flat(result.output).startswith(
        flat("Error: cannot write to /mnt/x/out.csv: read-only file system")
    )
    statement = sa.exc.OperationalError("INSERT INTO keys VALUES (?)", ("h4sh",), ValueError("x"))
    result = runner.invoke(failing(statement), [])
    assert result.exit_code == 1
    assert flat(result.output).startswith(flat("Unexpected error: ValueError: x."))
    assert "INSERT" not in result.output and "h4sh" not in result.output


def flat(text: str) -> str:
    """``text`` without any whitespace: compares output however the terminal wrapped it (a long
    path may be broken anywhere)."""
    return "".join(text.split())
