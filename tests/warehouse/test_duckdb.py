"""The DuckDB engine and the versioned warehouse schema."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from segmint.errors import ConfigurationError, WarehouseBusy
from segmint.warehouse import open_warehouse
from segmint.warehouse.schema import LATEST_VERSION, MIGRATIONS


def test_schema_is_created_once_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    engine = open_warehouse(path)
    engine.close()
    engine = open_warehouse(path)
    versions = engine.rows("SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, LATEST_VERSION + 1)]
    tables = {r[0] for r in engine.rows("SELECT table_name FROM information_schema.tables")}
    assert {"events", "profiles", "identities", "profile_merges"} <= tables
    engine.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    engine = open_warehouse(path)
    engine.execute("INSERT INTO schema_version (version) VALUES (?)", [LATEST_VERSION + 1])
    engine.close()
    with pytest.raises(ConfigurationError, match="newer than this Segmint"):
        open_warehouse(path)
    with pytest.raises(ConfigurationError, match="newer than this Segmint"):
        open_warehouse(path, read_only=True)


def test_transaction_rolls_back_everything_on_error() -> None:
    engine = open_warehouse(None)
    engine.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), engine.transaction():
        engine.append("t", pa.table({"x": [1, 2, 3]}))
        with engine.transaction():  # nested: joins the outer transaction
            engine.execute("INSERT INTO t VALUES (4)")
        raise RuntimeError("boom")
    assert engine.rows("SELECT count(*) FROM t") == [(0,)]
    with engine.transaction():
        assert engine.append("t", pa.table({"x": [5]})) == 1
    assert engine.arrow("SELECT x FROM t").column("x").to_pylist() == [5]


@pytest.mark.parametrize("in_memory", [True, False], ids=["memory", "file"])
def test_reads_never_wait_for_a_writer_and_see_only_committed_rows(
    tmp_path: Path, in_memory: bool
) -> None:
    engine = open_warehouse(None if in_memory else tmp_path / "w.duckdb")
    engine.execute("CREATE TABLE t (x INTEGER)")
    inside, release = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def write() -> None:
        with engine.transaction():
            engine.execute("INSERT INTO t VALUES (1)")
            engine.execute("CREATE TEMPORARY TABLE scratch AS SELECT 2 AS y")
            seen["own"] = engine.rows("SELECT count(*) FROM t UNION ALL SELECT y FROM scratch")
            inside.set()
            release.wait(30)

    def read() -> None:
        seen["count"] = engine.rows("SELECT count(*) FROM t")
        seen["arrow"] = engine.arrow("SELECT count(*) AS n FROM t").column("n").to_pylist()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert inside.wait(30)
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(10)
        assert not reader.is_alive(), "a read waited for the open write transaction"
    finally:
        release.set()
        writer.join(30)
    assert seen["count"] == [(0,)] and seen["arrow"] == [0]  # the committed state only
    assert sorted(seen["own"]) == [(1,), (2,)]  # the writer reads its own rows and temporary tables
    assert engine.rows("SELECT count(*) FROM t") == [(1,)]
    engine.close()


def test_cursors_of_ended_threads_are_closed_and_the_file_is_released(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    engine = open_warehouse(path)
    engine.execute("CREATE TABLE t (x INTEGER)")
    for _ in range(20):  # short-lived threads, each reading through a cursor of its own
        thread = threading.Thread(target=engine.rows, args=("SELECT count(*) FROM t",))
        thread.start()
        thread.join()
    # Each new reader closed the cursors of the threads that had ended before it.
    assert len(engine._cursors) <= 2
    assert engine.rows("SELECT count(*) FROM t") == [(0,)]
    engine.close()
    duckdb.connect(str(path)).close()  # every connection closed: the file is free again


def test_a_locked_warehouse_gives_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "w.duckdb"
    open_warehouse(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ok', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(WarehouseBusy, match="in use by another Segmint process") as writing:
            open_warehouse(path)
        assert "send the data to the server's API" in writing.value.message
        with pytest.raises(WarehouseBusy, match="in use by another Segmint process") as reading:
            open_warehouse(path, read_only=True)
        assert "ask the server: its web UI, or its REST API" in reading.value.message
    finally:
        holder.kill()
        holder.wait()


def warehouse_at_version(path: Path, version: int) -> duckdb.DuckDBPyConnection:
    """A warehouse file as Segmint left it at schema ``version`` (the migrations up to it)."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_version (version INTEGER NOT NULL, "
        "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    for number, statements in enumerate(MIGRATIONS[:version], start=1):
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [number])
    return con


