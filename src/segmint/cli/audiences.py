"""``segmint audiences list|show|create|update|preview|activate|archive|delete|restore|
history|retention|versions``, ``segmint refresh NAME | --due`` and ``segmint usage``.

Commands that compute members (activate, refresh, history, preview) open the warehouse;
while `segmint serve` owns it, use the REST API instead (the error says so).
"""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from segmint.audiences import history, operations, service, usage
from segmint.audiences.files import (
    AudienceFile,
    format_interval,
    parse_interval,
    read_audience_file,
)
from segmint.audiences.refresh import RefreshRefused
from segmint.audiences.scheduler import default_owner, run_due
from segmint.audiences.service import AudienceInfo
from segmint.catalog import open_catalog
from segmint.catalog.db import Catalog
from segmint.cli.common import (
    command_group,
    console,
    creates_data,
    friendly_errors,
    load_settings,
)
from segmint.definitions import Definition
from segmint.errors import Conflict, InvalidInput
from segmint.runtime import Runtime
from segmint.sync.runner import SyncContext, sync_after_refresh

app = command_group("Audiences: create, update, activate, archive, restore, inspect.")


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "cli"


def _catalog(*, create: bool = False) -> Catalog:
    """The catalog; with ``create`` (for a command that creates data) made, with the data
    directory, when missing."""
    settings = load_settings()
    if create:
        settings.ensure_data_dir()
    return open_catalog(settings.catalog_database_url)


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "—"


@app.command("list")
@friendly_errors
def list_command(
    status: Annotated[str | None, typer.Option(help="draft, active, archived or deleted.")] = None,
) -> None:
    """List audiences with size, schedule and last refresh."""
    if status not in (None, "draft", "active", "archived", "deleted"):
        raise InvalidInput("status must be draft, active, archived or deleted", path="status")
    audiences = service.list_audiences(_catalog(), status)
    if not audiences:
        console.print(
            f"No {status} audiences."
            if status
            else "No audiences yet: "
            "`segmint audiences create FILE` makes one from a file, or build one in the web UI."
        )
        return
    table = Table(
        "id", "name", "status", "type", "size", "interval", "last refresh", "next refresh"
    )
    for a in audiences:
        table.add_row(
            str(a.id),
            a.name or "—",
            a.status,
            "dynamic" if a.is_dynamic else "static",
            f"{a.size:,}" if a.size is not None else "—",
            format_interval(a.refresh_interval),
            _when(a.last_refresh_at),
            _when(a.next_refresh_at),
        )
    console.print(table)


@app.command("show")
@friendly_errors
def show(audience: Annotated[str, typer.Argument(help="Id or name.")]) -> None:
    """Show one audience: status, schedule, size, definition."""
    from segmint.definitions import dump_definition

    info = operations.resolve_ref(_catalog(), audience)
    table = Table(show_header=False, box=None)
    for label, value in [
        ("id", str(info.id)),
        ("name", info.name or "—"),
        ("status", info.status),
        ("type", "dynamic" if info.is_dynamic else "static"),
        ("version", str(info.current_version)),
        (
            "schedule",
            service.describe_schedule(info, operations.utcnow())
            if info.status == "active"
            else "—",
        ),
        ("size", f"{info.size:,}" if info.size is not None else "not computed yet"),
        ("last refresh", _when(info.last_refresh_at)),
        ("next refresh", _when(info.next_refresh_at)),
        ("last error", info.last_error or "—"),
    ]:
        table.add_row(label, value)
    console.print(table)
    console.print(dump_definition(info.definition), highlight=False, soft_wrap=True)


