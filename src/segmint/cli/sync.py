"""``segmint destinations ...``, ``segmint sync ...`` and ``segmint logs AUDIENCE``.

Credentials are read from a JSON file (``--credentials-file``) or ``--credential KEY=VALUE``
options; a value of ``-`` is asked for without echo, so secrets stay out of shell history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from segmint.audiences import operations
from segmint.cli.common import (
    command_group,
    console,
    creates_data,
    friendly_errors,
    load_settings,
)
from segmint.destinations import registry
from segmint.errors import InvalidInput
from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync import checks, runner
from segmint.sync.catalog import SyncLogEntry
from segmint.sync.runner import SyncContext

destinations_app = command_group("Ad and messaging platforms audiences sync to.")
sync_app = command_group("Link audiences to destinations and sync them.")

CredentialOption = Annotated[
    list[str] | None,
    typer.Option(
        "--credential",
        help="KEY=VALUE (repeatable); VALUE '-' asks for it without echo.",
    ),
]
CredentialsFile = Annotated[
    Path | None,
    typer.Option("--credentials-file", help="A JSON object of credentials.", exists=True),
]


@contextmanager
def _context() -> Iterator[SyncContext]:
    runtime = Runtime.open(load_settings())
    try:
        yield SyncContext.of(runtime)
    finally:
        runtime.close()


def _pairs(items: list[str] | None, option: str, *, secret: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{option} takes KEY=VALUE, got {item!r}", path=option)
        if secret and value == "-":
            try:
                value = typer.prompt(key.strip(), hide_input=True)
            except typer.Abort:  # standard input ended (or Ctrl+C) before a value
                raise InvalidInput(
                    f"{option} {key.strip()}=- reads the value from standard input, which "
                    "gave none: type it when asked, pipe it in, or put the credentials in a "
                    "JSON file and pass --credentials-file",
                    path=option,
                ) from None
        result[key.strip()] = value
    return result


def _credentials(
    items: list[str] | None, file: Path | None, *, required: bool = True
) -> dict[str, Any]:
    credentials: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(
                f"{file} is not readable JSON: {exc}", path="--credentials-file"
            ) from None
        if not isinstance(loaded, dict):
            raise InvalidInput(f"{file} must hold a JSON object", path="--credentials-file")
        credentials.update(loaded)
    credentials.update(_pairs(items, "--credential", secret=True))
    if not credentials and required:
        raise InvalidInput(
            "give the platform's credentials with --credential KEY=VALUE or --credentials-file",
            path="--credential",
        )
    return credentials


_ref = sync_catalog.destination_ref  # an id (digits) or a name


# --- destinations ----------------------------------------------------------------------------


@destinations_app.command("list")
@friendly_errors
def list_destinations() -> None:
    """Every destination with its status (credentials are never shown)."""
    with _context() as ctx:
        rows = sync_catalog.list_destinations(ctx.catalog)
    table = Table("id", "name", "platform", "status", "problem")
    for row in rows:
        table.add_row(str(row.id), row.name, row.label, row.status, row.last_error or "")
    console.print(
        table if rows else "No destinations yet: add one with `segmint destinations add`."
    )


@destinations_app.command("add")
@creates_data
@friendly_errors
def add_destination(
    name: Annotated[str, typer.Argument(help="Your name for it, e.g. 'Shop Meta'.")],
    platform: Annotated[str, typer.Option(help=f"One of: {', '.join(sync_catalog.PLATFORMS)}.")],
    credential: CredentialOption = None,
    credentials_file: CredentialsFile = None,
    config: Annotated[
        list[str] | None, typer.Option("--config", help="KEY=VALUE setting (repeatable).")
    ] = None,
    check: Annotated[bool, typer.Option(help="Try the credentials on the platform.")] = True,
) -> None:
    """Connect a destination; its credentials are stored encrypted. Its settings are checked
    before anything is saved (and, with --check, its login on the platform)."""
    sync_catalog.check_platform(platform)
    takes_credentials = any(setting.credential for setting in registry.settings(platform))
    credentials = _credentials(credential, credentials_file, required=takes_credentials)
    settings = _pairs(config, "--config")
    if check:  # before saving anything; a missing setting is named before the login is tried
        credentials, settings = sync_catalog.check_settings(platform, name, credentials, settings)
        runner.try_credentials(platform, name, credentials, settings)
    with _context() as ctx:
        info = sync_catalog.create_destination(
            ctx.catalog, ctx.secrets, name, platform, credentials, settings
        )
    console.print(
        Text.assemble("Connected ", (info.name, "bold"), f" ({info.label}): {info.status}.")
    )


@destinations_app.command("reauth")
@friendly_errors
def reauthenticate(
    destination: Annotated[str, typer.Argument(help="Id or name.")],
    credential: CredentialOption = None,
    credentials_file: CredentialsFile = None,
) -> None:
    """Replace the login (R21); pending changes go out with the next sync."""
    with _context() as ctx:
        info = sync_catalog.reauthenticate_destination(
            ctx.catalog, ctx.secrets, _ref(destination), _credentials(credential, credentials_file)
        )
        info = runner.check_destination(ctx, info.id)
    console.print(f"{info.name} is {info.status} again; pending changes go out with the next sync.")


@destinations_app.command("check")
@friendly_errors
def check_destination(destination: Annotated[str, typer.Argument(help="Id or name.")]) -> None:
    """Try the credentials with one cheap call to the platform."""
    with _context() as ctx:
        info = runner.check_destination(ctx, _ref(destination))
    console.print(f"{info.name}: the credentials work ({info.status}).")


@destinations_app.command("disable")
@friendly_errors
def disable(destination: Annotated[str, typer.Argument(help="Id or name.")]) -> None:
    """Stop every sync to it until enabled."""
    with _context() as ctx:
        info = sync_catalog.disable_destination(ctx.catalog, _ref(destination))
    console.print(f"{info.name} is disabled.")


@destinations_app.command("rename")
@friendly_errors
def rename(
    destination: Annotated[str, typer.Argument(help="Id or name.")],
    name: Annotated[str, typer.Argument(help="The new name.")],
) -> None:
    """Give a destination a new name (its links and logs follow)."""
    with _context() as ctx:
        before = sync_catalog.get_destination(ctx.catalog, _ref(destination))
        info = sync_catalog.rename_destination(ctx.catalog, before.id, name)
    console.print(f"{before.name} is now {info.name}.")


@destinations_app.command("enable")
@friendly_errors
def enable(destination: Annotated[str, typer.Argument(help="Id or name.")]) -> None:
    """Sync to it again."""
    with _context() as ctx:
        info = sync_catalog.enable_destination(ctx.catalog, _ref(destination))
    console.print(f"{info.name} is active.")


# --- links and syncs -------------------------------------------------------------------------


@sync_app.command("link")
@friendly_errors
def link(
    audience: Annotated[str, typer.Argument(help="Audience id or name.")],
    destination: Annotated[str, typer.Argument(help="Destination id or name.")],
    mode: Annotated[str | None, typer.Option(help="'list' (R16) or 'event' (R17).")] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="IDENTIFIER=PROFILE_FIELD (repeatable); R18's defaults."),
    ] = None,
) -> None:
    """Link an audience to a destination; its first sync sends the full membership."""
    with _context() as ctx:
        info = operations.resolve_ref(ctx.catalog, audience)
        mapping = _pairs(map_, "--map") or None
        created = sync_catalog.link_audience(
            ctx.catalog, info.id, _ref(destination), mode=mode, identifier_mapping=mapping
        )
    mapped = ", ".join(f"{k}←{v}" for k, v in created.identifier_mapping.items())
    console.print(
        f"Linked {info.label} to {created.destination_name} as link #{created.id} "
        f"({created.mode} sync; {mapped}).",
        highlight=False,
    )


@sync_app.command("links")
@friendly_errors
def links(audience: Annotated[str, typer.Argument(help="Audience id or name.")]) -> None:
    """The audience's destinations."""
    with _context() as ctx:
        info = operations.resolve_ref(ctx.catalog, audience)
        rows = sync_catalog.list_links(ctx.catalog, audience_id=info.id, include_ended=True)
    table = Table("link", "destination", "mode", "status", "last synced")
    for row in rows:
        synced = f"{row.last_synced_at:%Y-%m-%d %H:%M}" if row.last_synced_at else "never"
        table.add_row(str(row.id), row.destination_name, row.mode, row.status, synced)
    console.print(table if rows else f"{info.label} is not linked to any destination.")


