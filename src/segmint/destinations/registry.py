"""Destinations registered by name, so links and settings refer to platforms as strings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from segmint.destinations.base import Destination
from segmint.errors import NotFound

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
    """A configured destination of kind ``name``."""
    return get_factory(name)(**config)


def names() -> list[str]:
    """Registered destination names, sorted."""
    return sorted(_FACTORIES)
