"""``segmint import FILE`` and ``segmint generate``: data into the warehouse."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from segmint.cli.common import console, friendly_errors, load_settings
from segmint.collect.importer import ImportSummary, Row, import_file, import_rows
from segmint.errors import InvalidInput
from segmint.runtime import Runtime
from segmint.warehouse import open_warehouse
from segmint.warehouse.portable import export_read_tables, parquet_files


class _ImportProgress:
    """A progress bar for an import: rows done and, when the share of the input done is
    known (a file), the percentage and the time left."""

    def __init__(self, description: str) -> None:
        self.bar = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            TextColumn("{task.fields[share]}"),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[left]}"),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        self.task = self.bar.add_task(description, total=None, share="", rows=0, left="")

    def __enter__(self) -> _ImportProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def __call__(self, rows: int, share: float | None) -> None:
        if share is None:
            self.bar.update(self.task, rows=rows)
            return
        self.bar.update(self.task, total=1.0, completed=share, rows=rows, share=f"{share:4.0%}")
        remaining = self.bar.tasks[0].time_remaining
        left = f"{timedelta(seconds=round(remaining))} left" if remaining and share < 1 else ""
        self.bar.update(self.task, left=left)


def _print_summary(summary: ImportSummary, seconds: float) -> None:
    rate = summary.rows / seconds if seconds > 0 else 0.0
    table = Table(show_header=False, box=None)
    table.add_row("rows read", f"{summary.rows:,}")
    table.add_row("imported", Text(f"{summary.imported:,}", "green"))
    table.add_row("duplicates skipped", f"{summary.duplicates:,}")
    table.add_row("rejected", Text(f"{summary.rejected:,}", "red") if summary.rejected else "0")
    table.add_row("profiles merged", f"{summary.merges:,}")
    table.add_row("time", f"{seconds:.1f} s ({rate:,.0f} rows/s)")
    console.print(table)
    if summary.reasons:
        reasons = Table("reason", "rows", title="Rejected rows")
        for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1])[:10]:
            reasons.add_row(reason, f"{count:,}")
        console.print(reasons)
        console.print(f"Rejected rows, with their reasons, are in {summary.rejected_file}")


@friendly_errors
def import_command(
    file: Annotated[
        Path, typer.Argument(help="A .jsonl, .csv or .parquet file (.gz allowed for text).")
    ],
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl, csv or parquet.")] = None,
    rejected: Annotated[
        Path | None,
        typer.Option(help="Where to write rejected rows (default FILE.rejected.jsonl)."),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes that read, validate and enrich chunks while this one stores them "
            "(default and most: one per core, for files of more than one chunk; 0 for none).",
        ),
    ] = None,
) -> None:
    """Import historical events in Segment-spec shape, with the API's validation, enrichment
    and identity resolution. Exits 2 when nothing was imported (an empty file, or every row
    rejected)."""
    settings = load_settings()
    runtime = Runtime.open(settings)
    try:
        start = time.perf_counter()
        with _ImportProgress(f"Importing {file.name}") as progress:
            summary = import_file(
                runtime.collector,
                file,
                fmt=fmt,
                rejected_path=rejected,
                progress=progress,
                processes=processes,
            )
        _print_summary(summary, time.perf_counter() - start)
    finally:
        runtime.close()
    if not summary.rows:
        console.print(f"[yellow]{file.name} has no rows: nothing was imported[/yellow]")
        raise typer.Exit(2)
    if not summary.imported and not summary.duplicates:
        raise typer.Exit(2)


@friendly_errors
def generate_command(
    users: Annotated[int, typer.Option(min=1, help="How many people visit the shop.")] = 2000,
    days: Annotated[int, typer.Option(min=1, max=3650, help="How many days of history.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 1,
    end: Annotated[
        datetime | None, typer.Option(help="Last instant of the data (UTC); default now.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write a .jsonl file instead of loading the warehouse.")
    ] = None,
) -> None:
    """Generate realistic events of an online shop and load them (or write them to a file)."""
    from segmint.generate.shop import generate_events

    end_at = (end or datetime.now(UTC)).replace(tzinfo=None)
    events = generate_events(users=users, days=days, seed=seed, end=end_at)
    start = time.perf_counter()
    if out is not None:
        if out.suffix.lower() not in (".jsonl", ".ndjson"):
            raise InvalidInput("--out must name a .jsonl file")
        if not out.parent.is_dir():
            raise InvalidInput(f"cannot write {out}: there is no directory {out.parent}")
        count = 0
        try:
            handle = out.open("wb")
        except OSError as exc:
            raise InvalidInput(f"cannot write {out}: {exc.strerror}") from None
        with handle:
            for event in events:
                handle.write(orjson.dumps(event) + b"\n")
                count += 1
        console.print(f"Wrote {count:,} events to {out} in {time.perf_counter() - start:.1f} s")
        return
    settings = load_settings()
    runtime = Runtime.open(settings)
    try:
        with _ImportProgress("Generating and loading") as progress:
            summary = import_rows(
                runtime.collector,
                (Row(i, e) for i, e in enumerate(events, start=1)),
                source="generator",
                rejected_path=settings.data_dir / "generated.rejected.jsonl",
                progress=progress,
            )
        _print_summary(summary, time.perf_counter() - start)
    finally:
        runtime.close()


@friendly_errors
def export_command(
    directory: Annotated[
        Path, typer.Argument(help="Where to write the files (made if missing; replaced).")
    ],
) -> None:
    """Write the tables audience queries read (events, profiles, audience_refreshes,
    segment_events) as Parquet files, to load into ClickHouse or Spark (docs/engines.md)."""
    settings = load_settings()
    warehouse = open_warehouse(settings.warehouse_file, read_only=True)
    try:
        written = export_read_tables(warehouse, directory)
    finally:
        warehouse.close()
    table = Table("table", "rows", "file")
    files = parquet_files(directory)
    for name, rows in written.items():
        table.add_row(name, f"{rows:,}", str(files[name]))
    console.print(table)
