"""``kind: audience``: member (or not) of another saved audience.

The referenced definition is compiled inline with the same ``as_of`` and zone, so membership
means "would be a member now" (docs/definition-semantics.md §7).
"""

from __future__ import annotations

from collections.abc import Callable

from segmint.compiler.context import CompileContext
from segmint.compiler.sets import ProfileSet
from segmint.definitions.errors import DefinitionError
from segmint.definitions.model import AudienceCondition, Definition, Node


def compile_audience(
    condition: AudienceCondition,
    context: CompileContext,
    compile_node: Callable[[Node, CompileContext], ProfileSet],
) -> ProfileSet:
    """The referenced audience's members (``member: false``: everybody else)."""
    name = condition.audience
    if context.audience_stack and name in context.audience_stack:
        cycle = " → ".join([*context.audience_stack, name])
        raise DefinitionError(f"audiences refer to each other in a cycle ({cycle})")
    referenced: Definition | None = (
        context.resolve_audience(name) if context.resolve_audience else None
    )
    if referenced is None:
        raise DefinitionError(f"unknown audience {name!r}: save it first or pick an existing one")
    context.audience_stack.append(name)
    try:
        result = compile_node(referenced.root, context)
    finally:
        context.audience_stack.pop()
    return result if condition.member else result.negated()
