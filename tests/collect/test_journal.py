"""The collection journal: records read back whole (a torn tail is ignored), segments go once
committed, acknowledged events survive a crash of the writer (in-process) and a SIGKILL of a
real server, a request the warehouse refuses is kept aside without holding up the others,
back-pressure, and the commit acknowledgement mode."""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from segmint.api import app as app_module
from segmint.api.app import create_app, open_writer
from segmint.catalog.keys import create_key
from segmint.collect import journal as journal_module
from segmint.collect.http import accept_batch, accept_single, fill_ip, journal_meta
from segmint.collect.http import messages_from_record as rebuild
from segmint.collect.journal import Journal, read_segment, segments
from segmint.collect.messages import Message
from segmint.collect.pipeline import Collector, IngestResult, utcnow
from segmint.collect.writer import GroupCommitWriter, recover_journal
from segmint.errors import StorageUnavailable
from segmint.generate.shop import generate_events
from segmint.runtime import Runtime
from segmint.settings import Settings
from tests.conftest import LiveServer, free_port, serving

RECEIVED = datetime(2026, 3, 1, 12, 0, 0)


class Gate:
    """Stands between the writer and the real collector: holds ingests until opened, can
    refuse messages, or play dead (a writer that never commits again)."""

    def __init__(self, collector: Collector, opened: bool = False) -> None:
        self.collector = collector
        self.opened = threading.Event()
        self.entered = threading.Event()  # the writer has brought a group to the gate
        if opened:
            self.opened.set()
        self.dead = False
        self.refuse: str | None = None  # an event name the "warehouse" refuses

    def ingest(self, messages: list[Message], check_table: bool = False) -> IngestResult:
        self.entered.set()
        assert self.opened.wait(30), "the gate was never opened"
        if self.dead:
            return IngestResult()
        if self.refuse and any(m.event == self.refuse for m in messages):
            raise ValueError(f"refusing {self.refuse}")
        return self.collector.ingest(messages, check_table=check_table)


def request(
    settings: Settings,
    items: list[dict[str, Any]],
    *,
    browser: bool = False,
    ip: str | None = "203.0.113.9",
) -> tuple[list[Message], dict[str, Any], bytes]:
    """Accept a /v1/batch body as the API does: (messages, journal meta, body)."""
    raw = orjson.dumps({"batch": items})
    messages, rejected = accept_batch(
        orjson.loads(raw), received_at=RECEIVED, source="web", settings=settings
    )
    assert not rejected
    fill_ip(messages, ip, browser)
    return messages, journal_meta("batch", RECEIVED, "web", ip, browser, messages), raw


def track(event: str, user: str, message_id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "track", "event": event, "userId": user}
    if message_id:
        item["messageId"] = message_id
    return item


def accepting(settings: Settings) -> Callable[[dict[str, Any], bytes], list[Message]]:
    """How recovery accepts a journaled request again: as the API does."""
    return lambda meta, body: rebuild(meta, body, settings)


def stored_ids(runtime: Runtime) -> list[str]:
    return [row[0] for row in runtime.warehouse.rows("SELECT message_id FROM events ORDER BY 1")]


def test_records_read_back_and_a_torn_or_corrupt_tail_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    first = journal.append({"n": 1}, b'{"a": 1}', then=lambda _: None)
    journal.append({"n": 2}, b'{"b": 2}' * 100, then=lambda _: None)
    records = list(read_segment(first))
    assert [(r.meta, r.body) for r in records] == [
        ({"n": 1}, b'{"a": 1}'),
        ({"n": 2}, b'{"b": 2}' * 100),
    ]
    data = first.read_bytes()
    first.write_bytes(data[:-10])  # a crash in the middle of the second write
    assert [r.meta for r in read_segment(first)] == [{"n": 1}]
    corrupt = bytearray(data)
    corrupt[-5] ^= 0xFF  # a flipped byte in the second body
    first.write_bytes(bytes(corrupt))
    assert [r.meta for r in read_segment(first)] == [{"n": 1}]


