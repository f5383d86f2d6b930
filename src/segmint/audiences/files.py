"""Audiences as code: an audience in a YAML or JSON file.

    name: abandoned_checkout_30d
    description: Started checkout, did not order, in the last 30 days
    refresh_interval: 1d          # 1h … 30d; leave out for static audiences
    warmup: true                  # daily for the first 3 days (the default)
    definition:
      root: {kind: and, conditions: [...]}

A file holding only a definition (``root: ...`` or a bare node) is accepted too; it then has
no name or interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from segmint.definitions import Definition, parse_definition
from segmint.definitions.errors import DefinitionError
from segmint.definitions.loading import _TextDatesLoader
from segmint.definitions.validation import AudienceResolver
from segmint.errors import InvalidInput, require_file

_INTERVAL = re.compile(r"^\s*(\d+)\s*(m|min|minutes?|h|hours?|d|days?|w|weeks?)\s*$", re.I)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AUDIENCE_KEYS = {"name", "description", "refresh_interval", "warmup", "definition"}


@dataclass
class AudienceFile:
    """What an audience file says."""

    path: Path
    definition: Definition
    name: str | None = None
    description: str = ""
    refresh_interval: timedelta | None = None
    warmup: bool = True


def parse_interval(text: str | int, path: str = "refresh_interval") -> timedelta:
    """``"1h"``, ``"6 hours"``, ``"1d"``, ``"2w"`` (or a number of seconds) → timedelta."""
    if isinstance(text, int) and not isinstance(text, bool):
        return timedelta(seconds=text)
    match = _INTERVAL.match(str(text))
    if not match:
        raise InvalidInput(
            f"{text!r} is not an interval; write it like '6h', '1d' or '7d'", path=path
        )
    unit = _UNITS[match.group(2)[0].lower()]
    return timedelta(**{unit: int(match.group(1))})


def format_interval(interval: timedelta | None) -> str:
    """The shortest readable form: ``1d``, ``6h``, ``90m``."""
    if interval is None:
        return "—"
    seconds = int(interval.total_seconds())
    for size, suffix in ((604800, "w"), (86400, "d"), (3600, "h"), (60, "m")):
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def read_yaml(path: Path) -> Any:
    """Parse a YAML/JSON file (dates stay text) with errors that name the line."""
    require_file(path)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_TextDatesLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidInput(f"{path.name} is not valid YAML or JSON{where}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name} is not UTF-8 text") from None


def audience_from_data(
    data: Any, path: Path, *, resolve_audience: AudienceResolver | None = None
) -> AudienceFile:
    """Build an :class:`AudienceFile` from parsed data (see the module docstring)."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name} must hold an object (an audience or a definition)")
    if "definition" not in data:
        if "root" not in data:  # neither shape: say what each needs, not just "root"
            raise InvalidInput(
                f"{path.name} is neither an audience file (with a `definition`, and "
                f"{', '.join(sorted(_AUDIENCE_KEYS - {'definition'}))}) nor a bare definition "
                f"(with a `root` condition); it has {', '.join(map(str, data)) or 'nothing'}",
                path="definition",
            )
        return AudienceFile(path, parse_definition(data, resolve_audience=resolve_audience))
    unknown = set(data) - _AUDIENCE_KEYS
    if unknown:
        raise InvalidInput(
            f"{path.name}: unknown field(s) {', '.join(sorted(unknown))}; an audience file has "
            f"{', '.join(sorted(_AUDIENCE_KEYS))}",
            path=sorted(unknown)[0],
        )
    try:
        definition = parse_definition(data["definition"], resolve_audience=resolve_audience)
    except DefinitionError as exc:
        where = f"definition.{exc.path}" if exc.path else None
        raise DefinitionError(exc.reason, path=where) from None
    interval = data.get("refresh_interval")
    warmup = data.get("warmup", True)
    if not isinstance(warmup, bool):
        raise InvalidInput("warmup must be true or false", path="warmup")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidInput("name must be text", path="name")
    return AudienceFile(
        path=path,
        definition=definition,
        name=name,
        description=str(data.get("description") or ""),
        refresh_interval=parse_interval(interval) if interval is not None else None,
        warmup=warmup,
    )


def read_audience_file(
    path: Path, *, resolve_audience: AudienceResolver | None = None
) -> AudienceFile:
    """Read and validate an audience (or bare definition) file."""
    return audience_from_data(read_yaml(path), path, resolve_audience=resolve_audience)
