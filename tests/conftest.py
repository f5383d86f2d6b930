"""Shared fixtures: a private data directory, an opened runtime, and a live server on a
free port speaking real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from segmint.api.app import create_app
from segmint.catalog.keys import create_key
from segmint.runtime import Runtime
from segmint.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SEGMINT_DATA_DIR", str(tmp_path / "data"))
    return Settings()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings)
    yield rt
    rt.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    write_key: str
    admin_key: str
    runtime: Runtime

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.admin_key}"}
        )


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[LiveServer]:
    """The real app served by uvicorn on 127.0.0.1 in a background thread."""
    _, write_key = create_key(runtime.catalog, "test source", "write")
    _, admin_key = create_key(runtime.catalog, "test admin", "admin")
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime=runtime), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", write_key, admin_key, runtime)
    server.should_exit = True
    thread.join(timeout=15)
