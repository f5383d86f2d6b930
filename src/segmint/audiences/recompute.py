"""Recompute history (PRODUCT B3's second choice when saving an edit): re-evaluate a new
definition at every past refresh instant and rewrite the audience's membership history and
sizes as if it had always been defined so.

What was already delivered is not rewritten: past ``added_to_segment`` /
``removed_from_segment`` events stay, and the current membership (what destinations were
told) is kept, so the next refresh emits exactly the events that reconcile it with the new
definition.
"""

from __future__ import annotations

from dataclasses import dataclass

from segmint.compiler import compile_definition, to_sql
from segmint.definitions import Definition
from segmint.definitions.validation import AudienceResolver
from segmint.warehouse.engine import Engine

_TABLE = "_segmint_recomputed"

# Maximal runs of consecutive points at which a profile is a member: one spell each, starting
# at its first point and ending at the point after its last (none when it runs to the end).
_RUNS_SQL = f"""
CREATE OR REPLACE TEMPORARY TABLE _segmint_spells AS
WITH runs AS (
    SELECT profile_id, idx, idx - row_number() OVER (PARTITION BY profile_id ORDER BY idx) AS run
    FROM {_TABLE}
)
SELECT profile_id, min(idx) AS first_idx, max(idx) + 1 AS after_idx
FROM runs GROUP BY profile_id, run
"""

# A spell's start is its first point; its end is the point after its last, if any.
_BOUNDARY_SQL = """
INSERT INTO {table} (audience_id, profile_id, {at}, {seq})
SELECT ?, s.profile_id, p.as_of, r.seq
FROM _segmint_spells AS s
JOIN _segmint_points AS p ON p.idx = s.{idx}
JOIN audience_refreshes AS r ON r.refresh_id = p.refresh_id
"""
_SPELLS_SQL = _BOUNDARY_SQL.format(
    table="membership_spells", at="entered_at", seq="entered_seq", idx="first_idx"
)
_EXITS_SQL = _BOUNDARY_SQL.format(
    table="membership_exits", at="left_at", seq="left_seq", idx="after_idx"
)

_SIZES_SQL = f"""
UPDATE audience_refreshes r SET size = c.size, entered = c.entered, "left" = c.left_count
FROM (
    SELECT p.idx, p.refresh_id,
        (SELECT count(*) FROM {_TABLE} n WHERE n.idx = p.idx) AS size,
        (SELECT count(*) FROM {_TABLE} n WHERE n.idx = p.idx AND NOT EXISTS (
            SELECT 1 FROM {_TABLE} o WHERE o.idx = p.idx - 1 AND o.profile_id = n.profile_id
        )) AS entered,
        (SELECT count(*) FROM {_TABLE} o WHERE o.idx = p.idx - 1 AND NOT EXISTS (
            SELECT 1 FROM {_TABLE} n WHERE n.idx = p.idx AND n.profile_id = o.profile_id
        )) AS left_count
    FROM _segmint_points p
) c
WHERE r.refresh_id = c.refresh_id
"""


@dataclass(frozen=True)
class Recomputed:
    """How many past refreshes were re-evaluated and the sizes history now reports."""

    refreshes: int
    sizes: list[int]


def recompute_history(
    warehouse: Engine,
    audience_id: int,
    definition: Definition,
    *,
    timezone: str,
    resolve_audience: AudienceResolver | None = None,
) -> Recomputed:
    """Rewrite ``membership_history`` and the sizes in ``audience_refreshes`` of an audience
    from ``definition`` evaluated at each past refresh's ``as_of`` — in one transaction."""
    points = warehouse.rows(
        "SELECT refresh_id, as_of FROM audience_refreshes WHERE audience_id = ? "
        "ORDER BY as_of, committed_at",
        [audience_id],
    )
    with warehouse.transaction():
        warehouse.execute(
            "CREATE OR REPLACE TEMPORARY TABLE _segmint_points "
            "(idx INTEGER, refresh_id VARCHAR, as_of TIMESTAMP)"
        )
        warehouse.execute(
            f"CREATE OR REPLACE TEMPORARY TABLE {_TABLE} (idx INTEGER, profile_id BIGINT)"
        )
        for idx, (refresh_id, as_of) in enumerate(points):
            warehouse.execute(
                "INSERT INTO _segmint_points VALUES (?, ?, ?)", [idx, refresh_id, as_of]
            )
            query = compile_definition(
                definition, as_of=as_of, timezone=timezone, resolve_audience=resolve_audience
            )
            warehouse.execute(
                f"INSERT INTO {_TABLE} SELECT DISTINCT ?, profile_id FROM "
                f"({to_sql(query, warehouse.dialect)}) q",
                [idx],
            )
        for table in ("membership_spells", "membership_exits"):
            warehouse.execute(f"DELETE FROM {table} WHERE audience_id = ?", [audience_id])
        if points:
            warehouse.execute(_RUNS_SQL)
            warehouse.execute(_SPELLS_SQL, [audience_id])
            warehouse.execute(_EXITS_SQL, [audience_id])
            warehouse.execute("DROP TABLE _segmint_spells")
            warehouse.execute(_SIZES_SQL)
            # Its open spells now differ from the current members: see refresh.write_membership.
            warehouse.execute(
                "DELETE FROM history_to_reconcile WHERE audience_id = ?", [audience_id]
            )
            warehouse.execute("INSERT INTO history_to_reconcile VALUES (?)", [audience_id])
        sizes = [
            int(row[0])
            for row in warehouse.rows(
                "SELECT size FROM audience_refreshes WHERE audience_id = ? "
                "ORDER BY as_of, committed_at",
                [audience_id],
            )
        ]
        warehouse.execute(f"DROP TABLE {_TABLE}")
        warehouse.execute("DROP TABLE _segmint_points")
    return Recomputed(refreshes=len(points), sizes=sizes)
