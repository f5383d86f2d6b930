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

from segmint.audiences.service import MAX_INTERVAL, MIN_INTERVAL, interval_range
from segmint.definitions import Definition, parse_definition
from segmint.definitions.errors import DefinitionError
from segmint.definitions.loading import TOO_DEEP_TEXT, _TextDatesLoader
from segmint.definitions.validation import AudienceResolver
from segmint.errors import InvalidInput, require_file

_INTERVAL = re.compile(r"^\s*(\d+)\s*(m|min|minutes?|h|hours?|d|days?|w|weeks?)\s*$", re.I)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_INTERVAL_SECONDS = int(MIN_INTERVAL.total_seconds())
MAX_INTERVAL_SECONDS = int(MAX_INTERVAL.total_seconds())
_MAX_DIGITS = len(str(MAX_INTERVAL_SECONDS))
INTERVAL_FORMS = "write it like '6h', '1d' or '7d', or as a whole number of seconds"
_KINDS = {bool: "true or false", float: "a fractional number", list: "a list", dict: "an object"}
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


def parse_interval(value: object, path: str = "refresh_interval") -> timedelta:
    """``"1h"``, ``"6 hours"``, ``"1d"``, ``"2w"`` (or a whole number of seconds) → timedelta,
    within the refresh intervals allowed (1 hour to 30 days); anything else, booleans
    included, is refused with :class:`InvalidInput` naming ``path``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        kind = _KINDS.get(type(value), type(value).__name__)
        raise InvalidInput(f"{kind} is not an interval; {INTERVAL_FORMS}", path=path)
    if isinstance(value, int):
        seconds = value
    else:
        match = _INTERVAL.match(value)
        if not match:
            raise InvalidInput(f"{_shown(value)} is not an interval; {INTERVAL_FORMS}", path=path)
        digits = match.group(1).lstrip("0") or "0"
        unit = _UNIT_SECONDS[match.group(2)[0].lower()]
        # more digits than any allowed interval has is out of range (and int() refuses
        # thousands of them)
        seconds = int(digits) * unit if len(digits) <= _MAX_DIGITS else MAX_INTERVAL_SECONDS + 1
    if not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
        raise InvalidInput(
            f"a refresh interval of {_shown(value)} is not allowed: choose one {interval_range()}",
            path=path,
        )
    return timedelta(seconds=seconds)


def _shown(value: str | int) -> str:
    """The value as the message quotes it, shortened."""
    if isinstance(value, int):
        return f"{value} seconds" if abs(value) < 10**15 else "that many seconds"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:36]}…'"


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
    except RecursionError:  # PyYAML builds nested collections recursively
        raise InvalidInput(f"{path.name}: {TOO_DEEP_TEXT}") from None
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
