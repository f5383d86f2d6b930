"""Short runs of slow checks (marker ``shortened``, see tests/conftest.py) are left out only
when their slow test runs too, so no selection of tests loses both."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    "tests.compiler.test_differential",
    "tests.compiler.test_differential_boundaries",
    "tests.compiler.test_differential_engines",
    "tests.compiler.test_sequence_forms",
]


def _marks(function: object, name: str) -> list[object]:
    return [mark for mark in getattr(function, "pytestmark", []) if mark.name == name]


def _shortened(module: ModuleType) -> dict[str, str]:
    """Each shortened test of the module → the slow test it shortens."""
    return {
        name: mark.args[0]  # type: ignore[attr-defined]
        for name, function in vars(module).items()
        if name.startswith("test_")
        for mark in _marks(function, "shortened")
    }


def test_every_shortened_test_names_a_slow_test_of_its_module() -> None:
    found = 0
    for module in map(importlib.import_module, MODULES):
        for short, slow in _shortened(module).items():
            assert _marks(getattr(module, slow, None), "slow"), f"{module.__name__}: {short}"
            found += 1
    assert found == 6


def _collected(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {line.split("::")[1] for line in result.stdout.splitlines() if "::" in line}


def test_a_short_run_is_left_out_only_beside_its_slow_test() -> None:
    module = importlib.import_module("tests.compiler.test_differential")
    ((short, slow),) = _shortened(module).items()
    path = "tests/compiler/test_differential.py"
    everything = _collected(path)
    assert slow in everything and short not in everything
    quick = _collected(path, "-m", "not slow")
    assert short in quick and slow not in quick
    assert _collected(f"{path}::{short}") == {short}
