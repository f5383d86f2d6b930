"""A folder that looks mounted read-only, for tests that run as root (where permissions do
not stop writes) and cannot mount a file system."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


def read_only_mounted(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make ``os.statvfs`` report ``folder`` (and what is in it) as on a file system mounted
    read-only, as it does for a real one; the rest of the disk is left as it is."""
    real = os.statvfs

    class ReadOnly:
        def __init__(self, result: os.statvfs_result) -> None:
            self.f_flag = result.f_flag | os.ST_RDONLY

    def statvfs(path: Any) -> Any:
        result = real(path)
        inside = Path(path).resolve().is_relative_to(folder.resolve())
        return ReadOnly(result) if inside else result

    monkeypatch.setattr(os, "statvfs", statvfs)
