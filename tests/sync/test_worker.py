"""The server's sync worker: refresh paths hand audiences over and go on; the worker syncs
them in order, one queue entry per audience, against the fake Graph server over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync.retry import RetryPolicy
from segmint.sync.runner import SyncContext
from segmint.sync.worker import SyncWorker, after_refresh
from tests.destinations.fake_meta import FakeMeta, serve
from tests.sync.sync_world import activate, seed_profiles

FAST = RetryPolicy(attempts=5, initial=0.001, maximum=0.005, jitter=0.0)


@pytest.fixture
def fake() -> FakeMeta:
    return FakeMeta(gate=threading.Event())  # the platform answers only once let through


@pytest.fixture
def meta_url(fake: FakeMeta) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def wait_until_taken(worker: SyncWorker, left: list[int]) -> None:
    """Wait until the worker has taken the first queued audience (it then waits on the
    platform) and ``left`` is what remains queued."""
    deadline = time.monotonic() + 60
    while worker.pending() != left and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.pending() == left


def linked_audience(runtime: Runtime, fake: FakeMeta, url: str, name: str) -> int:
    audience_id = activate(runtime, name)
    destination = sync_catalog.create_destination(
        runtime.catalog,
        runtime.secrets,
        f"Meta for {name}",
        "meta",
        {"access_token": fake.token},
        {"ad_account_id": fake.ad_account_id, "base_url": url},
    )
    sync_catalog.link_audience(runtime.catalog, audience_id, destination.id)
    return audience_id


def test_submit_returns_at_once_and_the_worker_syncs_in_the_background(
    runtime: Runtime, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 200)
    first = linked_audience(runtime, fake, meta_url, "gold_members")
    worker = SyncWorker(SyncContext.of(runtime, retry=FAST))
    worker.start()
    try:
        worker.submit(first)  # returns although the platform does not answer yet
        assert fake.gate is not None and not fake.gate.is_set()
        wait_until_taken(worker, [])
        assert fake.audiences == {}
        assert not worker.wait_idle(timeout=0.2)  # still waiting on the platform
        worker.submit(first)  # a new refresh while its sync runs: queued once more
        worker.submit(first)
        assert worker.pending() == [first]
        fake.gate.set()
        assert worker.wait_idle(timeout=60)
    finally:
        worker.stop()
    entries = sync_catalog.list_sync_logs(runtime.catalog, first)
    assert [(e.trigger, e.status) for e in entries] == [("refresh", "succeeded")] * 2
    (audience,) = fake.audiences.values()
    assert len(audience.values("EMAIL")) == 200


def test_stopping_drops_the_queue_and_pending_changes_stay_in_the_outbox(
    runtime: Runtime, fake: FakeMeta, meta_url: str
) -> None:
    seed_profiles(runtime, 100)
    first = linked_audience(runtime, fake, meta_url, "gold_members")
    second = linked_audience(runtime, fake, meta_url, "gold_again")
    worker = SyncWorker(SyncContext.of(runtime, retry=FAST))
    worker.start()
    worker.submit(first)
    worker.submit(second)
    wait_until_taken(worker, [second])
    assert fake.gate is not None
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    stopper.join(timeout=0.2)  # stop waits for the sync under way
    fake.gate.set()
    stopper.join(timeout=60)
    assert not stopper.is_alive() and worker.pending() == []
    assert [e.status for e in sync_catalog.list_sync_logs(runtime.catalog, first)] == ["succeeded"]
    assert sync_catalog.list_sync_logs(runtime.catalog, second) == []
    (link,) = sync_catalog.list_links(runtime.catalog, audience_id=second)
    assert link.cursor is None  # nothing sent: its next sync sends everything


def test_the_hook_is_the_apps_worker_or_nothing(runtime: Runtime) -> None:
    class State:
        pass

    state = State()
    assert after_refresh(state) is None
    worker = SyncWorker(SyncContext.of(runtime))
    state.sync_worker = worker  # type: ignore[attr-defined]
    assert after_refresh(state) == worker.submit
