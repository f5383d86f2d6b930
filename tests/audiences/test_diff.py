"""What changed between two definitions: readable node changes and a text diff."""

from __future__ import annotations

from typing import Any

import pytest

from segmint.audiences.diff import diff_definitions, node_changes, text_diff
from segmint.definitions import Definition, parse_definition


def definition(root: dict[str, Any]) -> Definition:
    return parse_definition({"version": 1, "root": root})


def viewed(days: int = 30, **extra: Any) -> dict[str, Any]:
    return {
        "id": "viewed",
        "kind": "event",
        "event": "product_viewed",
        "window": {"type": "relative", "last": days, "unit": "days"},
        **extra,
    }


def bought(**extra: Any) -> dict[str, Any]:
    return {
        "id": "bought",
        "kind": "event",
        "event": "order_completed",
        "performed": False,
        **extra,
    }


def both(*conditions: dict[str, Any], kind: str = "and") -> dict[str, Any]:
    return {"id": "all", "kind": kind, "conditions": list(conditions)}


def test_same_definition_has_no_changes() -> None:
    old = definition(both(viewed(), bought()))
    diff = diff_definitions(old, definition(both(viewed(), bought())))
    assert diff.unchanged
    assert diff.changes == [] and diff.text == ""


@pytest.mark.parametrize(
    ("old_root", "new_root", "expected"),
    [
        (
            both(viewed(30), bought()),
            both(viewed(14), bought()),
            ["root.conditions[0] window: last 30 days → last 14 days"],
        ),
        (
            both(viewed(), bought()),
            both(viewed(), bought(), kind="or"),
            ["root kind: and → or"],
        ),
        (
            both(viewed(), bought()),
            both(viewed(), bought(negate=True)),
            ["root.conditions[1] negate: false → true"],
        ),
        (
            both(viewed(), bought()),
            both(viewed(count={"operator": "at_least", "value": 3}), bought()),
            ["root.conditions[0] count: at least 1 time → at least 3 times"],
        ),
        (
            both(viewed(), bought()),
            both(
                viewed(filters=[{"property": "category", "operator": "equals", "value": "shoes"}]),
                bought(),
            ),
            ["root.conditions[0] filters: (none) → category equals shoes"],
        ),
        (
            both(viewed()),
            both(viewed(), bought()),
            ["root.conditions[1] added: no order_completed"],
        ),
        (
            both(viewed(), bought()),
            both(viewed()),
            ["root.conditions[1] removed: no order_completed"],
        ),
        (
            both(viewed(), bought()),
            both(bought(), viewed()),
            [
                "root.conditions[0] moved (was root.conditions[1])",
                "root.conditions[1] moved (was root.conditions[0])",
            ],
        ),
    ],
    ids=["window", "and-or", "negate", "threshold", "filter", "added", "removed", "moved"],
)
def test_node_changes_read_as_sentences(
    old_root: dict[str, Any], new_root: dict[str, Any], expected: list[str]
) -> None:
    diff = diff_definitions(definition(old_root), definition(new_root))
    assert diff.summary == expected


def test_sequence_step_changes_name_the_part_that_changed() -> None:
    def sequence(then: str) -> dict[str, Any]:
        return {
            "id": "checkout",
            "kind": "sequence",
            "first": {"event": "checkout_started"},
            "then": {"event": then},
            "followed": False,
            "within": {"amount": 1, "unit": "days"},
        }

    changes = node_changes(definition(sequence("order_completed")), definition(sequence("paid")))
    assert [c.summary for c in changes] == ["root then.event: order_completed → paid"]
    assert changes[0].node_id == "checkout" and changes[0].field == "then.event"


def test_a_node_that_changes_kind_is_a_removal_and_an_addition() -> None:
    trait = {"id": "bought", "kind": "trait", "trait": "plan", "operator": "equals", "value": "pro"}
    changes = node_changes(definition(both(viewed(), bought())), definition(both(viewed(), trait)))
    assert [c.kind for c in changes] == ["added", "removed"]
    assert changes[0].after == "trait plan equals pro"


def test_absolute_window_change_shows_the_dates() -> None:
    def window(start: str, end: str) -> dict[str, Any]:
        return {
            "kind": "event",
            "event": "order_completed",
            "window": {"type": "absolute", "from": start, "to": end},
        }

    old = definition(window("2025-10-01", "2026-01-01"))
    new = definition(window("2025-10-01", "2025-12-01"))
    assert diff_definitions(old, new).summary == [
        "root window: from 2025-10-01 to 2026-01-01 → from 2025-10-01 to 2025-12-01"
    ]


def test_text_diff_is_a_unified_diff_of_the_pretty_json() -> None:
    text = text_diff(
        definition(viewed(30)), definition(viewed(14)), old_label="version 1", new_label="version 2"
    )
    assert text.startswith("--- version 1\n+++ version 2\n")
    assert '-      "last": 30,\n' in text and '+      "last": 14,\n' in text