def test_version_3_moves_segment_events_out_of_events_unchanged(tmp_path: Path) -> None:
    # A version-2 warehouse, where refreshes wrote their events as rows of ``events``.
    path = tmp_path / "w.duckdb"
    con = warehouse_at_version(path, 2)
    con.execute(
        "INSERT INTO profiles (profile_id, user_id, anonymous_id, traits, first_seen, last_seen) "
        "VALUES (7, 'u7', 'a7', '{}', TIMESTAMP '2025-01-01', TIMESTAMP '2025-01-02')"
    )
    con.execute(
        "INSERT INTO audience_refreshes VALUES "
        "('r1', 3, 1, TIMESTAMP '2025-01-02', 1, 1, 0, TIMESTAMP '2025-01-02 00:05')"
    )
    old_columns = (
        'message_id, profile_id, type, event, user_id, anonymous_id, "timestamp", received_at, '
        "properties, source"
    )
    con.execute(
        f"INSERT INTO events ({old_columns}) VALUES "
        "('r1:7:added', 7, 'track', 'added_to_segment', 'u7', 'a7', TIMESTAMP '2025-01-02', "
        "TIMESTAMP '2025-01-02 00:05', "
        """'{"audience_id":3,"audience_name":"buyers","refresh_id":"r1"}', 'segmint'), """
        "('m1', 7, 'track', 'order_completed', 'u7', 'a7', TIMESTAMP '2025-01-01', "
        """TIMESTAMP '2025-01-01', '{"revenue":5}', 'api')"""
    )
    before = con.execute(f"SELECT {old_columns} FROM events ORDER BY message_id").fetchall()
    con.close()

    engine = open_warehouse(path, read_only=True)  # a reading command upgrades it first
    assert engine.rows("SELECT max(version) FROM schema_version") == [(LATEST_VERSION,)]
    assert engine.rows("SELECT message_id FROM events") == [("m1",)]
    assert engine.rows(
        "SELECT r.refresh_id, r.audience_id, s.profile_id FROM segment_events AS s "
        "JOIN audience_refreshes AS r ON r.seq = s.refresh_seq"
    ) == [("r1", 3, 7)]
    after = engine.rows(f"SELECT {old_columns} FROM all_events ORDER BY message_id")
    assert [(*row[:8], json.loads(row[8]), *row[9:]) for row in after] == [
        (*row[:8], json.loads(row[8]), *row[9:]) for row in before
    ]
    engine.close()


def test_version_5_keeps_every_current_member_as_words(tmp_path: Path) -> None:
    # A version-4 warehouse, with one row per current member.
    path = tmp_path / "w.duckdb"
    con = warehouse_at_version(path, 4)
    members = {3: [1, 63, 64, 65, 127, 128, 10_000, 2**40 + 1], 4: [63, 2**33]}
    for audience_id, profiles in members.items():
        for profile_id in profiles:
            con.execute(
                "INSERT INTO audience_members VALUES (?, ?, TIMESTAMP '2025-01-02', 'r1')",
                [audience_id, profile_id],
            )
    con.close()

    engine = open_warehouse(path)
    assert engine.rows("SELECT max(version) FROM schema_version") == [(LATEST_VERSION,)]
    rows = engine.rows("SELECT audience_id, profile_id FROM audience_members ORDER BY 1, 2")
    assert rows == [(a, p) for a, profiles in sorted(members.items()) for p in sorted(profiles)]
    # one word per bucket in use: profiles 1 and 63 share bucket 0, 64..127 bucket 1
    assert engine.rows("SELECT count(*) FROM audience_member_words WHERE audience_id = 3") == [(5,)]
    engine.close()


