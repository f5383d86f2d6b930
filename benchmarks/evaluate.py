"""Audience evaluation benchmark: compiled SQL next to hand-written DuckDB SQL (issue 3).

    .venv/bin/python benchmarks/evaluate.py                  # 10M events, ~1M users
    .venv/bin/python benchmarks/evaluate.py --events 1000000 # a quick run

Builds a warehouse from the project's shop generator (``segmint.generate.shop``), bypassing
the per-event collection pipeline: messages are flattened to columns in Python and written
as Parquet chunks, then DuckDB builds ``events`` and ``profiles`` with SQL. Profiles are the
dense rank of ``coalesce(userId, anonymousId)`` (no identity resolution: fine for timing).
Country and language come from the locale, browser / OS / device type from the user agent,
UTM parameters from ``context.campaign``. Parquet and the finished warehouse are cached under
``--cache`` so reruns skip generation.

Then, for ten audiences covering every condition kind, it times the compiled query (best of
5) and a hand-written DuckDB query for the same audience in the same run, checks both return
the same number of members, and prints the table with the ratio. Aims: compiled within 1.3x
of hand-written; "viewed a product, no order, in the US" under 2 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from segmint.audiences.explain import explain_membership
from segmint.audiences.run import run_definition
from segmint.collect.enrich import parse_device
from segmint.compiler import compile_definition, to_sql
from segmint.compiler.windows import Clock, window_bounds
from segmint.definitions import Definition, RelativeWindow, parse_definition
from segmint.generate.shop import generate_events
from segmint.warehouse import open_warehouse

END = dt.datetime(2025, 6, 1)  # as_of of every audience: the end of the generated data
TIMEZONE = "UTC"
CHUNK = 500_000
ROUNDS = 5
AIM_RATIO = 1.3
AIM_THREE_CONDITIONS_S = 2.0
MEMORY_LIMIT = "6GB"

_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("user_key", pa.string()),
        ("user_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("ts", pa.string()),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("locale", pa.string()),
        ("user_agent", pa.string()),
        ("utm_source", pa.string()),
        ("utm_medium", pa.string()),
        ("utm_campaign", pa.string()),
        ("utm_term", pa.string()),
        ("utm_content", pa.string()),
    ]
)


# --- generation ----------------------------------------------------------------------------------


def _row(message: dict[str, Any]) -> tuple[Any, ...]:
    context = message.get("context") or {}
    campaign = context.get("campaign") or {}
    kind = message["type"]
    properties = message.get("properties")
    traits = message.get("traits")
    return (
        message["messageId"],
        kind,
        message["event"] if kind == "track" else kind,
        message.get("userId") or message.get("anonymousId"),
        message.get("userId"),
        message.get("anonymousId"),
        message["timestamp"],
        orjson.dumps(properties).decode() if properties else None,
        orjson.dumps(traits).decode() if traits else None,
        context.get("locale"),
        context.get("userAgent"),
        campaign.get("source"),
        campaign.get("medium"),
        campaign.get("name"),
        campaign.get("term"),
        campaign.get("content"),
    )


def _chunks(messages: Iterator[dict[str, Any]]) -> Iterator[pa.Table]:
    while True:
        rows = [_row(m) for m in itertools.islice(messages, CHUNK)]
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        yield pa.table(
            [pa.array(column, type=f.type) for column, f in zip(columns, _SCHEMA, strict=True)],
            schema=_SCHEMA,
        )


def generate_parquet(directory: Path, events: int, users: int, days: int, seed: int) -> None:
    """Write ``events`` generated messages as Parquet chunks into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    messages = itertools.islice(generate_events(users, days, seed, END), events)
    start, written = time.perf_counter(), 0
    for index, table in enumerate(_chunks(messages)):
        pq.write_table(table, directory / f"part-{index:04d}.parquet", compression="zstd")
        written += table.num_rows
        rate = written / (time.perf_counter() - start)
        print(f"  generated {written:,} events ({rate:,.0f}/s)", file=sys.stderr)
    (directory / "DONE").write_text(str(written))


def _user_agents(con: duckdb.DuckDBPyConnection, parquet: str) -> pa.Table:
    """browser / OS / device type of each distinct user agent (a handful in generated data)."""
    agents = [r[0] for r in con.execute(f"SELECT DISTINCT user_agent FROM {parquet}").fetchall()]
    infos = [parse_device(a) if a else None for a in agents]
    return pa.table(
        {
            "user_agent": pa.array(agents, pa.string()),
            "browser": pa.array([i.browser if i else None for i in infos], pa.string()),
            "os": pa.array([i.os if i else None for i in infos], pa.string()),
            "device_type": pa.array([i.device_type if i else None for i in infos], pa.string()),
        }
    )


