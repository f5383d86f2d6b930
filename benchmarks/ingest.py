"""Ingest throughput: the HTTP batch API and bulk import, each next to a baseline measured
in the same run (a plain DuckDB bulk insert of the same rows, with no validation,
enrichment or identity resolution).

    .venv/bin/python benchmarks/ingest.py                 # 1,000,000 events
    .venv/bin/python benchmarks/ingest.py --events 200000 # quicker

Prints events/second for each path and the ratio to the baseline, and the CPU seconds each
used (the process's own for the baseline and the import, the server's for HTTP): on a machine
shared with other work, CPU time varies much less than wall time. The baseline is measured
again after each of Segmint's lines, whose ratio (on the line below it) is to the mean of the
baselines just before and just after it: on a machine whose speed drifts during a run,
that keeps ratios comparable.

Then a floor: DuckDB alone reading the file into a table of Segmint's ``events`` shape (its
objects kept as JSON text, nothing inferred, nothing else done) — what merely storing these
rows in that table costs. Then a ceiling: how fast one core merely reads the file and parses
its JSON lines with orjson, and that times the cores. An import that parses every message
into Python objects, as Segmint's does (to validate, enrich and resolve it), cannot be faster
than that, whatever else it does.
"""

from __future__ import annotations

import argparse
import base64
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from segmint.collect.importer import (  # noqa: E402
    _jsonl_blocks,
    _Options,
    prepare_block,
)
from segmint.collect.pipeline import utcnow  # noqa: E402
from segmint.collect.workers import worker_count  # noqa: E402
from segmint.generate.shop import generate_events  # noqa: E402
from segmint.runtime import Runtime  # noqa: E402
from segmint.settings import Settings  # noqa: E402
from segmint.warehouse.schema import EVENTS  # noqa: E402

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


def baseline_duckdb(path: Path, workdir: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) for DuckDB alone to bulk-insert the same rows into a table."""
    database = workdir / "baseline.duckdb"
    database.unlink(missing_ok=True)  # measured again later in the run
    con = duckdb.connect(str(database))
    start, cpu = time.perf_counter(), time.process_time()
    con.execute(
        "CREATE TABLE events AS SELECT * FROM read_json(?, format='newline_delimited', "
        "records=true, sample_size=-1, maximum_object_size=1000000)",
        [str(path)],
    )
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    con.close()
    return elapsed, cpu


_JSON_LINES_COLUMNS = (
    "{type: 'VARCHAR', messageId: 'VARCHAR', timestamp: 'VARCHAR', sentAt: 'VARCHAR', "
    "anonymousId: 'VARCHAR', userId: 'VARCHAR', event: 'VARCHAR', name: 'VARCHAR', "
    "properties: 'JSON', traits: 'JSON', context: 'JSON'}"
)


class Baseline:
    """The baseline, measured again after each of Segmint's lines: a line's ratio is to the
    mean of the baselines measured just before and just after it, so that a machine whose
    speed drifts during the run (shared machines do) moves both sides of the ratio."""

    def __init__(self, path: Path, workdir: Path, count: int) -> None:
        self.path, self.workdir, self.count = path, workdir, count
        self.last = 0.0

    def measure(self) -> float:
        seconds, cpu = baseline_duckdb(self.path, self.workdir)
        self.last = self.count / seconds
        print(
            f"baseline  plain DuckDB bulk insert : {self.last:>12,.0f} events/s "
            f"({seconds:.1f} s, {cpu:.1f} s CPU)"
        )
        return self.last

    def ratios(self, *rates: float) -> None:
        """Measure the baseline again and print ``rates`` (of the line just printed) as
        ratios to the mean of the baselines before and after them."""
        before = self.last
        seconds, _ = baseline_duckdb(self.path, self.workdir)
        self.last = self.count / seconds
        mean = (before + self.last) / 2
        shown = " / ".join(f"{rate / mean:.2f}x" for rate in rates)
        print(
            f"            = {shown} baseline (its mean around the line above: {before:,.0f} "
            f"before, {self.last:,.0f} after)"
        )


def events_shape_duckdb(path: Path, workdir: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) for DuckDB alone to read the file (its objects kept as JSON, no
    type inference) into a table of Segmint's ``events`` shape, nothing else done: what
    storing these rows in that table costs before any validation, enrichment or identity."""
    con = duckdb.connect(str(workdir / "events-shape.duckdb"))
    con.execute(EVENTS)
    start, cpu = time.perf_counter(), time.process_time()
    con.execute(
        "INSERT INTO events (message_id, profile_id, type, event, name, user_id, anonymous_id, "
        '"timestamp", sent_at, received_at, properties, traits, context) '
        "SELECT messageId, 0, type, coalesce(event, type), name, userId, anonymousId, "
        "CAST(CAST(timestamp AS TIMESTAMPTZ) AS TIMESTAMP), "
        "CAST(CAST(sentAt AS TIMESTAMPTZ) AS TIMESTAMP), now(), properties, traits, context "
        f"FROM read_json(?, format='newline_delimited', columns={_JSON_LINES_COLUMNS}, "
        "maximum_object_size=1000000)",
        [str(path)],
    )
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    con.close()
    return elapsed, cpu