@sync_app.command("now")
@friendly_errors
def sync_now(
    audience: Annotated[str, typer.Argument(help="Audience id or name.")],
    destination: Annotated[
        str | None, typer.Option(help="Only this destination (default: all linked).")
    ] = None,
) -> None:
    """Instant Sync: send the changes pending since the last sync now (R20 applies). Exits 1
    when a sync failed or was refused."""
    with _context() as ctx:
        info = operations.resolve_ref(ctx.catalog, audience)
        if destination:  # an unknown one is said so, not "no active link"
            sync_catalog.get_destination(ctx.catalog, _ref(destination))
        targets = sync_catalog.list_links(
            ctx.catalog, audience_id=info.id, destination=_ref(destination) if destination else None
        )
        if not targets:
            raise InvalidInput(f"{info.label} has no active link to sync; link it first")
        entries = [runner.sync_link(ctx, target.id, trigger="instant") for target in targets]
    _print_logs(entries)
    if any(entry.status in ("failed", "refused") for entry in entries):
        raise typer.Exit(1)


@sync_app.command("preview")
@friendly_errors
def preview(link_id: Annotated[int, typer.Argument(help="Link number.")]) -> None:
    """Match-rate preview: who would be sent, and identifier quality (R19)."""
    with _context() as ctx:
        result = checks.match_rate_preview(ctx, link_id)
    console.print(
        f"{result.destination_name}: {result.would_send:,} of {result.members:,} members "
        f"would be sent ({result.mode} sync).",
        highlight=False,
    )
    table = Table("identifier", "members", "share")
    for name, count in result.identifiers.items():
        table.add_row(name, f"{count:,}", f"{result.share(name):.0%}")
    console.print(table)
    if result.anonymous:
        console.print(f"{result.anonymous:,} anonymous members are skipped (R16).")
    for reason, count in result.malformed.items():
        console.print(f"{count:,} values set aside: {reason}.")
    if result.pending:
        console.print(
            Text.assemble((str(result.pending), "yellow"), " — the platform's minimum list size.")
        )


