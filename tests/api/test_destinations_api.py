"""Destinations, links and syncs over real HTTP against a live server and the fake Graph
server: connect, link, preview, Instant Sync, logs, diagnosis, expired login, re-authenticate,
unlink and delete; bad input gets clear 4xx answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.destinations.fake_meta import FakeMeta, serve
from tests.sync.sync_world import activate, seed_profiles


@pytest.fixture
def fake() -> FakeMeta:
    return FakeMeta()


@pytest.fixture
def meta_url(fake: FakeMeta) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def test_connect_link_sync_and_read_logs(
    live_server: LiveServer, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(live_server.runtime, 400)
    # Computed as of a past instant, so the refresh below (as of the wall clock) moves on.
    activate(live_server.runtime, "gold_members", hours=-24 * 180)
    with live_server.admin() as api:
        created = api.post(
            "/api/v1/destinations", params={"check": "true"}, json=meta_destination(fake, meta_url)
        )
        assert created.status_code == 201, created.text
        assert fake.token not in created.text  # credentials never come back
        assert created.json()["status"] == "active"

        renamed = api.post("/api/v1/destinations/Shop Meta/rename", json={"name": "Meta"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "Meta"
        clash = api.post("/api/v1/destinations/Meta/rename", json={"name": ""})
        assert clash.status_code == 400 and "name of 1 to 100" in clash.text
        assert api.post("/api/v1/destinations/Meta/rename", json={"name": "Shop Meta"}).is_success

        link = api.post(
            "/api/v1/audiences/gold_members/links", json={"destination": "Shop Meta"}
        ).json()
        assert link["mode"] == "list"
        assert link["identifier_mapping"]["email"] == "email"

        preview = api.get(f"/api/v1/links/{link['id']}/preview").json()
        assert (preview["members"], preview["would_send"], preview["pending"]) == (400, 400, None)

        synced = api.post(f"/api/v1/links/{link['id']}/sync")
        assert synced.status_code == 200, synced.text
        assert (synced.json()["status"], synced.json()["added"]) == ("succeeded", 400)
        (audience,) = fake.audiences.values()
        assert len(audience.values("EMAIL")) == 400

        logs = api.get("/api/v1/audiences/gold_members/logs").json()["logs"]
        assert [(e["trigger"], e["status"]) for e in logs] == [("instant", "succeeded")]

        # A refresh through the API hands the sync to the server's worker and answers.
        assert api.post("/api/v1/audiences/gold_members/refresh").status_code == 200
        logs = wait_for_logs(api, "gold_members", 2)
        assert next((e["trigger"], e["status"]) for e in logs) == ("refresh", "succeeded")

        fake.expired_tokens.add(fake.token)
        checked = api.post("/api/v1/destinations/Shop Meta/check")
        assert checked.status_code == 502
        assert "Configuration Settings" in checked.json()["message"]
        diagnosis = api.get(f"/api/v1/links/{link['id']}/diagnosis").json()
        assert diagnosis["ok"] is False
        assert diagnosis["summary"].startswith("Destination: Error Fetching Data")

        fake.reauthenticate("fresh")
        again = api.post(
            "/api/v1/destinations/Shop Meta/reauthenticate",
            json={"credentials": {"access_token": "fresh"}},
        )
        assert again.json()["status"] == "active"

        deleted = api.post(f"/api/v1/links/{link['id']}/delete")
        assert deleted.json()["status"] == "deleted"
        assert fake.audiences == {}


def meta_destination(fake: FakeMeta, url: str, token: str | None = None) -> dict[str, Any]:
    """The body that connects the fake Meta server as "Shop Meta"."""
    return {
        "name": "Shop Meta",
        "platform": "meta",
        "credentials": {"access_token": token or fake.token},
        "config": {"ad_account_id": fake.ad_account_id, "base_url": url},
    }


def wait_for_logs(api: httpx.Client, audience: str, count: int) -> list[dict[str, Any]]:
    """The audience's sync logs once there are ``count`` finished ones (syncs after a
    refresh run in the background)."""
    deadline = time.monotonic() + 60
    while True:
        logs: list[dict[str, Any]] = api.get(f"/api/v1/audiences/{audience}/logs").json()["logs"]
        done = [entry for entry in logs if entry["status"] != "running"]
        if len(done) >= count or time.monotonic() > deadline:
            return logs
        time.sleep(0.05)


def test_bad_input_gets_clear_errors(live_server: LiveServer) -> None:
    with live_server.admin() as api:
        unknown = api.post(
            "/api/v1/destinations",
            json={"name": "X", "platform": "myspace", "credentials": {}},
        )
        assert unknown.status_code == 400
        assert "unknown platform 'myspace'" in unknown.json()["message"]
        assert api.get("/api/v1/destinations/nope").status_code == 404
        assert api.get("/api/v1/links/999").status_code == 404
        assert api.post("/api/v1/links/999/sync").status_code == 404
        assert api.get("/api/v1/audiences/nope/logs").status_code == 404
        extra = api.post("/api/v1/destinations", json={"name": "X", "platform": "meta"})
        assert extra.status_code == 400
        assert "credentials" in extra.text
    with live_server.client() as anonymous:
        assert anonymous.get("/api/v1/destinations").status_code == 401


def test_a_refused_login_saves_nothing_and_wrong_settings_are_named(
    live_server: LiveServer, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(live_server.runtime, 150)
    activate(live_server.runtime, "gold_members")
    with live_server.admin() as api:
        refused = api.post(
            "/api/v1/destinations",
            params={"check": "true"},
            json=meta_destination(fake, meta_url, token="wrong"),
        )
        assert refused.status_code == 502
        assert "Configuration Settings" in refused.json()["message"]
        assert api.get("/api/v1/destinations").json()["destinations"] == []

        # Even without a check, a setting of the wrong type is named before anything is saved.
        odd = api.post(
            "/api/v1/destinations",
            json={
                "name": "Odd Meta",
                "platform": "meta",
                "credentials": {"access_token": fake.token},
                "config": {"ad_account_id": {"not": "digits"}, "base_url": meta_url},
            },
        )
        assert odd.status_code == 400
        assert odd.json()["field"] == "config.ad_account_id"
        assert odd.json()["message"].startswith("config.ad_account_id must be text")
        assert api.get("/api/v1/destinations").json()["destinations"] == []


@pytest.mark.parametrize("check", ["false", "true"])
def test_saving_checks_the_settings_without_calling_the_platform(
    live_server: LiveServer, tmp_path: Path, check: str
) -> None:
    exports = str(tmp_path / "exports")
    refused = [
        (
            {"platform": "webhook", "credentials": {}, "config": {}},
            "config.url",
            "Webhook needs config.url (the receiver's https:// URL, e.g. "
            "https://hooks.example.com/segmint), credentials.signing_secret (text of at least "
            "16 random characters)",
        ),
        (
            file_body({"directory": "/proc/nope/x"}),
            "config.directory",
            "Segmint cannot write to the export directory /proc/nope/x",
        ),
        (
            file_body({"directory": exports, "format": "xml"}),
            "config.format",
            "file export format 'xml' is not supported: use csv or parquet",
        ),
        (
            file_body({"directory": exports, "compress": True}),
            "config.compress",
            "File export has no setting 'compress'; it takes no credentials and config "
            "directory, format, max_rows_per_file",
        ),
    ]
    with live_server.admin() as api:
        for body, field, words in refused:
            answer = api.post(
                "/api/v1/destinations", params={"check": check}, json={"name": "wh1", **body}
            )
            assert answer.status_code == 400, answer.text
            assert answer.json()["field"] == field
            assert answer.json()["message"].startswith(words)
        assert api.get("/api/v1/destinations").json()["destinations"] == []
        assert not (tmp_path / "exports").exists()

        created = api.post(
            "/api/v1/destinations",
            params={"check": check},
            json={"name": "Exports", **file_body({"directory": exports})},
        )
        assert created.status_code == 201, created.text
        path = f"/api/v1/destinations/{created.json()['id']}"
        changed = api.patch(path, json={"config": {"format": "xml"}})
        assert changed.status_code == 400
        assert changed.json()["field"] == "config.format"
        assert "use csv or parquet" in changed.json()["message"]
        assert api.get(path).json()["config"] == {"directory": exports}
        fine = api.patch(path, json={"config": {"format": "parquet"}})
        assert fine.json()["config"] == {"directory": exports, "format": "parquet"}


def file_body(config: dict[str, Any]) -> dict[str, Any]:
    return {"platform": "file", "credentials": {}, "config": config}


def test_a_name_of_digits_only_is_refused_as_it_would_read_as_an_id(
    live_server: LiveServer, tmp_path: Path
) -> None:
    with live_server.admin() as api:
        digits = api.post(
            "/api/v1/destinations",
            json={"name": "123", **file_body({"directory": str(tmp_path)})},
        )
        assert digits.status_code == 400
        assert digits.json()["field"] == "name"
        assert "cannot be only digits" in digits.json()["message"]
        created = api.post(
            "/api/v1/destinations",
            json={"name": "Export 123", **file_body({"directory": str(tmp_path)})},
        ).json()
        assert api.get("/api/v1/destinations/Export 123").json()["id"] == created["id"]
        assert api.get(f"/api/v1/destinations/{created['id']}").json()["name"] == "Export 123"
        renamed = api.post("/api/v1/destinations/Export 123/rename", json={"name": "42"})
        assert renamed.status_code == 400 and renamed.json()["field"] == "name"
        # Digits other than ASCII ones are a name (no such destination), never a crash.
        assert api.get("/api/v1/destinations/²").status_code == 404


def test_an_instant_sync_still_running_after_wait_answers_202_and_finishes(
    live_server: LiveServer, fake: FakeMeta, meta_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from segmint.sync import runner

    seed_profiles(live_server.runtime, 120)
    activate(live_server.runtime, "gold_members", hours=-24)
    release = threading.Event()
    real_sync = runner.sync_link

    def slow_sync(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(30)  # a platform that takes its time
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(runner, "sync_link", slow_sync)
    with live_server.admin() as api:
        created = api.post("/api/v1/destinations", json=meta_destination(fake, meta_url))
        assert created.status_code == 201, created.text
        link = api.post(
            "/api/v1/audiences/gold_members/links", json={"destination": "Shop Meta"}
        ).json()
        running = api.post(f"/api/v1/links/{link['id']}/sync", params={"wait": 0.2})
        assert running.status_code == 202
        assert running.json()["status"] == "running"
        assert running.json()["logs"] in running.json()["message"]
        assert running.json()["logs"] == f"/api/v1/audiences/{link['audience_id']}/logs"
        release.set()  # it goes on without the request
        (entry,) = wait_for_logs(api, "gold_members", 1)
        assert (entry["status"], entry["added"]) == ("succeeded", 120)
        (audience,) = fake.audiences.values()
        assert len(audience.values("EMAIL")) == 120
        for wait in ("-1", "nan", "soon", "99999"):
            bad = api.post(f"/api/v1/links/{link['id']}/sync", params={"wait": wait})
            assert bad.status_code == 400 and bad.json()["field"] == "query.wait"