BUILD_EVENTS = """
INSERT INTO events (message_id, profile_id, type, event, user_id, anonymous_id, "timestamp",
                    received_at, properties, traits, utm_source, utm_medium, utm_campaign,
                    utm_term, utm_content, locale, language, country, browser, os, device_type,
                    user_agent)
SELECT message_id, dense_rank() OVER (ORDER BY user_key), type, event, user_id, anonymous_id,
       ts, ts, properties, traits, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
       locale, lower(split_part(locale, '-', 1)), upper(split_part(locale, '-', 2)),
       ua.browser, ua.os, ua.device_type, m.user_agent
FROM (SELECT * REPLACE (strptime(ts, '%Y-%m-%dT%H:%M:%S.%gZ') AS ts) FROM {parquet}) m
LEFT JOIN user_agents ua USING (user_agent)
ORDER BY ts
"""

BUILD_PROFILES = """
INSERT INTO profiles (profile_id, user_id, email, anonymous_id, traits, first_seen, last_seen,
                      event_count, first_utm_source, first_utm_medium, first_utm_campaign,
                      last_utm_source, last_utm_medium, last_utm_campaign, browser, os,
                      device_type, locale, language, country)
SELECT profile_id, max(user_id), max(traits->>'email'), max(anonymous_id),
       coalesce(arg_max(traits, "timestamp") FILTER (WHERE traits IS NOT NULL), '{}'),
       min("timestamp"), max("timestamp"), count(*),
       arg_min(utm_source, "timestamp") FILTER (WHERE utm_source IS NOT NULL),
       arg_min(utm_medium, "timestamp") FILTER (WHERE utm_source IS NOT NULL),
       arg_min(utm_campaign, "timestamp") FILTER (WHERE utm_source IS NOT NULL),
       arg_max(utm_source, "timestamp") FILTER (WHERE utm_source IS NOT NULL),
       arg_max(utm_medium, "timestamp") FILTER (WHERE utm_source IS NOT NULL),
       arg_max(utm_campaign, "timestamp") FILTER (WHERE utm_source IS NOT NULL),
       arg_max(browser, "timestamp"), arg_max(os, "timestamp"),
       arg_max(device_type, "timestamp"), arg_max(locale, "timestamp"),
       arg_max(language, "timestamp"), arg_max(country, "timestamp")
FROM events GROUP BY profile_id
"""