def test_segments_go_once_their_records_are_committed(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=100)  # every record starts a new segment
    one, two, three = (journal.append({"n": n}, b"x" * 80, then=lambda _: None) for n in range(3))
    assert len({one, two, three}) == 3 and segments(tmp_path) == [one, two, three]
    journal.committed([one])
    assert not one.exists() and two.exists()
    journal.committed([three])  # the active segment is emptied, not deleted
    assert three.exists() and three.stat().st_size == 0
    journal.committed([two])
    assert segments(tmp_path) == [three]
    journal.close()
    assert segments(tmp_path) == []


def test_acknowledged_events_survive_a_writer_that_dies_before_committing(
    settings: Settings, runtime: Runtime
) -> None:
    gate = Gate(runtime.collector)
    writer = GroupCommitWriter(gate, journal=Journal(settings.journal_dir))  # type: ignore[arg-type]
    browser, meta, raw = request(
        settings, [track("viewed", "u1", "m-1"), track("viewed", "u1")], browser=True
    )
    writer.submit(browser, meta, raw)
    single = accept_single(
        {"traits": {"email": "u1@example.com"}, "userId": "u1", "messageId": "m-2"},
        "identify",
        received_at=RECEIVED,
        source="web",
        settings=settings,
    )
    writer.submit(
        [single],
        journal_meta("identify", RECEIVED, "web", None, False, [single]),
        orjson.dumps({"traits": {"email": "u1@example.com"}, "userId": "u1", "messageId": "m-2"}),
    )
    # Answered (durable) but nothing in the warehouse yet.
    assert writer.pending == 3 and stored_ids(runtime) == []
    gate.dead = True  # the process "dies": this writer never commits

    restarted = open_writer(runtime, settings)  # the next start stores the journal
    try:
        generated = browser[1].message_id
        assert stored_ids(runtime) == sorted(["m-1", "m-2", generated])
        rows = runtime.warehouse.rows(
            "SELECT message_id, received_at, source, ip, profile_id FROM events ORDER BY 1"
        )
        assert {row[1] for row in rows} == {RECEIVED} and {row[2] for row in rows} == {"web"}
        # The browser request's messages got the connection's address, the server-side
        # identify did not; all three resolved to one profile.
        assert {row[0]: row[3] for row in rows} == {
            "m-1": "203.0.113.9",
            generated: "203.0.113.9",
            "m-2": None,
        }
        assert len({row[4] for row in rows}) == 1
        assert segments(settings.journal_dir) == []
    finally:
        gate.opened.set()
        writer.close()
        restarted.close()


def test_recovery_skips_what_was_committed_before_the_crash(
    settings: Settings, runtime: Runtime
) -> None:
    writer = open_writer(runtime, settings)
    messages, meta, raw = request(settings, [track("viewed", "u1", "m-1")])
    writer.submit(messages, meta, raw)
    assert writer.wait_until_stored()
    writer.close()
    # A crash after the commit but before the journal let go of the request.
    Journal(settings.journal_dir).append(meta, raw, then=lambda _: None)
    assert len(segments(settings.journal_dir)) == 1

    assert recover_journal(settings.journal_dir, runtime.collector, accepting(settings)) == 0
    assert stored_ids(runtime) == ["m-1"] and segments(settings.journal_dir) == []


