"""The builder's JSON endpoints over real HTTP (no browser): problems reported per node,
bad input answered with a clear 4xx (never 500), CSRF and sign-in required, user content
escaped in the builder page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from segmint.audiences import operations, service
from tests.web.conftest import WebServer, unique_name

US = {"id": "us", "kind": "demographic", "field": "country", "operator": "equals", "value": "US"}


def definition(*conditions: dict[str, Any], kind: str = "and") -> dict[str, Any]:
    return {"version": 1, "root": {"id": "top", "kind": kind, "conditions": list(conditions)}}


def test_validate_reports_every_problem_on_its_node(http: httpx.Client) -> None:
    body = definition(
        US,
        {"id": "noevent", "kind": "event", "event": ""},
        {"id": "g2", "kind": "or", "conditions": []},
        {"id": "bad", "kind": "demographic", "field": "age", "operator": "gt", "value": "old"},
    )
    answer = http.post("/ui/builder/validate", json={"definition": body})
    assert answer.status_code == 200
    data = answer.json()
    assert data["valid"] is False
    by_id = {e["id"]: e for e in data["errors"]}
    assert set(by_id) == {"noevent", "g2", "bad"}
    assert by_id["g2"]["message"].startswith("this group is empty")
    assert by_id["bad"]["field"] == "value"
    assert by_id["bad"]["path"] == "root.conditions[3]"


def test_validate_accepts_a_good_definition_and_says_static_or_dynamic(
    http: httpx.Client,
) -> None:
    window = {"type": "relative", "last": 30, "unit": "days"}
    event = {"id": "e", "kind": "event", "event": "product_viewed", "window": window}
    answer = http.post("/ui/builder/validate", json={"definition": definition(US, event)})
    data = answer.json()
    assert data["valid"] is True and data["dynamic"] is True and data["windowed"] is True
    assert "all of 2 conditions" in data["summary"]
    answer = http.post("/ui/builder/validate", json={"definition": definition(US)})
    # Static without a window at all: the page says so, not "fixed date ranges".
    assert (answer.json()["dynamic"], answer.json()["windowed"]) == (False, False)
    fixed = {"type": "absolute", "from": "2025-01-01", "to": "2025-02-01"}
    dated = {"id": "e", "kind": "event", "event": "product_viewed", "window": fixed}
    answer = http.post("/ui/builder/validate", json={"definition": definition(US, dated)})
    assert (answer.json()["dynamic"], answer.json()["windowed"]) == (False, True)


def test_tree_level_problems_map_to_the_node(http: httpx.Client) -> None:
    twice = dict(US)
    answer = http.post("/ui/builder/validate", json={"definition": definition(US, twice)})
    (error,) = answer.json()["errors"]
    assert error["id"] == "us" and "already used" in error["message"]


def test_estimate_and_run_agree_with_the_rest_preview(
    http: httpx.Client, web_server: WebServer
) -> None:
    body = definition(US)
    with web_server.api() as api:
        expected = api.post("/api/v1/audiences/preview", json={"definition": body}).json()
    estimate = http.post("/ui/builder/estimate", json={"definition": body}).json()
    assert estimate["size"] == expected["size"] > 0
    run = http.post("/ui/builder/run", json={"definition": body, "sample_size": 5}).json()
    assert run["size"] == expected["size"]
    assert len(run["sample"]) == 5
    assert [d["id"] for d in run["diagnostics"]] == ["top", "us"]
    incomplete = http.post(
        "/ui/builder/estimate", json={"definition": definition({"id": "x", "kind": "trait"})}
    ).json()
    assert incomplete["size"] is None and incomplete["errors"][0]["id"] == "x"


@pytest.mark.parametrize(
    ("url", "payload"),
    [
        ("/ui/builder/validate", {"definition": "not an object"}),
        ("/ui/builder/validate", {"definition": {}, "extra": 1}),
        ("/ui/builder/estimate", [1, 2]),
        ("/ui/builder/run", {"definition": {"root": {}}, "sample_size": 10_000}),
        ("/ui/builder/run", {"definition": {"root": {}}, "audience_id": 2**40}),
        ("/ui/builder/names/check", {"name": 5}),
        ("/ui/builder/forecast", {"definition": {"root": US}, "refresh_interval_seconds": 10**20}),
        (
            "/ui/builder/save",
            {"definition": {"root": US}, "name": "a", "refresh_interval_seconds": -1},
        ),
        (
            "/ui/builder/forecast",
            {
                "definition": {
                    "root": {
                        "kind": "event",
                        "event": "product_viewed",
                        "window": {"type": "relative", "last": 3, "unit": "days"},
                    }
                },
                "refresh_interval_seconds": 60,
            },
        ),
        ("/ui/builder/save", {"definition": {"root": US}, "name": "x", "audience_id": 999999}),
        ("/ui/builder/impact", {"definition": {"root": US}}),
    ],
)
def test_bad_input_is_a_clear_4xx(http: httpx.Client, url: str, payload: Any) -> None:
    answer = http.post(url, json=payload)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["message"]


def test_garbage_bodies_are_refused_cleanly(http: httpx.Client) -> None:
    answer = http.post(
        "/ui/builder/estimate", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert 400 <= answer.status_code < 500
    for definition_data in ({"root": None}, {"root": {"kind": "and", "conditions": "x"}}):
        answer = http.post("/ui/builder/validate", json={"definition": definition_data})
        assert answer.status_code == 200 and answer.json()["valid"] is False
    answer = http.get("/ui/builder/suggest/values", params={"field": "x; DROP TABLE profiles"})
    assert answer.status_code == 200 and answer.json()["values"] == []
    assert http.get("/audiences/abc/edit").status_code in (400, 404, 422)
    assert http.get("/audiences/99999999999/edit").status_code == 404


def test_csrf_and_sign_in_are_required(http: httpx.Client, web_server: WebServer) -> None:
    body = {"definition": definition(US)}
    without = http.post("/ui/builder/validate", json=body, headers={"X-CSRF-Token": "wrong"})
    assert without.status_code == 403
    assert "CSRF" in without.json()["message"]
    with web_server.client() as anonymous:
        assert anonymous.post("/ui/builder/validate", json=body).status_code in (401, 403)
        assert anonymous.get("/ui/builder/suggest/events").status_code == 401
        page = anonymous.get("/audiences/new")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_names_check_suggests_a_valid_free_name(http: httpx.Client) -> None:
    base = unique_name("checkout")
    bad = http.post("/ui/builder/names/check", json={"name": f"Abandoned {base} (30d)"}).json()
    assert bad["ok"] is False and bad["suggestion"] == f"abandoned_{base}_30d"
    assert "not a valid audience name" in bad["message"]
    free = unique_name("free")
    assert http.post("/ui/builder/names/check", json={"name": free}).json()["ok"] is True


def test_names_check_says_and_offers_the_same_free_name(
    http: httpx.Client, web_server: WebServer
) -> None:
    taken = "abandoned_checkout_30d"  # a demo audience of the fixture
    assert service.get_by_name(web_server.runtime.catalog, taken)
    data = http.post("/ui/builder/names/check", json={"name": "Abandoned Checkout (30d)"}).json()
    suggestion = data["suggestion"]
    assert data["ok"] is False and suggestion.startswith(f"{taken}_")
    assert data["message"].endswith(f"Try {suggestion!r}.")
    assert f"Try {taken!r}" not in data["message"]
    assert http.post("/ui/builder/names/check", json={"name": suggestion}).json()["ok"] is True
    # No name yet: say what is needed, without offering "audience".
    empty = http.post("/ui/builder/names/check", json={"name": " "}).json()
    assert empty["ok"] is False and empty["suggestion"] is None
    assert empty["message"].startswith("enter a name")


def test_save_creates_activates_and_refuses_a_taken_name(
    http: httpx.Client, web_server: WebServer
) -> None:
    name = unique_name("saved")
    body = {"definition": definition(US), "name": name}
    answer = http.post("/ui/builder/save", json=body)
    assert answer.status_code == 200, answer.text
    saved = answer.json()
    assert saved["url"] == f"/audiences/{saved['id']}"
    info = service.get(web_server.runtime.catalog, saved["id"])
    assert info.status == "active" and not info.is_dynamic and info.size == saved["size"]
    again = http.post("/ui/builder/save", json=body)
    assert again.status_code == 400
    assert again.json()["field"] == "name" and again.json()["suggestion"] == f"{name}_2"
    # Editing saves a new version of the same audience.
    edited = {
        **body,
        "audience_id": saved["id"],
        "definition": definition(US, {**US, "id": "b", "value": "CA"}, kind="or"),
    }
    answer = http.post("/ui/builder/save", json=edited)
    assert answer.status_code == 200, answer.text
    assert service.get(web_server.runtime.catalog, saved["id"]).current_version == 2


def test_forecast_multiplies_refreshes_by_size(http: httpx.Client) -> None:
    window = {"type": "relative", "last": 7, "unit": "days"}
    event = {"id": "e", "kind": "event", "event": "product_viewed", "window": window}
    data = http.post(
        "/ui/builder/forecast",
        json={"definition": definition(event), "refresh_interval_seconds": 7 * 86400, "size": 100},
    ).json()
    # Warm-up: daily for 3 days (3 refreshes), then weekly: days 3, 10, 17, 24 → 7 in all.
    assert data["refreshes"] == 7 and data["events"] == 700
    data = http.post(
        "/ui/builder/forecast",
        json={
            "definition": definition(event),
            "refresh_interval_seconds": 7 * 86400,
            "size": 100,
            "warmup": False,
        },
    ).json()
    assert data["refreshes"] == 5 and data["events"] == 500


def test_builder_page_escapes_user_content(http: httpx.Client, web_server: WebServer) -> None:
    rt = web_server.runtime
    evil = "<script>alert(1)</script>"
    info = service.create_draft(
        rt.catalog,
        definition({"id": "e", "kind": "event", "event": evil}),
        by="tests",
        now=operations.utcnow(),
        description=evil,
    )
    page = http.get(f"/audiences/{info.id}/edit")
    assert page.status_code == 200
    assert evil not in page.text
    assert "\\u003cscript\\u003e" in page.text  # the definition, as JSON data, escaped
    assert http.get("/audiences/new").status_code == 200


@pytest.mark.parametrize(
    ("condition", "field", "words"),
    [
        (
            {
                "kind": "event",
                "event": "product_viewed",
                "window": {"type": "relative", "last": 100_000, "unit": "months"},
            },
            "window.last",
            "in the last 100,000 months",
        ),
        (
            {
                "kind": "trait",
                "trait": "signed_up_at",
                "operator": "in_window",
                "value": {"type": "relative", "last": 10**6, "unit": "days"},
            },
            "value.last",
            "in the last 1,000,000 days",
        ),
    ],
)
def test_a_window_beyond_the_calendar_is_a_problem_of_its_condition(
    http: httpx.Client, condition: dict[str, Any], field: str, words: str
) -> None:
    """Such a window is refused by name and in words on the condition that holds it, by every
    endpoint, not as a Python dict on the whole query."""
    body = definition(US, {"id": "far", **condition})
    for url in ("/ui/builder/validate", "/ui/builder/estimate", "/ui/builder/run"):
        answer = http.post(url, json={"definition": body})
        assert answer.status_code == 200, answer.text
        (error,) = answer.json()["errors"]
        assert (error["id"], error["path"], error["field"]) == ("far", "root.conditions[1]", field)
        assert f"the window “{words}” reaches outside the years 1 to 9999" in error["message"]
        assert "{" not in error["message"]
    answer = http.post("/ui/builder/save", json={"definition": body, "name": unique_name("far")})
    assert answer.status_code == 400 and answer.json()["errors"][0]["id"] == "far"
