"""``segmint destinations``, ``segmint sync`` and ``segmint logs`` against the fake Graph
server, through Typer's runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segmint.cli.main import app
from segmint.runtime import Runtime
from segmint.settings import Settings
from tests.destinations.fake_meta import FakeMeta, serve
from tests.sync.sync_world import activate, seed_profiles

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from segmint.cli.common import console

    monkeypatch.setattr(console, "width", 220)


def run(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def fake() -> FakeMeta:
    return FakeMeta()


@pytest.fixture
def meta_url(fake: FakeMeta) -> Iterator[str]:
    with serve(fake) as url:
        yield url


@pytest.fixture
def world(settings: Settings) -> Settings:
    runtime = Runtime.open(settings)
    try:
        seed_profiles(runtime, 250, anonymous_every=25)
        activate(runtime, "gold_members")
    finally:
        runtime.close()
    return settings


def test_connect_link_sync_and_logs(
    world: Settings, fake: FakeMeta, meta_url: str, tmp_path: Path
) -> None:
    out = run(
        "destinations", "add", "Shop Meta", "--platform", "meta",
        "--credential", "access_token=-",
        "--config", f"ad_account_id={fake.ad_account_id}", "--config", f"base_url={meta_url}",
        stdin=f"{fake.token}\n",
    )  # fmt: skip
    assert "Connected Shop Meta (Meta Ads): active." in out
    listed = run("destinations", "list")
    assert "Shop Meta" in listed and fake.token not in listed

    assert "as link #1 (list sync; email←email" in run("sync", "link", "gold_members", "Shop Meta")
    preview = run("sync", "preview", "1")
    assert "240 of 250 members would be sent" in preview
    assert "10 anonymous members are skipped" in preview

    synced = run("sync", "now", "gold_members")
    assert "succeeded" in synced and "240" in synced
    logs = run("logs", "gold_members")
    assert "instant" in logs and "skipped 10: anonymous" in logs
    assert "Nothing is wrong" in run("sync", "why", "1")

    fake.expired_tokens.add(fake.token)
    failed = run("sync", "now", "gold_members", code=1)
    assert "Error Fetching Data" in failed and "Configuration Settings" in failed
    fake.reauthenticate("fresh")
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"access_token": "fresh"}))
    assert "active again" in run(
        "destinations", "reauth", "Shop Meta", "--credentials-file", str(creds)
    )
    assert "Shop Meta is now Meta US." in run("destinations", "rename", "Shop Meta", "Meta US")
    assert "Unlinked from Meta US" in run("sync", "unlink", "1")
    assert len(fake.audiences) == 1


def test_mistakes_get_one_clear_line(world: Settings) -> None:
    missing = run("destinations", "add", "X", "--platform", "meta", "--check", code=2)
    assert "give the platform's credentials" in missing
    bad = run("destinations", "add", "X", "--platform", "meta", "--credential", "oops", code=2)
    assert "--credential takes KEY=VALUE" in bad
    # The runner's standard input is empty: no value to read.
    asked = run(
        "destinations", "add", "X", "--platform", "meta", "--credential", "access_token=-", code=2
    )
    said = " ".join(asked.split())
    assert "access_token=- reads the value from standard input, which gave none" in said
    # An unknown platform is named first, before anything about its credentials.
    unknown = run("destinations", "add", "X", "--platform", "myspace", code=2)
    assert "unknown platform 'myspace'; choose one of meta," in unknown
    assert "no destination" in run("sync", "link", "gold_members", "Nope", code=2)
    assert "no destination" in run("destinations", "rename", "Nope", "New", code=2)
    assert "no audience link 9" in run("sync", "preview", "9", code=2)
    assert "has no active link" in run("sync", "now", "gold_members", code=2)


def test_demo_links_a_file_export_and_syncs_it(settings: Settings) -> None:
    from segmint.destinations.file_export import read_membership

    out = run("demo", "--users", "300", "--days", "40", "--no-serve")
    exports = (settings.data_dir / "exports").resolve()
    assert f"Destination Local export ({exports}): succeeded" in out
    runtime = Runtime.open(settings)
    try:
        from segmint.audiences import service

        audience = service.get_by_name(runtime.catalog, "abandoned_checkout_30d")
        members = {
            str(row[0])
            for row in runtime.warehouse.rows(
                "SELECT profile_id FROM audience_members WHERE audience_id = ?", [audience.id]
            )
        }
    finally:
        runtime.close()
    assert set(read_membership(exports, "abandoned_checkout_30d")) == members
    logs = run("logs", "abandoned_checkout_30d")
    assert "Local export" in logs and "succeeded" in logs


def test_a_refused_instant_sync_exits_1_and_says_its_remedy_once(
    world: Settings, fake: FakeMeta, meta_url: str
) -> None:
    run(
        "destinations", "add", "Shop Meta", "--platform", "meta",
        "--credential", f"access_token={fake.token}",
        "--config", f"ad_account_id={fake.ad_account_id}", "--config", f"base_url={meta_url}",
    )  # fmt: skip
    run("sync", "link", "gold_members", "Shop Meta")
    assert "no destination 'Nope'" in run(
        "sync", "now", "gold_members", "--destination", "Nope", code=2
    )  # said so, not "has no active link"
    run("destinations", "disable", "Shop Meta")
    refused = run("sync", "now", "gold_members", code=1)
    assert "refused" in refused
    (said,) = [line for line in refused.splitlines() if line.startswith("Shop Meta, ")]
    assert said.count("enable it") == 1, said
