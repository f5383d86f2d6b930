"""Preparation processes: tasks and results travel through files, a pool whose process dies
is replaced and the work is done here instead, a Prepared survives the trip with what
storing needs, and the HTTP writer stores groups prepared elsewhere exactly as it stores
those it prepares itself."""

from __future__ import annotations

import gc
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from segmint.collect import workers
from segmint.collect.enrich import Enricher
from segmint.collect.http import accept_batch, fill_ip, journal_meta, messages_from_record
from segmint.collect.journal import Journal, Record, segments
from segmint.collect.messages import Message
from segmint.collect.pipeline import prepare
from segmint.collect.validate import validate_message
from segmint.collect.writer import GroupCommitWriter, _Request
from segmint.generate.shop import generate_events
from segmint.runtime import Runtime
from segmint.settings import Settings
from tests.conftest import collection_tables

pytestmark = pytest.mark.slow  # starts processes

RECEIVED = datetime(2025, 6, 1, 12)


def _message(raw: dict[str, object]) -> Message:
    return validate_message(raw, received_at=RECEIVED, source="test")


def test_a_task_runs_in_another_process_and_its_files_are_removed() -> None:
    pool = workers.PreparationPool(Enricher(None), processes=1)
    try:
        future = pool.submit(os.getpid)
        assert pool.result(future, lambda: -1) not in (os.getpid(), -1)
        directory = pool._directory
        assert directory is not None and directory.is_dir()
        assert list(directory.iterdir()) == []  # the task's and the result's files are gone
    finally:
        pool.close()
    assert not directory.exists()


def test_a_dead_process_is_replaced_and_the_work_done_here(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = workers.PreparationPool(Enricher(None), processes=1)
    try:
        with caplog.at_level(logging.WARNING, logger="segmint.collect.workers"):
            assert pool.result(pool.submit(os._exit, 3), lambda: "here") == "here"
        assert "a preparation process stopped" in caplog.text
        # The next task gets a new process.
        assert pool.result(pool.submit(os.getpid), lambda: -1) not in (os.getpid(), -1)
    finally:
        pool.close()


def test_a_failing_task_is_done_here_again_which_raises_its_error() -> None:
    pool = workers.PreparationPool(Enricher(None), processes=1)

    def here() -> int:
        raise ValueError("the input's own error")

    try:
        with pytest.raises(ValueError, match="the input's own error"):
            pool.result(pool.submit(int, "not a number"), here)
    finally:
        pool.close()


def test_a_prepared_batch_keeps_what_storing_needs_through_pickling() -> None:
    raws = [
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "messageId": "m1",
            "timestamp": "2025-05-31T10:00:00.123456Z",
            "traits": {"email": "Ann@Example.com", "plan": "pro"},
            "context": {
                "traits": {"phone": "+44 20 7946 0958"},
                "device": {"id": "d1", "advertisingId": "ad1"},
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
                "page": {"url": "https://shop.example/?utm_source=news&gclid=g1"},
                "locale": "en-GB",
            },
            "properties": {"ignored": True},
        },
        {
            "type": "alias",
            "userId": "u2",
            "previousId": "u1",
            "messageId": "m2",
            "timestamp": "2025-05-31T11:00:00Z",
        },
        {"type": "track", "event": "Bought", "anonymousId": "a2", "messageId": "m3"},
    ]
    sent = prepare([_message(raw) for raw in raws], Enricher(None))
    back = pickle.loads(pickle.dumps(sent))
    assert back.events.equals(sent.events)
    for before, after in zip(sent.messages, back.messages, strict=True):
        for name in (
            "message_id",
            "type",
            "timestamp",
            "received_at",
            "user_id",
            "anonymous_id",
            "previous_id",
            "traits",
            "enriched",
        ):
            assert getattr(after, name) == getattr(before, name), name
        # Of the context, storing reads only the traits and the device.
        assert after.context == {
            k: v for k, v in before.context.items() if k in ("traits", "device")
        }
    assert back.messages[0].context["device"] == {"id": "d1", "advertisingId": "ad1"}
    assert back.messages[0].enriched[:1] == ("news",)  # utm_source, first enrichment field


def test_when_work_cannot_be_written_for_the_process_it_is_done_here(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = workers.PreparationPool(Enricher(None), processes=1)
    put = workers._put

    def full(directory: Path, value: Any) -> str:
        path = put(directory, value)  # a partial file is removed by _put itself
        os.unlink(path)
        raise OSError(28, "No space left on device")

    try:
        monkeypatch.setattr(workers, "_put", full)
        with caplog.at_level(logging.WARNING, logger="segmint.collect.workers"):
            assert pool.result(pool.submit(os.getpid), lambda: "here") == "here"
        assert "No space left on device" in caplog.text
        monkeypatch.setattr(workers, "_put", put)
        assert pool.result(pool.submit(os.getpid), lambda: -1) not in (os.getpid(), -1)
        assert pool._directory is not None and list(pool._directory.iterdir()) == []
    finally:
        pool.close()


def test_a_small_shared_memory_is_passed_over_for_the_temporary_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "_SHM_MIN_FREE", 1 << 60)
    directory = workers._exchange_directory()
    try:
        assert directory.parent == Path(tempfile.gettempdir())
    finally:
        directory.rmdir()


