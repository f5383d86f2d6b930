"""The events explorer API (R27): tracked events, their properties and types, trait keys."""

from __future__ import annotations

import base64
from urllib.parse import quote

from tests.conftest import LiveServer


def send(server: LiveServer, batch: list[dict[str, object]]) -> None:
    auth = base64.b64encode(f"{server.write_key}:".encode()).decode()
    with server.client() as client:
        response = client.post(
            "/v1/batch", json={"batch": batch}, headers={"Authorization": f"Basic {auth}"}
        )
    assert response.status_code == 200, response.text


def test_explorer_lists_events_properties_and_traits(live_server: LiveServer) -> None:
    send(
        live_server,
        [
            {
                "type": "track",
                "event": "order_completed",
                "userId": "u1",
                "timestamp": "2025-05-01T00:00:00Z",
                "properties": {"revenue": 10.5, "coupon": "X"},
            },
            {
                "type": "track",
                "event": "order_completed",
                "userId": "u2",
                "timestamp": "2025-05-03T00:00:00Z",
                "properties": {"revenue": "7", "paid": True},
            },
            {
                "type": "track",
                "event": "product_viewed",
                "userId": "u1",
                "timestamp": "2025-05-02T00:00:00Z",
            },
            {
                "type": "identify",
                "userId": "u1",
                "timestamp": "2025-05-01T00:00:00Z",
                "traits": {"plan": "pro", "age": 31},
            },
        ],
    )
    with live_server.admin() as admin:
        events = admin.get("/api/v1/events").json()["events"]
        props = admin.get("/api/v1/events/order_completed/properties").json()["properties"]
        traits = admin.get("/api/v1/traits").json()["traits"]
        missing = admin.get("/api/v1/events/never_sent/properties")
    first = events[0]
    assert (first["event"], first["count"], first["profiles"]) == ("order_completed", 2, 2)
    assert first["first_seen"].startswith("2025-05-01")
    assert first["last_seen"].startswith("2025-05-03")
    assert {e["event"] for e in events} == {"order_completed", "product_viewed", "identify"}
    by_key = {p["key"]: p for p in props}
    assert by_key["revenue"]["types"] == {"number": 1, "string": 1}
    assert by_key["revenue"]["numeric_strings"] == 1
    assert by_key["paid"]["types"] == {"boolean": 1}
    assert by_key["coupon"]["examples"] == ["X"]
    assert {t["key"]: t["types"] for t in traits} == {"plan": {"string": 1}, "age": {"number": 1}}
    assert missing.status_code == 404
    assert "never_sent" in missing.json()["message"]


def test_explorer_requires_an_admin_key(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/api/v1/events").status_code == 401
        wrong = client.get(
            "/api/v1/events", headers={"Authorization": f"Bearer {live_server.write_key}"}
        )
    assert wrong.status_code == 401
    assert "API key" in wrong.json()["message"]


def test_an_event_whose_name_holds_slashes_has_its_properties_listed(
    live_server: LiveServer,
) -> None:
    names = ["checkout/step 1", "funnel/properties", "a/b/properties/c"]
    send(
        live_server,
        [
            {"type": "track", "event": name, "userId": "u1", "properties": {"step": n}}
            for n, name in enumerate(names)
        ],
    )
    with live_server.admin() as admin:
        listed = {e["event"] for e in admin.get("/api/v1/events").json()["events"]}
        assert set(names) <= listed
        for n, name in enumerate(names):
            for path in (quote(name, safe=""), quote(name, safe="/")):  # %2F, or / as it is
                answer = admin.get(f"/api/v1/events/{path}/properties")
                assert answer.status_code == 200, (path, answer.text)
                assert answer.json()["event"] == name
                assert answer.json()["properties"][0]["examples"] == [str(n)]
        missing = admin.get(f"/api/v1/events/{quote('checkout/step 2', safe='')}/properties")
    assert missing.status_code == 404
    assert "no event named 'checkout/step 2'" in missing.json()["message"]
