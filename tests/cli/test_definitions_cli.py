"""``segmint preview FILE``, ``segmint explain AUDIENCE_FILE PROFILE`` and ``segmint sql FILE``
via Typer's runner."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from segmint.cli import definitions
from segmint.cli.main import app as main_app
from segmint.settings import Settings
from segmint.warehouse import open_warehouse
from segmint.warehouse.clickhouse import ChDBEngine
from segmint.warehouse.portable import copy_read_tables
from tests.compiler.fixtures import Warehouse

runner = CliRunner()
AS_OF = "2025-03-15T12:00:00Z"
NOW = dt.datetime(2025, 3, 15, 12, 0)

AUDIENCE = """\
name: viewed_no_order_us
refresh_interval: 1d
definition:
  root:
    kind: and
    conditions:
      - {kind: event, event: product_viewed, window: {type: relative, last: 30}}
      - {kind: event, event: order_completed, performed: false,
         window: {type: relative, last: 30}}
      - {kind: demographic, field: country, operator: equals, value: US}
"""


def cli() -> typer.Typer:
    """The main app."""
    return main_app


@pytest.fixture
def shop(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A warehouse with three profiles, and the directory of audience files."""
    monkeypatch.setattr(definitions.console, "width", 240)  # no wrapping inside table cells
    engine = open_warehouse(settings.warehouse_file)
    wh = Warehouse(engine)
    wh.profile(
        1,
        {"plan": "pro", "first_name": "Ann"},
        country="US",
        user_id="u1",
        email="ann@example.com",
        last_seen=NOW - dt.timedelta(days=1),
    )
    wh.profile(2, {"plan": "free"}, country="US", last_seen=NOW - dt.timedelta(days=2))
    wh.profile(3, {}, country="CA", last_seen=NOW - dt.timedelta(days=3))
    wh.event(1, "product_viewed", NOW - dt.timedelta(days=5), {"sku": "A1"})
    wh.event(1, "order_completed", NOW - dt.timedelta(days=4), {"revenue": 50})
    wh.event(2, "product_viewed", NOW - dt.timedelta(days=2), {"sku": "B2"})
    wh.event(3, "product_viewed", NOW - dt.timedelta(days=3), {"sku": "A1"})
    engine.close()
    files = tmp_path / "audiences"
    files.mkdir()
    (files / "viewed_no_order_us.yaml").write_text(AUDIENCE)
    return files


def test_preview_prints_size_counts_and_sample(shop: Path) -> None:
    result = runner.invoke(
        cli(), ["preview", str(shop / "viewed_no_order_us.yaml"), "--as-of", AS_OF]
    )
    assert result.exit_code == 0, result.output
    assert "viewed_no_order_us: 1 of 3 profiles" in result.output
    assert "no order_completed in the last 30 days" in result.output
    assert "Sample of members" in result.output


