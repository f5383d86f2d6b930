"""A small world for sync tests: profiles written straight into the warehouse, one dynamic
audience over a trait the tests flip, refreshed through the real refresh path."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from segmint.audiences import service
from segmint.audiences.operations import activate_audience, refresh_by_ref
from segmint.runtime import Runtime

T0 = datetime(2026, 11, 30, 6, 0)
DEFINITION: dict[str, Any] = {
    "root": {
        "kind": "and",
        "conditions": [
            {"kind": "trait", "trait": "tier", "operator": "equals", "value": "gold"},
            # A relative window makes the audience dynamic, so it can be refreshed.
            {
                "kind": "trait",
                "trait": "joined_at",
                "operator": "in_window",
                "value": {"type": "relative", "last": 3650, "unit": "days"},
            },
        ],
    }
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def email_of(profile_id: int) -> str:
    return f"user{profile_id}@example.com"


def seed_profiles(
    runtime: Runtime,
    count: int,
    *,
    anonymous_every: int = 0,
    phone_every: int = 0,
    malformed_every: int = 0,
) -> None:
    """Profiles 1..count, all gold. Every ``anonymous_every``-th has no email or phone (only
    an anonymous id and cookies), every ``phone_every``-th also has a phone, every
    ``malformed_every``-th an email with no domain."""

    def every(n: int) -> str:
        return f"({n} > 0 AND i % {n} = 0)" if n else "false"

    runtime.warehouse.execute(
        f"""
        INSERT INTO profiles (profile_id, user_id, email, phone, anonymous_id, traits,
                              first_seen, last_seen, country, fbp, ga, gclid)
        SELECT i,
               CASE WHEN {every(anonymous_every)} THEN NULL ELSE 'u' || i END,
               CASE WHEN {every(anonymous_every)} THEN NULL
                    WHEN {every(malformed_every)} THEN 'broken' || i || '@'
                    ELSE 'user' || i || '@example.com' END,
               CASE WHEN {every(phone_every)} AND NOT {every(anonymous_every)}
                    THEN '+1415555' || lpad(CAST(i % 10000 AS VARCHAR), 4, '0') END,
               'anon-' || i,
               json_object('tier', 'gold', 'joined_at', '2026-01-01T00:00:00Z',
                           'first_name', 'Ann'),
               TIMESTAMP '2026-01-01', TIMESTAMP '2026-11-01', 'US',
               'fb.1.1700000000.' || i, 'GA1.1.' || i || '.1700000000', 'gcl' || i
        FROM range(1, ? + 1) AS t(i)
        """,
        [count],
    )


def set_tier(runtime: Runtime, profile_ids: Iterable[int], tier: str) -> None:
    ids = list(profile_ids)
    runtime.warehouse.execute(
        "UPDATE profiles SET traits = json_object('tier', ?, 'joined_at', "
        "'2026-01-01T00:00:00Z', 'first_name', 'Ann') "
        "WHERE profile_id IN (SELECT unnest(?::BIGINT[]))",
        [tier, ids],
    )


def activate(runtime: Runtime, name: str = "gold_members", *, hours: int = 0) -> int:
    """Create and activate the audience (computing it as of T0 + hours); returns its id."""
    now = T0 + timedelta(hours=hours)
    draft = service.create_draft(runtime.catalog, DEFINITION, by="test", now=now)
    activation = activate_audience(
        runtime.warehouse,
        runtime.catalog,
        draft.id,
        name=name,
        refresh_interval=timedelta(hours=1),
        warmup=False,
        by="test",
        timezone="UTC",
        now=now,
    )
    assert activation.error is None, activation.error
    return draft.id


def refresh(runtime: Runtime, audience_id: int, *, hours: int) -> None:
    refresh_by_ref(
        runtime.warehouse,
        runtime.catalog,
        audience_id,
        timezone="UTC",
        now=T0 + timedelta(hours=hours),
    )


def members(runtime: Runtime, audience_id: int) -> set[int]:
    return {
        int(row[0])
        for row in runtime.warehouse.rows(
            "SELECT profile_id FROM audience_members WHERE audience_id = ?", [audience_id]
        )
    }