@app.command("create")
@creates_data
@friendly_errors
def create(
    file: Annotated[Path, typer.Argument(help="An audience YAML/JSON file.")],
    activate: Annotated[bool, typer.Option(help="Activate (and compute) it at once.")] = False,
) -> None:
    """Create an audience from a file ("audiences as code")."""
    catalog = _catalog(create=True)
    parsed = read_audience_file(file, resolve_audience=service.audience_resolver(catalog))
    info = service.create_draft(
        catalog,
        parsed.definition,
        by=_who(),
        now=operations.utcnow(),
        name=parsed.name,
        description=parsed.description,
    )
    console.print(f"Created draft {info.label} (id {info.id}).")
    if activate:
        _activate(info.id, parsed.name, parsed.refresh_interval, parsed.warmup)


@app.command("update")
@friendly_errors
def update(
    audience: Annotated[str, typer.Argument(help="Id or name.")],
    file: Annotated[Path, typer.Argument(help="The audience YAML/JSON file, edited.")],
    note: Annotated[str, typer.Option(help="Why it changed (`audiences versions` shows it).")] = "",
    recompute_history: Annotated[
        bool,
        typer.Option(
            "--recompute-history",
            help="Also re-evaluate past membership with the new definition (default: members "
            "change at the next refresh, history stays as it was).",
        ),
    ] = False,
    activate: Annotated[
        bool,
        typer.Option(
            "--activate",
            help="Save & Activate: save it, apply the file's refresh_interval and warmup, and "
            "compute it now (needed to change an active static audience, or to turn one "
            "static or dynamic).",
        ),
    ] = False,
) -> None:
    """Save the definition in FILE as the audience's next version, and show what changed.

    The same save, with the same refusals, as the REST API's PUT /api/v1/audiences/REF/definition
    (a deleted audience, or an edit of an active static one without --activate)."""
    if activate and (recompute_history or note):
        raise InvalidInput(
            "--activate computes the audience anew and saves the version without a note: "
            "leave out --recompute-history and --note with it"
        )
    catalog = _catalog()
    info = operations.resolve_ref(catalog, audience)
    parsed = read_audience_file(file, resolve_audience=service.audience_resolver(catalog))
    _check_same_audience(parsed, info)
    if activate:  # restores a deleted or archived audience too, as activate does
        interval = parsed.refresh_interval or info.refresh_interval
        done = _activate(info.id, None, interval, parsed.warmup, parsed.definition)
        _print_changes(catalog, info, done.current_version)
        return
    if info.status == "deleted":
        raise Conflict(
            f"audience {info.label} is deleted: restore it first (`segmint audiences restore "
            f"{info.id}`), then update it"
        )
    plan = service.plan_edit(catalog, info.id, parsed.definition)
    if plan.unchanged:
        console.print(
            f"No changes: {file.name} is version {info.current_version} of {info.label}; "
            "nothing saved.",
            highlight=False,
        )
        return
    if plan.needs_activation:
        raise Conflict(
            f"{plan.needs_activation} (here: `segmint audiences update {audience} {file} "
            "--activate`)"
        )
    version, recomputed = _save_definition(
        catalog, info, parsed.definition, note, recompute_history
    )
    _print_changes(catalog, info, version)
    if recomputed is not None:
        console.print(f"Recomputed the membership of {recomputed:,} past refresh(es).")
    elif info.status == "active":
        console.print("Members change at its next refresh (`segmint refresh` runs one now).")
    _print_interval_left_out(parsed, info)


def _check_same_audience(parsed: AudienceFile, info: AudienceInfo) -> None:
    """Refuse a file that names another audience (the wrong file, or the wrong NAME)."""
    if parsed.name and info.name and parsed.name != info.name:
        raise InvalidInput(
            f"{parsed.path.name} is the audience {parsed.name!r}, not {info.label}: update "
            f"{parsed.name!r}, or correct the name in the file (`segmint audiences activate "
            f"{info.id} --name NEW` renames an audience)",
            path="name",
        )


def _print_interval_left_out(parsed: AudienceFile, info: AudienceInfo) -> None:
    """Say so when the file's refresh interval differs from the active audience's: saving a
    version keeps the audience's, activating applies the file's."""
    if info.status != "active" or parsed.refresh_interval in (None, info.refresh_interval):
        return
    console.print(
        f"The file's refresh_interval ({format_interval(parsed.refresh_interval)}) is not the "
        f"audience's ({format_interval(info.refresh_interval)}): --activate applies it.",
        highlight=False,
    )