def test_version_6_flags_audiences_whose_history_differs_from_their_members(
    tmp_path: Path,
) -> None:
    # A version-5 warehouse: audience 3's history was recomputed (open spells {1, 2} while
    # destinations were told {1}); audience 4's history agrees with its members.
    path = tmp_path / "w.duckdb"
    con = warehouse_at_version(path, 5)
    con.execute("INSERT INTO audience_member_words VALUES (3, 0, 2), (4, 0, 8)")  # {1}, {3}
    con.execute(
        "INSERT INTO membership_history VALUES "
        "(3, 1, TIMESTAMP '2025-01-01', NULL, 'r1', NULL), "
        "(3, 2, TIMESTAMP '2025-01-01', NULL, 'r1', NULL), "
        "(4, 3, TIMESTAMP '2025-01-01', NULL, 'r2', NULL), "
        "(4, 5, TIMESTAMP '2024-12-01', TIMESTAMP '2025-01-01', 'r0', 'r2')"
    )
    con.close()

    engine = open_warehouse(path)
    assert engine.rows("SELECT audience_id FROM history_to_reconcile") == [(3,)]
    engine.close()


def test_version_7_fills_the_change_log_from_history_so_old_cursors_still_work(
    tmp_path: Path,
) -> None:
    from segmint.sync.outbox import pending_changes

    path = tmp_path / "w.duckdb"
    con = warehouse_at_version(path, 6)
    con.execute(
        "INSERT INTO audience_refreshes VALUES "
        "('r1', 3, 1, TIMESTAMP '2025-01-01', 2, 2, 0, TIMESTAMP '2025-01-01', 'a'), "
        "('r2', 3, 1, TIMESTAMP '2025-01-02', 2, 1, 1, TIMESTAMP '2025-01-02', 'a')"
    )
    con.execute(
        "INSERT INTO membership_history VALUES "
        "(3, 1, TIMESTAMP '2025-01-01', TIMESTAMP '2025-01-02', 'r1', 'r2'), "
        "(3, 70, TIMESTAMP '2025-01-01', NULL, 'r1', NULL), "
        "(3, 3, TIMESTAMP '2025-01-02', NULL, 'r2', NULL)"
    )
    con.execute("INSERT INTO audience_member_words VALUES (3, 0, 8), (3, 1, 64)")  # {3, 70}
    con.close()

    engine = open_warehouse(path)
    since_r1 = pending_changes(engine, 3, "r1")
    assert (since_r1.added, since_r1.removed) == ([3], [1])
    assert pending_changes(engine, 3, None).added == [3, 70]
    assert pending_changes(engine, 3, None, until="r1").added == [1, 70]
    engine.close()


