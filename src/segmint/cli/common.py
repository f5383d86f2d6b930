"""What every command shares: the console, settings, opening the runtime, and turning errors
into a clear message and an exit code (never a stack trace)."""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import StatementError

from segmint.errors import WRITE_REFUSED, NotWritable, SegmintError, Unauthorized, not_writable
from segmint.settings import Settings

# Markup off: printed values (names, paths, messages quoting user input) are shown as they
# are, never read as rich markup ("[/]" in a name made rich raise); styles are given with
# Text instead.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INPUT = 2
EXIT_AUTH = 3
EXIT_INTERNAL = 1


def command_group(help: str, **options: Any) -> typer.Typer:
    """A group of commands as every group of this command line has them: help written in
    Markdown (summaries joined into one line, wrapped to the terminal only), shown when the
    group is run without a command."""
    return typer.Typer(rich_markup_mode="markdown", help=help, no_args_is_help=True, **options)


# Set while a command that makes the data directory runs (see creates_data).
_creating_data: ContextVar[bool] = ContextVar("creating_data", default=False)


def creates_data(func: F) -> F:
    """Mark a command that makes Segmint data, and so the data directory when it is missing
    (generate, import, demo, serve, and creating keys, users and audiences). Every other
    command refuses settings that point where there is no Segmint data (see
    :func:`load_settings`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _creating_data.set(True)
        try:
            return func(*args, **kwargs)
        finally:
            _creating_data.reset(token)

    return wrapper  # type: ignore[return-value]


def load_settings(*, needs_data: bool = True) -> Settings:
    """The settings, from the environment (``--data-dir`` sets SEGMINT_DATA_DIR). Unless
    the command makes data (:func:`creates_data`) or reads none (``needs_data=False``),
    settings that point where there is no Segmint data are refused (:class:`NoData`) before
    anything is opened, so a mistyped ``--data-dir`` never leaves an empty workspace."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        err_console.print(
            Text.assemble((f"Invalid setting SEGMINT_{field.upper()}:", "red"), " ", first["msg"])
        )
        raise typer.Exit(EXIT_INPUT) from None
    if needs_data and not _creating_data.get():
        settings.require_data()
    return settings


def friendly_errors(func: F) -> F:
    """Run a command, printing a :class:`SegmintError` (or the operating system refusing a
    write: a read-only file system, missing permissions) as one red line and exiting
    non-zero; any other error as one line too, never with a stack trace."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SegmintError as exc:
            _print_error(exc)
        except KeyboardInterrupt:
            err_console.print(Text("Interrupted.", "yellow"))
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except OSError as exc:
            if exc.errno not in WRITE_REFUSED:
                _unexpected(exc)
            _print_error(refused_by_the_system(exc))
        except Exception as exc:
            _unexpected(exc)

    return wrapper  # type: ignore[return-value]


def refused_by_the_system(exc: OSError) -> SegmintError:
    """The error to show for an OS refusal (read-only file system, permission denied)."""
    where = exc.filename if exc.filename is not None else "a file"
    if exc.errno == errno.EROFS:
        return not_writable(where, WRITE_REFUSED[errno.EROFS])
    return NotWritable(
        f"cannot use {where}: permission denied — check its permissions, or choose another "
        "path (--data-dir for Segmint's data)"
    )


def _print_error(exc: SegmintError) -> NoReturn:
    # A message that begins with its field already says where.
    shown = exc.path and not exc.message.startswith(exc.path)
    where = f" ({exc.path})" if shown else ""
    err_console.print(Text.assemble((f"Error{where}:", "red"), " ", exc.message))
    raise typer.Exit(EXIT_AUTH if isinstance(exc, Unauthorized) else EXIT_INPUT) from None


def _unexpected(exc: BaseException) -> NoReturn:
    """Print an error no interface expected, in its cause's words only: a database error's
    statement and parameters (keys' hashes ...) never reach the terminal."""
    logging.getLogger("segmint").debug("unexpected error", exc_info=True)
    shown = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    lines = str(shown).strip().splitlines()
    err_console.print(
        Text.assemble(
            ("Unexpected error:", "red"),
            f" {type(shown).__name__}: {lines[0] if lines else ''}. Run with SEGMINT_DEBUG=1 "
            "for details, and report it if it persists.",
        )
    )
    raise typer.Exit(EXIT_INTERNAL) from None
