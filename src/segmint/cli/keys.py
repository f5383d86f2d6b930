"""``segmint keys create|list|revoke``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from segmint.catalog import open_catalog
from segmint.catalog.keys import create_key, list_keys, revoke_key
from segmint.cli.common import (
    command_group,
    console,
    creates_data,
    friendly_errors,
    load_settings,
)

app = command_group("Write keys (for sources) and admin keys (for the REST API).")


@app.command("create")
@creates_data
@friendly_errors
def create(
    name: Annotated[str, typer.Argument(help="Who uses the key, e.g. 'website'.")],
    scope: Annotated[
        str, typer.Option(help="'write' to send events, 'admin' for /api/v1.")
    ] = "write",
) -> None:
    """Create a key and print it (it is shown only once)."""
    settings = load_settings()
    settings.ensure_data_dir()
    catalog = open_catalog(settings.catalog_database_url)
    info, key = create_key(catalog, name, scope)
    console.print(
        Text.assemble(f"Created {info.scope} key #{info.id} for ", (info.name, "bold"), ":")
    )
    console.print(key, soft_wrap=True, highlight=False)
    console.print(Text("Store it now: only its hash is kept.", "dim"))


@app.command("list")
@friendly_errors
def list_command() -> None:
    """List keys (never the keys themselves)."""
    settings = load_settings()
    catalog = open_catalog(settings.catalog_database_url)
    keys = list_keys(catalog)
    if not keys:
        console.print(
            "No keys yet: `segmint keys create NAME` makes a write key (for a source), "
            "`segmint keys create NAME --scope admin` one for the REST API."
        )
        return
    table = Table("id", "name", "scope", "starts with", "created", "revoked")
    for info in keys:
        table.add_row(
            str(info.id),
            info.name,
            info.scope,
            info.key_prefix + "…",
            f"{info.created_at:%Y-%m-%d %H:%M}",
            f"{info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "",
        )
    console.print(table)


@app.command("revoke")
@friendly_errors
def revoke(key_id: Annotated[int, typer.Argument(help="The key's id (see `keys list`).")]) -> None:
    """Revoke a key: requests with it are refused from then on."""
    settings = load_settings()
    info = revoke_key(open_catalog(settings.catalog_database_url), key_id)
    console.print(f"Revoked key #{info.id} ({info.name}).")
