"""Event Sync delivery to GA4: requests in flight at once against one at a time.

    .venv/bin/python benchmarks/event_sync.py                   # 1,000 members, 30 ms
    .venv/bin/python benchmarks/event_sync.py --members 5000 --latency 0.05

A GA4 request carries one client's events, so an Event Sync of N members makes about N
requests, and what bounds it against Google is the round trip of each. This sends
``added_to_segment`` events for ``--members`` members (each its own GA client) through
``GA4Events.deliver_events`` to the tests' local fake of the Measurement Protocol
(tests/destinations/fake_ga4.py, real HTTP on 127.0.0.1), which waits ``--latency`` seconds
before answering each hit, as the network would. The baseline, in the same run, is the same
delivery one request at a time (``concurrency=1``, how GA4 Event Sync sent before); then each
``--concurrency`` given. Prints members/s, the ratio to the baseline, and how many requests
the fake saw in flight at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from segmint.destinations.ga4 import CONCURRENCY, GA4Events  # noqa: E402
from segmint.sync.retry import RetryPolicy  # noqa: E402
from tests.destinations.fake_ga4 import FakeGA4, serve  # noqa: E402
from tests.destinations.fake_webhook import segment_events  # noqa: E402

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def deliver(members: int, latency: float, concurrency: int) -> tuple[float, int]:
    """Seconds to deliver ``members`` events at ``concurrency``, and the most requests the
    fake had in flight at once. Checks the fake ends with exactly those members."""
    fake = FakeGA4(now=NOW, latency=latency)
    events = segment_events("added_to_segment", 0, members)
    with serve(fake) as url:
        ga4 = GA4Events(
            measurement_id=fake.measurement_id,
            api_secret=fake.api_secret,
            base_url=url,
            retry=RetryPolicy(attempts=3, initial=0.01),
            clock=lambda: NOW,
            concurrency=concurrency,
        )
        try:
            start = time.perf_counter()
            sent = ga4.send_events(events)
            seconds = time.perf_counter() - start
        finally:
            ga4.close()
    if sent != members or len(fake.members["aud_1"]) != members or fake.invalid_hits:
        raise SystemExit(f"concurrency {concurrency}: the fake did not end with {members} members")
    return seconds, fake.most_in_flight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.03, help="seconds per round trip")
    parser.add_argument(
        "--concurrency", type=int, action="append", help=f"default: 4 and {CONCURRENCY}"
    )
    args = parser.parse_args()
    levels = args.concurrency or [4, CONCURRENCY]

    print(f"members (one GA client and request each): {args.members:,}")
    print(f"fake round trip: {args.latency * 1000:.0f} ms")
    baseline, _ = deliver(args.members, args.latency, 1)
    print(
        f"one request at a time (baseline): {args.members / baseline:>9,.0f} members/s "
        f"({baseline:.1f} s)"
    )
    for level in levels:
        seconds, most = deliver(args.members, args.latency, level)
        print(
            f"concurrency {level:>2}:                   {args.members / seconds:>9,.0f} members/s "
            f"({seconds:.1f} s)  = {baseline / seconds:.2f}x baseline; "
            f"at most {most} in flight"
        )


if __name__ == "__main__":
    main()
