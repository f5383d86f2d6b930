"""How big a definition may be: how many nodes it has and how deep its groups nest.

Run Query counts every node and every AND / OR step of every group, so its work grows faster
than the tree: on a small warehouse a flat OR of 100 event conditions ran in 2.5 s, of 150 in
10 s, and of 200 it went past what the SQL renderer can nest. Audiences that other audiences
refer to are compiled inline, so the tree with them inlined has limits too: five referenced
audiences of 100 conditions each ran in under 5 s. docs/definitions.md lists the limits.

The checks walk the tree with an explicit stack, so an oversized input is refused with the
path of the node at fault rather than exhausting Python's recursion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from segmint.definitions.errors import DefinitionError
from segmint.definitions.model import Group, Node

MAX_NODES = 100
MAX_DEPTH = 10
MAX_NODES_WITH_REFERENCES = 500
MAX_DEPTH_WITH_REFERENCES = 50

_SPLIT = (
    "save part of it as an audience of its own and refer to it with "
    "{kind: audience, audience: NAME}"
)


def check_data_size(root: Any) -> None:
    """Refuse a root node in plain data (as parsed from JSON or YAML) that has more than
    :data:`MAX_NODES` nodes or nests groups more than :data:`MAX_DEPTH` deep, before a model
    is built from it. Items that are not nodes count as nodes (the model refuses them)."""
    _check_tree(root, _data_children)


def check_size(root: Node) -> None:
    """:func:`check_data_size` for a model tree."""
    _check_tree(root, _model_children)


def depth_of(path: str) -> int:
    """How many groups a node at ``path`` is nested in (``root`` is 0)."""
    return path.count(".conditions[")


def nodes_error(count: int, path: str) -> DefinitionError:
    """The error for a definition of ``count`` nodes; ``path`` is where it passed the limit."""
    return DefinitionError(
        f"the definition has {count} nodes (conditions and groups); at most {MAX_NODES} are "
        f"allowed. Split it: {_SPLIT} (up to {MAX_NODES_WITH_REFERENCES} nodes in all, with "
        "the audiences it refers to), or use fewer conditions (one `in` comparison instead of "
        "many `equals`)",
        path=path,
    )


def depth_error(depth: int, path: str) -> DefinitionError:
    """The error for a node nested in ``depth`` groups."""
    return DefinitionError(
        f"this node is nested {depth} groups deep; at most {MAX_DEPTH} levels are allowed. "
        f"Flatten the tree (an `and` inside an `and` is one `and`), or {_SPLIT}",
        path=path,
    )


def _data_children(node: Any) -> Sequence[Any]:
    conditions = node.get("conditions") if isinstance(node, dict) else None
    return conditions if isinstance(conditions, list) else ()


def _model_children(node: Any) -> Sequence[Any]:
    return node.conditions if isinstance(node, Group) else ()


def _check_tree(root: Any, children: Callable[[Any], Sequence[Any]]) -> None:
    count = 0
    passed_at: str | None = None  # the `conditions` list where the count passed the limit
    stack: list[tuple[Any, str]] = [(root, "root")]
    while stack:
        node, path = stack.pop()
        count += 1
        if count > MAX_NODES and passed_at is None:
            passed_at = path.rsplit("[", 1)[0] if "[" in path else path
        depth = depth_of(path)
        if depth > MAX_DEPTH:
            raise depth_error(depth, path)
        kids = children(node)
        stack.extend((kids[i], f"{path}.conditions[{i}]") for i in reversed(range(len(kids))))
    if passed_at is not None:
        raise nodes_error(count, passed_at)
