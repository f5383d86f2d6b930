"""Ingest throughput: the HTTP batch API and bulk import, each next to a baseline measured
in the same run (a plain DuckDB bulk insert of the same rows, with no validation,
enrichment or identity resolution).

    .venv/bin/python benchmarks/ingest.py                 # 1,000,000 events
    .venv/bin/python benchmarks/ingest.py --events 200000 # quicker

Prints events/second for each path and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from segmint.collect.importer import import_file  # noqa: E402
from segmint.generate.shop import generate_events  # noqa: E402
from segmint.runtime import Runtime  # noqa: E402
from segmint.settings import Settings  # noqa: E402

END = datetime(2025, 12, 1)
EVENTS_PER_USER_GUESS = 25


def generate_file(path: Path, events: int, seed: int) -> int:
    """Write about ``events`` generated events to a JSON-lines file; return the count."""
    users = max(1, events // EVENTS_PER_USER_GUESS)
    count = 0
    with path.open("wb") as handle:
        while count < events:
            for event in generate_events(users=users, days=90, seed=seed, end=END):
                handle.write(orjson.dumps(event) + b"\n")
                count += 1
                if count >= events:
                    break
            seed += 1
    return count


def baseline_duckdb(path: Path, workdir: Path) -> float:
    """Seconds for DuckDB alone to bulk-insert the same rows into a table."""
    con = duckdb.connect(str(workdir / "baseline.duckdb"))
    start = time.perf_counter()
    con.execute(
        "CREATE TABLE events AS SELECT * FROM read_json(?, format='newline_delimited', "
        "records=true, sample_size=-1, maximum_object_size=1000000)",
        [str(path)],
    )
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def bulk_import(path: Path, workdir: Path) -> tuple[float, int]:
    settings = Settings(data_dir=workdir / "import")
    runtime = Runtime.open(settings)
    start = time.perf_counter()
    summary = import_file(runtime.collector, path)
    elapsed = time.perf_counter() - start
    runtime.close()
    return elapsed, summary.imported


def _wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def http_batches(path: Path, workdir: Path, batch_size: int, clients: int) -> tuple[float, int]:
    """Seconds for ``clients`` concurrent senders to post the file as /v1/batch requests to a
    `segmint serve` process; bodies are encoded before the clock starts."""
    env = {**os.environ, "SEGMINT_DATA_DIR": str(workdir / "http"), "SEGMINT_PORT": "8765"}
    segmint = [sys.executable, "-m", "segmint.cli.main"]
    key_output = subprocess.run(
        [*segmint, "keys", "create", "bench"], env=env, capture_output=True, text=True, check=True
    ).stdout
    write_key = next(w for w in key_output.split() if w.startswith("sgw_"))
    auth = {
        "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        "Content-Type": "application/json",
    }
    bodies: list[bytes] = []
    batch: list[bytes] = []
    total = 0
    with path.open("rb") as handle:
        for line in handle:
            batch.append(line.rstrip(b"\n"))
            total += 1
            if len(batch) == batch_size:
                bodies.append(b'{"batch":[' + b",".join(batch) + b"]}")
                batch = []
    if batch:
        bodies.append(b'{"batch":[' + b",".join(batch) + b"]}")
    server = subprocess.Popen(
        [*segmint, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = "http://127.0.0.1:8765"
        _wait_for(url)
        failures: list[str] = []
        lock = threading.Lock()
        cursor = iter(range(len(bodies)))

        def send() -> None:
            with httpx.Client(base_url=url, timeout=120) as client:
                while True:
                    with lock:
                        index = next(cursor, None)
                    if index is None:
                        return
                    response = client.post("/v1/batch", content=bodies[index], headers=auth)
                    if response.status_code != 200:
                        failures.append(response.text[:200])

        threads = [threading.Thread(target=send) for _ in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        if failures:
            raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    finally:
        server.terminate()
        server.wait(timeout=60)
    return elapsed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="segmint-bench-"))
    try:
        path = workdir / "events.jsonl"
        start = time.perf_counter()
        count = generate_file(path, args.events, args.seed)
        print(
            f"generated {count:,} events ({path.stat().st_size / 1e6:,.0f} MB) in "
            f"{time.perf_counter() - start:.1f} s"
        )
        base = baseline_duckdb(path, workdir)
        base_rate = count / base
        print(f"baseline  plain DuckDB bulk insert : {base_rate:>12,.0f} events/s ({base:.1f} s)")
        seconds, imported = bulk_import(path, workdir)
        rate = imported / seconds
        print(
            f"segmint   bulk import (segmint import): {rate:>12,.0f} events/s ({seconds:.1f} s)"
            f"  = {rate / base_rate:.2f}x baseline   [aim >= 300,000/s]"
        )
        seconds, sent = http_batches(path, workdir, args.batch_size, args.clients)
        rate = sent / seconds
        print(
            f"segmint   HTTP /v1/batch ({args.batch_size}/req, {args.clients} clients): "
            f"{rate:>10,.0f} events/s ({seconds:.1f} s)  = {rate / base_rate:.2f}x baseline"
            "   [aim >= 20,000/s]"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
