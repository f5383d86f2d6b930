"""Preparation processes: where collection does the part of its work that depends on nothing
but the messages — parsing, validation, enrichment and building the events-table rows — in
parallel with the process that stores them.

Storing (de-duplication, identity resolution, profiles, the warehouse transaction) stays in
the one process that owns the warehouse. Everything before it is pure Python bound by the
interpreter lock, so threads cannot run it beside storing; a second process can. Bulk import
sends blocks of its file to the pool; the HTTP writer (journal mode) sends the journaled
request bodies of a group, which the process accepts again exactly as the server did (the
journal's replay code) while the writer stores the group before.

A task and its result travel as pickles in files of a directory of the pool's own (in
``/dev/shm`` where there is one): only their names go through the pool's pipes. Tasks and
results are tens of megabytes, and a pipe moves them 64 KB at a time, each time waiting for
the receiving process's interpreter lock, which the storing thread mostly holds; reading a
file is one call. A :class:`Prepared` pickles as its events rows plus the few message fields
storing needs that are not in them, so sending it back costs little next to preparing it.
A pool that breaks (its process killed) is replaced and the caller prepares the task
itself: nothing is lost.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from segmint.collect.enrich import Enricher
from segmint.collect.geo import GeoLocator
from segmint.collect.pipeline import Prepared, prepare
from segmint.memory import cyclic_gc_paused
from segmint.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# Set in each preparation process by ``_start``.
_enricher: Enricher | None = None
_settings: Settings | None = None


def worker_count() -> int:
    """How many preparation processes a bulk import starts: one per core, although the
    storing process runs beside them: it spends much of its time waiting for the warehouse
    (1,000,000 events on 2 cores: 27,300 events/s with two processes, 22,900 with one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def _start(owner: int, geo: bool, city_db: Path | None, settings: Settings | None) -> None:
    global _enricher, _settings
    # The owner's pid comes from the owner: had it died before this runs, os.getppid() would
    # already be another process's.
    threading.Thread(
        target=_exit_with_parent, args=(owner,), name="segmint-parent-watch", daemon=True
    ).start()
    _enricher = Enricher(GeoLocator(city_db) if geo else None)
    _settings = settings


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    """End this process once the process that started it is gone (killed, crashed): the
    pool's own machinery only notices when it sends the next task, which never comes."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)


def enricher() -> Enricher:
    """The enricher of this preparation process."""
    assert _enricher is not None, "not in a preparation process"
    return _enricher


def settings() -> Settings:
    """The settings of this preparation process."""
    assert _settings is not None, "not in a preparation process"
    return _settings


def _run(path: str) -> str:
    """Run the task pickled in the file ``path`` (deleted once read); return the name of the
    file its result is pickled in."""
    source = Path(path)
    # A task makes (and drops) millions of small containers: with the cyclic collector
    # paused until its result is written and freed, the collector does not scan them (a
    # collection at the end, while the result is still alive, cost ~10% of a task).
    with cyclic_gc_paused():
        task, args = pickle.loads(source.read_bytes())
        source.unlink()
        return _put(source.parent, task(*args))


def _put(directory: Path, value: Any) -> str:
    handle, path = tempfile.mkstemp(dir=directory, suffix=".pickle")
    try:
        with os.fdopen(handle, "wb") as out:
            pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _take(path: str) -> Any:
    source = Path(path)
    try:
        data = source.read_bytes()
        # A result holds tens of thousands of small containers (folds, traits): collections
        # triggered while they are made would scan them again and again (6x slower).
        with cyclic_gc_paused():
            return pickle.loads(data)
    finally:
        source.unlink()


# Tasks and results in flight take a few hundred megabytes at most (chunks of 50,000 events);
# a smaller /dev/shm (containers often have 64 MB) is passed over for the temporary directory.
_SHM_MIN_FREE = 1 << 30


_PREFIX = "segmint-prepare-"


def _exchange_directory() -> Path:
    """A new directory for one pool's exchanges, named after this process; those left by
    processes that no longer run (killed before they could remove theirs) are removed."""
    shm = Path("/dev/shm")
    try:
        roomy = os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= _SHM_MIN_FREE
    except OSError:
        roomy = False
    parent = shm if roomy else Path(tempfile.gettempdir())
    for stale in parent.glob(f"{_PREFIX}*-*"):
        owner = stale.name[len(_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _running(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True


def _warm_up() -> int:
    """Load what preparing needs on its first use (pyarrow loads pandas, when installed,
    the first time it builds an array), so that the first real task does not pay for it."""
    prepare([], enricher())
    return os.getpid()


def prepare_records(records: list[tuple[dict[str, Any], bytes]]) -> Prepared:
    """Accept journaled requests again (as after a crash) and prepare their messages."""
    from segmint.collect.http import messages_from_record

    with cyclic_gc_paused():
        messages = [
            m for meta, body in records for m in messages_from_record(meta, body, settings())
        ]
        return prepare(messages, enricher())


class PreparationPool:
    """Preparation processes for one collector, started on first use (or in the background
    by :meth:`start`)."""

    def __init__(
        self, enricher: Enricher, settings: Settings | None = None, processes: int = 1
    ) -> None:
        geo = enricher.geo
        self._arguments = (os.getpid(), geo is not None, geo.city_db if geo else None, settings)
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._directory: Path | None = None
        self._ready = False
        self._warmed = 0  # processes started by start() that are ready

    @property
    def ready(self) -> bool:
        """Whether a process has started and run a task: tasks submitted now do not wait for
        processes to start (which takes a second or more)."""
        return self._ready and self._executor is not None

    @property
    def state(self) -> str:
        """``not started``, ``starting``, or ``ready`` once every process started by
        :meth:`start` is."""
        if self._executor is None:
            return "not started"
        return "ready" if self._ready and self._warmed >= self.processes else "starting"

    def start(self) -> None:
        """Start the processes in the background if they are not started yet: all of them
        at once (the executor starts one per task that finds no idle process), each warmed
        up, so that work arriving under load does not wait for, or share the cores with,
        processes importing their modules."""
        if self._executor is None:
            futures = [self.submit(_warm_up) for _ in range(self.processes)]
            executor = self._executor
            for future in futures:
                future.add_done_callback(functools.partial(self._started, executor))

    def _started(self, executor: ProcessPoolExecutor | None, future: Future[str]) -> None:
        try:
            _take(future.result())
        except Exception as exc:  # the next start() tries again
            if executor is self._executor:  # not a pool started since
                log.warning("a preparation process did not start: %s", exc)
                self.close(wait=False)
            return
        if executor is self._executor:
            self._ready = True
            self._warmed += 1

    def submit(self, task: Callable[..., T], *args: Any) -> Future[str]:
        """Run ``task(*args)`` in a preparation process (started if need be); the future's
        result is for :meth:`result`."""
        if self._executor is None:
            self._directory = self._directory or _exchange_directory()
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=self._arguments,
            )
        assert self._directory is not None
        try:
            path = _put(self._directory, (task, args))
        except OSError as exc:  # e.g. no space left: the caller prepares it itself
            failed: Future[str] = Future()
            failed.set_exception(exc)
            return failed
        return self._executor.submit(_run, path)

    def result(self, future: Future[str], here: Callable[[], T]) -> T:
        """The result of the task of ``future``; when the task failed, a warning and
        ``here()`` (the same work done in this process, which raises the task's error again
        if it was the input's). A broken pool is replaced for later tasks."""
        try:
            result: T = _take(future.result())
            return result
        except BrokenProcessPool as exc:
            log.warning("a preparation process stopped (%s); preparing here instead", exc)
            self.close(wait=False)
        except OSError as exc:
            log.warning(
                "could not exchange work with a preparation process (%s); preparing here instead",
                exc,
            )
        except Exception as exc:  # the input's own error, raised again by here() in general
            log.debug("preparing in another process failed (%s); preparing here", exc)
        return here()

    def close(self, *, wait: bool = True) -> None:
        """Stop the processes (a later :meth:`submit` starts new ones); with ``wait``, also
        remove the exchange directory."""
        self._ready = False
        self._warmed = 0
        if self._executor is not None:
            executor, self._executor = self._executor, None
            executor.shutdown(wait=wait, cancel_futures=True)
        if wait and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
