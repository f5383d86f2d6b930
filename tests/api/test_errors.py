"""Error bodies of the REST API (api/errors.py): a body that is not JSON says where it breaks,
and ``field`` is always a path of the request, never a character offset or the name of a
pydantic union member."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer

JSON = {"Content-Type": "application/json"}
VIEWED = {"root": {"kind": "event", "event": "product_viewed"}}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"definition":', "Expecting value at line 1 column 15"),
        ('{"definition": {"root": 1},}', "Expecting property name enclosed in double quotes"),
        ('{\n  "definition": {\n    "root": tru\n  }\n}', "Expecting value at line 3 column 13"),
        ("", None),
    ],
    ids=["cut short", "trailing comma", "third line", "empty"],
)
def test_a_body_that_is_not_json_says_where_it_breaks_and_names_no_field(
    live_server: LiveServer, text: str, where: str | None
) -> None:
    with live_server.admin() as api:
        answer = api.post("/api/v1/audiences", content=text, headers=JSON)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert "field" not in body or body["field"] == "definition", body  # empty: no body at all
    if where is not None:
        assert body["message"].startswith("the body is not valid JSON: "), body
        assert where in body["message"]


@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    [
        (
            "/api/v1/audiences/1/activate",
            {"name": "x", "refresh_interval": {"hours": 1}},
            "refresh_interval",
            "Input should be a valid string or a valid integer",
        ),
        (
            "/api/v1/audiences/explain",
            {"definition": VIEWED, "profile_id": [1]},
            "profile_id",
            "Input should be a valid integer or a valid string",
        ),
        (
            "/api/v1/audiences/explain",
            {"definition": VIEWED, "profile_id": None},
            "profile_id",
            "",
        ),
        ("/api/v1/audiences", {"definition": [VIEWED]}, "definition", "valid dictionary"),
        ("/api/v1/audiences", {"description": "x"}, "definition", "Field required"),
        ("/api/v1/audiences", {"definition": VIEWED, "name": 5}, "name", "valid string"),
    ],
)
def test_fields_are_request_paths_without_union_member_names(
    live_server: LiveServer, path: str, body: dict[str, Any], field: str, words: str
) -> None:
    with live_server.admin() as api:
        api.post("/api/v1/audiences", json={"definition": VIEWED})
        answer = api.post(path, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert words in answer.json()["message"]
