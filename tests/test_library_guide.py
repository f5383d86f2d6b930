"""docs/library.md's script runs as written and prints what the guide says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "library.md"


def test_the_library_guide_script_prints_what_the_guide_shows(tmp_path: Path) -> None:
    text = GUIDE.read_text()
    script = re.search(r"```python\n(.*?)```", text, re.S)
    shown = re.search(r"It prints:\n\n```\n(.*?)```", text, re.S)
    assert script and shown, "the guide has its script and the output it shows"
    (tmp_path / "guide.py").write_text(script.group(1))
    result = subprocess.run(
        [sys.executable, "guide.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == shown.group(1)
    assert (tmp_path / "segmint-data").is_dir()  # the data directory the script names