def _save_definition(
    catalog: Catalog,
    info: AudienceInfo,
    definition: Definition,
    note: str,
    recompute_history: bool,
) -> tuple[int, int | None]:
    """Save the next version as the REST API's PUT .../definition does: its number, and the
    past refreshes recomputed (``None`` unless ``recompute_history``)."""
    if not recompute_history:  # the catalog alone: it works next to `segmint serve`
        saved = service.update_definition(
            catalog, info.id, definition, by=_who(), now=operations.utcnow(), note=note
        )
        return saved.version, None
    settings = load_settings()
    runtime = Runtime.open(settings)
    try:
        edit = operations.save_definition(
            runtime.warehouse,
            runtime.catalog,
            info.id,
            definition,
            by=_who(),
            timezone=settings.timezone,
            note=note,
            apply="recompute_history",
        )
    finally:
        runtime.close()
    return edit.version, edit.recomputed_refreshes


def _print_changes(catalog: Catalog, before: AudienceInfo, version: int) -> None:
    """The version saved and its diff from the one before."""
    old = before.current_version
    if version == old:
        console.print(f"The definition of {before.label} is unchanged (version {old}).")
        return
    console.print(
        f"Saved version {version} of {before.label} (was version {old}):", highlight=False
    )
    for line in service.diff_versions(catalog, before.id, old, version).summary:
        console.print(f"• {line}", highlight=False, soft_wrap=True)


@app.command("activate")
@friendly_errors
def activate(
    audience: Annotated[str, typer.Argument(help="Id or name.")],
    name: Annotated[str | None, typer.Option(help="Name (lowercase, digits, _).")] = None,
    interval: Annotated[str | None, typer.Option(help="Refresh interval: 1h … 30d.")] = None,
    warmup: Annotated[bool, typer.Option(help="Daily refreshes for the first 3 days.")] = True,
) -> None:
    """Save & Activate: make it active and compute it now."""
    ref = operations.resolve_ref(_catalog(), audience)
    _activate(ref.id, name, parse_interval(interval, "--interval") if interval else None, warmup)


def _activate(
    audience_id: int,
    name: str | None,
    interval: dt.timedelta | None,
    warmup: bool,
    definition: Definition | None = None,
) -> AudienceInfo:
    """Save & Activate (``definition``, when given, saved first as a new version) and say
    how the first refresh went."""
    settings = load_settings()
    runtime = Runtime.open(settings)
    try:
        result = operations.activate_audience(
            runtime.warehouse,
            runtime.catalog,
            audience_id,
            name=name,
            refresh_interval=interval,
            warmup=warmup,
            by=_who(),
            timezone=settings.timezone,
            definition=definition,
            on_refreshed=sync_after_refresh(SyncContext.of(runtime)),
        )
    finally:
        runtime.close()
    info = result.audience
    console.print(f"Activated {info.label}: {service.describe_schedule(info)}.")
    if result.refresh:
        console.print(
            f"Computed {result.refresh.size:,} members in {result.refresh.duration_seconds:.2f} s."
        )
    else:
        console.print(
            Text.assemble(
                ("The first refresh failed:", "yellow"),
                f" {result.error} (it is retried automatically).",
            )
        )
    return info


def _transition(verb: str, audience: str) -> None:
    catalog = _catalog()
    info = operations.resolve_ref(catalog, audience)
    action = {"archive": service.archive, "delete": service.delete}[verb]
    done = action(catalog, info.id, by=_who(), now=operations.utcnow())
    console.print(f"{done.label} is now {done.status}.")


@app.command("archive")
@friendly_errors
def archive(audience: Annotated[str, typer.Argument(help="Id or name.")]) -> None:
    """Turn an audience off: no more refreshes or syncs."""
    _transition("archive", audience)


