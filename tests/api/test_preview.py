"""``POST /api/v1/audiences/preview`` and ``/explain`` through the real HTTP app."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.compiler.fixtures import Warehouse
from tests.conftest import LiveServer

AS_OF = "2025-03-15T12:00:00Z"
NOW = dt.datetime(2025, 3, 15, 12, 0)


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """The real app over HTTP with a small shop in its warehouse."""
    _fill(Warehouse(live_server.runtime.warehouse))
    return live_server


def _fill(wh: Warehouse) -> None:
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


def last(days: int) -> dict[str, Any]:
    return {"type": "relative", "last": days, "unit": "days"}


VIEWED_NOT_BOUGHT_US = {
    "root": {
        "kind": "and",
        "conditions": [
            {"kind": "event", "event": "product_viewed", "window": last(30)},
            {"kind": "event", "event": "order_completed", "performed": False, "window": last(30)},
            {"kind": "demographic", "field": "country", "operator": "equals", "value": "US"},
        ],
    }
}


def test_preview_requires_an_admin_key(server: LiveServer) -> None:
    with server.client() as client:
        response = client.post(
            "/api/v1/audiences/preview", json={"definition": VIEWED_NOT_BOUGHT_US}
        )
        explain = client.post(
            "/api/v1/audiences/explain", json={"definition": VIEWED_NOT_BOUGHT_US, "profile_id": 1}
        )
    assert response.status_code == 401
    assert explain.status_code == 401


def test_preview_returns_size_sample_counts_and_steps(server: LiveServer) -> None:
    with server.admin() as admin:
        response = admin.post(
            "/api/v1/audiences/preview",
            json={"definition": VIEWED_NOT_BOUGHT_US, "as_of": AS_OF, "sample_size": 5},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["size"] == 1
    assert body["profiles"] == 3
    assert [m["profile_id"] for m in body["sample"]] == [2]
    root = body["diagnostics"][0]
    assert root["label"] == "all of 3 conditions"
    assert [s["count"] for s in root["steps"]] == [3, 2, 1]
    assert [d["count"] for d in body["diagnostics"][1:]] == [3, 2, 2]
    assert body["explanations"] == []
    assert body["as_of"] == "2025-03-15T12:00:00Z"


def test_an_empty_preview_explains_itself(server: LiveServer) -> None:
    definition = {"root": {"kind": "event", "event": "order_complete", "window": last(30)}}
    with server.admin() as admin:
        body = admin.post(
            "/api/v1/audiences/preview", json={"definition": definition, "as_of": AS_OF}
        ).json()
    assert body["size"] == 0 and body["sample"] == []
    assert any("Did you mean 'order_completed'?" in line for line in body["explanations"])


def test_explain_gives_every_node_value(server: LiveServer) -> None:
    with server.admin() as admin:
        response = admin.post(
            "/api/v1/audiences/explain",
            json={"definition": VIEWED_NOT_BOUGHT_US, "profile_id": "u1", "as_of": AS_OF},
        )
        missing = admin.post(
            "/api/v1/audiences/explain",
            json={"definition": VIEWED_NOT_BOUGHT_US, "profile_id": 42, "as_of": AS_OF},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile_id"] == 1 and body["member"] is False
    assert [n["matched"] for n in body["nodes"]] == [False, True, False, True]
    assert body["lines"][2] == (
        "  order_completed in the last 30 days: 1 time (needs none) → NOT matched"
    )
    assert missing.status_code == 404
    assert missing.json()["field"] == "profile_id"


@pytest.mark.parametrize(
    ("root", "field", "words"),
    [
        ({"kind": "evnt", "event": "x"}, "definition.root", "unknown kind 'evnt'"),
        (
            {"kind": "trait", "trait": "plan", "operator": "gt", "value": "pro"},
            "definition.root",
            "",
        ),
        (
            {"kind": "event", "event": "x", "window": {"type": "relative", "last": 0}},
            "definition.root.window.last",
            "at least 1",
        ),
        (
            {
                "kind": "event",
                "event": "x",
                "window": {"type": "absolute", "from": "2025-02-01", "to": "2025-01-01"},
            },
            "definition.root.window",
            "",
        ),
        (
            {
                "kind": "event",
                "event": "x",
                "filters": [{"property": "sku", "operator": "matches_regex", "value": "(a"}],
            },
            "definition.root.filters[0]",
            "",
        ),
        ({"kind": "audience", "audience": "never_saved"}, "definition.root", "never_saved"),
    ],
)
def test_bad_definitions_are_400_naming_the_path(
    server: LiveServer, root: dict[str, Any], field: str, words: str
) -> None:
    with server.admin() as admin:
        responses = [
            admin.post(url, json={"definition": {"root": root}, "profile_id": 1, "as_of": AS_OF})
            if url.endswith("explain")
            else admin.post(url, json={"definition": {"root": root}, "as_of": AS_OF})
            for url in ("/api/v1/audiences/preview", "/api/v1/audiences/explain")
        ]
    for response in responses:
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == "invalid_definition"
        assert body["field"].startswith(field), body
        assert words in body["message"]


def test_bad_request_bodies_are_400(server: LiveServer) -> None:
    with server.admin() as admin:
        no_definition = admin.post("/api/v1/audiences/preview", json={"as_of": AS_OF})
        bad_sample = admin.post(
            "/api/v1/audiences/preview",
            json={"definition": VIEWED_NOT_BOUGHT_US, "sample_size": -1},
        )
    assert no_definition.status_code == 400
    assert no_definition.json()["field"] == "definition"
    assert bad_sample.status_code == 400
    assert bad_sample.json()["field"] == "sample_size"


def any_of_events(count: int) -> dict[str, Any]:
    return {
        "root": {
            "kind": "or",
            "conditions": [{"kind": "event", "event": f"e{i}"} for i in range(count)],
        }
    }


def nested_groups(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "event", "event": "product_viewed"}
    for _ in range(depth):
        node = {"kind": "and", "conditions": [node]}
    return {"root": node}


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        (any_of_events(300), "definition.root.conditions", "has 301 nodes"),
        (any_of_events(3000), "definition.root.conditions", "has 3001 nodes"),
        (nested_groups(11), "definition.root" + ".conditions[0]" * 11, "nested 11 groups deep"),
        (nested_groups(400), "definition.root" + ".conditions[0]" * 11, "nested 11 groups deep"),
    ],
    ids=["300 conditions", "3000 conditions", "11 levels", "400 levels"],
)
def test_oversized_definitions_are_400_saying_the_limit_and_how_to_split(
    server: LiveServer, definition: dict[str, Any], field: str, words: str
) -> None:
    with server.admin() as admin:
        responses = [
            admin.post("/api/v1/audiences/preview", json={"definition": definition}),
            admin.post(
                "/api/v1/audiences/explain", json={"definition": definition, "profile_id": 1}
            ),
        ]
    for response in responses:
        assert response.status_code == 400, response.text
        body = response.json()
        assert (body["code"], body["field"]) == ("invalid_definition", field)
        assert words in body["message"] and "at most" in body["message"]
        assert "{kind: audience, audience: NAME}" in body["message"]


def test_a_definition_at_the_size_limit_runs(server: LiveServer) -> None:
    definition = any_of_events(99)
    definition["root"]["conditions"][0] = {"kind": "event", "event": "product_viewed"}
    with server.admin() as admin:
        response = admin.post(
            "/api/v1/audiences/preview", json={"definition": definition, "as_of": AS_OF}
        )
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 3 and len(response.json()["diagnostics"]) == 100


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"definition": VIEWED_NOT_BOUGHT_US, "profile_id": True}, "profile_id"),
        ({"definition": VIEWED_NOT_BOUGHT_US, "profile_id": 1.0}, "profile_id"),
        ({"definition": VIEWED_NOT_BOUGHT_US, "profile_id": 1, "as_of": True}, "as_of"),
    ],
)
def test_explain_refuses_a_boolean_for_a_profile_id(
    server: LiveServer, body: dict[str, Any], field: str
) -> None:
    with server.admin() as admin:
        response = admin.post("/api/v1/audiences/explain", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_preview_refuses_a_boolean_sample_size(server: LiveServer) -> None:
    with server.admin() as admin:
        response = admin.post(
            "/api/v1/audiences/preview",
            json={"definition": VIEWED_NOT_BOUGHT_US, "sample_size": True},
        )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "sample_size"
