"""What changed between two versions of a definition (PRODUCT R15), in words a user reads.

Nodes are matched by their ``id`` (stable when the builder or the file gives one; generated
from the position otherwise). For each node the diff says whether it was added, removed,
moved or which of its fields changed, with windows, filters and thresholds in plain English:

    root.conditions[1] window: last 30 days → last 14 days

A unified diff of the pretty JSON goes with it, for anything the structural view misses.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from segmint.definitions import (
    AbsoluteWindow,
    CalendarWindow,
    CountThreshold,
    Definition,
    Duration,
    EventStep,
    Group,
    Node,
    PropertyFilter,
    RelativeWindow,
    dump_definition,
    iter_nodes,
)
from segmint.definitions.describe import (
    describe,
    describe_duration,
    describe_filter,
    describe_threshold,
    describe_window,
)

ChangeKind = Literal["added", "removed", "moved", "changed"]
_SKIPPED_FIELDS = frozenset({"id", "conditions"})  # the id matches nodes; children diff alone


@dataclass(frozen=True)
class NodeChange:
    """One change to one node. ``path`` is the node's JSON path (in the newer version, or
    in the older one for a removed node); ``field`` is the changed field (``window``,
    ``filters``, ``first.event`` …) for ``changed``; ``before`` / ``after`` are readable."""

    kind: ChangeKind
    node_id: str
    path: str
    field: str | None = None
    before: str | None = None
    after: str | None = None

    @property
    def summary(self) -> str:
        """One line: ``root.conditions[1] window: last 30 days → last 14 days``."""
        if self.kind == "added":
            return f"{self.path} added: {self.after}"
        if self.kind == "removed":
            return f"{self.path} removed: {self.before}"
        if self.kind == "moved":
            return f"{self.path} moved (was {self.before})"
        return f"{self.path} {self.field}: {self.before} → {self.after}"


@dataclass(frozen=True)
class DefinitionDiff:
    """The changes from ``old`` to ``new``: structural ``changes`` (empty when the two are
    the same) and ``text``, a unified diff of the pretty JSON."""

    changes: list[NodeChange] = field(default_factory=list)
    text: str = ""

    @property
    def unchanged(self) -> bool:
        """True when the two definitions are the same."""
        return not self.changes and not self.text

    @property
    def summary(self) -> list[str]:
        """One readable line per change."""
        return [change.summary for change in self.changes]


def diff_definitions(
    old: Definition, new: Definition, *, old_label: str = "old", new_label: str = "new"
) -> DefinitionDiff:
    """Compare two definitions. The labels name the two sides in the text diff
    (``version 3``, ``version 4``)."""
    return DefinitionDiff(
        changes=node_changes(old, new),
        text=text_diff(old, new, old_label=old_label, new_label=new_label),
    )


def node_changes(old: Definition, new: Definition) -> list[NodeChange]:
    """Structural changes, in the order of the newer tree, removals last."""
    old_nodes = {node.id: (path, node) for path, node in iter_nodes(old.root)}
    new_nodes = {node.id: (path, node) for path, node in iter_nodes(new.root)}
    changes: list[NodeChange] = []
    matched: set[str] = set()
    for node_id, (path, node) in new_nodes.items():
        assert node_id is not None  # filled in by Definition
        before = old_nodes.get(node_id)
        if before is None or (before[1].kind != node.kind and not _both_groups(before[1], node)):
            changes.append(NodeChange("added", node_id, path, after=describe(node)))
            continue
        matched.add(node_id)
        old_path, old_node = before
        if old_path != path:
            changes.append(NodeChange("moved", node_id, path, before=old_path, after=path))
        changes.extend(_field_changes(node_id, path, old_node, node))
    for node_id, (path, node) in old_nodes.items():
        if node_id not in matched:
            assert node_id is not None
            changes.append(NodeChange("removed", node_id, path, before=describe(node)))
    return changes


def text_diff(
    old: Definition, new: Definition, *, old_label: str = "old", new_label: str = "new"
) -> str:
    """A unified diff of the two definitions as pretty JSON (empty when equal)."""
    lines = difflib.unified_diff(
        dump_definition(old).splitlines(keepends=True),
        dump_definition(new).splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _both_groups(a: Node, b: Node) -> bool:
    # and → or is a change of one group, not a removal and an addition
    return isinstance(a, Group) and isinstance(b, Group)


def _field_changes(node_id: str, path: str, old: Node, new: Node) -> list[NodeChange]:
    changes: list[NodeChange] = []
    names = [n for n in type(new).model_fields if n not in _SKIPPED_FIELDS]
    for name in names:
        before, after = getattr(old, name, None), getattr(new, name, None)
        changes.extend(_value_changes(node_id, path, name, before, after))
    return changes


def _value_changes(node_id: str, path: str, name: str, before: Any, after: Any) -> list[NodeChange]:
    """Changes of one field; plain sub-objects (a sequence step) are compared key by key
    so the line says which part changed."""
    if _plain(before) == _plain(after):
        return []
    if isinstance(before, EventStep) and isinstance(after, EventStep):
        changes: list[NodeChange] = []
        for sub in type(after).model_fields:
            changes.extend(
                _value_changes(
                    node_id, path, f"{name}.{sub}", getattr(before, sub), getattr(after, sub)
                )
            )
        return changes
    return [NodeChange("changed", node_id, path, name, _readable(before), _readable(after))]


def _plain(value: Any) -> Any:
    """A comparable JSON form (models dumped by alias, unset optional fields dropped)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


_WINDOW_PREFIX = "in the "


def _readable(value: Any) -> str:
    """A value as a user would say it: ``last 30 days``, ``at least 3 times``,
    ``plan equals pro and country equals CA``, ``(none)``."""
    if value is None:
        return "(none)"
    if isinstance(value, RelativeWindow | CalendarWindow | AbsoluteWindow):
        return describe_window(value).removeprefix(_WINDOW_PREFIX)
    if isinstance(value, CountThreshold):
        return describe_threshold(value)
    if isinstance(value, Duration):
        return describe_duration(value)
    if isinstance(value, list) and value and all(isinstance(v, PropertyFilter) for v in value):
        return " and ".join(describe_filter(v) for v in value)
    if isinstance(value, list) and not value:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value), ensure_ascii=False, default=str)