@app.command("delete")
@friendly_errors
def delete(audience: Annotated[str, typer.Argument(help="Id or name.")]) -> None:
    """Delete an audience (it can be restored)."""
    _transition("delete", audience)


@app.command("restore")
@friendly_errors
def restore(
    audience: Annotated[str, typer.Argument(help="Id or name.")],
    name: Annotated[str | None, typer.Option(help="A new name, if the old one is taken.")] = None,
) -> None:
    """Restore an archived or deleted audience as a draft."""
    catalog = _catalog()
    info = operations.resolve_ref(catalog, audience, deleted=True)
    if info.status not in ("archived", "deleted"):
        _refuse_restoring(catalog, info)
    done = service.restore(catalog, info.id, by=_who(), now=operations.utcnow(), name=name)
    console.print(f"{done.label} is restored as a draft; activate it to compute it again.")


def _refuse_restoring(catalog: Catalog, info: AudienceInfo) -> None:
    """Refuse restoring an audience that is not archived or deleted, naming the deleted
    audiences of the same name (a name picks the audience that is not deleted first)."""
    deleted = [a for a in service.list_audiences(catalog, "deleted") if a.name == info.name]
    if not deleted:
        return  # the service's own refusal says it all
    listed = ", ".join(f"id {a.id} (deleted {_when(a.deleted_at)})" for a in deleted)
    raise Conflict(
        f"{info.label} names the {info.status} audience #{info.id}, and only archived or "
        f"deleted audiences can be restored. Deleted audiences named {info.name!r}: {listed}; "
        f"restore one by its id with a new name: `segmint audiences restore {deleted[0].id} "
        "--name NEW_NAME`"
    )


@app.command("versions")
@friendly_errors
def versions(
    audience: Annotated[str, typer.Argument(help="Id or name.")],
    diff: Annotated[str | None, typer.Option(help="Show the diff OLD:NEW, e.g. 1:2.")] = None,
) -> None:
    """Versions of the definition (who, when), or the diff between two."""
    old, _, new = (diff or "").partition(":")
    if diff and not (old.isdigit() and new.isdigit()):
        raise InvalidInput("--diff takes two version numbers, e.g. --diff 1:2", path="diff")
    catalog = _catalog()
    info = operations.resolve_ref(catalog, audience)
    if diff:
        result = service.diff_versions(catalog, info.id, int(old), int(new))
        for line in result.summary or ["no changes"]:
            console.print(f"• {line}", highlight=False, soft_wrap=True)
        return
    table = Table("version", "when", "who", "note")
    for v in service.versions(catalog, info.id):
        table.add_row(str(v.version), _when(v.created_at), v.created_by, v.note)
    console.print(table)


@app.command("history")
@friendly_errors
def history_command(audience: Annotated[str, typer.Argument(help="Id or name.")]) -> None:
    """Size over time: every refresh with entered and left (R12)."""
    settings = load_settings()
    runtime = Runtime.open(settings, read_only=True)
    try:
        info = operations.resolve_ref(runtime.catalog, audience)
        points = history.size_over_time(runtime.warehouse, info.id)
    finally:
        runtime.close()
    table = Table("as of", "size", "entered", "left", "version")
    for p in points:
        table.add_row(
            _when(p.as_of), f"{p.size:,}", f"+{p.entered:,}", f"−{p.left:,}", str(p.version)
        )
    console.print(table if points else f"{info.label} has not been refreshed yet.")


