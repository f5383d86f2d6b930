"""``segmint preview FILE`` (Run Query), ``segmint explain AUDIENCE_FILE PROFILE`` and
``segmint sql FILE``.

Each reads an audience file (or a bare definition file, YAML or JSON). Preview and explain
open the warehouse read-only (so they run next to ``segmint serve``) and print rich tables;
``sql`` prints the SQL the definition compiles to for an engine. Audience
references (``kind: audience``) resolve to files named after the audience next to FILE
(``buyers.yaml``, ``buyers.yml`` or ``buyers.json``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from segmint.audiences.explain import PREFIXES, Explanation, explain_membership
from segmint.audiences.files import read_audience_file
from segmint.audiences.run import RunResult, run_definition
from segmint.cli.common import console, friendly_errors, load_settings
from segmint.compiler import compile_definition, to_sql
from segmint.definitions.model import Definition
from segmint.definitions.validation import AudienceResolver
from segmint.errors import InvalidInput
from segmint.warehouse import open_warehouse

AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Evaluate at this ISO instant (2025-03-15T12:00:00Z); default now."
    ),
]


def parse_as_of(text: str | None) -> dt.datetime:
    """``--as-of`` as an instant (naive means UTC); now when not given."""
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--as-of {text!r} is not an ISO date-time; write it like 2025-03-15T12:00:00Z",
            path="as_of",
        ) from None


def directory_resolver(directory: Path) -> AudienceResolver:
    """Audience name → the definition in ``NAME.yaml`` / ``.yml`` / ``.json`` in ``directory``."""

    def resolve(name: str) -> Definition | None:
        for suffix in (".yaml", ".yml", ".json"):
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return read_audience_file(path, resolve_audience=resolve).definition
        return None

    return resolve


@friendly_errors
def preview_command(
    file: Annotated[Path, typer.Argument(help="An audience or definition file (YAML or JSON).")],
    as_of: AsOfOption = None,
    sample: Annotated[int, typer.Option(min=0, max=1000, help="Members to show.")] = 10,
) -> None:
    """Run a definition: size, a sample of members, per-condition counts and why a
    condition matches nobody."""
    settings = load_settings()
    resolver = directory_resolver(file.parent)
    audience = read_audience_file(file, resolve_audience=resolver)
    instant = parse_as_of(as_of)
    warehouse = open_warehouse(settings.warehouse_file, read_only=True)
    try:
        result = run_definition(
            warehouse,
            audience.definition,
            as_of=instant,
            timezone=settings.timezone,
            resolve_audience=resolver,
            sample_size=sample,
        )
    finally:
        warehouse.close()
    print_run(result, title=audience.name or file.name)


@friendly_errors
def explain_command(
    file: Annotated[Path, typer.Argument(help="An audience or definition file (YAML or JSON).")],
    profile: Annotated[
        str,
        typer.Argument(
            help="A profile id, user id, email or anonymous id; when one value names two "
            "profiles, a prefix says which: profile:7, user:7, email:…, anonymous:…, phone:…"
        ),
    ],
    as_of: AsOfOption = None,
) -> None:
    """Explain why one profile is in or out of an audience: every condition's value.

    The output says whom PROFILE named: a profile merged into another is explained as that
    one, and a value that names two profiles (profile 7, and the user id "7" of another) is
    refused until a prefix says which (profile:7, user:7)."""
    settings = load_settings()
    resolver = directory_resolver(file.parent)
    audience = read_audience_file(file, resolve_audience=resolver)
    instant = parse_as_of(as_of)
    warehouse = open_warehouse(settings.warehouse_file, read_only=True)
    try:
        result = explain_membership(
            warehouse,
            audience.definition,
            profile,
            as_of=instant,
            timezone=settings.timezone,
            resolve_audience=resolver,
        )
    finally:
        warehouse.close()
    print_explanation(result, title=audience.name or file.name)


class SqlEngine(StrEnum):
    """The engines a definition compiles for."""

    duckdb = "duckdb"
    clickhouse = "clickhouse"
    spark = "spark"


@friendly_errors
def sql_command(
    file: Annotated[Path, typer.Argument(help="An audience or definition file (YAML or JSON).")],
    engine: Annotated[
        SqlEngine, typer.Option("--engine", help="The engine the SQL is for (docs/engines.md).")
    ] = SqlEngine.duckdb,
    as_of: AsOfOption = None,
) -> None:
    """Print the SQL a definition compiles to for an engine: it selects the members'
    profile_id from the warehouse's tables. Windows become the instants they mean as of
    --as-of (default now), so compile again for another instant."""
    settings = load_settings(needs_data=False)  # compiling reads no data
    resolver = directory_resolver(file.parent)
    audience = read_audience_file(file, resolve_audience=resolver)
    query = compile_definition(
        audience.definition,
        as_of=parse_as_of(as_of),
        timezone=settings.timezone,
        dialect=engine.value,
        resolve_audience=resolver,
    )
    # Plain output, so it can be piped or saved as it is.
    typer.echo(to_sql(query, engine.value, pretty=True))


def print_run(result: RunResult, *, title: str) -> None:
    """Size, per-condition counts, explanations and the sample, as rich tables."""
    console.print(
        Text.assemble(
            (title, "bold"),
            ": ",
            (f"{result.size:,}", "bold green"),
            f" of {result.profiles:,} profiles as of {result.as_of:%Y-%m-%d %H:%M} UTC "
            f"({result.timezone})",
        )
    )
    conditions = Table("condition", "matches", "after step", "path", title="Conditions")
    steps = {step.child_path: step.count for node in result.diagnostics for step in node.steps}
    for node in result.diagnostics:
        after = steps.get(node.path)
        conditions.add_row(
            "  " * node.depth + node.label,
            f"{node.count:,}",
            "" if after is None else f"{after:,}",
            node.path,
        )
    console.print(conditions)
    for line in result.explanations:
        console.print(Text.assemble(("•", "yellow"), f" {line}"))
    if result.sample:
        members = Table("profile", "user id", "email", "country", "last seen", "traits")
        members.title = "Sample of members"
        for member in result.sample:
            traits = ", ".join(f"{k}={v}" for k, v in member.traits.items())
            members.add_row(
                str(member.profile_id),
                member.user_id or "",
                member.email or "",
                member.country or "",
                f"{member.last_seen:%Y-%m-%d %H:%M}" if member.last_seen else "",
                traits,
            )
        console.print(members)


def print_explanation(result: Explanation, *, title: str) -> None:
    """Whom the reference named (and how), the verdict, then every node's value with its
    facts."""
    verdict = ("a member", "bold green") if result.member else ("NOT a member", "bold red")
    found = result.profile
    how = "" if found.matched_by == "profile" else f", found by its {PREFIXES[found.matched_by]}"
    if found.merged_from is not None:
        how = f": profile {found.merged_from} was merged into it"
    console.print(f"Explaining {found.label()}{how}.", highlight=False, soft_wrap=True)
    console.print(
        Text.assemble(
            f"Profile {result.profile_id} is ",
            verdict,
            f" of {title} as of {result.as_of:%Y-%m-%d %H:%M} UTC ({result.timezone})",
        )
    )
    table = Table("value", "why", "path", title="Conditions")
    for node in result.nodes:
        mark = Text("✓ true", "green") if node.matched else Text("✗ false", "red")
        table.add_row(mark, "  " * node.depth + node.detail, node.path)
    console.print(table)
