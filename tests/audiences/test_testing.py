"""Audience tests as code: fixture files run by `segmint test DIR`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segmint.audiences.testing import run_test_file, run_tests
from segmint.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "segmint" / "examples" / "audiences"
runner = CliRunner()


def test_the_shipped_examples_pass() -> None:
    results = run_tests(EXAMPLES)
    assert len(results) >= 4
    for result in results:
        assert result.error is None, (result.path, result.error)
        assert result.cases and all(case.passed for case in result.cases), result.cases


def copy_example(tmp_path: Path, stem: str) -> Path:
    for suffix in (".yaml", ".test.yaml"):
        shutil.copy(EXAMPLES / f"{stem}{suffix}", tmp_path / f"{stem}{suffix}")
    return tmp_path / f"{stem}.test.yaml"


def test_a_wrong_expectation_is_reported_by_name(tmp_path: Path) -> None:
    test_file = copy_example(tmp_path, "abandoned_checkout_30d")
    text = test_file.read_text().replace("members: [ann]", "members: [ann, bob]")
    test_file.write_text(text)
    result = run_test_file(test_file)
    assert result.error is None
    assert result.cases[0].failures == ["'bob' should be a member but is not"]
    assert result.cases[1].passed


def test_an_identifier_missing_from_the_events_is_a_failure(tmp_path: Path) -> None:
    test_file = copy_example(tmp_path, "q4_2025_purchasers")
    test_file.write_text(test_file.read_text().replace("members: [eve]", "members: [zoe]"))
    assert run_test_file(test_file).cases[0].failures == ["'zoe' is not in the fixture's events"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("cases: []\n", "cases must be a non-empty list"),
        ("cases: [{members: [a]}]\n", "needs as_of"),
        ("timezone: Nowhere/City\ncases: [{as_of: '2025-01-01'}]\n", "unknown time zone"),
        ("colour: blue\ncases: [{as_of: '2025-01-01'}]\n", "unknown field(s) colour"),
        ("events: [{type: track, userId: u}]\ncases: [{as_of: '2025-01-01'}]\n", "events[0].event"),
        ("cases: [{as_of: 'soon'}]\n", "ISO-8601"),
        ("[1, 2\n", "not valid YAML"),
    ],
)
def test_broken_test_files_report_what_is_wrong(tmp_path: Path, content: str, words: str) -> None:
    copy_example(tmp_path, "q4_2025_purchasers")
    test_file = tmp_path / "q4_2025_purchasers.test.yaml"
    test_file.write_text(content)
    result = run_test_file(test_file)
    assert result.error is not None and words in result.error
    assert not result.passed


def test_missing_audience_file(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely.test.yaml"
    lonely.write_text("cases: [{as_of: '2025-01-01'}]\n")
    error = run_test_file(lonely).error or ""
    assert error.startswith("no audience file lonely.yaml beside it")  # the path is shown apart


def test_cli_exit_codes(tmp_path: Path) -> None:
    passing = runner.invoke(app, ["test", str(EXAMPLES)])
    assert passing.exit_code == 0, passing.output
    assert "PASS" in passing.output and "0 failed" in passing.output
    test_file = copy_example(tmp_path, "abandoned_checkout_30d")
    test_file.write_text(
        test_file.read_text().replace(
            "members: [ann]\n    not_members: [bob]", "members: [ann, bob]"
        )
    )
    failing = runner.invoke(app, ["test", str(tmp_path)])
    assert failing.exit_code == 1
    assert "FAIL" in failing.output and "'bob' should be a member" in failing.output
    missing = runner.invoke(app, ["test", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such directory" in missing.output