def parse_only(path: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) to read the file and parse each line with orjson, doing nothing
    else: the least work any import of the file does, on one core."""
    loads = orjson.loads
    start, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as handle:
        for line in handle:
            loads(line)
    return time.perf_counter() - start, time.process_time() - cpu


def _children_cpu() -> float:
    """CPU seconds of this process's children (and theirs) that have ended."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def bulk_import(path: Path, workdir: Path, processes: int | None) -> tuple[float, float, int]:
    """Seconds (wall, CPU) of the `segmint import` program importing the file, as a user runs
    it (its start and the warehouse's opening included), and the events imported. The CPU is
    the program's and its preparation processes' (all have ended when it returns)."""
    env = {**os.environ, "SEGMINT_DATA_DIR": str(workdir / f"import-{processes}")}
    command = [sys.executable, "-m", "segmint", "import", str(path)]
    if processes is not None:
        command += ["--processes", str(processes)]
    start, cpu = time.perf_counter(), _children_cpu()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    found = re.search(r"imported\s+([\d,]+)", result.stdout)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"segmint import failed: {result.stdout[-500:]}{result.stderr[-500:]}")
    return elapsed, cpu, int(found.group(1).replace(",", ""))


def storing_side(path: Path, workdir: Path, limit: int) -> tuple[float, float, int]:
    """Seconds (wall, CPU) the storing process of an import spends on the first ``limit``
    events of the file when their chunks were prepared beforehand, and the events stored:
    what an import could reach with enough cores for preparation. Chunks are prepared here
    first (untimed) and go through pickling, as they come from a preparation process."""
    runtime = Runtime.open(Settings(data_dir=workdir / "storing-side"))
    collector = runtime.collector
    options = _Options(utcnow(), f"import:{path.name}", 32 * 1024, 50_000)
    chunks: list[bytes] = []
    with path.open("rb") as stream:
        for number, payload in enumerate(_jsonl_blocks(stream, options.chunk_size)):
            if number * options.chunk_size >= limit:
                break
            prepared = prepare_block(payload, options, collector.enricher).prepared
            chunks.append(pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL))
    start, cpu = time.perf_counter(), time.process_time()
    stored = 0
    for chunk in chunks:
        stored += collector.store(pickle.loads(chunk), check_table=True).stored
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    runtime.close()
    return elapsed, cpu, stored


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of a process and of the processes it started that
    still run (the server's preparation processes) (Linux /proc; 0 elsewhere)."""
    processes: dict[int, tuple[int, int]] = {}  # pid: (parent, ticks)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        processes[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    ticks, todo = 0, [pid]
    while todo:
        this = todo.pop()
        ticks += processes.get(this, (0, 0))[1]
        todo.extend(child for child, (parent, _) in processes.items() if parent == this)
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


@dataclass
class HttpRun:
    acknowledged: float  # seconds until the last request was answered
    stored: float  # seconds until the server had committed every event to the warehouse
    cpu: float  # server CPU seconds until then (its preparation processes' included)
    client_cpu: float  # the sending threads' CPU seconds (this process's)
    events: int


def http_batches(path: Path, workdir: Path, batch_size: int, clients: int, ack: str) -> HttpRun:
    """Post the file as /v1/batch requests from ``clients`` concurrent senders to a
    `segmint serve` process answering in ``ack`` mode; bodies are encoded before the clock
    starts. Times the answers, and the commit of the last event (the server's /health says
    how many acknowledged events are still waiting)."""
    env = {
        **os.environ,
        "SEGMINT_DATA_DIR": str(workdir / f"http-{ack}"),
        "SEGMINT_PORT": "8765",
        "SEGMINT_INGEST_ACK": ack,
    }
    segmint = [sys.executable, "-m", "segmint"]
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
    # The server's log goes to a file: a pipe nobody reads would block it once full.
    log = workdir / f"http-{ack}.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [*segmint, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=sink
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
        start, cpu, client_cpu = time.perf_counter(), _cpu_seconds(server.pid), time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        acknowledged = time.perf_counter() - start
        while httpx.get(url + "/health", timeout=30).json()["ingest"]["pending"]:
            time.sleep(0.05)
        stored, cpu = time.perf_counter() - start, _cpu_seconds(server.pid) - cpu
        client_cpu = time.process_time() - client_cpu
        if failures:
            raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    except Exception as exc:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{exc}; the end of the server's log:\n{tail}") from exc
    finally:
        server.terminate()
        server.wait(timeout=60)
    return HttpRun(acknowledged, stored, cpu, client_cpu, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    # ~1 KB per generated event: 250 keeps every request under the 500 KB batch limit.
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ack",
        action="append",
        choices=["journal", "commit"],
        help="HTTP acknowledgement mode(s) to measure (SEGMINT_INGEST_ACK); default both",
    )
    parser.add_argument("--skip-import", action="store_true", help="measure HTTP only")
    args = parser.parse_args()
    args.ack = args.ack or ["journal", "commit"]
    workdir = Path(tempfile.mkdtemp(prefix="segmint-bench-"))
    try:
        path = workdir / "events.jsonl"
        start = time.perf_counter()
        count = generate_file(path, args.events, args.seed)
        print(
            f"generated {count:,} events ({path.stat().st_size / 1e6:,.0f} MB) in "
            f"{time.perf_counter() - start:.1f} s"
        )
        baseline = Baseline(path, workdir, count)
        base_rate = baseline.measure()
        seconds, cpu = events_shape_duckdb(path, workdir)
        print(
            f"floor     DuckDB alone into the events table's shape: {count / seconds:>12,.0f} "
            f"events/s ({seconds:.1f} s, {cpu:.1f} s CPU)  = {count / seconds / base_rate:.2f}x "
            "baseline"
        )
        seconds, cpu = parse_only(path)
        cores = worker_count()
        parse_rate = count / seconds
        print(
            f"ceiling   JSON parsing alone (orjson, one core): {parse_rate:>12,.0f} events/s "
            f"({seconds:.1f} s, {cpu:.1f} s CPU); on all {cores} cores at best "
            f"{parse_rate * cores:,.0f} events/s  = {parse_rate * cores / base_rate:.2f}x baseline"
        )
        if not args.skip_import:
            for processes, label in ((0, "one process"), (None, "preparation processes")):
                seconds, cpu, imported = bulk_import(path, workdir, processes)
                rate = imported / seconds
                print(
                    f"segmint   bulk import ({label}): {rate:>12,.0f} events/s "
                    f"({seconds:.1f} s, {cpu:.1f} s CPU)   [aim >= 300,000/s]"
                )
                baseline.ratios(rate)
            seconds, cpu, side = storing_side(path, workdir, min(count, 500_000))
            rate = side / seconds
            print(
                f"segmint   bulk import, storing side alone ({side:,} events prepared "
                f"beforehand): {rate:>12,.0f} events/s ({seconds:.1f} s, {cpu:.1f} s CPU)"
            )
            baseline.ratios(rate)
        for ack in args.ack:
            run = http_batches(path, workdir, args.batch_size, args.clients, ack)
            answered, stored = run.events / run.acknowledged, run.events / run.stored
            print(
                f"segmint   HTTP /v1/batch, ack={ack} ({args.batch_size}/req, {args.clients} "
                f"clients): answered {answered:,.0f} events/s ({run.acknowledged:.1f} s), "
                f"stored {stored:,.0f} events/s ({run.stored:.1f} s, server {run.cpu:.1f} s "
                f"CPU, clients {run.client_cpu:.1f} s)   [aim >= 20,000/s]"
            )
            baseline.ratios(answered, stored)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
