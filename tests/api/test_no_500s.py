"""Every route of the API answers bad input with a clear 4xx error, never a 500."""

from __future__ import annotations

import itertools
import re

import pytest

from segmint.api.app import create_app
from tests.conftest import LiveServer

BAD_PATH_VALUES = ["nope", "-1", "0", "99999999999999999999", "<script>x</script>", "a%20b"]
BAD_BODIES: list[object] = [
    None,
    [],
    "text",
    {},
    {"definition": 5},
    {"definition": {"root": {"kind": "event"}}},
    {"definition": {"root": {"kind": "and", "conditions": []}}},
    {"definition": {"root": {"kind": "trait", "trait": "x", "operator": "gt", "value": "a"}}},
    {"name": 5, "refresh_interval": [1]},
    {"batch": [None, 1, "x"]},
    {"profile_id": {"x": 1}, "definition": {"root": {"kind": "event", "event": "x"}}},
]
BAD_QUERIES = [
    {"status": "x"},
    {"as_of": "yesterday"},
    {"limit": "-5"},
    {"a": "1", "b": "2"},
    {"start": "2025-13-45"},
]


def routes() -> list[tuple[str, str]]:
    """Every documented (method, path) of the collection and REST APIs."""
    paths = create_app().openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith(("/api/", "/v1/"))
        for method in operations
    )


def concrete(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


@pytest.mark.slow
def test_no_route_answers_bad_input_with_a_500(live_server: LiveServer) -> None:
    failures = []
    with live_server.admin() as api:
        for (method, path), value in itertools.product(routes(), BAD_PATH_VALUES[:3]):
            url = concrete(path, value)
            for body in BAD_BODIES:
                response = api.request(method, url, json=body)
                if response.status_code >= 500:
                    failures.append((method, url, body, response.text[:200]))
                elif response.status_code >= 400:
                    assert response.json()["message"], (method, url, body)
            for query in BAD_QUERIES:
                response = api.request(method, url, params=query)
                if response.status_code >= 500:
                    failures.append((method, url, query, response.text[:200]))
        for (method, path), value in itertools.product(routes(), BAD_PATH_VALUES[3:]):
            response = api.request(method, concrete(path, value))
            if response.status_code >= 500:
                failures.append((method, path, value, response.text[:200]))
    assert not failures, failures[:5]


def test_every_api_route_is_covered_by_the_sweep() -> None:
    paths = {path for _, path in routes()}
    assert {
        "/api/v1/audiences",
        "/api/v1/audiences/{ref}/activate",
        "/v1/batch",
        "/api/v1/audiences/preview",
        "/api/v1/events",
    } <= paths
