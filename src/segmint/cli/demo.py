"""``segmint demo``: a generated shop data set, keys, and the server — for a first look."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from segmint.catalog.keys import create_key
from segmint.cli.common import console, friendly_errors, load_settings
from segmint.collect.importer import Row, import_rows
from segmint.runtime import Runtime


@friendly_errors
def demo_command(
    users: Annotated[int, typer.Option(min=1, help="Visitors to generate on first run.")] = 3000,
    days: Annotated[int, typer.Option(min=1, help="Days of history to generate.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed of the generated data.")] = 7,
    serve: Annotated[bool, typer.Option(help="Start the server afterwards.")] = True,
) -> None:
    """Load a generated data set (first run only), create demo keys, start the server."""
    from segmint.generate.shop import generate_events

    settings = load_settings()
    runtime = Runtime.open(settings)
    keys_file = settings.data_dir / "demo-keys.json"
    try:
        (count,) = runtime.warehouse.rows("SELECT count(*) FROM events")[0]
        if count == 0:
            console.print(f"Generating {days} days of a shop with {users:,} visitors…")
            start = time.perf_counter()
            end = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
            rows = generate_events(users=users, days=days, seed=seed, end=end)
            summary = import_rows(
                runtime.collector,
                (Row(i, e) for i, e in enumerate(rows, start=1)),
                source="demo",
                rejected_path=settings.data_dir / "demo.rejected.jsonl",
            )
            console.print(
                f"Loaded {summary.imported:,} events in {time.perf_counter() - start:.1f} s."
            )
        else:
            console.print(f"The warehouse already holds {count:,} events; keeping them.")
        if not keys_file.exists():
            _, write_key = create_key(runtime.catalog, "demo website", "write")
            _, admin_key = create_key(runtime.catalog, "demo admin", "admin")
            keys_file.write_text(json.dumps({"write_key": write_key, "admin_key": admin_key}))
        keys = json.loads(keys_file.read_text())
    finally:
        runtime.close()
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"\n[bold]Segmint demo[/] on {base}")
    console.print(f"  API docs:   {base}/docs")
    console.print(f"  write key:  {keys['write_key']}  (send events to {base}/v1/batch)")
    console.print(f"  admin key:  {keys['admin_key']}  (Authorization: Bearer … for /api/v1)")
    console.print(
        f"  try:        curl -H 'Authorization: Bearer {keys['admin_key']}' {base}/api/v1/events\n"
    )
    if serve:
        from segmint.cli.main import serve as serve_command

        serve_command(host=None, port=None)