def build_warehouse(parquet_dir: Path, path: Path) -> None:
    """Create the warehouse at ``path`` from the Parquet chunks."""
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    engine = open_warehouse(building)
    con = engine.connection
    # Bounded memory (other work shares the machine); DuckDB spills to disk beyond it.
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = '{building.parent / 'spill'}'")
    con.execute("SET preserve_insertion_order = false")
    parquet = f"read_parquet('{parquet_dir}/part-*.parquet')"
    con.register("user_agents", _user_agents(con, parquet))
    start = time.perf_counter()
    con.execute(BUILD_EVENTS.format(parquet=parquet))
    con.execute(BUILD_PROFILES)
    con.execute("CHECKPOINT")
    print(f"  warehouse built in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    engine.close()
    building.rename(path)


# --- audiences ------------------------------------------------------------------------------------


def last(days: int) -> dict[str, Any]:
    return {"type": "relative", "last": days, "unit": "days"}


def ev(event: str, days: int, **more: Any) -> dict[str, Any]:
    return {"kind": "event", "event": event, "window": last(days), **more}


BUYERS = {"root": ev("order_completed", 30)}


@dataclass
class Audience:
    """One benchmark audience: its definition and a hand-written query of its members."""

    name: str
    kinds: str
    definition: dict[str, Any]
    hand_written: Callable[[Callable[..., str]], str]  # (days, table → window SQL) → SQL


def _audiences() -> list[Audience]:
    return [
        Audience(
            "repeat_buyers",
            "event",
            {"root": ev("order_completed", 30, count={"operator": "at_least", "value": 2})},
            lambda w: (
                f"""SELECT profile_id FROM events
                WHERE event = 'order_completed' AND {w(30)}
                GROUP BY profile_id HAVING count(*) >= 2"""
            ),
        ),
        Audience(
            "big_spenders",
            "aggregate",
            {
                "root": {
                    "kind": "aggregate",
                    "event": "order_completed",
                    "property": "revenue",
                    "function": "sum",
                    "operator": "gt",
                    "value": 200,
                    "window": last(90),
                }
            },
            lambda w: (
                f"""SELECT profile_id FROM events
                WHERE event = 'order_completed' AND {w(90)}
                GROUP BY profile_id
                HAVING sum(TRY_CAST(properties->>'$.revenue' AS DOUBLE)) > 200"""
            ),
        ),
        Audience(
            "viewed_then_bought_1d",
            "sequence",
            {
                "root": {
                    "kind": "sequence",
                    "first": {"event": "product_viewed"},
                    "then": {"event": "order_completed"},
                    "within": {"amount": 1, "unit": "days"},
                    "window": last(30),
                }
            },
            lambda w: (
                f"""
                WITH v AS (SELECT profile_id, "timestamp" AS t FROM events
                           WHERE event = 'product_viewed' AND {w(30)}),
                     o AS (SELECT profile_id, "timestamp" AS t FROM events
                           WHERE event = 'order_completed' AND {w(30)})
                SELECT DISTINCT o.profile_id FROM o ASOF JOIN v
                    ON o.profile_id = v.profile_id AND o.t > v.t
                WHERE o.t <= v.t + INTERVAL 1 DAY"""
            ),
        ),
        Audience(
            "premium_plan",
            "trait",
            {"root": {"kind": "trait", "trait": "plan", "operator": "equals", "value": "premium"}},
            lambda w: "SELECT profile_id FROM profiles WHERE traits->>'$.plan' = 'premium'",
        ),
        Audience(
            "google_visitors_7d",
            "utm",
            {
                "root": {
                    "kind": "utm",
                    "parameter": "source",
                    "touch": "any",
                    "operator": "equals",
                    "value": "google",
                    "window": last(7),
                }
            },
            lambda w: (
                f"""SELECT DISTINCT profile_id FROM events
                WHERE utm_source = 'google' AND {w(7)}"""
            ),
        ),
        Audience(
            "dach_or_france",
            "demographic",
            {
                "root": {
                    "kind": "demographic",
                    "field": "country",
                    "operator": "in",
                    "value": ["DE", "AT", "CH", "FR"],
                }
            },
            lambda w: (
                """SELECT profile_id FROM profiles
                WHERE country IN ('DE', 'AT', 'CH', 'FR')"""
            ),
        ),
        Audience(
            "mobile_users",
            "technology",
            {
                "root": {
                    "kind": "technology",
                    "field": "device_type",
                    "operator": "equals",
                    "value": "mobile",
                }
            },
            lambda w: "SELECT profile_id FROM profiles WHERE device_type = 'mobile'",
        ),
        Audience(
            "us_buyers",
            "audience + demographic",
            {
                "root": {
                    "kind": "and",
                    "conditions": [
                        {"kind": "audience", "audience": "buyers"},
                        {
                            "kind": "demographic",
                            "field": "country",
                            "operator": "equals",
                            "value": "US",
                        },
                    ],
                }
            },
            lambda w: (
                f"""SELECT DISTINCT e.profile_id FROM events e
                JOIN profiles p USING (profile_id)
                WHERE e.event = 'order_completed' AND {w(30, "e")} AND p.country = 'US'"""
            ),
        ),
        Audience(
            "cart_abandoners_not_us",
            "nested and / or / not",
            {
                "root": {
                    "kind": "and",
                    "conditions": [
                        {
                            "kind": "or",
                            "conditions": [
                                ev("added_to_cart", 7),
                                ev("checkout_started", 7),
                            ],
                        },
                        {**ev("order_completed", 7), "negate": True},
                        {
                            "kind": "or",
                            "negate": True,
                            "conditions": [
                                {
                                    "kind": "demographic",
                                    "field": "country",
                                    "operator": "equals",
                                    "value": "US",
                                },
                                {
                                    "kind": "technology",
                                    "field": "browser",
                                    "operator": "equals",
                                    "value": "Safari",
                                },
                            ],
                        },
                    ],
                }
            },
            lambda w: (
                f"""SELECT e.profile_id FROM events e JOIN profiles p USING (profile_id)
                WHERE e.event IN ('added_to_cart', 'checkout_started', 'order_completed')
                  AND {w(7, "e")}
                  AND p.country IS DISTINCT FROM 'US' AND p.browser IS DISTINCT FROM 'Safari'
                GROUP BY e.profile_id
                HAVING bool_or(e.event <> 'order_completed')
                   AND NOT bool_or(e.event = 'order_completed')"""
            ),
        ),
        Audience(
            "viewed_no_order_us",
            "3 conditions",
            {
                "root": {
                    "kind": "and",
                    "conditions": [
                        ev("product_viewed", 30),
                        ev("order_completed", 30, performed=False),
                        {
                            "kind": "demographic",
                            "field": "country",
                            "operator": "equals",
                            "value": "US",
                        },
                    ],
                }
            },
            lambda w: (
                f"""SELECT e.profile_id FROM events e JOIN profiles p USING (profile_id)
                WHERE e.event IN ('product_viewed', 'order_completed') AND {w(30, "e")}
                  AND p.country = 'US'
                GROUP BY e.profile_id
                HAVING NOT bool_or(e.event = 'order_completed')"""
            ),
        ),
    ]


# --- timing ---------------------------------------------------------------------------------------


def _window_sql(as_of: dt.datetime) -> Callable[..., str]:
    clock = Clock.create(as_of, TIMEZONE)

    def window(days: int, table: str | None = None) -> str:
        bounds = window_bounds(RelativeWindow(last=days), clock)
        column = f'{table}."timestamp"' if table else '"timestamp"'
        return f"{column} >= TIMESTAMP '{bounds.start}' AND {column} < TIMESTAMP '{bounds.end}'"

    return window


def best_of(con: duckdb.DuckDBPyConnection, *queries: str) -> list[tuple[int, float]]:
    """(member count, best wall time of ROUNDS runs) of each query. The queries take turns,
    so a burst of load on the machine hits all of them alike rather than one."""
    best, counts = [float("inf")] * len(queries), [-1] * len(queries)
    for _ in range(ROUNDS):
        for index, sql in enumerate(queries):
            start = time.perf_counter()
            found = con.execute(f"SELECT count(*) FROM ({sql}) AS members").fetchone()
            best[index] = min(best[index], time.perf_counter() - start)
            counts[index] = int(found[0]) if found else -1
    return list(zip(counts, best, strict=True))


def run_benchmark(path: Path) -> bool:
    """Time every audience; print the table; True when every count agrees."""
    con = duckdb.connect(str(path), read_only=True)
    events, profiles = con.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM profiles)"
    ).fetchone() or (0, 0)
    print(f"\nwarehouse: {events:,} events, {profiles:,} profiles; as_of {END:%Y-%m-%d}\n")
    buyers = parse_definition(BUYERS)
    resolver: Callable[[str], Definition | None] = {"buyers": buyers}.get
    window = _window_sql(END)
    header = f"{'audience':<24} {'kinds':<24} {'members':>10} {'compiled s':>11} "
    header += f"{'hand s':>8} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    all_agree = True
    for audience in _audiences():
        definition = parse_definition(audience.definition, resolve_audience=resolver)
        query = compile_definition(
            definition, as_of=END, timezone=TIMEZONE, resolve_audience=resolver
        )
        (compiled_count, compiled_s), (hand_count, hand_s) = best_of(
            con, to_sql(query, "duckdb"), audience.hand_written(window)
        )
        agree = compiled_count == hand_count
        all_agree &= agree
        flag = "" if agree else f"  MISMATCH: hand-written gives {hand_count:,}"
        print(
            f"{audience.name:<24} {audience.kinds:<24} {compiled_count:>10,} "
            f"{compiled_s:>11.3f} {hand_s:>8.3f} {compiled_s / hand_s:>5.2f}x{flag}"
        )
    con.close()
    _time_run_and_explain(path, _audiences()[-1], resolver)
    return all_agree


