"""Preparation processes: tasks and results travel through files, a pool whose process dies
is replaced and the work is done here instead, and a Prepared survives the trip with what
storing needs."""

from __future__ import annotations

import logging
import os
import pickle
from datetime import datetime
from pathlib import Path

import pytest

from segmint.collect import workers
from segmint.collect.enrich import Enricher
from segmint.collect.messages import Message
from segmint.collect.pipeline import prepare
from segmint.collect.validate import validate_message

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


def test_the_exchange_directory_is_in_shared_memory_when_there_is_some() -> None:
    directory = workers._exchange_directory()
    try:
        if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK):
            assert directory.parent == Path("/dev/shm")
        assert directory.name.startswith("segmint-prepare-")
    finally:
        directory.rmdir()
