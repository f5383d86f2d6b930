"""What every command shares: the console, settings, opening the runtime, and turning errors
into a clear message and an exit code (never a stack trace)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from segmint.errors import SegmintError, Unauthorized
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


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        err_console.print(
            Text.assemble((f"Invalid setting SEGMINT_{field.upper()}:", "red"), " ", first["msg"])
        )
        raise typer.Exit(EXIT_INPUT) from None


def friendly_errors(func: F) -> F:
    """Run a command, printing a :class:`SegmintError` as one red line and exiting non-zero."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SegmintError as exc:
            # A message that begins with its field already says where.
            shown = exc.path and not exc.message.startswith(exc.path)
            where = f" ({exc.path})" if shown else ""
            err_console.print(Text.assemble((f"Error{where}:", "red"), " ", exc.message))
            raise typer.Exit(EXIT_AUTH if isinstance(exc, Unauthorized) else EXIT_INPUT) from None
        except KeyboardInterrupt:
            err_console.print(Text("Interrupted.", "yellow"))
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            logging.getLogger("segmint").debug("unexpected error", exc_info=True)
            err_console.print(
                Text.assemble(
                    ("Unexpected error:", "red"),
                    f" {type(exc).__name__}: {exc}. Run with SEGMINT_DEBUG=1 for details, and "
                    "report it if it persists.",
                )
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]
