"""Refresh benchmark (issue 4): the cost of a refresh next to the bare evaluation it builds on.

    .venv/bin/python benchmarks/refresh.py                   # ~1M members, 5% churn
    .venv/bin/python benchmarks/refresh.py --members 200000  # quicker
    .venv/bin/python benchmarks/refresh.py --memory          # in-memory warehouse

Profiles and events are generated directly in DuckDB with SQL (no collection pipeline). The
audience is "purchased in the last 30 days". Of ``--members`` profiles that match at the first
refresh, 5% (``--churn``) bought just under 30 days before it and fall out of the window one
day later; as many others buy in between and enter. Every profile also has a few page views,
and some profiles never buy.

Refresh 1 (everybody enters) and refresh 2 (5% leave, 5% enter) run through
``refresh_audience`` with a SQLite catalog; each step of the warehouse transaction is timed
through the ``fail_after`` hook. Bare evaluation materializes the compiled SQL's result into a
temporary table, best of 3, in the same run (the refresh's first step folds the same result
into membership words instead). Aim: the
refresh overhead (refresh − evaluation) under 50% of the evaluation.

On a file warehouse DuckDB either checkpoints inside the commit (it does when the commit
would write more WAL than it is worth: see docs/benchmarks.md) or leaves that work for a later
commit. So after each refresh the WAL size left is printed and an explicit ``CHECKPOINT`` is
timed; the overhead is also reported with that deferred checkpoint, so a cheap-looking commit
that only postponed its work cannot flatter the figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from segmint.audiences.history import cohort_retention, refresh_changes, size_as_of
from segmint.audiences.refresh import refresh_audience
from segmint.catalog import Catalog, open_catalog
from segmint.catalog.models import Audience, AudienceVersion
from segmint.compiler import compile_definition, to_sql
from segmint.definitions import Definition
from segmint.warehouse import DuckDBEngine, open_warehouse
from segmint.warehouse.schema import SEGMENT_EVENT_NAMES

AS_OF = dt.datetime(2025, 6, 1, 6, 0)
NEXT = AS_OF + dt.timedelta(days=1)
TZ = "UTC"
ROOT = {
    "kind": "event",
    "event": "purchase",
    "window": {"type": "relative", "last": 30, "unit": "days"},
}


@dataclass
class StepTimer:
    """A ``fail_after`` hook that records when each step of the transaction ended."""

    start: float = field(default_factory=time.perf_counter)
    marks: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, step: str) -> None:
        self.marks.append((step, time.perf_counter()))

    def durations(self) -> list[tuple[str, float]]:
        previous = self.start
        result = []
        for step, moment in self.marks:
            result.append((step, moment - previous))
            previous = moment
        return result


def build(warehouse: DuckDBEngine, members: int, churn: float, outsiders: int, views: int) -> None:
    """Profiles 1..members match at AS_OF; the last ``churn`` share of them leave by NEXT;
    as many new buyers enter by NEXT; ``outsiders`` more never buy."""
    leavers = int(members * churn)
    total = members + leavers + outsiders
    con = warehouse.connection
    con.execute(
        """
        INSERT INTO profiles (profile_id, user_id, anonymous_id, traits, first_seen, last_seen)
        SELECT i, 'u' || i, 'a' || i, '{}', TIMESTAMP '2025-01-01', TIMESTAMP '2025-06-01'
        FROM range(1, ? + 1) AS t(i)
        """,
        [total],
    )
    # One purchase per buyer: stayers 10 days before AS_OF, leavers 29.5 days before (in the
    # window at AS_OF, out of it at NEXT), entrants 12 hours after AS_OF.
    con.execute(
        """
        INSERT INTO events (message_id, profile_id, type, event, "timestamp", received_at,
                            properties)
        SELECT 'p' || i, i, 'track', 'purchase', ts, ts, '{"amount": 42}'
        FROM (
            SELECT i,
                   CASE WHEN i <= ? THEN TIMESTAMP '2025-05-22 06:00'
                        WHEN i <= ? THEN TIMESTAMP '2025-05-02 18:00'
                        ELSE TIMESTAMP '2025-06-01 18:00' END AS ts
            FROM range(1, ? + 1) AS t(i)
        )
        """,
        [members - leavers, members, members + leavers],
    )
    con.execute(
        """
        INSERT INTO events (message_id, profile_id, type, event, "timestamp", received_at,
                            properties)
        SELECT 'v' || i || '-' || k, i, 'track', 'page_view',
               TIMESTAMP '2025-04-01' + to_minutes(CAST(hash(i, k) % 86400 AS BIGINT)),
               TIMESTAMP '2025-04-01', '{}'
        FROM range(1, ? + 1) AS t(i), range(0, ?) AS v(k)
        """,
        [total, views],
    )
    con.execute("CHECKPOINT")


def add_audience(catalog: Catalog) -> int:
    definition = Definition.model_validate({"version": 1, "root": ROOT})
    with catalog.session() as session:
        audience = Audience(
            name="buyers_30d",
            status="active",
            is_dynamic=True,
            refresh_interval_seconds=86400,
            warmup=False,
            created_at=AS_OF,
            created_by="benchmark",
            updated_at=AS_OF,
            activated_at=AS_OF,
        )
        session.add(audience)
        session.flush()
        session.add(
            AudienceVersion(
                audience_id=audience.id,
                version=1,
                definition=definition.model_dump_json(by_alias=True, exclude_none=True),
                created_at=AS_OF,
                created_by="benchmark",
            )
        )
        return audience.id


def evaluate(warehouse: DuckDBEngine, as_of: dt.datetime, repeat: int = 3) -> tuple[float, int]:
    """Best time to materialize the compiled query's result, and its row count."""
    definition = Definition.model_validate({"version": 1, "root": ROOT})
    sql = to_sql(compile_definition(definition, as_of=as_of, timezone=TZ))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        warehouse.execute(f"CREATE OR REPLACE TEMPORARY TABLE bench_eval AS {sql}")
        times.append(time.perf_counter() - start)
    # the temporary table lives in the writing connection (reads use their own cursors)
    (count,) = warehouse.connection.execute("SELECT count(*) FROM bench_eval").fetchall()[0]
    warehouse.execute("DROP TABLE bench_eval")
    return min(times), int(count)


