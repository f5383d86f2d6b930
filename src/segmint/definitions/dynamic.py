"""Static or dynamic (PRODUCT R7, R8): does membership depend on when it is evaluated?"""

from __future__ import annotations

from segmint.definitions.model import (
    AggregateCondition,
    AudienceCondition,
    CalendarWindow,
    Definition,
    EventCondition,
    RelativeWindow,
    SequenceCondition,
    TraitCondition,
    UtmCondition,
    iter_nodes,
)
from segmint.definitions.validation import AudienceResolver


def is_dynamic(definition: Definition, *, resolve_audience: AudienceResolver | None = None) -> bool:
    """True when any window (or ``in_window`` value) is relative or calendar, or, given a
    resolver, when a referenced audience is dynamic. Otherwise the audience is static."""
    return _is_dynamic(definition, resolve_audience, set())


def _is_dynamic(definition: Definition, resolve: AudienceResolver | None, seen: set[str]) -> bool:
    for _, node in iter_nodes(definition.root):
        window = None
        if isinstance(node, EventCondition | AggregateCondition | SequenceCondition | UtmCondition):
            window = node.window
        elif isinstance(node, TraitCondition) and node.operator == "in_window":
            window = node.value  # type: ignore[assignment]
        elif isinstance(node, AudienceCondition) and resolve and node.audience not in seen:
            seen.add(node.audience)
            referenced = resolve(node.audience)
            if referenced is not None and _is_dynamic(referenced, resolve, seen):
                return True
        if isinstance(window, RelativeWindow | CalendarWindow):
            return True
    return False
