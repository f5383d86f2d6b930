"""Impact preview (PRODUCT B3): before an edit of a live audience is saved, how many members
would enter and leave if it were refreshed now with the new definition."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from segmint.compiler import compile_definition, to_sql
from segmint.definitions import Definition
from segmint.definitions.validation import AudienceResolver
from segmint.warehouse.engine import Engine


@dataclass(frozen=True)
class Impact:
    """Current members against the members the new definition would have at ``as_of``."""

    as_of: dt.datetime
    current: int
    new_size: int
    entering: int
    leaving: int
    sample_entering: list[int] = field(default_factory=list)
    sample_leaving: list[int] = field(default_factory=list)
    destinations: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """``+1,204 / −310 members (5,000 → 5,894); 310 removals will be sent to Meta`` (B3)."""
        text = (
            f"+{self.entering:,} / −{self.leaving:,} members ({self.current:,} → {self.new_size:,})"
        )
        if self.destinations and (self.entering or self.leaving):
            changes = []
            if self.entering:
                changes.append(f"{self.entering:,} addition{'s' if self.entering != 1 else ''}")
            if self.leaving:
                changes.append(f"{self.leaving:,} removal{'s' if self.leaving != 1 else ''}")
            names = self.destinations
            where = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            text += f"; {' and '.join(changes)} will be sent to {where}"
        return text


def impact_preview(
    warehouse: Engine,
    audience_id: int,
    definition: Definition,
    *,
    as_of: dt.datetime,
    timezone: str,
    resolve_audience: AudienceResolver | None = None,
    sample_size: int = 10,
) -> Impact:
    """Compare the audience's current members with ``definition`` evaluated at ``as_of``,
    in one SQL pass (a full outer join of the two sets)."""
    query = to_sql(
        compile_definition(
            definition, as_of=as_of, timezone=timezone, resolve_audience=resolve_audience
        ),
        warehouse.dialect,
    )
    diff = f"""
        WITH proposed AS ({query}),
        current_members AS (SELECT profile_id FROM audience_members WHERE audience_id = ?)
        SELECT coalesce(p.profile_id, c.profile_id) AS profile_id,
               p.profile_id IS NOT NULL AS will_be, c.profile_id IS NOT NULL AS is_now
        FROM (SELECT DISTINCT profile_id FROM proposed) p
        FULL OUTER JOIN current_members c ON p.profile_id = c.profile_id
    """
    ((current, new_size, entering, leaving),) = warehouse.rows(
        f"""SELECT count(*) FILTER (WHERE is_now), count(*) FILTER (WHERE will_be),
                   count(*) FILTER (WHERE will_be AND NOT is_now),
                   count(*) FILTER (WHERE is_now AND NOT will_be)
            FROM ({diff}) d""",
        [audience_id],
    )
    samples = warehouse.rows(
        f"""SELECT will_be, list(profile_id ORDER BY profile_id)[1:{int(sample_size)}]
            FROM ({diff}) d WHERE will_be <> is_now GROUP BY will_be""",
        [audience_id],
    )
    by_side = {bool(side): list(ids) for side, ids in samples}
    return Impact(
        as_of=as_of,
        current=int(current),
        new_size=int(new_size),
        entering=int(entering),
        leaving=int(leaving),
        sample_entering=by_side.get(True, []),
        sample_leaving=by_side.get(False, []),
    )
