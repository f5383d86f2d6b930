"""The tracking API over real HTTP: every endpoint, auth, limits, errors, de-duplication."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from segmint.catalog.keys import create_key, revoke_key
from tests.conftest import LiveServer

SINGLE = {
    "track": {"event": "order_completed", "properties": {"revenue": 12.5}},
    "identify": {"traits": {"email": "ann@example.com"}},
    "page": {"name": "Home", "properties": {"url": "https://shop.example/"}},
    "screen": {"name": "Cart"},
    "group": {"groupId": "acme", "traits": {"plan": "pro"}},
    "alias": {"previousId": "anon-alias", "userId": "user-alias"},
}
SHORT = {"track": "t", "identify": "i", "page": "p", "screen": "s", "group": "g", "alias": "a"}


# Properties nested 300 levels: JSON parsers read it (up to 1,024), encoders refuse it (254).
DEEP = b'{"event": "x", "userId": "u", "properties": ' + b'{"a": ' * 300 + b"1" + b"}" * 301


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def stored(server: LiveServer, where: str = "TRUE", params: list[object] | None = None) -> list:
    return server.runtime.warehouse.rows(
        f"SELECT message_id, type, event, user_id, anonymous_id, profile_id FROM events "
        f"WHERE {where} ORDER BY message_id",
        params or [],
    )


@pytest.mark.parametrize("kind", list(SINGLE))
@pytest.mark.parametrize("short", [False, True])
def test_each_single_endpoint_stores_its_message(
    live_server: LiveServer, kind: str, short: bool
) -> None:
    path = f"/v1/{SHORT[kind]}" if short else f"/v1/{kind}"
    body = {"anonymousId": f"anon-{kind}", "messageId": f"m-{kind}-{short}", **SINGLE[kind]}
    with live_server.client() as client:
        response = client.post(path, json=body, headers=basic(live_server.write_key))
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    rows = stored(live_server, "message_id = ?", [f"m-{kind}-{short}"])
    assert len(rows) == 1
    assert rows[0][1] == kind
    expected_event = "order_completed" if kind == "track" else kind
    assert rows[0][2] == expected_event


def test_browser_style_text_plain_with_write_key_in_body(live_server: LiveServer) -> None:
    body = {
        "type": "track",
        "event": "clicked",
        "anonymousId": "a1",
        "messageId": "tp-1",
        "writeKey": live_server.write_key,
    }
    with live_server.client() as client:
        response = client.post(
            "/v1/t", content=orjson.dumps(body), headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 200
    assert stored(live_server, "message_id = 'tp-1'")


def test_gzip_batch(live_server: LiveServer) -> None:
    body = {
        "batch": [
            {"type": "track", "event": "e", "userId": "u1", "messageId": f"gz-{i}"}
            for i in range(50)
        ],
        "writeKey": live_server.write_key,
    }
    with live_server.client() as client:
        response = client.post(
            "/v1/batch",
            content=gzip.compress(orjson.dumps(body)),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert len(stored(live_server, "message_id LIKE 'gz-%'")) == 50


def test_not_gzip_but_says_so(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post(
            "/v1/batch",
            content=b"{}",
            headers={"Content-Encoding": "gzip", **basic(live_server.write_key)},
        )
    assert response.status_code == 400
    assert "gzip" in response.json()["message"]


@pytest.mark.parametrize("cut", [8, 40], ids=["trailer", "mid-stream"])
def test_a_gzip_body_cut_off_is_refused(live_server: LiveServer, cut: int) -> None:
    body = {"batch": [{"type": "track", "event": "e", "userId": "u1"} for _ in range(20)]}
    with live_server.client() as client:
        response = client.post(
            "/v1/batch",
            content=gzip.compress(orjson.dumps(body))[:-cut],
            headers={"Content-Encoding": "gzip", **basic(live_server.write_key)},
        )
    assert response.status_code == 400
    assert "cut off" in response.json()["message"]
    assert not stored(live_server)


def test_an_encoding_other_than_gzip_is_refused_by_name(live_server: LiveServer) -> None:
    body = orjson.dumps({"type": "track", "event": "e", "userId": "u1", "messageId": "br-1"})
    with live_server.client() as client:
        refused = client.post(
            "/v1/track",
            content=body,
            headers={"Content-Encoding": "br", **basic(live_server.write_key)},
        )
        plain = client.post(
            "/v1/track",
            content=body,
            headers={"Content-Encoding": "identity", **basic(live_server.write_key)},
        )
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Content-Encoding 'br' is not supported;")
    assert plain.status_code == 200
    live_server.stored()
    assert len(stored(live_server, "message_id = 'br-1'")) == 1  # the plain one only


@pytest.mark.parametrize(
    ("headers", "body_key"),
    [
        ({}, None),
        (basic("sgw_not-a-key"), None),
        ({}, "sgw_wrong"),
        ({"Authorization": "Basic !!!"}, None),
    ],
)
def test_missing_or_unknown_write_key_is_401(
    live_server: LiveServer, headers: dict[str, str], body_key: str | None
) -> None:
    body: dict[str, object] = {"event": "x", "userId": "u"}
    if body_key:
        body["writeKey"] = body_key
    with live_server.client() as client:
        response = client.post("/v1/track", json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert "write key" in response.json()["message"]


def test_revoked_key_and_admin_key_are_refused(live_server: LiveServer) -> None:
    info, key = create_key(live_server.runtime.catalog, "temp", "write")
    revoke_key(live_server.runtime.catalog, info.id)
    with live_server.client() as client:
        assert (
            client.post(
                "/v1/track", json={"event": "x", "userId": "u"}, headers=basic(key)
            ).status_code
            == 401
        )
        assert (
            client.post(
                "/v1/track",
                json={"event": "x", "userId": "u"},
                headers=basic(live_server.admin_key),
            ).status_code
            == 401
        )


@pytest.mark.parametrize(
    ("path", "content", "status", "field", "words"),
    [
        ("/v1/track", b"{not json", 400, None, "not valid JSON"),
        ("/v1/track", b"", 400, None, "empty"),
        ("/v1/track", b"[1,2]", 400, None, "JSON object"),
        ("/v1/track", b'{"userId": "u"}', 400, "event", "event name"),
        ("/v1/track", b'{"event": "x"}', 400, "userId", "userId or anonymousId"),
        (
            "/v1/track",
            b'{"event": "x", "userId": "u", "timestamp": "soon"}',
            400,
            "timestamp",
            "ISO-8601",
        ),
        (
            "/v1/track",
            b'{"event": "x", "userId": "u", "properties": 5}',
            400,
            "properties",
            "object",
        ),
        ("/v1/identify", b'{"type": "track", "userId": "u"}', 400, "type", "does not match"),
        ("/v1/group", b'{"userId": "u"}', 400, "groupId", "groupId"),
        ("/v1/alias", b'{"userId": "u"}', 400, "previousId", "previousId"),
        ("/v1/batch", b'{"messages": []}', 400, "batch", '{"batch"'),
        ("/v1/batch", b'{"batch": []}', 400, "batch", "empty"),
        (
            "/v1/batch",
            b'{"batch": [{"type":"track","event":"x","userId":"u"}], "sentAt": 4}',
            400,
            "sentAt",
            "ISO-8601",
        ),
        (
            "/v1/batch",
            b'{"batch": [{"type":"track","event":"x","userId":"u"}], "context": 4}',
            400,
            "context",
            "object",
        ),
        ("/v1/track", DEEP, 400, "properties", "more than 254 levels deep"),
        (
            "/v1/track",
            b'{"event": "x", "userId": "u", "timestamp": "9999-12-31T23:59:59-01:00"}',
            400,
            "timestamp",
            "out of range in UTC",
        ),
        (
            "/v1/track",
            b'{"event": "x", "userId": "u", "timestamp": "1970-01-01T00:00:00Z", '
            b'"sentAt": "9999-01-01T00:00:00Z"}',
            400,
            "sentAt",
            "before 1970",
        ),
        (
            "/v1/batch",
            b'{"batch": [{"type":"track","event":"x","userId":"u"}], '
            b'"sentAt": "0001-01-01T00:00:00+01:00"}',
            400,
            "sentAt",
            "out of range in UTC",
        ),
    ],
)
def test_bad_input_gets_status_and_field(
    live_server: LiveServer, path: str, content: bytes, status: int, field: str | None, words: str
) -> None:
    with live_server.client() as client:
        response = client.post(path, content=content, headers=basic(live_server.write_key))
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False
    assert words in body["message"]
    assert body.get("field") == field


def test_oversized_single_message_is_400(live_server: LiveServer) -> None:
    body = {"event": "x", "userId": "u", "properties": {"blob": "x" * 40_000}}
    with live_server.client() as client:
        response = client.post("/v1/track", json=body, headers=basic(live_server.write_key))
    assert response.status_code == 400
    assert response.json()["code"] == "payload_too_large"


def test_oversized_batch_bytes_is_400(live_server: LiveServer) -> None:
    batch = [
        {"type": "track", "event": "x", "userId": "u", "properties": {"b": "x" * 20_000}}
        for _ in range(30)
    ]
    with live_server.client() as client:
        response = client.post(
            "/v1/batch", json={"batch": batch}, headers=basic(live_server.write_key)
        )
    assert response.status_code == 400
    assert "500" in response.json()["message"] or "limit" in response.json()["message"]
    assert not stored(live_server)


def test_too_many_messages_in_a_batch_is_400(live_server: LiveServer) -> None:
    batch = [{"type": "track", "event": "x", "userId": "u"} for _ in range(2501)]
    with live_server.client() as client:
        response = client.post(
            "/v1/batch", json={"batch": batch}, headers=basic(live_server.write_key)
        )
    assert response.status_code == 400
    assert "2,501 messages" in response.json()["message"]


def test_oversized_message_inside_a_batch_is_rejected_alone(live_server: LiveServer) -> None:
    batch = [
        {"type": "track", "event": "x", "userId": "u", "messageId": "ok-1"},
        {"type": "track", "event": "x", "userId": "u", "properties": {"b": "x" * 40_000}},
    ]
    with live_server.client() as client:
        response = client.post(
            "/v1/batch", json={"batch": batch}, headers=basic(live_server.write_key)
        )
    assert response.status_code == 200
    assert response.json()["rejected"][0]["index"] == 1
    assert response.json()["rejected"][0]["code"] == "payload_too_large"
    assert stored(live_server, "message_id = 'ok-1'")


def test_valid_messages_survive_invalid_neighbours(live_server: LiveServer) -> None:
    batch = [
        {"type": "track", "event": "a", "userId": "u1", "messageId": "n-0"},
        {"type": "track", "userId": "u1", "messageId": "n-1"},
        {"type": "identify", "anonymousId": "x", "messageId": "n-2", "traits": {"k": 1}},
        {"type": "page", "messageId": "n-3"},
        "not an object",
    ]
    with live_server.client() as client:
        response = client.post(
            "/v1/batch", json={"batch": batch}, headers=basic(live_server.write_key)
        )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "batch[1].event"),
        (3, "batch[3].userId"),
        (4, "batch[4]"),
    ]
    assert [r[0] for r in stored(live_server)] == ["n-0", "n-2"]


def test_batch_with_only_invalid_messages_is_400(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post(
            "/v1/batch", json={"batch": [{"type": "track"}]}, headers=basic(live_server.write_key)
        )
    assert response.status_code == 400
    assert response.json()["accepted"] == 0
    assert response.json()["message"] == "the message was rejected; nothing was stored"


def test_messages_that_could_not_be_stored_are_rejected_and_spare_their_neighbours(
    live_server: LiveServer,
) -> None:
    # Each of these once passed validation and failed later: a 500 for the whole batch,
    # or (the URL) a 200 followed by the whole request kept out of the warehouse.
    deep = DEEP.decode().replace('"event": "x"', '"type": "track", "event": "x"')
    batch = (
        b'{"batch": [{"type": "track", "event": "a", "userId": "u1", "messageId": "s-0"}, '
        + deep.encode()
        + b', {"type": "track", "event": "a", "userId": "u1", "timestamp": '
        b'"9999-12-31T23:59:59-01:00"}, {"type": "page", "anonymousId": "x", "messageId": '
        b'"s-3", "context": {"page": {"url": "https://shop.example.com]/?utm_source=news"}}}]}'
    )
    with live_server.client() as client:
        response = client.post("/v1/batch", content=batch, headers=basic(live_server.write_key))
        everything_rejected = client.post(
            "/v1/batch",
            json={"batch": [{"type": "track"}, {"type": "track"}]},
            headers=basic(live_server.write_key),
        )
    assert response.status_code == 200, response.text
    assert [(r["index"], r["field"]) for r in response.json()["rejected"]] == [
        (1, "batch[1].properties"),
        (2, "batch[2].timestamp"),
    ]
    assert response.json()["message"] == ("2 of 4 messages were rejected; the others were stored")
    rows = stored(live_server)
    assert [r[0] for r in rows] == ["s-0", "s-3"]
    (utm,) = live_server.runtime.warehouse.rows(
        "SELECT utm_source FROM events WHERE message_id = 's-3'"
    )
    assert utm == ("news",)
    assert everything_rejected.status_code == 400
    assert everything_rejected.json()["message"] == (
        "all 2 messages were rejected; nothing was stored"
    )


def test_duplicate_message_ids_are_stored_once(live_server: LiveServer) -> None:
    body = {"event": "x", "userId": "u", "messageId": "dup-1"}
    with live_server.client() as client:
        for _ in range(3):
            assert (
                client.post(
                    "/v1/track", json=body, headers=basic(live_server.write_key)
                ).status_code
                == 200
            )
        batch = {"batch": [{"type": "track", **body}, {"type": "track", **body}]}
        assert (
            client.post("/v1/batch", json=batch, headers=basic(live_server.write_key)).status_code
            == 200
        )
    assert len(stored(live_server, "message_id = 'dup-1'")) == 1


def test_clock_skew_is_corrected_over_http(live_server: LiveServer) -> None:
    skew = timedelta(hours=3)  # the client clock is 3 hours fast
    client_now = datetime.now(UTC) + skew
    body = {
        "batch": [
            {
                "type": "track",
                "event": "x",
                "userId": "u",
                "messageId": "skew-1",
                "timestamp": (client_now - timedelta(minutes=10)).isoformat(),
            }
        ],
        "sentAt": client_now.isoformat(),
    }
    with live_server.client() as client:
        assert (
            client.post("/v1/batch", json=body, headers=basic(live_server.write_key)).status_code
            == 200
        )
    ((timestamp, received_at),) = live_server.runtime.warehouse.rows(
        "SELECT timestamp, received_at FROM events WHERE message_id = 'skew-1'"
    )
    age = received_at - timestamp
    assert timedelta(minutes=9, seconds=55) <= age <= timedelta(minutes=10, seconds=5)


def test_cors_preflight_allows_browsers(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.options(
            "/v1/t",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://shop.example")
    assert "POST" in response.headers["access-control-allow-methods"]


def test_batch_context_and_integrations_merge_into_messages(live_server: LiveServer) -> None:
    body = {
        "batch": [
            {
                "type": "track",
                "event": "x",
                "userId": "u",
                "messageId": "ctx-1",
                "context": {"locale": "de-DE"},
            }
        ],
        "context": {"ip": "8.8.8.8", "locale": "en-US"},
        "integrations": {"All": False},
    }
    with live_server.client() as client:
        assert (
            client.post("/v1/batch", json=body, headers=basic(live_server.write_key)).status_code
            == 200
        )
    ((context, integrations, locale, ip),) = live_server.runtime.warehouse.rows(
        "SELECT context, integrations, locale, ip FROM events WHERE message_id = 'ctx-1'"
    )
    assert orjson.loads(context) == {"ip": "8.8.8.8", "locale": "de-DE"}
    assert orjson.loads(integrations) == {"All": False}
    assert (locale, ip) == ("de-DE", "8.8.8.8")


def test_health_and_openapi(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/health").json()["status"] == "ok"
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/track", "/v1/batch", "/api/v1/events"} <= set(paths)


def test_browser_calls_get_the_connection_ip_server_calls_do_not(
    live_server: LiveServer,
) -> None:
    with live_server.client() as client:
        for path, message_id, context in [
            ("/v1/t", "ip-browser", {}),
            ("/v1/track", "ip-server", {}),
            ("/v1/track", "ip-direct", {"direct": True}),
            ("/v1/t", "ip-given", {"ip": "8.8.8.8"}),
        ]:
            body = {"event": "x", "userId": "u", "messageId": message_id, "context": context}
            assert (
                client.post(path, json=body, headers=basic(live_server.write_key)).status_code
                == 200
            )
    ips = dict(live_server.runtime.warehouse.rows("SELECT message_id, ip FROM events"))
    assert ips == {
        "ip-browser": "127.0.0.1",
        "ip-server": None,
        "ip-direct": "127.0.0.1",
        "ip-given": "8.8.8.8",
    }
