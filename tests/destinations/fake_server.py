"""What every fake platform server shares: serving an ASGI app on a free loopback port in a
thread, and cutting connections mid-response at random."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from tests.conftest import serving


class Flaky(Protocol):
    """What ``DroppingApp`` needs of a fake."""

    drop_rate: float
    failures: int
    _lock: threading.Lock
    _random: random.Random


class DroppingApp:
    """ASGI wrapper that, at ``drop_rate``, lets the request through and then cuts the
    connection mid-response, so the client cannot know whether the change was applied."""

    def __init__(self, app: ASGIApp, fake: Flaky) -> None:
        self.app, self.fake = app, fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.fake.drop_rate:
            await self.app(scope, receive, send)
            return
        with self.fake._lock:
            drop = self.fake._random.random() < self.fake.drop_rate
            if drop:
                self.fake.failures += 1
        if not drop:
            await self.app(scope, receive, send)
            return

        async def truncating_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k != b"content-length"]
                headers.append((b"content-length", b"100000"))
                await send({**message, "headers": headers})
            elif message["type"] == "http.response.body":
                await send({**message, "more_body": True})
                raise ConnectionAbortedError("fake dropped the connection")

        await self.app(scope, receive, truncating_send)  # type: ignore[arg-type]


@contextmanager
def serve_app(app: ASGIApp, prefix: str) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL
    ending in ``prefix``."""
    with serving(app, log_level="critical") as url:
        yield url + prefix
