"""``kind: technology``: the browser, OS or device type on the profile."""

from __future__ import annotations

from segmint.compiler.context import CompileContext
from segmint.compiler.sets import ProfileSet, profiles_where
from segmint.compiler.values import column_field, compare
from segmint.definitions.model import TechnologyCondition


def compile_technology(condition: TechnologyCondition, context: CompileContext) -> ProfileSet:
    """Profiles whose ``browser`` / ``os`` / ``device_type`` column satisfies the comparison."""
    return profiles_where(
        compare(
            column_field(condition.field),
            condition.operator,
            condition.value,
            case_insensitive=condition.case_insensitive,
            clock=context.clock,
        )
    )
