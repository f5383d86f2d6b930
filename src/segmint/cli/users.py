"""``segmint users create|list|set-password``: the people who sign in to the web UI."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.text import Text

from segmint.catalog import open_catalog
from segmint.catalog.accounts import check_password, create_user, list_users, set_password
from segmint.cli.common import (
    command_group,
    console,
    creates_data,
    friendly_errors,
    load_settings,
)
from segmint.errors import InvalidInput

app = command_group("Users of the web UI (sign-in accounts).")

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (for scripts).",
    ),
]


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of stdin, or typed twice at a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise InvalidInput("no password on standard input: pipe it in, one line")
        check_password(password)
        return password
    if not sys.stdin.isatty():
        raise InvalidInput(
            "no terminal to ask for the password: pass --password-stdin and pipe it in"
        )
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    check_password(password)
    return str(password)


@app.command("create")
@creates_data
@friendly_errors
def create(
    username: Annotated[str, typer.Argument(help="The sign-in name, e.g. 'alice'.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user who can sign in to the web UI."""
    password = read_password(password_stdin)
    settings = load_settings()
    settings.ensure_data_dir()
    catalog = open_catalog(settings.catalog_database_url)
    try:
        user = create_user(catalog, username, password)
    finally:
        catalog.dispose()
    console.print(
        Text.assemble(
            "Created user ", (user.username, "bold"), f" (#{user.id}); sign in at /login."
        )
    )


@app.command("list")
@friendly_errors
def list_command() -> None:
    """List the users (never their passwords)."""
    settings = load_settings()
    catalog = open_catalog(settings.catalog_database_url)
    try:
        users = list_users(catalog)
    finally:
        catalog.dispose()
    if not users:
        console.print("No users yet: `segmint users create USERNAME` makes one.")
    for user in users:
        console.print(f"#{user.id}  {user.username}", highlight=False)


@app.command("set-password")
@friendly_errors
def set_password_command(
    username: Annotated[str, typer.Argument(help="Whose password to replace.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Replace a user's password."""
    password = read_password(password_stdin)
    settings = load_settings()
    catalog = open_catalog(settings.catalog_database_url)
    try:
        user = set_password(catalog, username, password)
    finally:
        catalog.dispose()
    console.print(Text.assemble("Password of ", (user.username, "bold"), " replaced."))
