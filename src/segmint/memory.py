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
