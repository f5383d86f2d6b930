"""``segmint demo``: a generated shop data set, keys, a web UI login, and the server — for a
first look."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from segmint.audiences import operations, service
from segmint.audiences.files import AudienceFile, read_audience_file
from segmint.catalog.accounts import create_user, list_users
from segmint.catalog.keys import create_key
from segmint.cli.common import console, friendly_errors, load_settings
from segmint.collect.importer import Row, import_rows
from segmint.definitions import parse_definition
from segmint.runtime import Runtime

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "audiences"
DEMO_WEB_USER = "admin"
DYNAMIC_EXAMPLES = (
    "abandoned_checkout_30d.yaml",
    "high_value_customers_90d.yaml",
    "us_browsers_no_order_30d.yaml",
)


def last_quarter_purchasers(now: datetime) -> AudienceFile:
    """A static audience over the last complete calendar quarter before ``now``."""
    quarter = (now.month - 1) // 3  # the current quarter, 0-based
    year, previous = (now.year, quarter - 1) if quarter else (now.year - 1, 3)
    start = date(year, previous * 3 + 1, 1)
    end = date(year + 1, 1, 1) if previous == 3 else date(year, previous * 3 + 4, 1)
    definition = parse_definition(
        {
            "root": {
                "kind": "event",
                "event": "order_completed",
                "window": {"type": "absolute", "from": start.isoformat(), "to": end.isoformat()},
            }
        }
    )
    return AudienceFile(
        path=EXAMPLES,
        definition=definition,
        name=f"q{previous + 1}_{year}_purchasers",
        description=f"Ordered between {start} and {end} (exclusive); a static audience.",
    )


def demo_audiences(now: datetime) -> list[AudienceFile]:
    """The audiences the demo creates: three living ones and a static one."""
    files = [read_audience_file(EXAMPLES / name) for name in DYNAMIC_EXAMPLES]
    return [*files, last_quarter_purchasers(now)]


def demo_destination(runtime: Runtime, directory: Path) -> None:
    """A file-export destination linked to the first demo audience and synced once, so the
    Destinations page and an audience's Logs tab show a working sync without any platform
    account (the files land in ``directory``)."""
    from segmint.sync import catalog as sync_catalog
    from segmint.sync.runner import SyncContext, sync_link

    if sync_catalog.list_destinations(runtime.catalog):
        return
    info = sync_catalog.create_destination(
        runtime.catalog,
        runtime.secrets,
        "Local export",
        "file",
        {},
        {"directory": str(directory), "format": "csv"},
    )
    audience = service.get_by_name(runtime.catalog, "abandoned_checkout_30d")
    link = sync_catalog.link_audience(runtime.catalog, audience.id, info.id)
    entry = sync_link(SyncContext.of(runtime), link.id, trigger="manual")
    console.print(
        f"Destination Local export ({directory}): {entry.status}, {entry.added:,} members sent."
    )


def demo_web_user(runtime: Runtime) -> dict[str, str | None]:
    """The web UI login of the demo: an ``admin`` user with a generated password, created
    unless a user of that name exists (then its password is left alone and not known)."""
    if any(user.username == DEMO_WEB_USER for user in list_users(runtime.catalog)):
        return {"web_user": DEMO_WEB_USER, "web_password": None}
    password = secrets.token_urlsafe(12)
    create_user(runtime.catalog, DEMO_WEB_USER, password)
    return {"web_user": DEMO_WEB_USER, "web_password": password}


@friendly_errors
def demo_command(
    users: Annotated[int, typer.Option(min=1, help="Visitors to generate on first run.")] = 3000,
    days: Annotated[int, typer.Option(min=1, help="Days of history to generate.")] = 150,
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
        if not service.list_audiences(runtime.catalog):
            for audience in demo_audiences(datetime.now(UTC).replace(tzinfo=None)):
                info = service.create_draft(
                    runtime.catalog,
                    audience.definition,
                    by="demo",
                    now=operations.utcnow(),
                    name=audience.name,
                    description=audience.description,
                )
                result = operations.activate_audience(
                    runtime.warehouse,
                    runtime.catalog,
                    info.id,
                    name=audience.name,
                    refresh_interval=audience.refresh_interval,
                    warmup=audience.warmup,
                    by="demo",
                    timezone=settings.timezone,
                )
                size = f"{result.refresh.size:,} members" if result.refresh else result.error
                console.print(f"Audience {audience.name}: {size}")
            demo_destination(runtime, (settings.data_dir / "exports").resolve())
        if not keys_file.exists():
            _, write_key = create_key(runtime.catalog, "demo website", "write")
            _, admin_key = create_key(runtime.catalog, "demo admin", "admin")
            keys_file.write_text(json.dumps({"write_key": write_key, "admin_key": admin_key}))
        keys = json.loads(keys_file.read_text())
        if "web_user" not in keys:
            keys.update(demo_web_user(runtime))
            keys_file.write_text(json.dumps(keys))
            keys_file.chmod(0o600)  # it holds a password now
    finally:
        runtime.close()
    base = f"http://{settings.host}:{settings.port}"
    for line in (
        Text.assemble("\n", ("Segmint demo", "bold"), f" on {base}"),
        Text.assemble(
            f"  web UI:     {base}/login  user ",
            (str(keys["web_user"]), "bold"),
            ", password ",
            (str(keys["web_password"] or "(yours: the user existed already)"), "bold"),
        ),
        f"  API docs:   {base}/docs",
        f"  write key:  {keys['write_key']}  (send events to {base}/v1/batch)",
        f"  admin key:  {keys['admin_key']}  (Authorization: Bearer … for /api/v1)",
        f"  try:        curl -H 'Authorization: Bearer {keys['admin_key']}' "
        f"{base}/api/v1/audiences",
        "",
    ):
        console.print(line, soft_wrap=True, highlight=False)
    if serve:
        from segmint.cli.main import serve as serve_command

        serve_command(host=None, port=None)
