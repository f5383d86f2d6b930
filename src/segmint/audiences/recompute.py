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
from segmint.warehouse.schema import MEMBER_BUCKET, MEMBER_WORD

_TABLE = "_segmint_recomputed"

# History's words (see segmint.warehouse.schema.HISTORY_WORDS) from the members at each point:
# a point's spells start where a bit is set now and was not at the point before, and end
# where it was and is not.
_HISTORY_SQL = f"""
INSERT INTO history_words (audience_id, seq, bucket, entered_bits, left_bits)
WITH words AS (
    SELECT idx, {MEMBER_BUCKET} AS bucket, {MEMBER_WORD} AS bits FROM {_TABLE} GROUP BY 1, 2
),
pairs AS (
    SELECT coalesce(n.idx, o.idx + 1) AS idx, coalesce(n.bucket, o.bucket) AS bucket,
           coalesce(n.bits, CAST(0 AS UBIGINT)) AS new_bits,
           coalesce(o.bits, CAST(0 AS UBIGINT)) AS old_bits
    FROM words AS n
    FULL OUTER JOIN words AS o ON n.idx = o.idx + 1 AND n.bucket = o.bucket
)
SELECT CAST(? AS BIGINT), r.seq, w.bucket, w.new_bits & ~w.old_bits, w.old_bits & ~w.new_bits
FROM pairs AS w
JOIN _segmint_points AS p ON p.idx = w.idx
JOIN audience_refreshes AS r ON r.refresh_id = p.refresh_id
WHERE w.new_bits <> w.old_bits
"""

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
        warehouse.execute("DELETE FROM history_words WHERE audience_id = ?", [audience_id])
        if points:
            warehouse.execute(_HISTORY_SQL, [audience_id])
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
