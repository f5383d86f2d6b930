"""The audience lifecycle over real HTTP: create, activate (computes members), versions,
history, cohorts, usage, impact preview, and clear errors for bad input."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from segmint.api.app import create_app
from segmint.audiences.names import RESERVED
from tests.conftest import LiveServer

VIEWED_30D = {
    "kind": "event",
    "event": "product_viewed",
    "window": {"type": "relative", "last": 30, "unit": "days"},
}
ORDERED_30D = {
    "kind": "event",
    "event": "order_completed",
    "window": {"type": "relative", "last": 30, "unit": "days"},
}


def send_events(server: LiveServer) -> None:
    now = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    for i in range(6):
        ts = (now - timedelta(days=2)).isoformat()
        batch.append(
            {
                "type": "track",
                "event": "product_viewed",
                "userId": f"u{i}",
                "timestamp": ts,
                "context": {"location": {"country": "US"}},
            }
        )
        if i < 2:
            batch.append(
                {
                    "type": "track",
                    "event": "order_completed",
                    "userId": f"u{i}",
                    "timestamp": ts,
                    "properties": {"revenue": 100 * (i + 1)},
                }
            )
    auth = base64.b64encode(f"{server.write_key}:".encode()).decode()
    with server.client() as client:
        response = client.post(
            "/v1/batch", json={"batch": batch}, headers={"Authorization": f"Basic {auth}"}
        )
    assert response.status_code == 200, response.text


def test_lifecycle_over_http(live_server: LiveServer) -> None:
    send_events(live_server)
    with live_server.admin() as api:
        created = api.post("/api/v1/audiences", json={"definition": {"root": VIEWED_30D}})
        assert created.status_code == 201, created.text
        audience_id = created.json()["id"]
        assert created.json()["status"] == "draft"
        assert created.json()["type"] == "dynamic"

        bad_name = api.post(
            f"/api/v1/audiences/{audience_id}/activate",
            json={"name": "Viewers (30d)", "refresh_interval": "1d"},
        )
        assert bad_name.status_code == 400
        assert "'viewers_30d'" in bad_name.json()["message"]

        activated = api.post(
            f"/api/v1/audiences/{audience_id}/activate",
            json={"name": "viewers_30d", "refresh_interval": "1d"},
        )
        assert activated.status_code == 200, activated.text
        body = activated.json()
        assert body["audience"]["status"] == "active"
        assert body["refresh"]["size"] == 6 and body["refresh"]["entered"] == 6
        assert "daily" in body["audience"]["schedule"]

        shown = api.get("/api/v1/audiences/viewers_30d").json()
        assert shown["size"] == 6

        members = api.get("/api/v1/audiences/viewers_30d/members").json()
        assert members["total"] == 6 and len(members["profile_ids"]) == 6

        not_ordered = {
            "root": {"kind": "and", "conditions": [VIEWED_30D, {**ORDERED_30D, "performed": False}]}
        }
        impact = api.post(
            "/api/v1/audiences/viewers_30d/impact", json={"definition": not_ordered}
        ).json()
        assert (impact["entering"], impact["leaving"], impact["new_size"]) == (0, 2, 4)
        assert impact["changes"]

        saved = api.put(
            "/api/v1/audiences/viewers_30d/definition",
            json={"definition": not_ordered, "note": "exclude buyers"},
        )
        assert saved.status_code == 200 and saved.json()["version"] == 2
        diff = api.get("/api/v1/audiences/viewers_30d/versions/1/diff/2").json()
        assert diff["changes"] and "order_completed" in diff["text"]
        versions = api.get("/api/v1/audiences/viewers_30d/versions").json()["versions"]
        assert [v["version"] for v in versions] == [1, 2]
        assert versions[1]["note"] == "exclude buyers"

        refreshed = api.post("/api/v1/audiences/viewers_30d/refresh")
        assert refreshed.status_code == 200, refreshed.text
        assert (refreshed.json()["size"], refreshed.json()["left"]) == (4, 2)
        points = api.get("/api/v1/audiences/viewers_30d/history").json()["refreshes"]
        assert [(p["size"], p["entered"], p["left"]) for p in points] == [(6, 6, 0), (4, 0, 2)]
        retention = api.get("/api/v1/audiences/viewers_30d/retention").json()
        assert retention["cohort"]["size"] == 6  # the first refresh's entrants, by default
        assert [(p["retained"], p["rate"]) for p in retention["points"]] == [(6, 1.0), (4, 0.6667)]
        second = points[1]["refresh_id"]
        later = api.get("/api/v1/audiences/viewers_30d/retention", params={"refresh_id": second})
        assert later.json()["cohort"] == {
            "refresh_id": second,
            "as_of": points[1]["as_of"],
            "size": 0,
        }
        empty = api.get("/api/v1/audiences/viewers_30d/retention", params={"refresh_id": ""})
        assert empty.json()["cohort"] == retention["cohort"]  # empty means the default
        long_id = api.get(
            "/api/v1/audiences/viewers_30d/retention", params={"refresh_id": "x" * 101}
        )
        assert long_id.status_code == 400 and long_id.json()["field"] == "query.refresh_id"
        unknown = api.get("/api/v1/audiences/viewers_30d/retention", params={"refresh_id": "x"})
        assert (
            unknown.status_code == 404 and "no committed refresh 'x'" in unknown.json()["message"]
        )

        usage = api.get("/api/v1/audiences/usage").json()
        assert usage["total"] == 10
        forecast = api.get("/api/v1/audiences/usage/forecast").json()
        assert forecast["total"] > 0 and forecast["assumptions"]

        assert api.post("/api/v1/audiences/viewers_30d/archive").json()["status"] == "archived"
        archived_refresh = api.post("/api/v1/audiences/viewers_30d/refresh")
        assert archived_refresh.status_code in (400, 409)
        assert "archived" in archived_refresh.json()["message"]
        restored = api.post("/api/v1/audiences/viewers_30d/restore", json={})
        assert restored.json()["status"] == "draft"
        assert api.delete(f"/api/v1/audiences/{audience_id}").json()["status"] == "deleted"
        listed = api.get("/api/v1/audiences", params={"status": "deleted"}).json()
        assert [a["id"] for a in listed["audiences"]] == [audience_id]
        by_name = api.post("/api/v1/audiences/viewers_30d/restore", json={})
        assert by_name.json()["status"] == "draft" and by_name.json()["id"] == audience_id


def test_overlap_and_static_audiences(live_server: LiveServer) -> None:
    send_events(live_server)
    with live_server.admin() as api:
        viewers = api.post("/api/v1/audiences", json={"definition": {"root": VIEWED_30D}}).json()
        buyers = api.post(
            "/api/v1/audiences",
            json={
                "definition": {
                    "root": {
                        "kind": "event",
                        "event": "order_completed",
                        "window": {"type": "absolute", "from": "2020-01-01"},
                    }
                }
            },
        ).json()
        assert buyers["type"] == "static"
        refused = api.post(
            f"/api/v1/audiences/{buyers['id']}/activate",
            json={"name": "buyers", "refresh_interval": "1d"},
        )
        assert refused.status_code == 400
        assert "static" in refused.json()["message"]
        assert (
            api.post(
                f"/api/v1/audiences/{buyers['id']}/activate", json={"name": "buyers"}
            ).status_code
            == 200
        )
        assert (
            api.post(
                f"/api/v1/audiences/{viewers['id']}/activate",
                json={"name": "viewers", "refresh_interval": "6h"},
            ).status_code
            == 200
        )
        result = api.get("/api/v1/audiences/overlap", params={"a": "viewers", "b": "buyers"})
        assert result.status_code == 200, result.text
        assert (result.json()["both"], result.json()["only_a"], result.json()["only_b"]) == (
            2,
            4,
            0,
        )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("get", "/api/v1/audiences/nope", None, 404, "nope"),
        ("get", "/api/v1/audiences/999", None, 404, "999"),
        ("get", "/api/v1/audiences?status=gone", None, 400, "status"),
        ("post", "/api/v1/audiences", {"definition": {"root": {"kind": "magic"}}}, 400, "magic"),
        (
            "post",
            "/api/v1/audiences",
            {
                "definition": {
                    "root": {
                        "kind": "event",
                        "event": "x",
                        "window": {"type": "relative", "last": -3},
                    }
                }
            },
            400,
            "root.window",
        ),
        (
            "post",
            "/api/v1/audiences",
            {
                "definition": {
                    "root": {
                        "kind": "trait",
                        "trait": "email",
                        "operator": "matches_regex",
                        "value": "(a",
                    }
                }
            },
            400,
            "regular expression",
        ),
        (
            "post",
            "/api/v1/audiences",
            {"definition": {"root": VIEWED_30D}, "colour": 1},
            400,
            "colour",
        ),
        ("post", "/api/v1/audiences", {}, 400, "definition"),
        (
            "post",
            "/api/v1/audiences",
            {"definition": {"root": VIEWED_30D}, "name": "Bad Name"},
            400,
            "'bad_name'",
        ),
    ],
)
def test_bad_input_gets_clear_errors(
    live_server: LiveServer, method: str, path: str, body: Any, status: int, words: str
) -> None:
    with live_server.admin() as api:
        response = api.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert words in payload["message"] or words in str(payload.get("field"))


def test_bad_activation_input(live_server: LiveServer) -> None:
    with live_server.admin() as api:
        draft = api.post("/api/v1/audiences", json={"definition": {"root": VIEWED_30D}}).json()
        for body, words in [
            ({"name": "ok_name", "refresh_interval": "soon"}, "not an interval"),
            ({"name": "ok_name", "refresh_interval": "10m"}, "1 hour"),
            ({"name": "ok_name", "refresh_interval": "45d"}, "30 days"),
            ({"name": "ok_name"}, "interval"),
            ({}, "name"),
        ]:
            response = api.post(f"/api/v1/audiences/{draft['id']}/activate", json=body)
            assert response.status_code == 400, (body, response.text)
            assert words in response.json()["message"], (body, response.json())


def test_audience_api_needs_a_key(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/api/v1/audiences").status_code == 401
        assert client.post("/api/v1/audiences", json={}).status_code == 401


def test_concurrent_definition_saves_each_become_a_version(live_server: LiveServer) -> None:
    with live_server.admin() as api:
        created = api.post("/api/v1/audiences", json={"definition": {"root": VIEWED_30D}}).json()
    start = threading.Barrier(10)

    def save(days: int) -> httpx.Response:
        window = {"type": "relative", "last": days, "unit": "days"}
        body = {"definition": {"root": {**VIEWED_30D, "window": window}}}
        with live_server.admin() as api:
            start.wait()
            return api.put(f"/api/v1/audiences/{created['id']}/definition", json=body)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(save, range(1, 11)))
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == list(range(2, 12))
    with live_server.admin() as api:
        versions = api.get(f"/api/v1/audiences/{created['id']}/versions").json()["versions"]
    assert [v["version"] for v in versions] == list(range(1, 12))


@pytest.mark.parametrize(
    ("interval", "words"),
    [
        (10**30, "choose one from 1 hour to 30 days"),
        ("99999999999d", "choose one from 1 hour to 30 days"),
        (True, "Input should be a valid string or a valid integer"),
        ([3600], "Input should be a valid string or a valid integer"),
    ],
)
def test_refresh_interval_out_of_range_or_of_another_type_is_refused_naming_it(
    live_server: LiveServer, interval: Any, words: str
) -> None:
    with live_server.admin() as api:
        draft = api.post("/api/v1/audiences", json={"definition": {"root": VIEWED_30D}}).json()
        answer = api.post(
            f"/api/v1/audiences/{draft['id']}/activate",
            json={"name": "viewers", "refresh_interval": interval},
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "refresh_interval"
        assert words in answer.json()["message"]
        assert api.get(f"/api/v1/audiences/{draft['id']}").json()["status"] == "draft"


def test_every_fixed_path_under_audiences_is_a_reserved_name() -> None:
    prefix = "/api/v1/audiences/"
    fixed = {
        path.removeprefix(prefix).split("/")[0]
        for path in create_app().openapi()["paths"]
        if path.startswith(prefix) and not path.removeprefix(prefix).startswith("{")
    }
    assert fixed == RESERVED


@pytest.mark.parametrize("name", sorted(RESERVED))
def test_names_of_fixed_paths_are_refused(live_server: LiveServer, name: str) -> None:
    body = {"definition": {"root": VIEWED_30D}, "name": name}
    with live_server.admin() as api:
        refused = api.post("/api/v1/audiences", json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["field"] == "name"
        assert f"'{name}_audience'" in refused.json()["message"]
        draft = api.post("/api/v1/audiences", json={"definition": {"root": VIEWED_30D}}).json()
        activation = {"name": name, "refresh_interval": "1d"}
        activated = api.post(f"/api/v1/audiences/{draft['id']}/activate", json=activation)
        assert activated.status_code == 400, activated.text
        assert api.get("/api/v1/audiences").json()["audiences"][0]["name"] is None


def test_oversized_definitions_are_refused_wherever_they_are_saved(
    live_server: LiveServer,
) -> None:
    events = [{"kind": "event", "event": f"e{i}"} for i in range(300)]
    big = {"root": {"kind": "or", "conditions": events}}
    send_events(live_server)
    with live_server.admin() as api:
        draft = api.post("/api/v1/audiences", json={"definition": {"root": VIEWED_30D}}).json()
        activation = {"name": "viewers", "refresh_interval": "1d"}
        assert api.post(f"/api/v1/audiences/{draft['id']}/activate", json=activation).is_success
        ref = f"/api/v1/audiences/{draft['id']}"
        for method, path, body in [
            ("POST", "/api/v1/audiences", {"definition": big}),
            ("PUT", f"{ref}/definition", {"definition": big}),
            ("POST", f"{ref}/impact", {"definition": big}),
            ("POST", f"{ref}/activate", {**activation, "definition": big}),
        ]:
            answer = api.request(method, path, json=body)
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["field"] == "root.conditions", path
            assert "has 301 nodes" in answer.json()["message"]
            assert "at most 100" in answer.json()["message"]
        assert api.get(ref).json()["version"] == 1
