"""Memory housekeeping shared by bulk paths (imports, List Sync preparation)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk job that allocates millions of
    short-lived, acyclic objects (reference counting still frees them). Left on, the
    collector rescans an ever larger heap over and over; whatever cycles appear meanwhile are
    collected once it is switched back on. The pause is process-wide."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def tune_gc_for_server() -> None:
    """Collect cyclic garbage less often in a long-running server that holds large batches.

    The collection API keeps up to ``SEGMINT_INGEST_MAX_PENDING`` parsed messages (millions
    of dicts) alive until the writer stores them; with the default thresholds every few
    thousand allocations start a collection that rescans them, which cost the HTTP path
    15–25% of its CPU (benchmarks/ingest.py). Objects alive at start-up (modules, the app)
    are frozen out of collections altogether. Full collections still run, about every
    100 million net allocations of container objects, so leaked cycles are still freed."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 20)