def _time_run_and_explain(
    path: Path, audience: Audience, resolver: Callable[[str], Definition | None]
) -> None:
    """Run Query (size, sample, per-node counts) and explain for one member, timed once."""
    engine = open_warehouse(path, read_only=True)
    try:
        start = time.perf_counter()
        result = run_definition(
            engine, audience.definition, as_of=END, timezone=TIMEZONE, resolve_audience=resolver
        )
        run_s = time.perf_counter() - start
        profile = result.sample[0].profile_id if result.sample else 1
        start = time.perf_counter()
        explain_membership(engine, audience.definition, profile, as_of=END, timezone=TIMEZONE)
        explain_s = time.perf_counter() - start
    finally:
        engine.close()
    print(
        f"\nRun Query of {audience.name} (size, sample, {len(result.diagnostics)} node counts "
        f"and steps): {run_s:.3f} s; explain one profile: {explain_s:.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/segmint-bench"))
    parser.add_argument("--rebuild", action="store_true", help="Ignore the cache.")
    args = parser.parse_args()
    key = f"e{args.events}-u{args.users}-d{args.days}-s{args.seed}"
    parquet_dir = args.cache / key / "parquet"
    warehouse = args.cache / key / "warehouse.duckdb"
    if args.rebuild and (args.cache / key).exists():
        shutil.rmtree(args.cache / key)
    if not (parquet_dir / "DONE").exists():
        print(f"generating {args.events:,} events for up to {args.users:,} users", file=sys.stderr)
        shutil.rmtree(parquet_dir, ignore_errors=True)
        generate_parquet(parquet_dir, args.events, args.users, args.days, args.seed)
    if not warehouse.exists():
        build_warehouse(parquet_dir, warehouse)
    if not run_benchmark(warehouse):
        raise SystemExit("compiled and hand-written queries disagree on some audience")


if __name__ == "__main__":
    main()
