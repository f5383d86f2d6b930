"""The tree combiner: groups become set algebra over the conditions' profile sets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segmint.compiler.aggregate import compile_aggregate
from segmint.compiler.audience import compile_audience
from segmint.compiler.context import CompileContext
from segmint.compiler.demographic import compile_demographic
from segmint.compiler.events import compile_event, mergeable, merged_event_scan
from segmint.compiler.sequence import compile_sequence
from segmint.compiler.sets import ProfileSet, all_of, any_of
from segmint.compiler.technology import compile_technology
from segmint.compiler.traits import compile_trait
from segmint.compiler.utm import compile_utm
from segmint.definitions.model import (
    AggregateCondition,
    AudienceCondition,
    DemographicCondition,
    EventCondition,
    Group,
    Node,
    SequenceCondition,
    TechnologyCondition,
    TraitCondition,
    UtmCondition,
)

_COMPILERS: dict[type[Any], Callable[[Any, CompileContext], ProfileSet]] = {
    EventCondition: compile_event,
    AggregateCondition: compile_aggregate,
    SequenceCondition: compile_sequence,
    TraitCondition: compile_trait,
    UtmCondition: compile_utm,
    DemographicCondition: compile_demographic,
    TechnologyCondition: compile_technology,
}


def compile_node(node: Node, context: CompileContext) -> ProfileSet:
    """The profile set of one node (group or condition), its own ``negate`` applied."""
    if isinstance(node, Group):
        children = _compile_children(node, context)
        result = all_of(children) if node.kind == "and" else any_of(children)
    elif isinstance(node, AudienceCondition):
        result = compile_audience(node, context, compile_node)
    else:
        result = _COMPILERS[type(node)](node, context)
    return result.negated() if node.negate else result


def _compile_children(group: Group, context: CompileContext) -> list[ProfileSet]:
    """The children's sets, with plain event conditions sharing one scan of the events when
    that is sound (see ``merged_event_scan``): a few scans instead of one per condition."""
    merge = [c for c in group.conditions if mergeable(c)]
    if len(merge) >= 2:
        merged = merged_event_scan(merge, context, kind=group.kind)  # type: ignore[arg-type]
        if merged is not None:
            rest = [compile_node(c, context) for c in group.conditions if not mergeable(c)]
            return [merged, *rest]
    return [compile_node(child, context) for child in group.conditions]
