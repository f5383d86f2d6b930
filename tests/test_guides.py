"""The guides' scripts run as written and print what the guides say they print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("guide", ["library.md", "engines.md"])
def test_the_guide_script_prints_what_the_guide_shows(tmp_path: Path, guide: str) -> None:
    text = (DOCS / guide).read_text()
    script = re.search(r"```python\n(.*?)```", text, re.S)
    shown = re.search(r"It prints:\n\n```\n(.*?)```", text, re.S)
    assert script and shown, "the guide has its script and the output it shows"
    (tmp_path / "guide.py").write_text(script.group(1))
    result = subprocess.run(
        [sys.executable, "guide.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == shown.group(1)
    assert (tmp_path / "segmint-data").is_dir()  # the data directory the script names
