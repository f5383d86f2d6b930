"""REST API authentication: ``Authorization: Bearer <admin key>``."""

from __future__ import annotations

import time

from fastapi import Request


def require_api_key(request: Request) -> str:
    """FastAPI dependency: the name of the admin key the request carries, or 401."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else None
    return str(request.app.state.api_keys.name_for(key, time.monotonic()))
