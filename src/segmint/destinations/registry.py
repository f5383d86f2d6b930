"""Destinations registered by name, so links and settings refer to platforms as strings.

A destination's settings are its factory's keyword arguments that a JSON value can fill: the
names in its module's ``CREDENTIAL_FIELDS`` are credentials (stored encrypted), the others
config. :func:`check_settings` checks saved settings against them without building anything;
:func:`create` builds the adapter and reports settings it cannot take by their names, never
with Python's own message about the constructor's signature.
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import math
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from segmint.destinations.base import Destination
from segmint.errors import InvalidInput, NotFound
from segmint.sync.errors import DestinationError

DestinationFactory = Callable[..., Destination]
F = TypeVar("F", bound=DestinationFactory)

_FACTORIES: dict[str, DestinationFactory] = {}


def register(name: str) -> Callable[[F], F]:
    """Class decorator (or factory decorator) registering a destination under ``name``."""

    def decorate(factory: F) -> F:
        if name in _FACTORIES and _FACTORIES[name] is not factory:
            raise ValueError(f"destination {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return decorate


def get_factory(name: str) -> DestinationFactory:
    """The factory registered as ``name``; NotFound lists the known names."""
    try:
        return _FACTORIES[name]
    except KeyError:
        known = ", ".join(sorted(_FACTORIES)) or "none"
        raise NotFound(f"unknown destination {name!r} (known: {known})") from None


def create(name: str, **config: Any) -> Destination:
    """A configured destination of kind ``name``. Keywords it lacks or does not take, and
    values its constructor refuses (a webhook URL without https:// ...), raise
    :class:`InvalidInput` naming the setting."""
    factory = get_factory(name)
    try:
        return factory(**config)
    except (TypeError, AttributeError):
        raise _signature_problem(name, factory, config) from None
    except (DestinationError, ValueError) as exc:
        message = exc.message if isinstance(exc, DestinationError) else str(exc)
        raise InvalidInput(message, path="config") from None


def names() -> list[str]:
    """Registered destination names, sorted."""
    return sorted(_FACTORIES)


# --- settings ------------------------------------------------------------------------------

Kind = Literal["text", "whole number", "number", "true or false", "JSON object", "choice", "any"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One keyword a destination takes from its saved settings."""

    name: str
    credential: bool
    required: bool
    kind: Kind
    choices: tuple[str, ...] = ()
    default: Any = None
    hint: str | None = None
    """What to put there in words, from the module's optional ``FIELD_HINTS``."""

    @property
    def path(self) -> str:
        """Where it goes in a destination's settings: ``credentials.api_key``,
        ``config.format``."""
        return ("credentials." if self.credential else "config.") + self.name

    def describe(self) -> str:
        """What to put there: ``text``, ``a whole number, e.g. 100``, ``one of csv, parquet``."""
        if self.hint:
            return self.hint
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        wording = _WORDING[self.kind]
        if self.kind in ("true or false", "JSON object", "any") or self.default in (None, ""):
            return wording
        return f"{wording}, e.g. {json.dumps(self.default, default=str)}"


_WORDING: dict[Kind, str] = {
    "text": "text",
    "whole number": "a whole number",
    "number": "a number",
    "true or false": "true or false",
    "JSON object": 'a JSON object, e.g. {"key": "value"}',
    "any": "a value",
}


def settings(name: str) -> tuple[Setting, ...]:
    """The settings a destination of kind ``name`` takes, in its constructor's order.
    Keywords no JSON value can fill (a test's ``client`` or ``clock``) are not settings."""
    factory = get_factory(name)
    module = sys.modules.get(getattr(factory, "__module__", ""), None)
    secret = set(getattr(module, "CREDENTIAL_FIELDS", ()))
    declared = secret | set(getattr(module, "CONFIG_FIELDS", ()))
    hints_in_words: Mapping[str, str] = getattr(module, "FIELD_HINTS", {})
    hints = _type_hints(factory)
    found = []
    for param in _parameters(factory).values():
        if param.name == "destination_name" or param.kind not in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            continue
        if param.name in hints:
            kind, choices = _kind(hints[param.name])
        else:  # unresolved annotations: only the declared fields, unchecked
            kind, choices = ("any" if param.name in declared else None), ()
        if kind is None:
            continue
        required = param.default is inspect.Parameter.empty
        default = None if required else param.default
        found.append(
            Setting(
                param.name,
                param.name in secret,
                required,
                kind,
                choices,
                default,
                hints_in_words.get(param.name),
            )
        )
    return tuple(found)


def check_settings(
    name: str,
    credentials: Mapping[str, Any] | None,
    config: Mapping[str, Any],
    *,
    label: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(credentials, config)`` of a destination of kind ``name``, typed: every key one
    it takes, in the right part (a secret never in config, which every answer shows), of its
    kind (``"500"`` for a whole number becomes 500, ``"false"`` for true or false becomes
    False), a ``null`` dropped, nothing required missing. ``credentials=None`` checks the
    config alone (the credentials stay as stored). Raises :class:`InvalidInput` with the
    setting's path (``config.format``); ``label`` names the platform in messages. Pure:
    nothing is built, read or sent."""
    label = label or name
    known = {setting.name: setting for setting in settings(name)}
    parts: dict[str, Mapping[str, Any]] = (
        {} if credentials is None else {"credentials": credentials}
    )
    parts["config"] = config
    typed: dict[str, dict[str, Any]] = {"credentials": {}, "config": {}}
    for part, values in parts.items():
        for key, value in values.items():
            setting = _setting(known, part, key, label)
            if value is not None:
                typed[part][key] = _typed(setting, value)
    missing = [
        setting
        for setting in known.values()
        if setting.required
        and setting.name not in typed["credentials" if setting.credential else "config"]
        and (credentials is not None or not setting.credential)
    ]
    if missing:
        needs = ", ".join(f"{setting.path} ({setting.describe()})" for setting in missing)
        raise InvalidInput(
            f"{label} needs {needs}; credentials hold the secrets (stored encrypted), config "
            "the other settings",
            path=missing[0].path,
        )
    return typed["credentials"], typed["config"]


def _setting(known: Mapping[str, Setting], part: str, key: str, label: str) -> Setting:
    setting = known.get(key)
    if setting is None:
        raise InvalidInput(
            f"{label} has no setting {key!r}; it takes {_listing(known.values())}",
            path=f"{part}.{key}",
        )
    if setting.credential and part == "config":
        raise InvalidInput(
            f"{key} is a credential: put it in credentials, which are stored encrypted (config "
            "is shown in every answer)",
            path=f"config.{key}",
        )
    if not setting.credential and part == "credentials":
        raise InvalidInput(
            f"{key} is a setting, not a credential: put it in config", path=f"credentials.{key}"
        )
    return setting


def _listing(known: collections.abc.Iterable[Setting]) -> str:
    every = list(known)
    secret = [s.name for s in every if s.credential]
    other = [s.name for s in every if not s.credential]
    credentials = f"credentials {', '.join(secret)}" if secret else "no credentials"
    return f"{credentials} and config {', '.join(other)}" if other else credentials


_WHOLE = re.compile(r"-?\d{1,18}")


def _typed(setting: Setting, value: Any) -> Any:
    """``value`` as ``setting``'s kind takes it, or InvalidInput saying what to put there.
    Text from the CLI (``--config max_per_request=500``) is read as the kind says."""
    kind = setting.kind
    text = value.strip() if isinstance(value, str) else None
    typed: Any = None
    if kind == "any":
        typed = value
    elif kind == "text":
        typed = text or None  # pasted values often carry a stray space or newline
    elif kind == "choice":
        typed = value if value in setting.choices else None
    elif kind == "true or false":
        words = {"true": True, "false": False}
        typed = value if isinstance(value, bool) else words.get((text or "").lower())
    elif kind == "whole number":
        if isinstance(value, int) and not isinstance(value, bool):
            typed = value
        elif text is not None and _WHOLE.fullmatch(text):
            typed = int(text)
    elif kind == "number":
        typed = _number(value, text)
    elif kind == "JSON object":
        typed = _json_object(value, text)
    if typed is None and text == "":
        leave = "" if setting.required else " or leave it out"
        raise InvalidInput(f"{setting.path} is empty: give a value{leave}", path=setting.path)
    if typed is None:
        shown = "" if setting.credential else f", not {json.dumps(value, default=str)[:80]}"
        raise InvalidInput(f"{setting.path} must be {setting.describe()}{shown}", path=setting.path)
    return typed


def _number(value: Any, text: str | None) -> float | int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number: float | int = value
    elif text:
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _json_object(value: Any, text: str | None) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if text:
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _kind(hint: Any) -> tuple[Kind | None, tuple[str, ...]]:
    """The kind of value a keyword annotated ``hint`` takes from JSON, or ``None`` when no
    JSON value fits (a callable, a client object ...)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = [
        arg for arg in (typing.get_args(hint) if union else (hint,)) if arg is not type(None)
    ]
    literals = [arg for arg in options if typing.get_origin(arg) is Literal]
    if literals:
        return "choice", tuple(str(value) for arg in literals for value in typing.get_args(arg))
    if bool in options:
        return "true or false", ()
    if int in options:
        return "whole number", ()
    if float in options:
        return "number", ()
    if any(arg is str or typing.get_origin(arg) is os.PathLike for arg in options):
        return "text", ()
    mappings = (dict, Mapping, collections.abc.Mapping)
    if any(arg in mappings or typing.get_origin(arg) in mappings for arg in options):
        return "JSON object", ()
    return None, ()


def _parameters(factory: Any) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}


def _type_hints(factory: Any) -> dict[str, Any]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except (NameError, TypeError):  # an annotation that cannot be resolved: no type checks
        return {}


def _signature_problem(name: str, factory: Any, given: Mapping[str, Any]) -> InvalidInput:
    """What a TypeError building ``factory`` from ``given`` means for the user: the settings
    it lacks, those it does not take, or a value of the wrong type."""
    params = _parameters(factory)
    paths = {setting.name: setting.path for setting in settings(name)}
    missing = [
        paths.get(param.name, param.name)
        for param in params.values()
        if param.default is inspect.Parameter.empty
        and param.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and param.name not in given
    ]
    if missing:
        return InvalidInput(f"the {name} destination needs {', '.join(missing)}", path=missing[0])
    takes_any = any(param.kind is inspect.Parameter.VAR_KEYWORD for param in params.values())
    unknown = [] if takes_any else [key for key in given if key not in params]
    if unknown:
        return InvalidInput(
            f"the {name} destination has no setting {', '.join(unknown)}; it takes "
            f"{_listing(settings(name))}",
            path=f"config.{unknown[0]}",
        )
    return InvalidInput(
        f"a setting of the {name} destination has the wrong type; it takes "
        + "; ".join(f"{setting.path}: {setting.describe()}" for setting in settings(name)),
        path="config",
    )