def test_preview_of_an_empty_audience_explains_it(shop: Path) -> None:
    path = shop / "typo.json"
    path.write_text('{"root": {"kind": "event", "event": "order_complete"}}')
    result = runner.invoke(cli(), ["preview", str(path), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "0 of 3 profiles" in result.output
    assert "Did you mean 'order_completed'?" in result.output


def test_preview_resolves_audience_references_from_sibling_files(shop: Path) -> None:
    path = shop / "us_viewers.yaml"
    path.write_text(
        "root: {kind: and, conditions: [{kind: audience, audience: viewed_no_order_us},"
        " {kind: event, event: product_viewed}]}\n"
    )
    result = runner.invoke(cli(), ["preview", str(path), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "1 of 3 profiles" in result.output


def test_explain_prints_every_condition_value(shop: Path) -> None:
    result = runner.invoke(
        cli(), ["explain", str(shop / "viewed_no_order_us.yaml"), "u1", "--as-of", AS_OF]
    )
    assert result.exit_code == 0, result.output
    assert "Profile 1 is NOT a member of viewed_no_order_us" in result.output
    assert "1 time (needs none)" in result.output
    member = runner.invoke(
        cli(), ["explain", str(shop / "viewed_no_order_us.yaml"), "2", "--as-of", AS_OF]
    )
    assert "Profile 2 is a member" in member.output


def test_explain_says_whom_it_explained_and_refuses_a_value_naming_two_profiles(
    shop: Path, settings: Settings
) -> None:
    file = str(shop / "viewed_no_order_us.yaml")
    by_user_id = runner.invoke(cli(), ["explain", file, "u1", "--as-of", AS_OF])
    assert by_user_id.exit_code == 0, by_user_id.output
    assert by_user_id.output.startswith(
        "Explaining profile 1 (user id u1, ann@example.com), found by its user id.\n"
    )
    engine = open_warehouse(settings.warehouse_file)
    wh = Warehouse(engine)
    wh.profile(565, {}, user_id="3", email="seven@example.com")  # "3" is profile 3's id too
    engine.execute("INSERT INTO profile_merges VALUES (9, 2, ?, 'identify')", [NOW])
    engine.close()
    both = runner.invoke(cli(), ["explain", file, "3", "--as-of", AS_OF])
    assert both.exit_code == 2, both.output
    said = " ".join(both.output.split())
    assert "'3' names 2 profiles: profile 3 (no user id or email); and the user id of " in said
    assert "profile 565 (user id 3, seven@example.com)" in said
    assert "Say which with a prefix: profile:3 or user:3" in said
    chosen = runner.invoke(cli(), ["explain", file, "user:3", "--as-of", AS_OF])
    assert "Profile 565 is NOT a member" in chosen.output
    merged = runner.invoke(cli(), ["explain", file, "9", "--as-of", AS_OF])
    assert merged.output.startswith(
        "Explaining profile 2 (no user id or email): profile 9 was merged into it.\n"
        "Profile 2 is a member"
    )


def test_a_definition_file_with_a_key_given_twice_is_refused(shop: Path) -> None:
    twice = shop / "twice.yaml"
    twice.write_text(
        "root: {kind: event, event: product_viewed}\nroot: {kind: event, event: order_completed}\n"
    )
    result = runner.invoke(cli(), ["preview", str(twice), "--as-of", AS_OF])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert said.startswith(
        "Error: root: duplicate key 'root' at line 2, column 1 (first at line 1, column 1)"
    )
    in_a_filter = shop / "filter.json"
    in_a_filter.write_text(
        '{"name": "f", "definition": {"root": {"kind": "event", "event": "product_viewed",\n'
        '  "filters": [{"property": "sku", "property": "price", "operator": "equals",'
        ' "value": "A1"}]}}}'
    )
    result = runner.invoke(cli(), ["audiences", "create", str(in_a_filter)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "definition.root.filters[0].property: duplicate key 'property' at line 2" in said


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["preview", "/nonexistent.yaml"], "no such file"),
        (["preview", "{folder}"], "is a directory: name a file in it"),
        (["explain", "{file}", "404", "--as-of", AS_OF], "no profile '404'"),
        (["preview", "{file}", "--as-of", "yesterday"], "not an ISO date-time"),
        (["preview", "{bad}"], "must be at least 1"),
        (
            ["preview", "{shapeless}"],
            "shapeless.yaml is neither an audience file (with a `definition`, and description, "
            "name, refresh_interval, warmup) nor a bare definition (with a `root` condition); "
            "it has name, where",
        ),
    ],
)
def test_errors_print_one_clear_line(shop: Path, args: list[str], words: str) -> None:
    bad = shop / "bad.yaml"
    bad.write_text("root: {kind: event, event: x, window: {type: relative, last: 0}}\n")
    shapeless = shop / "shapeless.yaml"
    shapeless.write_text("name: x\nwhere: {event: viewed}\n")
    args = [
        a.format(file=shop / "viewed_no_order_us.yaml", bad=bad, shapeless=shapeless, folder=shop)
        for a in args
    ]
    result = runner.invoke(cli(), args)
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())  # as one line, however it wrapped
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["preview", "explain"])
def test_reading_commands_without_a_warehouse_say_how_to_make_one(
    workspace: Settings, tmp_path: Path, command: str
) -> None:
    audience = tmp_path / "a.yaml"
    audience.write_text(AUDIENCE)
    args = [command, str(audience), *(["u1"] if command == "explain" else [])]
    result = runner.invoke(cli(), args)
    assert result.exit_code == 2, result.output
    said = "".join(result.output.split())  # however the terminal wrapped it
    assert f"there is no warehouse at {workspace.warehouse_file} yet".replace(" ", "") in said
    assert "`segmintimportFILE`" in said and "SEGMINT_DATA_DIR" in said
    assert not workspace.warehouse_file.exists()  # nothing was created by looking


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_sql_prints_what_the_engine_runs_to_the_members(
    shop: Path, settings: Settings, engine: str
) -> None:
    """The printed SQL, run as it is on the engine (holding the warehouse's rows), selects
    the members preview counts: profile 2 viewed and did not order, in the US."""
    file = str(shop / "viewed_no_order_us.yaml")
    result = runner.invoke(cli(), ["sql", file, "--engine", engine, "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("SELECT")
    warehouse = open_warehouse(settings.warehouse_file, read_only=True)
    target = warehouse if engine == "duckdb" else ChDBEngine.with_tables()
    try:
        if target is not warehouse:
            copy_read_tables(warehouse, target)
        assert target.rows(result.output) == [(2,)]
    finally:
        warehouse.close()
        if target is not warehouse:
            target.close()


def test_sql_refuses_an_engine_it_does_not_know(shop: Path) -> None:
    file = str(shop / "viewed_no_order_us.yaml")
    result = runner.invoke(cli(), ["sql", file, "--engine", "oracle"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # the message's box unwrapped
    assert "'oracle' is not one of 'duckdb', 'clickhouse', 'spark'" in said


def test_sql_refuses_a_window_beyond_the_calendar(shop: Path) -> None:
    file = str(shop / "viewed_no_order_us.yaml")
    result = runner.invoke(cli(), ["sql", file, "--as-of", "0001-01-05T00:00:00Z"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "reaches outside the years 1 to 9999 as of 0001-01-05 00:00 UTC" in said
    assert "Unexpected error" not in said
