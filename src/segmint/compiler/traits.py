"""``kind: trait``: a profile trait (``profiles.traits`` JSON) compared with a value."""

from __future__ import annotations

from segmint.compiler.context import CompileContext
from segmint.compiler.sets import ProfileSet, profiles_where
from segmint.compiler.values import compare, json_field
from segmint.definitions.model import TraitCondition


def compile_trait(condition: TraitCondition, context: CompileContext) -> ProfileSet:
    """Profiles whose trait at ``condition.trait`` satisfies the comparison."""
    field = json_field("traits", condition.trait)
    predicate = compare(
        field,
        condition.operator,
        condition.value,
        case_insensitive=condition.case_insensitive,
        clock=context.clock,
    )
    return profiles_where(predicate)
