"""The audience commands, run through Typer's runner on a generated data set."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from segmint.cli.main import app
from segmint.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "segmint" / "examples" / "audiences"
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as on a wide terminal, so names are not wrapped inside cells."""
    from segmint.cli.common import console

    monkeypatch.setattr(console, "width", 220)


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def shop(settings: Settings) -> Settings:
    run("generate", "--users", "150", "--days", "40", "--seed", "5")
    return settings


def test_audiences_as_code_lifecycle(shop: Settings) -> None:
    out = run("audiences", "create", str(EXAMPLES / "us_browsers_no_order_30d.yaml"), "--activate")
    assert "Created draft 'us_browsers_no_order_30d'" in out
    assert "Activated" in out and "members" in out
    listed = run("audiences", "list")
    assert "us_browsers_no_order_30d" in listed and "active" in listed
    shown = run("audiences", "show", "us_browsers_no_order_30d")
    assert "dynamic" in shown and "product_viewed" in shown
    refreshed = run("refresh", "us_browsers_no_order_30d")
    assert "Refreshed:" in refreshed
    history = run("audiences", "history", "us_browsers_no_order_30d")
    assert history.count("+") >= 2
    retention = run("audiences", "retention", "us_browsers_no_order_30d")
    assert "cohort of" in retention and "100.0%" in retention
    unknown = run("audiences", "retention", "us_browsers_no_order_30d", "--refresh", "nope", code=2)
    assert "no committed refresh 'nope'" in unknown
    assert "0 audience(s) were due" in run("refresh", "--due")
    usage = run("usage")
    assert "us_browsers_no_order_30d" in usage and "Forecast" in usage
    assert "archived" in run("audiences", "archive", "us_browsers_no_order_30d")
    assert "restored as a draft" in run("audiences", "restore", "us_browsers_no_order_30d")
    assert "deleted" in run("audiences", "delete", "1")
    assert "us_browsers_no_order_30d" in run("audiences", "list", "--status", "deleted")
    # A deleted audience is restored by its name too.
    assert "restored as a draft" in run("audiences", "restore", "us_browsers_no_order_30d")
    assert "draft" in run("audiences", "list", "--status", "draft")


def test_static_audience_and_versions(shop: Settings) -> None:
    run("audiences", "create", str(EXAMPLES / "q4_2025_purchasers.yaml"))
    refused = run("audiences", "activate", "q4_2025_purchasers", "--interval", "1d", code=2)
    assert "static" in refused
    assert "Activated" in run("audiences", "activate", "q4_2025_purchasers")
    versions = run("audiences", "versions", "q4_2025_purchasers")
    assert "1" in versions
    assert "no changes" in run("audiences", "versions", "q4_2025_purchasers", "--diff", "1:1")


def test_update_saves_a_new_version_and_says_what_changed(shop: Settings, tmp_path: Path) -> None:
    example = EXAMPLES / "us_browsers_no_order_30d.yaml"
    run("audiences", "create", str(example), "--activate")
    edited = tmp_path / "us_browsers_no_order_30d.yaml"
    edited.write_text(example.read_text().replace("last: 30", "last: 14", 1))
    saved = run("audiences", "update", "us_browsers_no_order_30d", str(edited), "--note", "2 wk")
    assert "Saved version 2 of 'us_browsers_no_order_30d' (was version 1):" in saved
    assert "last 30 days → last 14 days" in saved
    assert "Members change at its next refresh" in saved
    again = run("audiences", "update", "us_browsers_no_order_30d", str(edited))
    assert "No changes: us_browsers_no_order_30d.yaml is version 2" in again
    versions = run("audiences", "versions", "us_browsers_no_order_30d")
    assert "2 wk" in versions
    diff = run("audiences", "versions", "us_browsers_no_order_30d", "--diff", "1:2")
    assert "last 30 days → last 14 days" in diff
    other = EXAMPLES / "q4_2025_purchasers.yaml"
    refused = run("audiences", "update", "us_browsers_no_order_30d", str(other), code=2)
    said = " ".join(refused.split())
    assert "is the audience 'q4_2025_purchasers', not 'us_browsers_no_order_30d'" in said