def wal_size(warehouse: DuckDBEngine) -> str:
    """The size of the warehouse's write-ahead log, as DuckDB words it ("0 bytes" in memory)."""
    (size,) = warehouse.rows("SELECT wal_size FROM pragma_database_size()")[0]
    return str(size)


def timed_refresh(
    warehouse: DuckDBEngine, catalog: Catalog, audience_id: int, as_of: dt.datetime
) -> tuple[float, float, list[tuple[str, float]], tuple[int, int, int]]:
    """(warehouse-side seconds, whole-call seconds, step durations, (size, entered, left)).
    On a file warehouse the steps end with a timed explicit checkpoint (labelled with the WAL
    size the commit left), the work a commit may have postponed."""
    timer = StepTimer()
    result = refresh_audience(
        warehouse,
        catalog,
        audience_id,
        as_of=as_of,
        timezone=TZ,
        trigger="schedule",
        fail_after=timer,
    )
    end = time.perf_counter()
    committed = dict(timer.marks)["committed"]
    steps = timer.durations()
    if warehouse.path != ":memory:":  # in memory a checkpoint only compresses; nothing waits
        wal = wal_size(warehouse)
        start = time.perf_counter()
        warehouse.execute("CHECKPOINT")
        steps.append((f"deferred checkpoint (WAL left: {wal})", time.perf_counter() - start))
    return (
        committed - timer.start,
        end - timer.start,
        steps,
        (
            result.size,
            result.entered,
            result.left,
        ),
    )


def report(
    label: str,
    evaluation: float,
    warehouse_side: float,
    whole: float,
    steps: list[tuple[str, float]],
    counts: tuple[int, int, int],
) -> None:
    size, entered, left = counts
    print(f"\n{label}: {size:,} members, +{entered:,} −{left:,}")
    labels = {
        "materialize": "checks + compile + evaluate into words",
        "diff": "diff (64-bit membership words)",
        "events": "append added/removed events",
        "history": "append history (words)",
        "membership": "rewrite the changed words",
        "marker": "marker",
        "committed": "commit",
    }
    for step, seconds in steps:
        print(f"  {labels.get(step, step):<46} {seconds * 1000:9.1f} ms")
    deferred = sum(seconds for step, seconds in steps if step.startswith("deferred"))
    overhead = warehouse_side - evaluation
    print(f"  {'bare evaluation (best of 3)':<46} {evaluation * 1000:9.1f} ms")
    print(f"  {'refresh, to the warehouse commit':<46} {warehouse_side * 1000:9.1f} ms")
    print(f"  {'refresh, whole call (+ catalog side)':<46} {whole * 1000:9.1f} ms")
    print(
        f"  overhead {overhead * 1000:.1f} ms = {overhead / evaluation:.0%} of evaluation "
        f"(whole call: {(whole - evaluation) / evaluation:.0%}; "
        f"with the deferred checkpoint: {(overhead + deferred) / evaluation:.0%})"
    )


