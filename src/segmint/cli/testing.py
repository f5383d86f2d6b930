"""``segmint test DIR``: run audience fixture tests (audiences as code, PRODUCT B6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from segmint.audiences.testing import run_tests
from segmint.cli.common import console, friendly_errors


@friendly_errors
def test_command(
    directory: Annotated[Path, typer.Argument(help="A folder of *.test.yaml files (or one file).")],
) -> None:
    """Run the fixture tests beside audience files; exit 1 when any fails."""
    results = run_tests(directory)
    if not results:
        console.print(f"No *.test.yaml files under {directory}.")
        raise typer.Exit(1)
    failed = 0
    for result in results:
        if result.error:
            failed += 1
            console.print(
                Text.assemble(("ERROR", "red"), f" {result.path}: {result.error}"), soft_wrap=True
            )
            continue
        for case in result.cases:
            label = f"{result.path} case {case.index + 1} (as of {case.as_of:%Y-%m-%d %H:%M})"
            if case.passed:
                console.print(Text.assemble(("PASS", "green"), f"  {label}"), soft_wrap=True)
            else:
                failed += 1
                console.print(Text.assemble(("FAIL", "red"), f"  {label}"), soft_wrap=True)
                for failure in case.failures:
                    console.print(f"        {failure}", soft_wrap=True)
    total = sum(len(r.cases) or 1 for r in results)
    console.print(f"\n{total - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)