def test_a_static_audience_is_edited_with_update_activate_as_refresh_advises(
    shop: Settings, tmp_path: Path
) -> None:
    example = EXAMPLES / "q4_2025_purchasers.yaml"
    run("audiences", "create", str(example), "--activate")
    refused = " ".join(run("refresh", "q4_2025_purchasers", code=2).split())
    assert "edit it and activate it again to recompute it" in refused
    assert "(`segmint audiences update q4_2025_purchasers FILE --activate` saves the" in refused
    edited = tmp_path / "q4.yaml"
    edited.write_text(example.read_text().replace('"2026-01-01"', '"2026-02-01"'))
    plain = " ".join(run("audiences", "update", "q4_2025_purchasers", str(edited), code=2).split())
    assert "is active and static" in plain
    assert f"(here: `segmint audiences update q4_2025_purchasers {edited} --activate`)" in plain
    done = run("audiences", "update", "q4_2025_purchasers", str(edited), "--activate")
    assert "Activated 'q4_2025_purchasers'" in done and "Computed" in done
    assert "Saved version 2 of 'q4_2025_purchasers' (was version 1):" in done


def test_update_refuses_a_deleted_audience_and_says_how_to_restore_it(
    workspace: Settings,
) -> None:
    run("audiences", "create", str(EXAMPLES / "abandoned_checkout_30d.yaml"))
    run("audiences", "delete", "1")
    refused = run("audiences", "update", "1", str(EXAMPLES / "abandoned_checkout_30d.yaml"), code=2)
    said = " ".join(refused.split())
    assert "is deleted: restore it first (`segmint audiences restore 1`), then update it" in said


def test_restoring_a_name_a_draft_took_names_the_deleted_audiences_and_their_ids(
    workspace: Settings,
) -> None:
    example = str(EXAMPLES / "abandoned_checkout_30d.yaml")
    run("audiences", "create", example)
    run("audiences", "delete", "abandoned_checkout_30d")
    run("audiences", "create", example)  # a draft takes the name again: id 2
    refused = " ".join(run("audiences", "restore", "abandoned_checkout_30d", code=2).split())
    assert "'abandoned_checkout_30d' names the draft audience #2" in refused
    assert "Deleted audiences named 'abandoned_checkout_30d': id 1 (deleted " in refused
    assert "`segmint audiences restore 1 --name NEW_NAME`" in refused
    restored = run("audiences", "restore", "1", "--name", "abandoned_checkout_old")
    assert "'abandoned_checkout_old' is restored as a draft" in restored


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["audiences", "show", "nobody"], "nobody"),
        (["audiences", "list", "--status", "gone"], "status must be"),
        (["audiences", "create", "/no/such/file.yaml"], "no such file"),
        (["refresh"], "name one audience, or pass --due"),
        (["audiences", "versions", "1", "--diff", "x"], "two version numbers"),
    ],
)
def test_bad_input_is_one_clear_line(workspace: Settings, args: list[str], words: str) -> None:
    assert words in run(*args, code=2)


def test_bad_interval_and_name(settings: Settings, tmp_path: Path) -> None:
    run("audiences", "create", str(EXAMPLES / "abandoned_checkout_30d.yaml"))
    assert "not an interval" in run("audiences", "activate", "1", "--interval", "often", code=2)
    out = run("audiences", "activate", "1", "--name", "Abandoned Checkout", code=2)
    assert "'abandoned_checkout'" in out


def test_an_empty_list_says_how_to_make_the_first(workspace: Settings) -> None:
    listed = runner.invoke(app, ["audiences", "list"])
    assert listed.exit_code == 0, listed.output
    said = " ".join(listed.output.split())
    assert "No audiences yet: `segmint audiences create FILE` makes one" in said
    assert "┃ id" not in listed.output  # no empty table
    archived = runner.invoke(app, ["audiences", "list", "--status", "archived"])
    assert " ".join(archived.output.split()) == "No archived audiences."


def test_an_error_that_names_its_field_names_it_once(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "ghostly.yaml"
    path.write_text("name: ghostly\ndefinition:\n  root: {kind: audience, audience: ghost}\n")
    result = runner.invoke(app, ["audiences", "create", str(path)])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert said.startswith("Error: definition.root.audience: unknown audience 'ghost'")
    assert said.count("definition.root.audience") == 1