def test_directories_left_by_killed_processes_are_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_SHM_MIN_FREE", 1 << 60)  # in the temporary directory
    parent = Path(tempfile.gettempdir())
    gone = parent / f"segmint-prepare-{_finished_pid()}-abc"
    alive = parent / f"segmint-prepare-{os.getppid()}-abc"
    for directory in (gone, alive):
        directory.mkdir()
        (directory / "task.pickle").write_bytes(b"x" * 100)
    mine = workers._exchange_directory()
    try:
        assert not gone.exists() and alive.exists()
        assert mine.name.startswith(f"segmint-prepare-{os.getpid()}-")
    finally:
        shutil.rmtree(alive)
        mine.rmdir()


def _finished_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_exchange_directory_is_in_shared_memory_when_there_is_some() -> None:
    directory = workers._exchange_directory()
    try:
        shm = Path("/dev/shm")
        if os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= workers._SHM_MIN_FREE:
            assert directory.parent == shm
        assert directory.name.startswith("segmint-prepare-")
    finally:
        directory.rmdir()


# --- the HTTP writer's preparation process -------------------------------------------------


class DyingPool(workers.PreparationPool):
    """Its process dies on every preparation, as a killed one would."""

    def submit(self, task: Any, *args: Any) -> Future[str]:
        if task is workers.prepare_records:
            return super().submit(os._exit, 9)
        return super().submit(task, *args)


def started(pool: workers.PreparationPool) -> workers.PreparationPool:
    pool.start()
    deadline = time.monotonic() + 60
    while not pool.ready:
        assert time.monotonic() < deadline, "the preparation process did not start"
        time.sleep(0.02)
    return pool


def _store_requests(
    runtime: Runtime, pool: workers.PreparationPool | None, pool_min: int = 1
) -> GroupCommitWriter:
    """Post a generated shop's events as journaled batch requests of 50 to a writer with
    ``pool`` and wait until they are stored."""
    settings = runtime.settings
    writer = GroupCommitWriter(
        runtime.collector,
        journal=Journal(settings.journal_dir),
        pool=pool,
        pool_min=pool_min,
        # As the server's: requests keep no messages, which are accepted again when needed.
        accept=lambda meta, body: messages_from_record(meta, body, settings),
    )
    events = list(generate_events(users=60, days=30, seed=5, end=RECEIVED))
    for start in range(0, len(events), 50):
        raw = orjson.dumps({"batch": events[start : start + 50]})
        messages, rejected = accept_batch(
            orjson.loads(raw), received_at=RECEIVED, source="web", settings=settings
        )
        assert not rejected
        fill_ip(messages, "203.0.113.9", start % 100 == 0)
        meta = journal_meta("batch", RECEIVED, "web", "203.0.113.9", start % 100 == 0, messages)
        writer.submit(messages, meta, raw)
    assert writer.wait_until_stored()
    return writer


@pytest.mark.parametrize("processes", [1, 2])  # with 2, two groups are prepared at once
def test_the_writer_stores_groups_prepared_in_another_process_as_it_does_itself(
    tmp_path: Path, processes: int
) -> None:
    here = Runtime.open(Settings(data_dir=tmp_path / "here", scheduler=False))
    there = Runtime.open(Settings(data_dir=tmp_path / "there", scheduler=False))
    pool = started(
        workers.PreparationPool(there.collector.enricher, there.settings, processes=processes)
    )
    try:
        _store_requests(here, None).close()
        _store_requests(there, pool).close()
        # Enrichment (user agents) ran in the other process only.
        assert here.collector.enricher._agents and not there.collector.enricher._agents
        expected, got = collection_tables(here.warehouse), collection_tables(there.warehouse)
        assert len(got["events"]) > 500 and got["profile_merges"]
        for table in expected:
            assert got[table] == expected[table], table
        assert segments(there.settings.journal_dir) == []
    finally:
        pool.close()
        here.close()
        there.close()


def test_when_the_process_dies_the_writer_prepares_the_group_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime.open(Settings(data_dir=tmp_path, scheduler=False))
    pool = started(DyingPool(runtime.collector.enricher, runtime.settings))
    try:
        with caplog.at_level(logging.WARNING, logger="segmint.collect.workers"):
            _store_requests(runtime, pool).close()
        assert "a preparation process stopped" in caplog.text
        (count,) = runtime.warehouse.rows("SELECT count(*) FROM events")[0]
        assert count == len(list(generate_events(users=60, days=30, seed=5, end=RECEIVED)))
        assert segments(runtime.settings.journal_dir) == []
    finally:
        pool.close()
        runtime.close()