@app.command("retention")
@friendly_errors
def retention_command(
    audience: Annotated[str, typer.Argument(help="Id or name.")],
    refresh: Annotated[
        str | None,
        typer.Option(
            "--refresh", help="The refresh whose entrants are the cohort (default: the first)."
        ),
    ] = None,
) -> None:
    """How many of a cohort (the profiles that entered in one refresh) were still members at
    each later refresh (B2)."""
    settings = load_settings()
    runtime = Runtime.open(settings, read_only=True)
    try:
        info = operations.resolve_ref(runtime.catalog, audience)
        points = history.cohort_retention(runtime.warehouse, info.id, refresh or None)
    finally:
        runtime.close()
    start = points[0]
    console.print(
        f"{info.label}: cohort of {start.cohort_size:,} that entered in refresh "
        f"{start.refresh_id} ({_when(start.as_of)})",
        highlight=False,
    )
    table = Table("as of", "refresh", "retained", "rate")
    for p in points:
        table.add_row(_when(p.as_of), p.refresh_id, f"{p.retained:,}", f"{p.rate:.1%}")
    console.print(table)


@friendly_errors
def refresh_command(
    audience: Annotated[str | None, typer.Argument(help="Id or name to refresh now.")] = None,
    due: Annotated[bool, typer.Option("--due", help="Refresh every audience that is due.")] = False,
) -> None:
    """Refresh one audience now, or (with --due) all that are due — for cron."""
    if bool(audience) == due:
        raise InvalidInput("name one audience, or pass --due (not both)")
    settings = load_settings()
    runtime = Runtime.open(settings)
    try:
        if due:
            outcomes = run_due(
                runtime.warehouse,
                runtime.catalog,
                operations.utcnow(),
                default_owner(),
                settings.timezone,
                on_refreshed=sync_after_refresh(SyncContext.of(runtime)),
            )
            for outcome in outcomes:
                line = f"audience #{outcome.audience_id}: {outcome.status}"
                if outcome.result is not None:
                    line += f", {outcome.result.size:,} members"
                if outcome.error:
                    line += f" — {outcome.error}"
                console.print(line, highlight=False, soft_wrap=True)
            console.print(f"{len(outcomes)} audience(s) were due.")
            return
        assert audience is not None
        try:
            result = operations.refresh_by_ref(
                runtime.warehouse,
                runtime.catalog,
                audience,
                timezone=settings.timezone,
                on_refreshed=sync_after_refresh(SyncContext.of(runtime)),
            )
        except RefreshRefused as exc:
            remedy = _remedy(operations.resolve_ref(runtime.catalog, audience))
            if remedy is None:
                raise
            raise RefreshRefused(f"{exc.message} ({remedy})", path=exc.path) from None
    finally:
        runtime.close()
    console.print(
        f"Refreshed: {result.size:,} members (+{result.entered:,} / "
        f"−{result.left:,}) in {result.duration_seconds:.2f} s."
    )


def _remedy(info: AudienceInfo) -> str | None:
    """The commands that make a refused refresh of ``info`` possible (None: none does)."""
    ref = info.name if info.status != "deleted" and info.name else str(info.id)
    if info.status == "draft":
        return f"`segmint audiences activate {ref}`"
    if info.status in ("archived", "deleted"):
        return f"`segmint audiences restore {ref}`, then `segmint audiences activate {ref}`"
    if not info.is_dynamic:
        return f"`segmint audiences update {ref} FILE --activate` saves the edit and recomputes it"
    return None


@friendly_errors
def usage_command(
    days: Annotated[int, typer.Option(min=1, max=3660, help="How many days back.")] = 30,
) -> None:
    """Usage (events consumed by refreshes) per audience, and the 30-day forecast (R11)."""
    catalog = _catalog()
    today = operations.utcnow().date()
    start = today - dt.timedelta(days=days - 1)
    table = Table("audience", "status", "refreshes", "events", title=f"Usage {start} → {today}")
    for row in usage.usage_per_audience(catalog, start=start, end=today):
        table.add_row(
            row.name or str(row.audience_id), row.status, f"{row.refreshes:,}", f"{row.events:,}"
        )
    console.print(table)
    console.print(f"Total: {usage.total_usage(catalog, start=start, end=today):,} events")
    forecast = usage.forecast_monthly(catalog, operations.utcnow())
    console.print(
        f"Forecast for the next 30 days: {forecast.total:,} events. {forecast.assumptions}",
        soft_wrap=True,
    )
