"""Small helpers the page routers share."""

from __future__ import annotations

import datetime as dt
from typing import cast

from fastapi import Request

from segmint.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    """The engine the app runs on (opened at start-up)."""
    return cast(Runtime, request.app.state.runtime)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