def test_a_request_the_warehouse_refuses_is_kept_aside_and_stored_at_the_next_start(
    settings: Settings, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate(runtime.collector)
    gate.refuse = "poison"
    writer = GroupCommitWriter(gate, journal=Journal(settings.journal_dir))  # type: ignore[arg-type]
    for item in (
        track("viewed", "a", "m-a"),  # the writer takes this one alone and waits at the gate
        track("poison", "b", "m-b"),  # these three are then stored as one group, which fails
        track("viewed", "c", "m-c"),
        track("viewed", "d", "m-d"),
    ):
        writer.submit(*request(settings, [item]))
    gate.opened.set()
    assert writer.wait_until_stored()
    # The refused request does not take its neighbours down with it.
    assert stored_ids(runtime) == ["m-a", "m-c", "m-d"]
    failed = sorted((settings.journal_dir / "failed").glob("*.journal"))
    assert len(failed) == 1
    (kept,) = read_segment(failed[0])
    assert kept.meta["ids"] == ["m-b"] and "refusing poison" in kept.meta["error"]
    assert "could not be stored" in caplog.text and str(failed[0]) in caplog.text
    status = writer.status(settings.journal_dir)  # what /health and the Events page show
    assert status.pending == 0 and status.set_aside_messages == 1
    assert status.set_aside[0].path == failed[0]
    assert "refusing poison" in (status.set_aside[0].error or "")
    writer.close()

    restarted = open_writer(runtime, settings)  # the cause is gone: stored now
    restarted.close()
    assert stored_ids(runtime) == ["m-a", "m-b", "m-c", "m-d"]
    assert segments(settings.journal_dir) == []


def mixed_batch(settings: Settings) -> tuple[list[Message], dict[str, Any], bytes]:
    """A batch whose second message the API rejects and whose third the "warehouse" will
    refuse (a poison event): accepted as the API does, with the rejected position."""
    items = [
        track("viewed", "a", "m-a"),
        {"type": "track", "event": "no ids"},  # rejected by the API: no userId/anonymousId
        track("poison", "b", "m-b"),
        track("viewed", "c", "m-c"),
    ]
    raw = orjson.dumps({"batch": items})
    messages, rejected = accept_batch(
        orjson.loads(raw), received_at=RECEIVED, source="web", settings=settings
    )
    assert [r["index"] for r in rejected] == [1]
    meta = journal_meta("batch", RECEIVED, "web", None, False, messages, [1])
    return messages, meta, raw


def test_a_message_the_warehouse_refuses_keeps_only_itself_out_of_its_batch(
    settings: Settings, runtime: Runtime
) -> None:
    gate = Gate(runtime.collector, opened=True)
    gate.refuse = "poison"
    writer = GroupCommitWriter(gate, journal=Journal(settings.journal_dir))  # type: ignore[arg-type]
    writer.submit(*mixed_batch(settings))
    assert writer.wait_until_stored()
    # Its neighbours in the same request are stored all the same.
    assert stored_ids(runtime) == ["m-a", "m-c"]
    (failed,) = sorted((settings.journal_dir / "failed").glob("*.journal"))
    (kept,) = read_segment(failed)
    assert kept.meta["ids"] == ["m-b"] and kept.meta["rejected"] == [0, 1, 3]
    assert writer.status(settings.journal_dir).set_aside_messages == 1
    writer.close()

    restarted = open_writer(runtime, settings)  # the cause is gone: stored now, alone
    restarted.close()
    assert stored_ids(runtime) == ["m-a", "m-b", "m-c"]
    assert segments(settings.journal_dir) == []


def test_recovery_keeps_aside_only_the_messages_the_warehouse_refuses(
    settings: Settings, runtime: Runtime
) -> None:
    # A crash left two requests in the journal; the warehouse refuses one of their messages.
    journal = Journal(settings.journal_dir)
    journal.append(*mixed_batch(settings)[1:], then=lambda _: None)
    _, meta, raw = request(settings, [track("viewed", "d", "m-d")])
    journal.append(meta, raw, then=lambda _: None)
    journal.close()
    gate = Gate(runtime.collector, opened=True)
    gate.refuse = "poison"

    assert recover_journal(settings.journal_dir, gate, accepting(settings)) == 3  # type: ignore[arg-type]
    assert stored_ids(runtime) == ["m-a", "m-c", "m-d"]
    (failed,) = segments(settings.journal_dir)
    assert failed.parent.name == "failed"
    assert [r.meta["ids"] for r in read_segment(failed)] == [["m-b"]]
    # The next start, without the cause: the one kept aside is stored.
    assert recover_journal(settings.journal_dir, runtime.collector, accepting(settings)) == 1
    assert stored_ids(runtime) == ["m-a", "m-b", "m-c", "m-d"]
    assert segments(settings.journal_dir) == []


def test_recovery_keeps_a_segment_whole_when_the_warehouse_refuses_everything(
    settings: Settings, runtime: Runtime
) -> None:
    journal = Journal(settings.journal_dir)
    _, meta, raw = request(settings, [track("poison", "a", "m-a"), track("poison", "b", "m-b")])
    journal.append(meta, raw, then=lambda _: None)
    journal.close()
    (segment,) = segments(settings.journal_dir)
    gate = Gate(runtime.collector, opened=True)
    gate.refuse = "poison"

    assert recover_journal(settings.journal_dir, gate, accepting(settings)) == 0  # type: ignore[arg-type]
    (kept,) = segments(settings.journal_dir)  # moved to failed/ as it was, not split
    assert kept == settings.journal_dir / "failed" / segment.name
    assert [r.meta["ids"] for r in read_segment(kept)] == [["m-a", "m-b"]]


def test_a_refused_request_that_cannot_be_set_aside_stays_in_its_segment(
    settings: Settings, runtime: Runtime
) -> None:
    gate = Gate(runtime.collector, opened=True)
    gate.refuse = "poison"
    writer = GroupCommitWriter(gate, journal=Journal(settings.journal_dir))  # type: ignore[arg-type]
    (settings.journal_dir / "failed").write_text("in the way")  # set_aside cannot mkdir
    writer.submit(*request(settings, [track("poison", "b", "m-b")]))
    assert writer.wait_until_stored()
    writer.submit(*request(settings, [track("viewed", "c", "m-c")]))  # the writer lives on
    assert writer.wait_until_stored()
    assert stored_ids(runtime) == ["m-c"]
    writer.close()
    (segment,) = segments(settings.journal_dir)  # kept where it was
    assert [r.meta["ids"] for r in read_segment(segment)] == [["m-b"], ["m-c"]]
    (settings.journal_dir / "failed").unlink()
    assert runtime.store_journal() == 1  # the next start: m-c is skipped, m-b stored
    assert stored_ids(runtime) == ["m-b", "m-c"] and segments(settings.journal_dir) == []


def test_requests_wait_for_room_beyond_the_pending_limit(
    settings: Settings, runtime: Runtime
) -> None:
    gate = Gate(runtime.collector)
    writer = GroupCommitWriter(
        gate,  # type: ignore[arg-type]
        journal=Journal(settings.journal_dir),
        max_pending=3,
    )
    writer.submit(*request(settings, [track("viewed", "a", f"m-{n}") for n in range(2)]))
    second = request(settings, [track("viewed", "b", f"n-{n}") for n in range(2)])
    answered = threading.Event()

    def submit() -> None:
        writer.submit(*second)
        answered.set()

    thread = threading.Thread(target=submit)
    thread.start()
    assert not answered.wait(0.5)  # 2 waiting + 2 more would exceed 3
    assert writer.pending == 2
    (segment,) = segments(settings.journal_dir)
    assert len(list(read_segment(segment))) == 1  # not journaled (not answered) yet
    gate.opened.set()
    assert answered.wait(10)
    thread.join()
    assert writer.wait_until_stored()
    assert len(stored_ids(runtime)) == 4
    writer.close()


def test_commit_mode_answers_after_the_commit(settings: Settings, runtime: Runtime) -> None:
    _, key = create_key(runtime.catalog, "test source", "write")
    committing = settings.model_copy(update={"ingest_ack": "commit"})
    with serving(create_app(committing, runtime=runtime)) as url:
        response = httpx.post(
            url + "/v1/batch",
            json={"batch": [track("viewed", "u", f"m-{n}") for n in range(3)]},
            auth=(key, ""),
        )
        assert response.status_code == 200
        # No waiting: the answer came after the commit.
        assert stored_ids(runtime) == ["m-0", "m-1", "m-2"]
        health = httpx.get(url + "/health").json()
    assert health["ingest"] == {
        "ack": "commit",
        "pending": 0,
        "set_aside": 0,
        "preparation": "off",
    }
    assert not settings.journal_dir.exists()


@pytest.mark.slow
def test_health_says_when_the_preparation_processes_start_and_are_ready(
    settings: Settings, runtime: Runtime
) -> None:
    _, key = create_key(runtime.catalog, "test source", "write")
    one = settings.model_copy(update={"ingest_processes": 1})

    def preparation(url: str) -> str:
        return str(httpx.get(url + "/health").json()["ingest"]["preparation"])

    with serving(create_app(one, runtime=runtime)) as url:
        assert preparation(url) == "not started"  # nothing collected: no process
        small = {"batch": [track("viewed", "u", f"s-{n}") for n in range(10)]}
        assert httpx.post(url + "/v1/batch", json=small, auth=(key, "")).status_code == 200
        assert all_stored(url)
        assert preparation(url) == "not started"  # a small group is prepared in the writer
        large = {"batch": [track("viewed", "u", f"l-{n}") for n in range(2_100)]}
        assert httpx.post(url + "/v1/batch", json=large, auth=(key, "")).status_code == 200
        deadline = time.monotonic() + 60
        seen = {preparation(url)}
        while "ready" not in seen:
            assert time.monotonic() < deadline, f"the process did not start: {seen}"
            time.sleep(0.05)
            seen.add(preparation(url))
        assert seen <= {"not started", "starting", "ready"}
        assert all_stored(url)
    assert len(stored_ids(runtime)) == 2_110


def all_stored(url: str) -> bool:
    """Wait until the server has stored every acknowledged event (False after 60 s)."""
    deadline = time.monotonic() + 60
    while httpx.get(url + "/health").json()["ingest"]["pending"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_events_acknowledged_by_a_killed_server_are_stored_at_its_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {
        **os.environ,
        "SEGMINT_DATA_DIR": str(tmp_path / "data"),
        "SEGMINT_PORT": str(free_port()),
        "SEGMINT_SCHEDULER": "false",
    }
    segmint = [sys.executable, "-m", "segmint"]
    created = subprocess.run(
        [*segmint, "keys", "create", "crash"], env=env, capture_output=True, text=True, check=True
    )
    key = next(word for word in created.stdout.split() if word.startswith("sgw_"))
    events = list(generate_events(users=1_500, days=30, seed=5, end=datetime(2026, 3, 1)))
    bodies = [orjson.dumps({"batch": events[i : i + 250]}) for i in range(0, len(events), 250)]
    server = subprocess.Popen([*segmint, "serve"], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{env['SEGMINT_PORT']}"
    acknowledged: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        lock = threading.Lock()
        queue = list(range(len(bodies)))

        def send() -> None:
            with httpx.Client(base_url=url, timeout=60) as client:
                while True:
                    with lock:
                        if not queue:
                            return
                        index = queue.pop(0)
                    answer = client.post("/v1/batch", content=bodies[index], headers=auth)
                    if answer.status_code == 200:
                        with lock:
                            acknowledged.extend(e["messageId"] for e in events[index * 250 :][:250])

        senders = [threading.Thread(target=send) for _ in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        pending = httpx.get(url + "/health").json()["ingest"]["pending"]
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    assert len(acknowledged) == len(events)
    assert pending > 0, "the writer kept up: the kill tested nothing (send more events)"

    settings = Settings(data_dir=tmp_path / "data", scheduler=False)
    looking = Runtime.open(settings, read_only=True)  # a reader leaves the journal alone
    before = looking.warehouse.rows("SELECT count(*) FROM events")[0][0]
    looking.close()
    assert "holds acknowledged events not stored yet" in caplog.text  # and says so
    assert before < len(acknowledged)  # some acknowledged events were not committed
    # Any process opening the warehouse for writing (here: as a CLI command would) stores
    # what the journal kept before it does anything else.
    runtime = Runtime.open(settings)
    try:
        assert segments(settings.journal_dir) == []
        rows = runtime.warehouse.rows("SELECT message_id, count(*) FROM events GROUP BY message_id")
        assert sorted(row[0] for row in rows) == sorted(acknowledged)
        assert {row[1] for row in rows} == {1}  # each stored once
    finally:
        runtime.close()


def test_received_at_survives_the_journal(settings: Settings) -> None:
    """A journaled request is accepted again with the time it was first received (clock-skew
    correction depends on it), not the time of the replay."""
    sent = {
        "batch": [{**track("viewed", "u", "m-1"), "timestamp": "2026-03-01T11:00:00Z"}],
        "sentAt": "2026-03-01T11:30:00Z",
    }
    raw = orjson.dumps(sent)
    messages, _ = accept_batch(sent, received_at=RECEIVED, source="web", settings=settings)
    meta = journal_meta("batch", RECEIVED, "web", None, False, messages)
    again = rebuild(meta, raw, settings)
    assert utcnow() > RECEIVED
    # The device clock was 30 minutes behind: corrected to 11:30 by the first receipt.
    assert again[0].timestamp == messages[0].timestamp == datetime(2026, 3, 1, 11, 30)
    assert again[0].received_at == RECEIVED


def test_a_batch_message_rejected_for_its_size_stays_rejected_when_accepted_again(
    settings: Settings, runtime: Runtime
) -> None:
    """Size limits are not checked again on replay: the batch's messages rejected when it
    was answered must still be left out (found by a server whose writer accepts journaled
    requests again instead of keeping their messages)."""
    small = settings.model_copy(update={"max_message_bytes": 1024})
    items = [
        track("viewed", "u", "m-1"),
        {**track("viewed", "u", "m-big"), "properties": {"note": "x" * 3_000}},
        {"type": "track", "userId": "u"},  # no event name: rejected whatever the limits
        {"type": "track", "event": "viewed", "userId": "u"},  # its id is generated
    ]
    raw = orjson.dumps({"batch": items})
    messages, rejected = accept_batch(
        orjson.loads(raw), received_at=RECEIVED, source="web", settings=small
    )
    assert [r["index"] for r in rejected] == [1, 2]
    meta = journal_meta("batch", RECEIVED, "web", None, False, messages, [1, 2])
    again = rebuild(meta, raw, small)
    assert [m.message_id for m in again] == [m.message_id for m in messages]
    assert again[1].message_id not in ("m-1", "m-big")
    Journal(settings.journal_dir).append(meta, raw, then=lambda _: None)
    stored = recover_journal(
        settings.journal_dir, runtime.collector, lambda m, b: rebuild(m, b, small)
    )
    assert stored == 2 and "m-big" not in stored_ids(runtime)
    assert segments(settings.journal_dir) == []


def test_lowered_size_limits_do_not_lose_a_journaled_request(
    settings: Settings, runtime: Runtime
) -> None:
    """Limits are checked when a request is answered; a restart with stricter ones still
    stores what was acknowledged under the old ones."""
    big = {**track("viewed", "u", "m-big"), "properties": {"note": "x" * 3_000}}
    _, meta, raw = request(settings, [big, track("viewed", "u", "m-small")])
    Journal(settings.journal_dir).append(meta, raw, then=lambda _: None)
    stricter = settings.model_copy(update={"max_message_bytes": 1024, "max_batch_messages": 1})
    again = rebuild(meta, raw, stricter)
    assert [m.message_id for m in again] == ["m-big", "m-small"]
    assert (
        recover_journal(
            settings.journal_dir, runtime.collector, lambda m, b: rebuild(m, b, stricter)
        )
        == 2
    )
    assert stored_ids(runtime) == ["m-big", "m-small"]


def test_a_failed_journal_write_is_refused_and_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way (disk full) answers an error the client retries, and
    leaves no torn record that would hide the records written after it."""
    journal = Journal(tmp_path)
    journal.append({"n": 1}, b"first", then=lambda _: None)

    def half_then_full(fd: int, data: bytes) -> None:
        os.write(fd, data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module, "_write_all", half_then_full)
    with pytest.raises(StorageUnavailable, match=r"No space left on device.*retry later"):
        journal.append({"n": 2}, b"second", then=lambda _: None)
    monkeypatch.undo()
    journal.append({"n": 3}, b"third", then=lambda _: None)
    found = [(r.meta, r.body) for s in segments(tmp_path) for r in read_segment(s)]
    assert found == [({"n": 1}, b"first"), ({"n": 3}, b"third")]


def test_the_api_answers_503_when_it_cannot_journal(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module, "_write_all", full)
    with live_server.client() as client:
        answer = client.post(
            "/v1/track", json=track("viewed", "u", "m-1"), auth=(live_server.write_key, "")
        )
    assert answer.status_code == 503
    assert answer.json()["code"] == "storage_unavailable"
    assert "retry later" in answer.json()["message"]
    monkeypatch.undo()
    assert stored_ids(live_server.runtime) == []
    with live_server.client() as client:  # the next request, with room again, is stored
        answer = client.post(
            "/v1/track", json=track("viewed", "u", "m-1"), auth=(live_server.write_key, "")
        )
    assert answer.status_code == 200 and stored_ids(live_server.runtime) == ["m-1"]


def test_collection_requests_waiting_for_room_leave_threads_for_the_rest_of_the_app(
    live_server: LiveServer, settings: Settings
) -> None:
    """Requests waiting on back-pressure hold worker threads of their own pool: with more of
    them waiting than the default pool has threads (40), the REST API still answers."""
    app = live_server.app
    running = app.state.writer
    gate = Gate(live_server.runtime.collector)
    app.state.writer = GroupCommitWriter(
        gate,  # type: ignore[arg-type]
        journal=Journal(settings.journal_dir),
        max_pending=1,
    )
    answers: list[int] = []

    def send(n: int) -> None:
        with httpx.Client(base_url=live_server.url, timeout=60) as client:
            body = track("viewed", f"u{n}", f"flood-{n}")
            answers.append(
                client.post("/v1/track", json=body, auth=(live_server.write_key, "")).status_code
            )

    senders = [threading.Thread(target=send, args=(n,)) for n in range(50)]
    try:
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 20
        while not answers and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the others are sent by now and wait for room
        assert answers == [200]  # the first was journaled; the rest wait for room
        with live_server.admin() as admin:
            assert admin.get("/api/v1/audiences", timeout=5).status_code == 200
    finally:
        gate.opened.set()
        for sender in senders:
            sender.join(timeout=60)
        assert app.state.writer.wait_until_stored()
        app.state.writer.close()
        app.state.writer = running
    assert answers == [200] * 50
    assert len(stored_ids(live_server.runtime)) == 50


def test_commit_mode_requests_still_queued_at_shutdown_get_an_error(
    runtime: Runtime, settings: Settings
) -> None:
    gate = Gate(runtime.collector)
    writer = GroupCommitWriter(gate)  # type: ignore[arg-type]  # commit mode
    outcomes: dict[str, str] = {}

    def send(message_id: str) -> None:
        messages, meta, raw = request(settings, [track("viewed", "u", message_id)])
        try:
            writer.submit(messages, meta, raw)
            outcomes[message_id] = "stored"
        except StorageUnavailable as exc:
            outcomes[message_id] = exc.message

    first = threading.Thread(target=send, args=("m-1",))
    first.start()
    assert gate.entered.wait(10)  # the writer holds m-1 (alone) at the gate
    second = threading.Thread(target=send, args=("m-2",))
    second.start()
    while writer.pending < 2:
        time.sleep(0.01)
    writer.close(timeout=0.2, grace=0.2)  # m-2 is still queued behind the stuck group
    second.join(timeout=5)
    assert "stopped before storing" in outcomes["m-2"]
    gate.opened.set()  # the group in progress still completes
    first.join(timeout=10)
    assert outcomes["m-1"] == "stored" and stored_ids(runtime) == ["m-1"]


def test_the_writer_keeps_the_preparation_processes_the_settings_ask_for(
    settings: Settings,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def processes(**changes: Any) -> int | None:
        writer = open_writer(runtime, settings.model_copy(update=changes))
        try:  # the processes start with the first large group, not here
            return None if writer.pool is None else writer.pool.processes
        finally:
            writer.close()

    monkeypatch.setattr(app_module, "worker_count", lambda: 8)
    assert processes() == 2
    with caplog.at_level(logging.WARNING, logger="segmint.api.app"):
        assert processes(ingest_processes=3) == 3
    assert not caplog.records
    monkeypatch.setattr(app_module, "worker_count", lambda: 2)
    with caplog.at_level(logging.WARNING, logger="segmint.api.app"):
        assert processes(ingest_processes=3) == 3  # more than the cores: honoured, with a word
    assert "SEGMINT_INGEST_PROCESSES=3 is more than the 2 cores" in caplog.text
    assert processes(ingest_processes=0) is None  # prepared in the writer thread
    assert processes(ingest_ack="commit") is None  # commit mode prepares in the writer
    monkeypatch.setattr(app_module, "worker_count", lambda: 1)
    assert processes() == 1