@sync_app.command("why")
@friendly_errors
def why(link_id: Annotated[int, typer.Argument(help="Link number.")]) -> None:
    """Why is this audience not syncing? Checks everything and says what to do (R29)."""
    with _context() as ctx:
        result = checks.why_not_syncing(ctx, link_id)
    for check in result.checks:
        mark = ("✓", "green") if check.ok else ("✗", "red")
        line = f" {check.name}: {check.detail}"
        if check.action and not check.ok:
            line += f" — {check.action}"
        console.print(Text.assemble(mark, line), highlight=False, soft_wrap=True)
    console.print(result.summary, highlight=False, soft_wrap=True)


@sync_app.command("unlink")
@friendly_errors
def unlink(link_id: Annotated[int, typer.Argument(help="Link number.")]) -> None:
    """Stop syncing; the audience stays on the platform as it is (R22)."""
    with _context() as ctx:
        info = runner.unlink(ctx, link_id)
    console.print(f"Unlinked from {info.destination_name}; the remote audience was left as is.")


@sync_app.command("delete")
@friendly_errors
def delete(
    link_id: Annotated[int, typer.Argument(help="Link number.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the audience on the platform too, then stop syncing (R22)."""
    if not yes:
        typer.confirm("Delete the audience on the platform?", abort=True)
    with _context() as ctx:
        info = runner.delete_link(ctx, link_id)
    console.print(f"Deleted the audience on {info.destination_name} and stopped syncing.")


@friendly_errors
def logs_command(
    audience: Annotated[str, typer.Argument(help="Audience id or name.")],
    destination: Annotated[str | None, typer.Option(help="Only this destination.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """Every sync attempt of an audience, newest first (R23)."""
    with _context() as ctx:
        info = operations.resolve_ref(ctx.catalog, audience)
        entries = sync_catalog.list_sync_logs(
            ctx.catalog,
            info.id,
            destination=_ref(destination) if destination else None,
            limit=limit,
        )
    if not entries:
        console.print(f"{info.label} has not synced yet.")
        return
    _print_logs(entries)


def _print_logs(entries: list[SyncLogEntry]) -> None:
    table = Table(
        "started", "destination", "mode", "trigger", "status", "added", "removed", "skipped"
    )
    for entry in entries:
        table.add_row(
            f"{entry.started_at:%Y-%m-%d %H:%M:%S}",
            entry.destination_name,
            entry.mode,
            entry.trigger,
            entry.status,
            f"{entry.added:,}",
            f"{entry.removed:,}",
            f"{entry.skipped:,}",
        )
    console.print(table)
    for entry in entries:
        if entry.error_message:
            console.print(
                f"{entry.destination_name}, {entry.started_at:%H:%M:%S}: {entry.error_message}"
                + (
                    f" — {entry.remedy}"
                    if entry.remedy and entry.remedy not in entry.error_message
                    else ""
                ),
                highlight=False,
                soft_wrap=True,
            )
        for reason, count in entry.skipped_reasons.items():
            console.print(f"  skipped {count:,}: {reason}", highlight=False)
