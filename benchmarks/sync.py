"""List Sync preparation benchmark (issue 5): map, normalize, hash and batch 1M members.

    .venv/bin/python benchmarks/sync.py                    # 1M members, Meta rules
    .venv/bin/python benchmarks/sync.py --members 200000   # a quick run

Generates members the way profiles hold them (emails in mixed case with stray spaces, phones
in E.164 as collection stores them for most, a national format for some, names with accents
and punctuation, a country code, a few malformed emails and already-hashed values), then times
``prepare_members`` with Meta's schema and rules plus chunking into 10,000-row requests (best
of ``--repeat``), next to a bare ``hashlib.sha256`` loop over the same identifier strings in
the same run. Aim: ≥ 200,000 members/s.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time

from segmint.sync.batching import chunk
from segmint.sync.normalize import META_RULES, IdentifierKind, ListMember, prepare_members

SCHEMA: tuple[IdentifierKind, ...] = ("email", "phone", "first_name", "last_name", "country")
FIRST = ["Anna", "José", "Zoë", "Mary-Jane", "O'Neil", "Li", "Ørjan", "Chloé"]
LAST = ["Smith", "García", "Müller", "O'Brien", "Nguyen", "Dubois", "Kowalski"]


def name_pool(rng: random.Random, base: list[str], size: int) -> list[str]:
    """``size`` distinct-looking names: real ones with accents and punctuation, extended by
    random letters (a real customer base has tens of thousands of distinct names)."""
    letters = "abcdefghijklmnopqrstuvwxyzéøü"
    return [
        rng.choice(base) + "".join(rng.choice(letters) for _ in range(rng.randrange(1, 5)))
        for _ in range(size)
    ]


def generate(count: int, seed: int = 5) -> list[ListMember]:
    """Members with a realistic mix of identifier quality."""
    rng = random.Random(seed)
    first_names, last_names = name_pool(rng, FIRST, 20_000), name_pool(rng, LAST, 100_000)
    out = []
    for i in range(count):
        email: str | None = f" User.{i}@Example{i % 97}.com "
        roll = rng.random()
        if roll < 0.01:
            email = f"broken-{i}"
        elif roll < 0.03:
            email = hashlib.sha256(f"user.{i}@example.com".encode()).hexdigest()
        phone: str | None = None
        if i % 2 == 0:
            phone = f"+1415{i % 10_000_000:07d}"
        elif i % 100 == 1:
            phone = f"(212) 555-{i % 10_000:04d}"
        out.append(
            ListMember(
                key=f"u{i}",
                email=email,
                phone=phone,
                first_name=rng.choice(first_names),
                last_name=rng.choice(last_names),
                country="US",
            )
        )
    return out


def bare_strings(members: list[ListMember]) -> list[str]:
    """The identifier strings a List Sync hashes, for the bare hashlib baseline."""
    strings = []
    for m in members:
        for value in (m.email, m.phone, m.first_name, m.last_name, m.country):
            if value:
                strings.append(value)
    return strings


def time_prepare(members: list[ListMember]) -> tuple[float, int, int]:
    start = time.perf_counter()
    prepared = prepare_members(members, SCHEMA, META_RULES, default_region="US")
    batches = list(chunk(prepared.rows, 10_000))
    return time.perf_counter() - start, len(batches), len(prepared.set_aside)


def time_bare(strings: list[str]) -> float:
    start = time.perf_counter()
    sha = hashlib.sha256
    for text in strings:
        sha(text.encode()).hexdigest()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    members = generate(args.members)
    strings = bare_strings(members)
    prepare = min(time_prepare(members) for _ in range(args.repeat))
    bare = min(time_bare(strings) for _ in range(args.repeat))
    seconds, batches, aside = prepare
    print(f"members:               {args.members:>12,}")
    print(f"identifier strings:    {len(strings):>12,}")
    print(f"requests (10k rows):   {batches:>12,}   values set aside: {aside:,}")
    print(f"List Sync prepare:     {args.members / seconds:>12,.0f} members/s   ({seconds:.2f} s)")
    print(f"bare hashlib loop:     {args.members / bare:>12,.0f} members/s   ({bare:.2f} s)")
    print(f"ratio prepare / bare:  {seconds / bare:>12.2f}x   aim: ≥ 200,000 members/s")


if __name__ == "__main__":
    main()