def test_version_8_splits_history_into_starts_and_ends_that_read_back_the_same(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.duckdb"
    con = warehouse_at_version(path, 7)
    days = [f"TIMESTAMP '2025-01-0{day}'" for day in range(1, 5)]
    con.execute(
        "INSERT INTO audience_refreshes VALUES "
        + ", ".join(
            f"('r{n}', 3, 1, {days[n - 1]}, 1, 1, 0, {days[n - 1]}, 'a')" for n in range(1, 5)
        )
    )
    spells = [  # profile 1 enters, leaves, comes back; 2 enters and stays; 4 leaves at r4
        (3, 1, days[0], days[1], "'r1'", "'r2'"),
        (3, 1, days[2], "NULL", "'r3'", "NULL"),
        (3, 2, days[1], "NULL", "'r2'", "NULL"),
        (3, 4, days[0], days[3], "'r1'", "'r4'"),
    ]
    con.execute(
        "INSERT INTO membership_history VALUES "
        + ", ".join(f"({', '.join(map(str, spell))})" for spell in spells)
    )
    before = con.execute("SELECT * FROM membership_history ORDER BY ALL").fetchall()
    con.close()

    engine = open_warehouse(path)
    assert engine.rows("SELECT * FROM membership_history ORDER BY ALL") == before
    assert engine.rows("SELECT refresh_id, seq FROM audience_refreshes ORDER BY seq") == [
        (f"r{n}", n) for n in range(1, 5)
    ]
    engine.close()


def test_version_10_keeps_history_and_segment_events_reading_back_the_same(
    tmp_path: Path,
) -> None:
    # A version-9 warehouse: spells as rows of starts and ends, segment events with their
    # audience, name and instants on every row. Profiles across word edges and far apart.
    path = tmp_path / "w.duckdb"
    con = warehouse_at_version(path, 9)
    # Audience 3 refreshes at r1, r3 and r5, audience 4 at r2 and r4.
    days = [f"TIMESTAMP '2025-01-0{day}'" for day in range(1, 6)]
    con.execute(
        "INSERT INTO audience_refreshes VALUES "
        + ", ".join(
            f"('r{n}', {3 if n % 2 else 4}, 1, {days[n - 1]}, 1, 1, 0, "
            f"{days[n - 1]} + INTERVAL 5 MINUTE, 'a{n % 2}', {n})"
            for n in range(1, 6)
        )
    )
    far = 2**40 + 1
    starts = [(3, 1, 1), (3, 63, 1), (3, 64, 1), (3, far, 1), (3, 1, 5), (4, 1, 2), (4, 65, 4)]
    ends = [(3, 1, 3), (3, far, 3), (4, 1, 4)]
    con.execute(
        "INSERT INTO membership_spells SELECT a, p, r.as_of, s FROM (VALUES "
        + ", ".join(f"({a}, {p}, {s})" for a, p, s in starts)
        + ") AS v(a, p, s) JOIN audience_refreshes AS r ON r.seq = v.s"
    )
    con.execute(
        "INSERT INTO membership_exits SELECT a, p, r.as_of, s FROM (VALUES "
        + ", ".join(f"({a}, {p}, {s})" for a, p, s in ends)
        + ") AS v(a, p, s) JOIN audience_refreshes AS r ON r.seq = v.s"
    )
    changes = [(1, 1, True), (1, 63, True), (1, 64, True), (1, far, True), (3, far, False)]
    con.execute(
        "INSERT INTO segment_events SELECT r.audience_id, v.p, "
        "CASE WHEN v.added THEN 'added_to_segment' ELSE 'removed_from_segment' END, "
        "r.as_of, r.committed_at, v.s FROM (VALUES "
        + ", ".join(f"({s}, {p}, {added})" for s, p, added in changes)
        + ") AS v(s, p, added) JOIN audience_refreshes AS r ON r.seq = v.s"
    )
    history = con.execute("SELECT * FROM membership_history ORDER BY ALL").fetchall()
    events = con.execute("SELECT * FROM all_events ORDER BY message_id").fetchall()
    con.close()

    engine = open_warehouse(path)
    assert len(history) == 7
    assert engine.rows("SELECT * FROM membership_history ORDER BY ALL") == history
    assert len(events) == 5
    assert engine.rows("SELECT * FROM all_events ORDER BY message_id") == events
    # one word per audience, refresh and bucket of 64 ids touched: r1 3, r3 2, r5 1, r2 1, r4 2
    assert engine.rows("SELECT count(*) FROM history_words") == [(9,)]
    engine.close()


def test_a_file_that_is_not_a_warehouse_is_one_clear_error(tmp_path: Path) -> None:
    damaged = tmp_path / "warehouse.duckdb"
    damaged.write_bytes(b"garbage" * 1000)
    for read_only in (False, True):
        with pytest.raises(ConfigurationError) as raised:
            open_warehouse(damaged, read_only=read_only)
        message = raised.value.message
        assert f"cannot open the warehouse {damaged}: IO Error" in message
        assert "move it aside" in message
    assert damaged.read_bytes() == b"garbage" * 1000  # left as it was