def best_of(repeat: int, read: Callable[[], object]) -> tuple[float, object]:
    """The best time of ``repeat`` calls of ``read``, and what it returned."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = read()
        times.append(time.perf_counter() - start)
    return min(times), result


def report_readers(warehouse: DuckDBEngine, audience_id: int) -> None:
    """What reading the history and the segment events costs after the refreshes (the price
    of storing them compactly): best of 3 each."""
    (last_refresh,) = warehouse.rows(
        "SELECT refresh_id FROM audience_refreshes ORDER BY seq DESC LIMIT 1"
    )[0]
    reads: list[tuple[str, Callable[[], object]]] = [
        (
            "membership_history view: every spell",
            lambda: warehouse.rows(
                "SELECT count(*) FROM membership_history WHERE audience_id = ?", [audience_id]
            )[0][0],
        ),
        ("members as of refresh 2 (size_as_of)", lambda: size_as_of(warehouse, audience_id, NEXT)),
        (
            "retention of refresh 1's cohort (cohort_retention)",
            lambda: cohort_retention(warehouse, audience_id)[-1].retained,
        ),
        (
            "who entered in refresh 2 (refresh_changes)",
            lambda: len(refresh_changes(warehouse, audience_id, last_refresh).entered),
        ),
    ]
    for event in SEGMENT_EVENT_NAMES:
        root = {
            "kind": "event",
            "event": event,
            "window": {"type": "relative", "last": 7, "unit": "days"},
        }
        definition = Definition.model_validate({"version": 1, "root": root})
        # an hour after refresh 2, so its events (stamped with its as_of) are in the window
        later = NEXT + dt.timedelta(hours=1)
        sql = to_sql(compile_definition(definition, as_of=later, timezone=TZ))
        reads.append(
            (
                f"audience: {event} in the last 7 days",
                lambda sql=sql: warehouse.rows(f"SELECT count(*) FROM ({sql})")[0][0],
            )
        )
    print("\nreading what the refreshes wrote (best of 3)")
    for label, read in reads:
        seconds, result = best_of(3, read)
        print(f"  {label:<46} {seconds * 1000:9.1f} ms  ({result:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--churn", type=float, default=0.05)
    parser.add_argument("--outsiders", type=int, default=200_000)
    parser.add_argument(
        "--views",
        type=int,
        default=9,
        help="page views per profile (default: ~10 events per user, as in benchmarks/evaluate.py)",
    )
    parser.add_argument("--memory", action="store_true", help="in-memory warehouse")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = None if args.memory else Path(tmp) / "warehouse.duckdb"
        warehouse = open_warehouse(path)
        catalog = open_catalog(f"sqlite:///{Path(tmp) / 'catalog.db'}")
        start = time.perf_counter()
        build(warehouse, args.members, args.churn, args.outsiders, args.views)
        (events,) = warehouse.rows("SELECT count(*) FROM events")[0]
        print(
            f"built {events:,} events for {args.members:,} members in "
            f"{time.perf_counter() - start:.1f} s ({'memory' if args.memory else 'file'})"
        )
        audience_id = add_audience(catalog)

        first_eval, first_count = evaluate(warehouse, AS_OF)
        wh1, whole1, steps1, counts1 = timed_refresh(warehouse, catalog, audience_id, AS_OF)
        assert counts1[0] == first_count
        report("refresh 1 (everybody enters)", first_eval, wh1, whole1, steps1, counts1)

        second_eval, second_count = evaluate(warehouse, NEXT)
        wh2, whole2, steps2, counts2 = timed_refresh(warehouse, catalog, audience_id, NEXT)
        assert counts2[0] == second_count
        report(f"refresh 2 ({args.churn:.0%} churn)", second_eval, wh2, whole2, steps2, counts2)
        again = statistics.median([evaluate(warehouse, NEXT, repeat=1)[0] for _ in range(3)])
        print(f"\n(evaluation re-measured after refresh 2: {again * 1000:.1f} ms median)")
        report_readers(warehouse, audience_id)
        catalog.dispose()
        warehouse.close()


if __name__ == "__main__":
    main()