def test_the_first_large_group_starts_the_processes_and_every_later_group_goes_to_them(
    tmp_path: Path,
) -> None:
    runtime = Runtime.open(Settings(data_dir=tmp_path, scheduler=False))
    settings = runtime.settings
    pool = workers.PreparationPool(runtime.collector.enricher, settings)
    writer = GroupCommitWriter(
        runtime.collector,
        journal=Journal(settings.journal_dir),
        pool=pool,
        pool_min=100,
        accept=lambda meta, body: messages_from_record(meta, body, settings),
    )
    sent = 0

    def request(count: int) -> _Request:
        nonlocal sent
        batch = [
            {"type": "track", "event": "viewed", "userId": f"u{n}", "messageId": f"m{n}"}
            for n in range(sent, sent + count)
        ]
        sent += count
        raw = orjson.dumps({"batch": batch})
        messages, _ = accept_batch(
            orjson.loads(raw), received_at=RECEIVED, source="web", settings=settings
        )
        meta = journal_meta("batch", RECEIVED, "web", None, False, messages)
        return _Request(None, count, None, Record(tmp_path / "segment", meta, raw))

    def here() -> Any:
        pytest.fail("prepared in the writer's process")

    try:
        _, future = writer._begin([request(50)])
        assert future is None and pool.state == "not started"  # small: prepared here
        _, first = writer._begin([request(60), request(60)])  # large: starts the processes
        assert first is not None and pool.state in ("starting", "ready")
        _, later = writer._begin([request(5)])  # small, but the processes are started
        assert later is not None
        assert pool.result(first, here).events.column("message_id").to_pylist() == [
            f"m{n}" for n in range(50, 170)
        ]
        assert len(pool.result(later, here).events) == 5
    finally:
        writer.close()
        runtime.close()


def test_once_a_process_is_ready_every_group_goes_to_it_however_small(tmp_path: Path) -> None:
    runtime = Runtime.open(Settings(data_dir=tmp_path, scheduler=False))
    pool = started(workers.PreparationPool(runtime.collector.enricher, runtime.settings))
    try:
        _store_requests(runtime, pool, pool_min=2_000).close()  # requests of 50 messages
        assert not runtime.collector.enricher._agents  # none was prepared here
        (count,) = runtime.warehouse.rows("SELECT count(*) FROM events")[0]
        assert count == len(list(generate_events(users=60, days=30, seed=5, end=RECEIVED)))
    finally:
        pool.close()
        runtime.close()


def test_start_starts_every_process_at_once() -> None:
    pool = workers.PreparationPool(Enricher(None), processes=2)
    try:
        assert pool.state == "not started"
        pool.start()
        assert pool.state in ("starting", "ready")
        deadline = time.monotonic() + 60
        while pool.state != "ready":
            assert time.monotonic() < deadline, "the processes did not start"
            time.sleep(0.02)
        assert pool._executor is not None
        processes = list(pool._executor._processes.values())  # started before any work
        assert len(processes) == 2 and all(p.is_alive() for p in processes)
    finally:
        pool.close()
    assert pool.state == "not started"


def test_a_task_runs_with_the_cyclic_collector_paused(tmp_path: Path) -> None:
    # A task makes millions of short-lived containers; the collector must not scan them.
    assert gc.isenabled()
    result = workers._run(workers._put(tmp_path, (gc.isenabled, ())))
    assert workers._take(result) is False
    assert gc.isenabled()  # switched back on after the task


def test_the_processes_end_when_the_process_that_started_them_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(
        "import os, signal\n"
        "from segmint.collect import workers\n"
        "from segmint.collect.enrich import Enricher\n"
        "if __name__ == '__main__':\n"
        "    pool = workers.PreparationPool(Enricher(None))\n"
        "    print(pool.result(pool.submit(os.getpid), lambda: -1), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    owner = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert owner.returncode == -signal.SIGKILL, owner.stderr
    worker = int(owner.stdout.strip())
    deadline = time.monotonic() + 20
    while Path(f"/proc/{worker}").exists() and _state(worker) != "Z":
        assert time.monotonic() < deadline, "the preparation process outlived its owner"
        time.sleep(0.1)


def test_a_process_whose_owner_died_before_it_started_ends_at_once(tmp_path: Path) -> None:
    # The owner was killed while the process was still starting: its parent is already
    # another process when it begins.
    script = (
        "import time\n"
        "from segmint.collect import workers\n"
        f"workers._start({_finished_pid()}, False, None, None)\n"
        "time.sleep(30)\n"
        "print('still running')\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and "still running" not in done.stdout, done.stderr
    assert time.monotonic() - started < 25


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
