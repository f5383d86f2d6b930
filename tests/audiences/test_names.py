"""Audience names (R6) and the suggestions given for refused ones."""

from __future__ import annotations

import pytest

from segmint.audiences.names import RESERVED, check_name, suggest_name
from segmint.errors import InvalidInput


@pytest.mark.parametrize("name", ["a", "abandoned_checkout_30d", "q4_2025_purchasers", "x" * 64])
def test_valid_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason", "suggestion"),
    [
        ("Abandoned Checkout (30d)", "start with a lowercase letter", "abandoned_checkout_30d"),
        ("high-value", "only lowercase letters", "high_value"),
        ("30d_buyers", "start with a lowercase letter", "audience_30d_buyers"),
        ("_hidden", "start with a lowercase letter", "hidden"),
        ("", "a name is required", "audience"),
        ("Clientes Fiéis", "start with a lowercase letter", "clientes_fieis"),
        ("a" * 70, "at most 64", "a" * 64),
        ("vip ⭐", "only lowercase letters", "vip"),
    ],
)
def test_bad_names_are_refused_with_a_valid_suggestion(
    name: str, reason: str, suggestion: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_name(name)
    assert reason in caught.value.message
    assert repr(suggestion) in caught.value.message
    assert check_name(suggest_name(name)) == suggestion


@pytest.mark.parametrize("name", sorted(RESERVED))
def test_names_of_api_routes_are_refused_with_a_free_suggestion(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_name(name)
    assert f"/api/v1/audiences/{name} is another route" in caught.value.message
    assert repr(f"{name}_audience") in caught.value.message
    assert caught.value.path == "name"
    assert suggest_name(name.title()) == f"{name}_audience"


@pytest.mark.parametrize("name", ["usage_30d", "my_overlap", "previews"])
def test_names_that_only_contain_a_route_pass(name: str) -> None:
    assert check_name(name) == name
