"""Jinja2 templates (autoescaped) and :func:`render`, which every page uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from segmint import __version__
from segmint.catalog.accounts import WebUser
from segmint.web.auth import csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

NAV = ("audiences", "events", "usage", "destinations")


def static_url(path: str) -> str:
    """The URL of a file under ``web/static`` (versioned, so a new release is not cached)."""
    return f"/static/{path.lstrip('/')}?v={__version__}"


def format_datetime(value: dt.datetime | None, empty: str = "—") -> str:
    """A naive-UTC timestamp as ``2026-11-29 14:05 UTC``."""
    if value is None:
        return empty
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return f"{value:%Y-%m-%d %H:%M} UTC"


def format_relative(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """``in 3 h`` / ``5 min ago`` style distance to ``now`` (naive UTC)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    seconds = (value - now).total_seconds()
    size = abs(seconds)
    if size < 60:
        text = "less than a minute"
    elif size < 3600:
        text = f"{int(size // 60)} min"
    elif size < 86400 * 2:
        text = f"{int(size // 3600)} h"
    else:
        text = f"{int(size // 86400)} days"
    if size < 60:
        return "just now" if seconds <= 0 else "in less than a minute"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def format_number(value: int | float | None, empty: str = "—") -> str:
    if value is None:
        return empty
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "htm", "xml", "svg"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["datetime"] = format_datetime
    env.filters["relative"] = format_relative
    env.filters["number"] = format_number
    env.globals["static_url"] = static_url
    env.globals["version"] = __version__
    return env


templates = Jinja2Templates(env=_environment())


def nav_for(path: str) -> str:
    """Which top-level navigation entry a path belongs to."""
    first = path.strip("/").split("/", 1)[0]
    return first if first in NAV else ""


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render template ``name`` with ``context`` plus ``user`` (the signed-in user or
    ``None``), ``csrf_token``, ``nav_active`` and ``static_url``."""
    values: dict[str, Any] = dict(context or {})
    user = getattr(request.state, "user", None)
    values.setdefault("user", user if isinstance(user, WebUser) else None)
    values.setdefault("csrf_token", csrf_token(request))
    values.setdefault("nav_active", nav_for(request.url.path))
    values.setdefault("static_url", static_url)
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    response.headers.setdefault("Cache-Control", "no-store")
    return response
